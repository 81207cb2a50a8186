//! The TF-slim layouts from the command line: `summary --json` reports the reference counts,
//! weights in TensorFlow's names classify and extract features with TF-slim's preprocessing and
//! its 1001 labels, and `convert --drop-background` gives ImageNet's 1000.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use inception::burn::tensor::Device;
use inception::files::read_array;
use inception::models::{Arch, ModelConfig};
use inception::weights::{self, tf_names};

fn inception() -> Command {
    Command::cargo_bin("inception").unwrap()
}

fn photo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../inception/tests/data/images/chelsea.png")
}

/// Random weights of `cfg` written under TensorFlow's names.
fn tf_file(cfg: &ModelConfig, path: &Path) {
    let net = cfg.init(&Device::default()).unwrap();
    let tf = tf_names::to_tf(net.graph(), &weights::export(&net, cfg)).unwrap();
    weights::safetensors::write(path, &tf).unwrap();
}

#[test]
fn summary_reports_the_reference_counts() {
    for (model, trainable, moving) in [
        ("inception-v1-slim", 6_618_649, 14_560),
        ("inception-v2", 11_179_361, 19_776),
        ("inception-v3-slim", 27_145_970, 36_224),
        ("inception-v4", 46_009_106, 64_960),
        ("inception-resnet-v2", 59_182_258, 62_336),
    ] {
        let mut cmd = inception();
        cmd.args(["summary", model, "--json"]);
        if !matches!(model, "inception-v1-slim" | "inception-v2") {
            cmd.arg("--aux");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{model}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["trainable_params"], trainable, "{model}");
        assert_eq!(v["non_trainable_params"], moving, "{model}");
    }
    // timm's and Keras's Inception-ResNet-v2: 1000 classes, no aux head.
    let out = inception()
        .args([
            "summary",
            "inception-resnet-v2",
            "--classes",
            "1000",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total_params"], 55_873_736);
}

#[test]
fn tf_named_weights_classify_and_extract_features() {
    let dir = tempfile::tempdir().unwrap();
    for (arch, features) in [
        (Arch::InceptionV1Slim, 1024),
        (Arch::InceptionV2, 1024),
        (Arch::InceptionV3Slim, 2048),
        (Arch::InceptionV4, 1536),
        (Arch::InceptionResNetV2, 1536),
    ] {
        let cfg = ModelConfig::new(arch).with_aux_logits(arch.has_aux_heads());
        let path = dir.path().join(format!("{arch}.safetensors"));
        tf_file(&cfg, &path);
        let out = inception()
            .arg("classify")
            .arg("--weights")
            .arg(&path)
            .arg(photo())
            .args(["--json", "--top", "3"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{arch}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let preds = v["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), 3, "{arch}");
        for p in preds {
            let (i, label) = (p["index"].as_u64().unwrap(), p["label"].as_str().unwrap());
            // 1001 labels: class 0 is "background", class i is ImageNet's i - 1.
            let want = inception::data::Labels::for_classes(1001, None);
            assert_eq!(label, want.name(i as usize), "{arch}");
        }
        let npy = dir.path().join(format!("{arch}.npy"));
        inception()
            .arg("features")
            .arg("--weights")
            .arg(&path)
            .arg(photo())
            .arg("-o")
            .arg(&npy)
            .assert()
            .success();
        let a = read_array(&npy, None).unwrap();
        assert_eq!(a.shape, vec![1, features], "{arch}");
    }
}

#[test]
fn convert_drops_the_background_class() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("slim.safetensors");
    let cfg = ModelConfig::new(Arch::InceptionV1Slim);
    tf_file(&cfg, &src);
    let dst = dir.path().join("in1k.safetensors");
    inception()
        .arg("convert")
        .arg(&src)
        .arg("-o")
        .arg(&dst)
        .arg("--drop-background")
        .assert()
        .success();
    // TensorFlow's names and layouts, 1000 classes: the logits kernel lost its first column.
    let a = weights::safetensors::read(&src).unwrap();
    let b = weights::safetensors::read(&dst).unwrap();
    let name = "InceptionV1/Logits/Conv2d_0c_1x1/weights";
    let (wa, wb) = (a.get(name).unwrap(), b.get(name).unwrap());
    assert_eq!(wb.shape, vec![1, 1, 1024, 1000]);
    for row in 0..1024 {
        assert_eq!(
            wb.data[row * 1000..(row + 1) * 1000],
            wa.data[row * 1001 + 1..(row + 1) * 1001]
        );
    }
    let bias = "InceptionV1/Logits/Conv2d_0c_1x1/biases";
    assert_eq!(b.get(bias).unwrap().data, a.get(bias).unwrap().data[1..]);
    // The converted file classifies with ImageNet's 1000 labels.
    let out = inception()
        .arg("classify")
        .arg("--weights")
        .arg(&dst)
        .arg(photo())
        .args(["--json", "--top", "1"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["predictions"][0];
    let labels = inception::data::Labels::imagenet();
    assert_eq!(
        p["label"].as_str().unwrap(),
        labels.name(p["index"].as_u64().unwrap() as usize)
    );
    // A file without TF-slim's 1001 classes is refused.
    let err = inception()
        .arg("convert")
        .arg(&dst)
        .arg("-o")
        .arg(dir.path().join("again.safetensors"))
        .arg("--drop-background")
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(msg.contains("1001") && msg.lines().count() == 1, "{msg}");
}

/// The tutorial's transfer-learning example with a TF-Hub SavedModel: the frozen Inception v3
/// feature vector (a SavedModel folder, read without TensorFlow) under a new softmax head.
#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn finetune_on_a_tf_hub_feature_vector() {
    let shared = std::env::var_os("INCEPTION_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"));
    let hub = shared.join("tf/hub_inception_v3_dm025_feature_vector");
    let dir = tempfile::tempdir().unwrap();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inception/tests/data/images");
    for (class, file) in [("cat", "chelsea.png"), ("rocket", "rocket.jpg")] {
        std::fs::create_dir_all(dir.path().join("data").join(class)).unwrap();
        for i in 0..4 {
            std::fs::copy(
                images.join(file),
                dir.path()
                    .join("data")
                    .join(class)
                    .join(format!("{i}_{file}")),
            )
            .unwrap();
        }
    }
    let out = inception()
        .arg("finetune")
        .arg("--weights")
        .arg(&hub)
        .arg("--data")
        .arg(dir.path().join("data"))
        .args([
            "--epochs",
            "1",
            "--batch",
            "4",
            "--val-fraction",
            "0.25",
            "--lr",
            "0.01",
        ])
        .arg("-o")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("inception-v3-slim"), "{err}");
    // The fine-tuned model classifies with the folder's classes.
    let out = inception()
        .arg("classify")
        .arg("--weights")
        .arg(dir.path().join("run/model.safetensors"))
        .arg(images.join("chelsea.png"))
        .args(["--json", "--top", "2"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels: Vec<&str> = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    let mut sorted = labels.clone();
    sorted.sort();
    assert_eq!(sorted, ["cat", "rocket"]);
}
