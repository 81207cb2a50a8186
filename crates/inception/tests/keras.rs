//! Keras weights against Keras's own outputs: InceptionV3 in the legacy HDF5 layout of the
//! published ImageNet file, and the user-written blocks in all three Keras layouts.

mod common;

use common::{assert_close, fixtures, keras_functional_blocks, keras_sequential_small};
use inception::Value;
use inception::burn::tensor::{Device, Tensor, TensorData};
use inception::graph::{Layer, Sequential};
use inception::models::{Arch, Pooling};
use inception::weights::{self, ModelSource, keras};

/// Reads an NHWC tensor from the fixture and returns it as NCHW.
fn nhwc_input(io: &weights::StateDict, key: &str) -> Tensor<4> {
    let t = io.get(key).unwrap();
    let [n, h, w, c]: [usize; 4] = t.shape.clone().try_into().unwrap();
    Tensor::<4>::from_data(
        TensorData::new(t.data.clone(), [n, h, w, c]),
        &Device::default(),
    )
    .permute([0, 3, 1, 2])
}

/// NCHW (or flat) output as NHWC values, the order Keras stores.
fn nhwc_values(v: Value) -> Vec<f32> {
    let t = match v {
        Value::Map(t) => t.permute([0, 2, 3, 1]).flatten::<2>(1, 3),
        Value::Flat(t) => t,
    };
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn keras_inception_v3_h5_reproduces_keras() {
    let dir = fixtures();
    let path = dir.join("keras_inception_v3.h5");
    let io = weights::safetensors::read(&dir.join("keras_inception_v3_io.safetensors")).unwrap();
    let x = nhwc_input(&io, "input");
    let device = Device::default();

    let loaded = weights::load_file(&path, ModelSource::Auto, |c| c, &device).unwrap();
    let cfg = loaded.config.clone().unwrap();
    assert_eq!(cfg.arch, Arch::InceptionV3Keras);
    assert!(cfg.include_top && cfg.softmax);
    assert_eq!(loaded.format, weights::Format::Keras);
    let net = &loaded.network;
    assert_close(
        "probs",
        &nhwc_values(net.infer(x.clone()).unwrap()),
        &io.get("probs").unwrap().data,
        1e-4,
    );
    let mixed5 = net.features(x.clone(), &["mixed5"]).unwrap().remove(0);
    assert_close(
        "mixed5",
        &nhwc_values(mixed5),
        &io.get("mixed5").unwrap().data,
        1e-4,
    );

    // include_top=False, pooling="avg": the 2048-d feature vector.
    let loaded = weights::load_file(
        &path,
        ModelSource::Arch(Arch::InceptionV3Keras),
        |c| c.with_include_top(false).with_pooling(Some(Pooling::Avg)),
        &device,
    )
    .unwrap();
    let feats = loaded.network.infer(x).unwrap();
    assert_eq!(feats.dims(), vec![2, 2048]);
    assert_close(
        "avg_pool",
        &nhwc_values(feats),
        &io.get("avg_pool").unwrap().data,
        1e-4,
    );
}

#[test]
fn keras_blocks_in_every_layout_reproduce_keras() {
    let dir = fixtures();
    let io = weights::safetensors::read(&dir.join("keras_blocks_io.safetensors")).unwrap();
    let device = Device::default();
    for (model, graph) in [
        ("functional_blocks", keras_functional_blocks()),
        ("sequential_small", keras_sequential_small()),
    ] {
        let x = nhwc_input(&io, &format!("{model}.input"));
        let want = &io.get(&format!("{model}.output")).unwrap().data;
        for ext in ["h5", "weights.h5", "keras"] {
            let path = dir.join(format!("keras_blocks_{model}.{ext}"));
            // Onto the graph written with our API…
            let loaded =
                weights::load_file(&path, ModelSource::Graph(graph.clone()), |c| c, &device)
                    .unwrap();
            assert_close(
                &format!("{model}.{ext}"),
                &nhwc_values(loaded.network.infer(x.clone()).unwrap()),
                want,
                1e-5,
            );
            // …and onto the graph the .keras config describes.
            let config = keras::read(&dir.join(format!("keras_blocks_{model}.keras")))
                .unwrap()
                .config
                .unwrap();
            let from_config = keras::graph_from_config(&config).unwrap();
            assert_eq!(from_config.params(), graph.params());
            let loaded =
                weights::load_file(&path, ModelSource::Graph(from_config), |c| c, &device).unwrap();
            assert_close(
                &format!("{model}.{ext} (config)"),
                &nhwc_values(loaded.network.infer(x.clone()).unwrap()),
                want,
                1e-5,
            );
        }
    }
}

#[test]
fn keras_order_is_model_layers_order() {
    // Keras lists the functional blocks' layers by depth, then discovery order: the 3x3-reduce
    // conv (deepest chain) before the 1x1 branch. The .weights.h5 file's `layers/conv2d` is that
    // first one: [1, 1, 192, 96].
    let g = keras_functional_blocks();
    let order = keras::keras_order(&g);
    let convs: Vec<&str> = order
        .iter()
        .filter(|&&i| matches!(g.nodes()[i].op, inception::graph::Op::Conv2d(_)))
        .map(|&i| g.nodes()[i].name.as_str())
        .collect();
    assert_eq!(convs[0], "inception3a.branch2.0");
    assert_eq!(convs.len(), 10);
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn broken_keras_files_are_clear_errors() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::default();
    // Keras InceptionV3 weights into a model of another shape: the error names both layers.
    let path = dir.join("keras_blocks_functional_blocks.h5");
    let e = weights::load_file(
        &path,
        ModelSource::Graph(keras_sequential_small()),
        |c| c,
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Conv2D layers but sequential_small has 1"),
        "{e}"
    );
    // A .keras zip without its weights.
    let src = std::fs::read(dir.join("keras_blocks_sequential_small.keras")).unwrap();
    let mut zin = zip_entries(&src);
    zin.retain(|(n, _)| n != "model.weights.h5");
    let cut = tmp.path().join("noweights.keras");
    write_zip(&cut, &zin);
    let e = keras::read(&cut).unwrap_err().to_string();
    assert!(e.contains("has no model.weights.h5"), "{e}");
    // A truncated HDF5 file.
    let h5 = std::fs::read(dir.join("keras_inception_v3.h5")).unwrap();
    let cut = tmp.path().join("cut.h5");
    std::fs::write(&cut, &h5[..h5.len() / 3]).unwrap();
    let e = weights::load_file(&cut, ModelSource::Auto, |c| c, &device)
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n') && e.contains("cut.h5"), "{e}");
}

fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).unwrap();
            (f.name().unwrap().to_string(), buf)
        })
        .collect()
}

