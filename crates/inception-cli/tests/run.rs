//! `inception run` and `inception convert` against the reference fixtures: the numbers the
//! binary writes are the numbers torchvision computed.

// The library's test helpers (fixtures folder, relative error), shared rather than copied.
#[path = "../../inception/tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

use common::{fixtures, relative_error as max_rel};

use assert_cmd::Command;
use inception::files::read_array;
use inception::weights;

fn inception() -> Command {
    Command::cargo_bin("inception").unwrap()
}

/// `inception run --weights WEIGHTS --input INPUT -o OUT`; callers add the options they test.
fn run_cmd(
    weights: impl AsRef<std::ffi::OsStr>,
    input: impl AsRef<std::ffi::OsStr>,
    out: impl AsRef<std::ffi::OsStr>,
) -> Command {
    let mut cmd = inception();
    cmd.arg("run")
        .arg("--weights")
        .arg(weights)
        .arg("--input")
        .arg(input)
        .arg("-o")
        .arg(out);
    cmd
}

/// Each `(written, reference)` pair of tensors agrees to 1e-4 of the reference's scale.
fn assert_matches(out: &std::path::Path, reference: &std::path::Path, pairs: &[(&str, &str)]) {
    let got = weights::read(out).unwrap();
    let want = weights::read(reference).unwrap();
    for (g, w) in pairs {
        let e = max_rel(&got.get(g).unwrap().data, &want.get(w).unwrap().data);
        assert!(e < 1e-4, "{g}: {e}");
    }
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn run_reproduces_googlenet_logits_aux_and_activations() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let io = dir.join("googlenet_tv_io.safetensors");
    run_cmd(
        dir.join("googlenet_tv_aux.pth"),
        format!("{}:input", io.display()),
        &out,
    )
    .args([
        "--output-node",
        "inception3a",
        "--output-node",
        "inception4e",
    ])
    .args(["--output-node", "inception5b", "--output-node", "avgpool"])
    .assert()
    .success();
    assert_matches(
        &out,
        &io,
        &[
            ("logits", "logits"),
            ("aux1_logits", "aux1_logits"),
            ("aux2_logits", "aux2_logits"),
            ("inception3a", "act.inception3a"),
            ("inception4e", "act.inception4e"),
            ("inception5b", "act.inception5b"),
            ("avgpool", "act.avgpool"),
        ],
    );
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn run_reproduces_inception_v3_fp16_with_aux_and_activations() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("v3.safetensors");
    let io = dir.join("inception_v3_tv_io.safetensors");
    let mut cmd = run_cmd(
        dir.join("inception_v3_tv_fp16.safetensors"),
        format!("{}:input", io.display()),
        &out,
    );
    for layer in ["Mixed_5b", "Mixed_6e", "Mixed_7c", "avgpool"] {
        cmd.args(["--output-node", layer]);
    }
    cmd.assert().success();
    assert_matches(
        &out,
        &io,
        &[
            ("logits", "logits"),
            ("aux_logits", "aux_logits"),
            ("Mixed_5b", "act.Mixed_5b"),
            ("Mixed_6e", "act.Mixed_6e"),
            ("Mixed_7c", "act.Mixed_7c"),
            ("avgpool", "act.avgpool"),
        ],
    );
}

