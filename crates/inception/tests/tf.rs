//! TensorFlow's checkpoints (`fixtures/tf/`, made by TensorFlow 2.15 and tf-slim): the tensor
//! bundle, the legacy V1 file and a TF1 Hub module of TF-slim's BN-Inception at depth 0.25 load
//! by themselves and reproduce TensorFlow's logits and activations; a partitioned variable is
//! reassembled; a corrupt or truncated checkpoint is a one-line error naming the file.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{assert_close, fixtures, flat_values, nchw};
use inception::burn::tensor::{Device, Tensor, TensorData};
use inception::models::Arch;
use inception::weights::{self, ModelSource, tf};

/// Loads the checkpoint at `path`, checks it is TF-slim's v2 at depth 0.25 with 10 classes, and
/// compares its logits and `Mixed_4e` with TensorFlow's.
fn reproduces_tensorflow(path: &Path) {
    let device = Device::default();
    let loaded = weights::load_file(path, ModelSource::Auto, |c| c, &device).unwrap();
    let cfg = loaded.config.clone().unwrap();
    assert_eq!(
        (
            cfg.arch,
            cfg.classes,
            cfg.depth_multiplier,
            cfg.use_separable_conv
        ),
        (Arch::InceptionV2, 10, 0.25, true),
        "{}",
        path.display()
    );
    let io = weights::safetensors::read(&fixtures().join("tf/tf_small_io.safetensors")).unwrap();
    let x = io.get("inception_v2_dm025.input").unwrap();
    let input = Tensor::<4>::from_data(
        TensorData::new(nchw(&x.data, &x.shape), [2, 3, 224, 224]),
        &device,
    );
    let net = &loaded.network;
    let g = net.graph();
    let ids = [
        g.main_output().node,
        g.resolve("InceptionV2/Mixed_4e").unwrap(),
    ];
    let got = net.run(input, &ids).unwrap();
    let mut got = got.into_iter().map(flat_values);
    let logits = got.next().unwrap();
    assert_close(
        &format!("{} logits", path.display()),
        &logits,
        &io.get("inception_v2_dm025.logits").unwrap().data,
        1e-4,
    );
    let mixed = got.next().unwrap();
    let want = io.get("inception_v2_dm025.Mixed_4e").unwrap();
    assert_close("Mixed_4e", &mixed, &nchw(&want.data, &want.shape), 1e-4);
}

fn tf_dir() -> PathBuf {
    fixtures().join("tf")
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn a_tensor_bundle_loads_by_its_prefix_index_or_folder() {
    let prefix = tf_dir().join("slim_inception_v2_dm025.ckpt");
    reproduces_tensorflow(&prefix);
    // The same files named three other ways: the index, a folder with a `checkpoint` file, a
    // .tar.gz holding them.
    let dir = tempfile::tempdir().unwrap();
    for f in ["index", "data-00000-of-00001"] {
        let name = format!("slim_inception_v2_dm025.ckpt.{f}");
        std::fs::copy(tf_dir().join(&name), dir.path().join(&name)).unwrap();
    }
    std::fs::write(
        dir.path().join("checkpoint"),
        "model_checkpoint_path: \"slim_inception_v2_dm025.ckpt\"\n",
    )
    .unwrap();
    let a = tf::read(&with_index(&prefix)).unwrap();
    let b = tf::read(dir.path()).unwrap();
    let c = tf::read(&tar_gz(
        dir.path(),
        &[
            "slim_inception_v2_dm025.ckpt.index",
            "slim_inception_v2_dm025.ckpt.data-00000-of-00001",
        ],
    ))
    .unwrap();
    assert_eq!(a.len(), b.len());
    for (name, t) in a.iter() {
        assert_eq!(b.get(name).unwrap().data, t.data, "{name}");
        assert_eq!(c.get(name).unwrap().data, t.data, "{name}");
    }
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn a_tf1_hub_module_loads_by_its_variables_names() {
    // tensorflow_hub 0.15's own TF1 export of the same variables (`fixtures/gen/
    // gen_tf1_hub.py`): `tfhub_module.pb`, a TensorFlow 1 `saved_model.pb` (no object graph)
    // and `variables/` keyed by the variables' own names.
    let dir = fixtures().join("tf1_hub_inception_v2_dm025");
    assert!(dir.join("tfhub_module.pb").exists());
    reproduces_tensorflow(&dir);
    let hub = tf::read(&dir).unwrap();
    let ckpt = tf::read(&tf_dir().join("slim_inception_v2_dm025.ckpt")).unwrap();
    assert!(hub.len() > 200);
    for (name, t) in hub.iter() {
        assert_eq!(ckpt.get(name).unwrap().data, t.data, "{name}");
    }
}

fn with_index(prefix: &Path) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".index");
    PathBuf::from(s)
}

