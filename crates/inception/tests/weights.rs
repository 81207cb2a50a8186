//! Weight import against the reference frameworks: every fixture checkpoint loads, is recognised
//! from its tensor names, and reproduces the outputs and activations torchvision computed.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{assert_close, fixtures};
use inception::burn::tensor::{Device, Tensor, TensorData};
use inception::models::{Arch, ModelConfig};
use inception::weights::{self, DType, StateDict};
use inception::{Network, Value};

fn input(io: &StateDict, name: &str) -> Tensor<4> {
    let t = io.get(name).unwrap();
    let shape: [usize; 4] = t.shape.clone().try_into().unwrap();
    Tensor::from_data(TensorData::new(t.data.clone(), shape), &Device::default())
}

fn values(v: Value) -> Vec<f32> {
    v.flat().into_data().try_to_vec::<f32>().unwrap()
}

/// Runs the network on the stored input and compares the main output, the aux heads and the
/// named activations.
fn check(net: &Network, io: &StateDict, aux: &[&str], acts: &[(&str, &str)], tol: f32) {
    let x = input(io, "input");
    let out = net.forward(x.clone()).unwrap();
    assert_close(
        "logits",
        &values(out.output),
        &io.get("logits").unwrap().data,
        tol,
    );
    assert_eq!(out.aux.len(), aux.len());
    for (got, name) in out.aux.into_iter().zip(aux) {
        let got = got.into_data().try_to_vec::<f32>().unwrap();
        assert_close(name, &got, &io.get(name).unwrap().data, tol);
    }
    let layers: Vec<&str> = acts.iter().map(|(layer, _)| *layer).collect();
    let got = net.features(x, &layers).unwrap();
    for (v, (layer, key)) in got.into_iter().zip(acts) {
        assert_close(layer, &values(v), &io.get(key).unwrap().data, tol);
    }
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn googlenet_pth_reproduces_torchvision() {
    let dir = fixtures();
    let sd = weights::read(&dir.join("googlenet_tv_aux.pth")).unwrap();
    assert_eq!(sd.format, weights::Format::PyTorch);
    let cfg = weights::detect(&sd).unwrap();
    assert_eq!(cfg.arch, Arch::GoogLeNet);
    assert!(cfg.aux_logits && cfg.include_top);
    assert_eq!(cfg.classes, 1000);
    let (net, report) = weights::load_model(&cfg, &sd, &Device::default()).unwrap();
    assert_eq!(report.prefix, "");
    assert!(
        report
            .unused
            .iter()
            .all(|n| n.ends_with("num_batches_tracked"))
    );
    assert_eq!(net.param_count().trainable, 13_004_888);
    let io = weights::read(&dir.join("googlenet_tv_io.safetensors")).unwrap();
    let acts = [
        ("inception3a", "act.inception3a"),
        ("inception4e", "act.inception4e"),
        ("inception5b", "act.inception5b"),
        ("avgpool", "act.avgpool"),
    ];
    check(&net, &io, &["aux1_logits", "aux2_logits"], &acts, 1e-4);

    // Without the aux heads: their tensors are reported unused, the logits are the same.
    let cfg = cfg.with_aux_logits(false);
    let (net, report) = weights::load_model(&cfg, &sd, &Device::default()).unwrap();
    assert!(report.unused.iter().any(|n| n.starts_with("aux1.")));
    assert_eq!(net.param_count().trainable, 6_624_904);
    check(&net, &io, &[], &acts[..1], 1e-4);
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn inception_v3_fp16_safetensors_reproduces_torchvision() {
    let dir = fixtures();
    let sd = weights::read(&dir.join("inception_v3_tv_fp16.safetensors")).unwrap();
    assert!(sd.iter().any(|(_, t)| t.dtype == DType::F16));
    let cfg = weights::detect(&sd).unwrap();
    assert_eq!(cfg.arch, Arch::InceptionV3);
    assert!(cfg.aux_logits);
    let (net, _) = weights::load_model(&cfg, &sd, &Device::default()).unwrap();
    let io = weights::read(&dir.join("inception_v3_tv_io.safetensors")).unwrap();
    let acts = [
        ("Mixed_5b", "act.Mixed_5b"),
        ("Mixed_6e", "act.Mixed_6e"),
        ("Mixed_7c", "act.Mixed_7c"),
        ("avgpool", "act.avgpool"),
    ];
    check(&net, &io, &["aux_logits"], &acts, 1e-4);
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn export_round_trips_with_torchvision_names() {
    let dir = fixtures();
    let sd = weights::read(&dir.join("googlenet_tv_aux.pth")).unwrap();
    let cfg = weights::detect(&sd).unwrap();
    let (net, _) = weights::load_model(&cfg, &sd, &Device::default()).unwrap();
    let out = weights::state_dict(&net);
    // Exactly the keys torch.save wrote (num_batches_tracked included), so PyTorch's strict
    // load_state_dict finds nothing missing and nothing unexpected.
    let names = |sd: &StateDict| {
        sd.iter()
            .map(|(n, _)| n.to_string())
            .collect::<HashSet<_>>()
    };
    assert_eq!(names(&out), names(&sd));
    for (name, t) in sd
        .iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
    {
        assert_eq!(out.get(name).unwrap().data, t.data, "{name}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("googlenet.safetensors");
    weights::safetensors::write(&path, &out).unwrap();
    let back = weights::read(&path).unwrap();
    assert_eq!(back.len(), out.len());
    assert_eq!(back.get("fc.weight").unwrap().shape, vec![1000, 1024]);
    assert_eq!(
        back.get("conv1.bn.num_batches_tracked").unwrap().dtype,
        DType::I64
    );
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn wrong_model_and_wrapped_checkpoints() {
    let dir = fixtures();
    let sd = weights::read(&dir.join("googlenet_tv_aux.pth")).unwrap();
    // Into the wrong architecture: the error names the missing tensors and counts them.
    let v3 = ModelConfig::new(Arch::InceptionV3);
    let e = weights::load_model(&v3, &sd, &Device::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing") && e.contains("Conv2d_1a_3x3"), "{e}");
    // Wrong number of classes: a shape error naming the tensor and both shapes.
    let ten = ModelConfig::new(Arch::GoogLeNet).with_classes(10);
    let e = weights::load_model(&ten, &sd, &Device::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`fc.weight` is [1000, 1024] in the file, [10, 1024]"),
        "{e}"
    );
    // A DataParallel-style `module.` prefix is recognised and stripped.
    let mut wrapped = StateDict::new(weights::Format::Safetensors);
    for (n, t) in sd.iter() {
        wrapped.insert(format!("module.{n}"), t.clone());
    }
    let cfg = weights::detect(&wrapped).unwrap();
    let (_, report) = weights::load_model(&cfg, &wrapped, &Device::default()).unwrap();
    assert_eq!(report.prefix, "module.");
}

#[test]
fn hostile_files_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let check = |p: &Path, needle: &str| {
        let e = weights::read(p).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains(needle), "{e}");
    };
    check(&write("empty.pth", b""), "empty");
    check(
        &write("junk.pth", b"hello world, not weights"),
        "not a PyTorch",
    );
    // A safetensors header claiming far more bytes than the file has.
    let mut st = Vec::new();
    let header = br#"{"w":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}"#;
    st.extend((header.len() as u64).to_le_bytes());
    st.extend(header);
    st.extend([0u8; 16]);
    check(&write("big.safetensors", &st), "not a valid safetensors");
    // A zip that is not a torch.save archive, and a truncated real checkpoint.
    {
        let dir = fixtures();
        // (The truncated GoogLeNet needs the large fixtures.)
        if cfg!(big_fixtures) {
            let real = std::fs::read(dir.join("googlenet_tv_aux.pth")).unwrap();
            check(&write("cut.pth", &real[..real.len() / 2]), "cut.pth");
        }
        let real = std::fs::read(dir.join("keras_blocks_functional_blocks.keras")).unwrap();
        // Content decides, not the extension: a .keras archive named .pth is recognised.
        check(&write("keras.pth", &real), "a Keras file");
        let mut other = Vec::new();
        {
            use std::io::Write;
            let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut other));
            z.start_file("hello.txt", zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(b"hello").unwrap();
            z.finish().unwrap();
        }
        check(&write("other.pth", &other), "no data.pkl");
    }
    check(
        &write("missing.pth", b"").with_file_name("does-not-exist.pth"),
        "no such file",
    );
}

/// A torch.save archive holding `pickle` and the given storages, as PyTorch lays it out.
fn torch_zip(pickle: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("ckpt/data.pkl", opts).unwrap();
    z.write_all(pickle).unwrap();
    for (key, bytes) in storages {
        z.start_file(format!("ckpt/data/{key}"), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
    out
}

/// Pickle bytes for `{name: tensor}` (protocol 2, as torch.save writes it), optionally inside
/// `{"state_dict": …, "epoch": 3}`; the tensor is a 2x2 view of storage "0" of `storage` type,
/// transposed (stride (1, 2)) to exercise strided gathering.
fn state_dict_pickle(name: &str, storage: &str, wrapped: bool) -> Vec<u8> {
    let s = |t: &str| {
        let mut v = vec![b'X'];
        v.extend((t.len() as u32).to_le_bytes());
        v.extend(t.as_bytes());
        v
    };
    let mut p = b"\x80\x02".to_vec();
    if wrapped {
        p.extend(b"}");
        p.extend(s("state_dict"));
    }
    p.extend(b"ccollections\nOrderedDict\n)R");
    p.extend(s(name));
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    p.extend(b"(");
    p.extend(s("storage"));
    p.extend(format!("ctorch\n{storage}\n").as_bytes());
    p.extend(s("0"));
    p.extend(s("cpu"));
    p.extend(b"K\x04tQ");
    p.extend(b"K\x00K\x02K\x02\x86K\x01K\x02\x86\x89ccollections\nOrderedDict\n)RtR");
    p.extend(b"s");
    if wrapped {
        p.extend(b"s");
        p.extend(s("epoch"));
        p.extend(b"K\x03s");
    }
    p.push(b'.');
    p
}

#[test]
fn pth_half_bfloat16_wrappers_and_strides() {
    let values = [1.0f32, 2.0, 3.0, -4.5];
    let f16: Vec<u8> = values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    let bf16: Vec<u8> = values
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect();
    for (storage, bytes, dtype) in [
        ("HalfStorage", f16, DType::F16),
        ("BFloat16Storage", bf16, DType::BF16),
    ] {
        for wrapped in [false, true] {
            let zip = torch_zip(
                &state_dict_pickle("module.fc.weight", storage, wrapped),
                &[("0", bytes.clone())],
            );
            let sd = weights::pytorch::read_from(std::io::Cursor::new(zip)).unwrap();
            let t = sd.get("module.fc.weight").unwrap();
            assert_eq!(t.dtype, dtype);
            assert_eq!(t.shape, vec![2, 2]);
            // Stride (1, 2): the transpose of the stored [[1, 2], [3, -4.5]].
            assert_eq!(
                t.data,
                vec![1.0, 3.0, 2.0, -4.5],
                "{storage} wrapped={wrapped}"
            );
        }
    }
}

#[test]
fn a_model_too_small_for_its_aux_heads_loads_its_own_weights() {
    // Inception v3 at 75x75 (its minimum) cannot have the aux head, which needs 299x299: the
    // head is then simply not part of the model, and loading must not ask for it.
    let cfg = ModelConfig::new(Arch::InceptionV3)
        .with_input_size(75)
        .with_classes(2);
    let net = cfg.init(&Device::default()).unwrap();
    let sd = weights::state_dict(&net);
    let (loaded, _) = weights::load_model(&cfg, &sd, &Device::default()).unwrap();
    assert_eq!(
        weights::state_dict(&loaded).get("fc.weight").unwrap().data,
        sd.get("fc.weight").unwrap().data
    );
}

#[test]
fn pth_written_on_a_big_endian_machine_reads_the_same_values() {
    // Issue 16: torch.save records the writer's byte order (`byteorder`: `big` on s390x); the
    // storages are then big-endian and were read as garbage.
    let values = [1.0f32, 2.0, 3.0, -4.5];
    let big: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let little: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let with_order = |order: &str, bytes: Vec<u8>| {
        use std::io::Write;
        let mut out = Vec::new();
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("ckpt/data.pkl", opts).unwrap();
        z.write_all(&state_dict_pickle("fc.weight", "FloatStorage", false))
            .unwrap();
        z.start_file("ckpt/byteorder", opts).unwrap();
        z.write_all(order.as_bytes()).unwrap();
        z.start_file("ckpt/data/0", opts).unwrap();
        z.write_all(&bytes).unwrap();
        z.finish().unwrap();
        out
    };
    let read = |zip: Vec<u8>| weights::pytorch::read_from(std::io::Cursor::new(zip));
    let from_big = read(with_order("big", big)).unwrap();
    let from_little = read(with_order("little", little)).unwrap();
    assert_eq!(
        from_big.get("fc.weight").unwrap().data,
        vec![1.0, 3.0, 2.0, -4.5]
    );
    assert_eq!(
        from_big.get("fc.weight").unwrap().data,
        from_little.get("fc.weight").unwrap().data
    );
    let e = read(with_order("middle", vec![0; 16]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("byteorder"), "{e}");
}

#[test]
fn decompression_bombs_are_refused_before_inflating() {
    // Issue 16: a 10 MB .pth whose data.pkl inflates to 10 GiB, and a .keras whose
    // model.weights.h5 claims 10 GiB, were inflated to 8 GB before anything stopped them.
    use std::io::Write;
    // Entries of `content` followed by `mib` MiB of zeros.
    let deflated = |entries: &[(&str, &[u8], usize)]| {
        let mut out = Vec::new();
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        let zeros = vec![0u8; 1 << 20];
        for (name, content, mib) in entries {
            z.start_file(*name, opts).unwrap();
            z.write_all(content).unwrap();
            for _ in 0..*mib {
                z.write_all(&zeros).unwrap();
            }
        }
        z.finish().unwrap();
        out
    };
    let start = std::time::Instant::now();
    // 300 MiB of pickle (limit 256 MiB): refused from the entry's declared size.
    let pth = deflated(&[("ckpt/data.pkl", b"", 300)]);
    assert!(pth.len() < 2 << 20, "{} bytes", pth.len());
    let e = weights::pytorch::read_from(std::io::Cursor::new(pth)).unwrap_err();
    assert!(
        matches!(&e, inception::FormatError::TooLarge { got, limit, .. } if *got == 300 << 20 && *limit == 256 << 20),
        "{e:?}"
    );
    // 100 MiB of zeros deflated ~1000:1 as a .keras weights file: refused by its ratio.
    let keras = deflated(&[("config.json", b"{}", 0), ("model.weights.h5", b"", 100)]);
    let e = weights::keras::read_bytes(keras).unwrap_err();
    assert!(
        matches!(&e, inception::FormatError::TooLarge { what, .. } if what.contains("compression ratio")),
        "{e:?}"
    );
    // Refused from the headers: no time spent inflating.
    assert!(start.elapsed().as_secs() < 20);
    // A .keras without its weights says so (it was "no data.pkl, not a torch.save checkpoint").
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.keras");
    std::fs::write(
        &path,
        deflated(&[("config.json", b"{}", 0), ("metadata.json", b"{}", 0)]),
    )
    .unwrap();
    let e = weights::load_file(&path, Default::default(), |c| c, &Device::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no model.weights.h5"), "{e}");
}