#[test]
fn hostile_files_fail_cleanly_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("x.npy");
    inception::files::write_arrays(
        &input,
        &[(
            "x".into(),
            inception::files::Array {
                shape: vec![1, 3, 32, 32],
                data: vec![0.0; 3 * 32 * 32],
            },
        )],
    )
    .unwrap();
    let mut cases: Vec<(PathBuf, &str)> = Vec::new();
    let mut put = |name: &str, bytes: &[u8], needle: &'static str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        cases.push((p, needle));
    };
    put("empty.pth", b"", "empty");
    put("text.pth", b"definitely not weights", "not a PyTorch");
    put(
        "cut.safetensors",
        b"\xff\x00\x00\x00\x00\x00\x00\x00{\"a\":1}",
        "not a valid safetensors",
    );
    put(
        "cut.onnx",
        b"\x08\x07\x12\xff\xff\xff\xff\x0f",
        "not a valid ONNX",
    );
    for (path, needle) in cases {
        let out = run_cmd(&path, &input, tmp.path().join("o.npy"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(!tmp.path().join("o.npy").exists());
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn run_with_npy_and_nhwc_layout() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let io = dir.join("inception_v3_tv_io.safetensors");
    // The NCHW input, transposed to NHWC and saved as .npy, as a TensorFlow user would pass it.
    let x = read_array(&io, Some("input")).unwrap();
    let [n, c, h, w]: [usize; 4] = x.shape.clone().try_into().unwrap();
    let mut nhwc = vec![0.0; x.data.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    nhwc[((b * h + y) * w + xx) * c + ch] = x.data[((b * c + ch) * h + y) * w + xx];
                }
            }
        }
    }
    let input = tmp.path().join("x.npy");
    inception::files::write_arrays(
        &input,
        &[(
            "x".into(),
            inception::files::Array {
                shape: vec![n, h, w, c],
                data: nhwc,
            },
        )],
    )
    .unwrap();
    let out = tmp.path().join("logits.npy");
    run_cmd(dir.join("inception_v3_tv_fp16.safetensors"), &input, &out)
        .args(["--layout", "nhwc", "--no-aux"])
        .assert()
        .success();
    let got = read_array(&out, None).unwrap();
    assert_eq!(got.shape, vec![2, 1000]);
    let want = read_array(&io, Some("logits")).unwrap();
    let e = max_rel(&got.data, &want.data);
    assert!(e < 1e-4, "{e}");
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn convert_writes_torchvision_names_and_the_config() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("googlenet.safetensors");
    inception()
        .arg("convert")
        .arg(dir.join("googlenet_tv_aux.pth"))
        .arg("-o")
        .arg(&out)
        .arg("--transform-input")
        .assert()
        .success();
    let sd = weights::read(&out).unwrap();
    let cfg = weights::config_for(&sd, None).unwrap();
    assert!(cfg.transform_input && cfg.aux_logits);
    assert_eq!(
        sd.get("inception3a.branch1.conv.weight").unwrap().shape,
        vec![64, 192, 1, 1]
    );
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn run_errors_are_one_line() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let io = dir.join("googlenet_tv_io.safetensors");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--input".into(), io.display().to_string()],
            "pick one with",
        ),
        (
            vec!["--input".into(), format!("{}:nope", io.display())],
            "no tensor `nope`",
        ),
        (
            vec!["--input".into(), format!("{}:logits", io.display())],
            "4 dimensions",
        ),
        (
            vec![
                "--input".into(),
                format!("{}:input", io.display()),
                "--model".into(),
                "inception-v3".into(),
            ],
            "missing",
        ),
    ];
    for (args, needle) in cases {
        let out = inception()
            .arg("run")
            .arg("--weights")
            .arg(dir.join("googlenet_tv_aux.pth"))
            .args(&args)
            .arg("-o")
            .arg(tmp.path().join("o.safetensors"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(!tmp.path().join("o.safetensors").exists());
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn run_keras_files_take_nhwc_and_give_probabilities() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let io = dir.join("keras_inception_v3_io.safetensors");
    let out = tmp.path().join("keras.safetensors");
    run_cmd(
        dir.join("keras_inception_v3.h5"),
        format!("{}:input", io.display()),
        &out,
    )
    .args(["--output-node", "mixed5", "--output-node", "avg_pool"])
    .assert()
    .success();
    assert_matches(
        &out,
        &io,
        &[
            ("probs", "probs"),
            ("mixed5", "mixed5"),
            ("avg_pool", "avg_pool"),
        ],
    );
    // The blocks: weights-only files with the architecture from the .keras file.
    let io = dir.join("keras_blocks_io.safetensors");
    for model in ["functional_blocks", "sequential_small"] {
        for ext in ["h5", "weights.h5", "keras"] {
            let out = tmp.path().join(format!("{model}.{ext}.npy"));
            run_cmd(
                dir.join(format!("keras_blocks_{model}.{ext}")),
                format!("{}:{model}.input", io.display()),
                &out,
            )
            .arg("--model")
            .arg(dir.join(format!("keras_blocks_{model}.keras")))
            .assert()
            .success();
            let got = read_array(&out, None).unwrap();
            let want = read_array(&io, Some(&format!("{model}.output"))).unwrap();
            assert!(max_rel(&got.data, &want.data) < 1e-5, "{model}.{ext}");
        }
    }
}

#[test]
fn run_onnx_writes_the_graph_outputs() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let io = dir.join("googlenet_caffe_small_io.safetensors");
    let out = tmp.path().join("onnx.safetensors");
    run_cmd(
        dir.join("googlenet_caffe_small.onnx"),
        format!("{}:input", io.display()),
        &out,
    )
    .assert()
    .success();
    assert_matches(
        &out,
        &io,
        &[("prob_1", "prob"), ("loss3_classifier_1", "logits")],
    );
}