fn write_zip(path: &std::path::Path, entries: &[(String, Vec<u8>)]) {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (n, b) in entries {
        z.start_file(
            n.as_str(),
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        z.write_all(b).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn keras2_model_save_layout_with_colon_names() {
    // `model_weights` group and `kernel:0` names, as Keras 2's model.save() writes them.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keras2_names.h5");
    let kw = keras::read(&path).unwrap();
    assert_eq!(kw.layers.len(), 2);
    let graph = Sequential::new("tiny", [1, 4, 4])
        .add(Layer::conv(2, 3))
        .add(Layer::Flatten)
        .add(Layer::dense(3))
        .build()
        .unwrap();
    let sd = kw.to_state_dict(&graph).unwrap();
    // HWIO [3, 3, 1, 2] arange → OIHW: weight[o][0][y][x] = (y * 3 + x) * 2 + o.
    let w = sd.get("conv2d.weight").unwrap();
    assert_eq!(w.shape, vec![2, 1, 3, 3]);
    for o in 0..2 {
        for y in 0..3 {
            for x in 0..3 {
                assert_eq!(w.data[(o * 3 + y) * 3 + x], ((y * 3 + x) * 2 + o) as f32);
            }
        }
    }
    assert_eq!(sd.get("conv2d.bias").unwrap().data, vec![0.5, -0.5]);
    // Dense [in 8, out 3] → [out, in]: weight[o][i] = (i * 3 + o) / 10.
    let d = sd.get("dense.weight").unwrap();
    assert_eq!(d.shape, vec![3, 8]);
    assert!((d.data[2 * 8 + 5] - (5.0 * 3.0 + 2.0) / 10.0).abs() < 1e-6);
}
