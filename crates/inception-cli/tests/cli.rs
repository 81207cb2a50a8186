//! The `inception` command as a user runs it.

use assert_cmd::Command;

fn inception() -> Command {
    Command::cargo_bin("inception").unwrap()
}

#[test]
fn summary_json_has_the_documented_fields() {
    let out = inception()
        .args(["summary", "googlenet", "--aux", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["trainable_params"], 13_004_888);
    assert_eq!(v["non_trainable_params"], 15_072);
    assert_eq!(v["total_params"], 13_004_888 + 15_072);
    let macs = v["macs"].as_u64().unwrap() as f64 / 1e9;
    assert!((macs - 1.50).abs() < 0.01, "{macs}");
    assert!(v["layers"].as_array().unwrap().len() > 100);
    assert_eq!(v["feature_info"].as_array().unwrap().len(), 5);
}

#[test]
fn summary_table_for_keras_inception_v3() {
    let out = inception()
        .args(["summary", "inception-v3-keras", "--blocks"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Total params: 23,851,784"), "{text}");
    assert!(text.contains("Trainable params: 23,817,352"));
    assert!(text.contains("Non-trainable params: 34,432"));
    assert!(text.contains("mixed10"));
}

#[test]
fn summary_options_change_the_model() {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = inception().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = json(&[
        "summary",
        "inception-v3",
        "--no-top",
        "--pooling",
        "avg",
        "--input-size",
        "75",
        "--json",
    ]);
    assert_eq!(v["outputs"][0][1], serde_json::json!([null, 2048]));
    let v = json(&["summary", "googlenet", "--classes", "10", "--json"]);
    assert_eq!(v["trainable_params"], 6_624_904 - 1_025_000 + 10_250);
}

#[test]
fn diagram_writes_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("g.svg");
    inception()
        .args(["diagram", "googlenet", "--aux", "-o"])
        .arg(&svg)
        .assert()
        .success();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("inception5b") && text.contains("aux1"));
    let png = dir.path().join("v3.png");
    inception()
        .args(["diagram", "inception-v3", "-o"])
        .arg(&png)
        .assert()
        .success();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // Only the two outputs: no temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn bad_input_is_a_one_line_error() {
    let cases: &[&[&str]] = &[
        &["summary", "resnet50"],
        &["summary", "inception-v3", "--input-size", "60"],
        &["summary", "inception-v3-keras", "--aux"],
        &["diagram", "googlenet", "-o", "/nonexistent-dir/x.svg"],
        &["diagram", "googlenet", "-o", "out.pdf"],
    ];
    for args in cases {
        let out = inception().args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && !err.contains("panicked"),
            "{err}"
        );
    }
    assert!(!std::path::Path::new("out.pdf").exists());
    // An enumerated flag with a value it does not have: a usage error (exit 2) listing them.
    for args in [
        &["summary", "googlenet", "--pooling", "median"][..],
        &["train", "--optimizer", "lbfgs"],
        &["train", "--recipe", "fast"],
        &[
            "finetune",
            "--weights",
            "x",
            "--data",
            ".",
            "--augment",
            "heavy",
        ],
        &["classify", "--weights", "x", "--preset", "opencv", "x.png"],
    ] {
        let out = inception().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains("invalid value") && err.contains("possible values"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn models_lists_every_architecture() {
    let out = inception().args(["models", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "googlenet",
            "googlenet-bvlc",
            "inception-v1-slim",
            "inception-v2",
            "inception-v3",
            "inception-v3-keras",
            "inception-v3-slim",
            "inception-v4",
            "inception-resnet-v2",
            "inception-mini"
        ]
    );
    let row = |name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()
    };
    assert_eq!(row("inception-mini")["trainable_params"], 298_354);
    assert_eq!(row("inception-mini")["input_size"], 28);
    assert_eq!(row("googlenet")["min_input_size"], 15);
    assert_eq!(row("inception-v3")["min_input_size"], 75);
    assert_eq!(row("inception-v4")["trainable_params_with_aux"], 46_009_106);
    assert_eq!(
        row("inception-v2")["trainable_params_with_aux"],
        serde_json::Value::Null
    );
}

#[test]
fn pretrained_lists_the_registry_and_offline_download_says_where_to_put_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = inception()
        .args(["pretrained", "--json"])
        .env("INCEPTION_CACHE", tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert!(rows.len() >= 7);
    let g = rows
        .iter()
        .find(|r| r["name"] == "googlenet.torchvision")
        .unwrap();
    assert_eq!(g["transform_input"], true);
    assert_eq!(g["cached"], false);
    assert_eq!(g["checksum"]["kind"], "sha256_prefix");
    // Unknown names are one-line errors listing the known ones.
    let out = inception()
        .args(["download", "resnet50"])
        .env("INCEPTION_CACHE", tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("googlenet.torchvision"), "{err}");
}

#[test]
fn unrecognised_weights_say_which_flag_names_the_model() {
    // The library's error names no flag ("name the model they were saved from"); the command
    // line adds the flag that does it.
    use inception::weights::{DType, Format, StateDict, WeightTensor};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mystery.safetensors");
    let mut sd = StateDict::new(Format::Safetensors);
    sd.insert(
        "encoder.layer0.weight".into(),
        WeightTensor::new(vec![2, 2], vec![0.0; 4], DType::F32),
    );
    inception::weights::safetensors::write(&path, &sd).unwrap();
    let out = inception()
        .arg("convert")
        .arg(&path)
        .arg("-o")
        .arg(dir.path().join("out.safetensors"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot tell which model"), "{err}");
    assert!(err.contains("(pass --model NAME)"), "{err}");
    assert!(err.contains("mystery.safetensors"), "{err}");
}
