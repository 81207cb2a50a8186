//! Every input the fuzzers keep (`fuzz/corpus/<target>/`) and every crash they ever found
//! (`fuzz/regressions/<target>/`) goes through the same reader as under the fuzzer: each must
//! give `Ok` or `Err`, never a panic. The seeds also check that the readers accept real files.

use std::path::{Path, PathBuf};

use inception::weights;

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn each(target: &str, f: impl Fn(&[u8])) {
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        for path in files(kind, target) {
            let bytes = std::fs::read(&path).unwrap();
            f(&bytes);
            n += 1;
        }
    }
    assert!(n > 0, "no corpus for {target}");
}

#[test]
fn pickle_corpus() {
    each("pickle", |b| {
        let _ = weights::pickle::unpickle(b);
    });
}

#[test]
fn pytorch_corpus() {
    each("pytorch", |b| {
        let _ = weights::pytorch::read_from(std::io::Cursor::new(b));
    });
    // The hand-written seed is a real torch.save archive: {"w": [[1, 2], [3, 4]]}.
    let seed = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/pytorch/tiny.pth"),
    )
    .unwrap();
    let sd = weights::pytorch::read_from(std::io::Cursor::new(seed)).unwrap();
    let w = sd.get("w").unwrap();
    assert_eq!(w.shape, vec![2, 2]);
    assert_eq!(w.data, vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn safetensors_corpus() {
    each("safetensors", |b| {
        let _ = weights::safetensors::read_bytes(b);
    });
}

#[test]
fn onnx_corpus() {
    each("onnx", |b| {
        if let Ok(m) = weights::onnx::import(b, None)
            && m.graph.params().total() < 1_000_000
        {
            let mut net = inception::Network::new(m.graph.clone(), &Default::default());
            let _ = weights::load_into(&mut net, &m.weights, &Default::default());
        }
    });
}

#[test]
fn keras_corpus() {
    each("keras", |b| {
        if let Ok(k) = weights::keras::read_bytes(b.to_vec())
            && let Some(cfg) = &k.config
        {
            let _ = weights::keras::graph_from_config(cfg);
        }
    });
}

#[test]
fn npy_corpus() {
    each("npy", |b| {
        let _ = inception::files::parse_npy(b);
    });
}

#[test]
fn image_corpus() {
    // Real files of every format, and headers that claim sizes no machine can hold.
    each("image", |b| {
        let _ = inception::data::decode_bytes(b);
    });
    for huge in [
        "huge_header.png",
        "over_pillow_limit.png",
        "huge_screen.gif",
        "huge_sof.jpg",
        "huge_width.tiff",
    ] {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fuzz/corpus/image")
                .join(huge),
        )
        .unwrap();
        assert!(inception::data::decode_bytes(&bytes).is_err(), "{huge}");
    }
}

#[test]
fn tf_corpus() {
    each("tf_bundle", |b| {
        let _ = weights::tf::read_bundle(b, &[b.to_vec()]);
    });
    each("tf_v1", |b| {
        let _ = weights::tf::read_v1(b);
    });
    // The seed is TensorFlow's own partitioned variable: it reassembles from its slices.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/tf_bundle");
    let index = std::fs::read(dir.join("partitioned.index")).unwrap();
    let data = std::fs::read(dir.join("partitioned.data")).unwrap();
    let sd = weights::tf::read_bundle(&index, &[data]).unwrap();
    let w = sd.get("InceptionV3/Logits/Conv2d_1c_1x1/weights").unwrap();
    assert_eq!(w.shape, vec![4, 6]);
}

#[test]
fn keras_metadata_corpus() {
    each("keras_metadata", |b| {
        if let Ok(cfg) = weights::keras::saved_model::config_from_metadata(b) {
            let _ = weights::keras::graph_from_config(&cfg);
        }
    });
    // The seed is Keras 2's own metadata of the functional blocks model: its config builds the
    // graph, with the parameters Keras counts (239,994 with BatchNorm's moving statistics).
    let seed = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/keras_metadata/functional_blocks.pb"),
    )
    .unwrap();
    let cfg = weights::keras::saved_model::config_from_metadata(&seed).unwrap();
    let p = weights::keras::graph_from_config(&cfg).unwrap().params();
    assert_eq!(p.trainable + p.non_trainable, 239_994);
}

#[test]
fn tf_saved_model_corpus() {
    each("tf_saved_model", |b| {
        let _ = weights::tf::saved_variables(b);
    });
    // The seed is Keras 2's own saved_model.pb of the functional blocks model: its object graph
    // names every variable Keras made, each once, the moving statistics not trained.
    let seed = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/tf_saved_model/keras_functional_blocks.pb"),
    )
    .unwrap();
    let vars = weights::tf::saved_variables(&seed).unwrap();
    assert!(!vars.is_empty());
    let mut names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), vars.len(), "a variable listed twice");
    for v in &vars {
        assert_eq!(v.trainable, !v.name.contains("moving_"), "{v:?}");
    }
}