/// A .tar.gz of `names` in `dir`, written beside them.
fn tar_gz(dir: &Path, names: &[&str]) -> PathBuf {
    let out = dir.join("ckpt.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&out).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    for n in names {
        tar.append_path_with_name(dir.join(n), format!("model/{n}"))
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
    out
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn the_legacy_v1_format_loads_too() {
    let file = tf_dir().join("slim_inception_v2_dm025_v1format.ckpt");
    reproduces_tensorflow(&file);
    // Its values equal the V2 bundle's, and it reads from inside a .tar.gz like TF-slim's
    // tarballs.
    let v1 = tf::read(&file).unwrap();
    let v2 = tf::read(&tf_dir().join("slim_inception_v2_dm025.ckpt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&file, dir.path().join("inception_v2.ckpt")).unwrap();
    let archived = tf::read(&tar_gz(dir.path(), &["inception_v2.ckpt"])).unwrap();
    for (name, t) in v2.iter() {
        assert_eq!(v1.get(name).unwrap().data, t.data, "{name}");
        assert_eq!(archived.get(name).unwrap().data, t.data, "{name}");
    }
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn a_partitioned_variable_is_reassembled() {
    let sd = tf::read(&tf_dir().join("partitioned.ckpt")).unwrap();
    let name = "InceptionV3/Logits/Conv2d_1c_1x1/weights";
    let got = sd.get(name).unwrap();
    let io = weights::safetensors::read(&tf_dir().join("tf_small_io.safetensors")).unwrap();
    let want = io.get(&format!("partitioned.{name}")).unwrap();
    assert_eq!(got.shape, want.shape);
    assert_eq!(got.data, want.data);
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn corrupt_and_truncated_checkpoints_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("model.ckpt");
    let index = std::fs::read(tf_dir().join("slim_inception_v2_dm025.ckpt.index")).unwrap();
    let data =
        std::fs::read(tf_dir().join("slim_inception_v2_dm025.ckpt.data-00000-of-00001")).unwrap();
    let write = |index: &[u8], data: &[u8]| {
        std::fs::write(with_index(&prefix), index).unwrap();
        std::fs::write(dir.path().join("model.ckpt.data-00000-of-00001"), data).unwrap();
    };
    // A flipped bit in the data: the tensor's CRC32C catches it.
    let mut bad = data.clone();
    bad[1000] ^= 1;
    write(&index, &bad);
    let e = tf::read(&prefix).unwrap_err().to_string();
    assert!(
        e.contains("CRC32C") && e.contains("model.ckpt.index"),
        "{e}"
    );
    // A flipped bit in the index: the block's CRC32C.
    let mut bad = index.clone();
    bad[10] ^= 1;
    write(&bad, &data);
    let e = tf::read(&prefix).unwrap_err().to_string();
    assert!(e.contains("CRC32C"), "{e}");
    // A truncated data shard, a truncated index.
    write(&index, &data[..data.len() / 2]);
    let e = tf::read(&prefix).unwrap_err().to_string();
    assert!(e.contains("past its data shard"), "{e}");
    write(&index[..index.len() - 10], &data);
    let e = tf::read(&prefix).unwrap_err().to_string();
    assert!(!e.is_empty() && e.lines().count() == 1, "{e}");
    // A missing shard.
    std::fs::remove_file(dir.path().join("model.ckpt.data-00000-of-00001")).unwrap();
    std::fs::write(with_index(&prefix), &index).unwrap();
    let e = tf::read(&prefix).unwrap_err().to_string();
    assert!(e.contains("shards"), "{e}");
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn a_tf_hub_saved_model_gives_tensorflows_feature_vectors() {
    // The SavedModel's checkpoint keys are object paths (`variables/0/.ATTRIBUTES/…`); its
    // object graph names them with TF-slim's names, so the folder loads as TF-slim's Inception
    // v3 at depth 0.25 without its top. TF-Hub's module takes RGB in [0, 1] and scales it to
    // [-1, 1] itself; its output is the average-pooled 512-d vector.
    let dir = tf_dir().join("hub_inception_v3_dm025_feature_vector");
    let sd = tf::read(&dir).unwrap();
    assert!(sd.get("InceptionV3/Conv2d_1a_3x3/weights").is_some());
    assert!(
        sd.iter().all(|(n, _)| n.starts_with("InceptionV3/")),
        "bookkeeping kept"
    );
    // The fixture's SavedModel computes BatchNorm from the batch's statistics (TF-slim's
    // `is_training` left on when it was exported), so TensorFlow's recorded vectors are what our
    // network computes in training mode; a frozen extractor uses the moving statistics instead.
    let device = Device::default().autodiff();
    let loaded = weights::load_file(
        &dir,
        ModelSource::Auto,
        |c| c.with_pooling(Some(inception::models::Pooling::Avg)),
        &device,
    )
    .unwrap();
    let cfg = loaded.config.clone().unwrap();
    assert_eq!(
        (cfg.arch, cfg.depth_multiplier, cfg.include_top),
        (Arch::InceptionV3Slim, 0.25, false)
    );
    let io = weights::safetensors::read(&tf_dir().join("tf_small_io.safetensors")).unwrap();
    let x = io.get("hub_inception_v3_dm025.input").unwrap();
    let scaled: Vec<f32> = x.data.iter().map(|v| v * 2.0 - 1.0).collect();
    let input = |device: &Device| {
        Tensor::<4>::from_data(
            TensorData::new(nchw(&scaled, &x.shape), [2, 3, 299, 299]),
            device,
        )
    };
    let features = flat_values(loaded.network.forward(input(&device)).unwrap().output);
    let want = &io.get("hub_inception_v3_dm025.features").unwrap().data;
    // Batch statistics are sums over 2 x 149 x 149 values per channel in f32, redone in each of
    // the 94 BatchNorms: their summation order costs a little more than the 1e-4 the moving
    // statistics keep (measured here: 1.04e-4).
    assert_close(
        "TF-Hub feature vectors (batch statistics)",
        &features,
        want,
        3e-4,
    );
    // With the moving statistics (what `features` and a frozen extractor compute) they differ.
    let frozen = weights::load_file(
        &dir,
        ModelSource::Auto,
        |c| c.with_pooling(Some(inception::models::Pooling::Avg)),
        &Device::default(),
    )
    .unwrap();
    let inference = flat_values(frozen.network.infer(input(&Device::default())).unwrap());
    assert!(common::relative_error(&inference, want) > 0.1);
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn a_saved_models_variables_are_named_by_its_object_graph() {
    // saved_model.pb names each variable and says whether it is trained; joined to the
    // checkpoint by object path, those names are the ones the checkpoint's own object graph
    // records, for every value in `variables/`.
    let dir = tf_dir().join("hub_inception_v3_dm025_feature_vector");
    let pb = std::fs::read(dir.join("saved_model.pb")).unwrap();
    let vars = tf::saved_variables(&pb).unwrap();
    let stats = vars.iter().filter(|v| !v.trainable).count();
    assert!(
        vars.iter()
            .all(|v| v.trainable != v.name.contains("/moving_"))
    );
    assert!(stats > 0 && stats < vars.len(), "{stats} of {}", vars.len());
    let index = std::fs::read(dir.join("variables/variables.index")).unwrap();
    let data = vec![std::fs::read(dir.join("variables/variables.data-00000-of-00001")).unwrap()];
    let by_saved_model = tf::read_saved_model_bundle(&index, &data, &pb).unwrap();
    let by_checkpoint = tf::read_bundle(&index, &data).unwrap();
    let names = |sd: &weights::StateDict| {
        let mut v: Vec<String> = sd.iter().map(|(n, _)| n.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&by_saved_model), names(&by_checkpoint));
    let mut declared: Vec<String> = vars.into_iter().map(|v| v.name).collect();
    declared.sort();
    assert_eq!(names(&by_saved_model), declared);
    for (name, t) in by_saved_model.iter() {
        assert_eq!(t.data, by_checkpoint.get(name).unwrap().data, "{name}");
    }
    // A TensorFlow 1 file (no object graph) is refused as such, not misread.
    let e = tf::saved_variables(&[]).unwrap_err().to_string();
    assert!(e.contains("TensorFlow 1"), "{e}");
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn a_keras_saved_model_folder_loads_with_its_architecture() {
    // Keras 2's `model.save(dir)` of the functional blocks model: the architecture comes from
    // keras_metadata.pb, the weights from the checkpoint by Keras's layer order; the outputs are
    // Keras's.
    let dir = tf_dir().join("keras_blocks_functional_savedmodel");
    let device = Device::default();
    let loaded = weights::load_file(&dir, ModelSource::Auto, |c| c, &device).unwrap();
    assert!(loaded.input_nhwc);
    let io = weights::safetensors::read(&fixtures().join("keras_blocks_io.safetensors")).unwrap();
    let x = io.get("functional_blocks.input").unwrap();
    let input = Tensor::<4>::from_data(
        TensorData::new(nchw(&x.data, &x.shape), [2, 192, 28, 28]),
        &device,
    );
    let got = flat_values(loaded.network.infer(input).unwrap());
    assert_close(
        "Keras SavedModel outputs",
        &got,
        &io.get("functional_blocks.output").unwrap().data,
        1e-5,
    );
}
