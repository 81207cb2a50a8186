//! `inception classify` and `inception features` on the real photos of `tests/data/images`
//! with the fixture weights: the numbers equal `inception run` on the same preprocessed tensors,
//! the JSON has the documented fields, and bad files are reported and skipped.

#[path = "../../inception/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{fixtures, relative_error};
use inception::data::{Labels, Preset, decode_file};
use inception::files::{Array, read_array, write_arrays};
use inception::weights;

fn inception() -> Command {
    Command::cargo_bin("inception").unwrap()
}

fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../inception/tests/data/images")
}

/// The photos a directory walk of `images_dir()` finds, in its (sorted) order.
const PHOTOS: [&str; 3] = ["camera.png", "chelsea.png", "rocket.jpg"];

/// The photos preprocessed by the library, as the batch `inception run` takes (NCHW, or NHWC).
fn preprocessed(preset: &Preset, nhwc: bool, out: &Path) {
    let s = preset.input_size();
    let mut data = Vec::new();
    for f in PHOTOS {
        let chw = preset.apply(&decode_file(&images_dir().join(f)).unwrap());
        if nhwc {
            for i in 0..s * s {
                data.extend((0..3).map(|c| chw[c * s * s + i]));
            }
        } else {
            data.extend(chw);
        }
    }
    let shape = if nhwc {
        vec![PHOTOS.len(), s, s, 3]
    } else {
        vec![PHOTOS.len(), 3, s, s]
    };
    write_arrays(out, &[("input".into(), Array { shape, data })]).unwrap();
}

/// `inception run` on the preprocessed photos: the named output as `[N, F]`.
fn run_output(weights: &Path, input: &Path, node: Option<&str>, tmp: &Path) -> Vec<Vec<f32>> {
    let out = tmp.join("run.npy");
    let mut cmd = inception();
    cmd.arg("run")
        .arg("--weights")
        .arg(weights)
        .arg("--input")
        .arg(input)
        .arg("-o")
        .arg(&out)
        .arg("--no-aux");
    if let Some(n) = node {
        cmd.args(["--output-node", n]);
    }
    cmd.assert().success();
    let a = read_array(&out, None).unwrap();
    let per = a.data.len() / a.shape[0];
    a.data.chunks(per).map(<[f32]>::to_vec).collect()
}

fn softmax(v: &[f32]) -> Vec<f32> {
    let m = v.iter().fold(f32::MIN, |a, &b| a.max(b));
    let e: Vec<f32> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// `classify --json` lines: (file, [(index, label, probability)]), checking the documented fields.
/// One image's answer: its file and `(index, label, probability)` per rank.
type Answer = (String, Vec<(usize, String, f32)>);

fn parse_json_lines(stdout: &[u8]) -> Vec<Answer> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let obj = v.as_object().unwrap();
            let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(keys, ["file", "predictions"]);
            let preds = obj["predictions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let mut keys: Vec<&str> =
                        p.as_object().unwrap().keys().map(String::as_str).collect();
                    keys.sort();
                    assert_eq!(keys, ["index", "label", "probability"]);
                    (
                        p["index"].as_u64().unwrap() as usize,
                        p["label"].as_str().unwrap().to_string(),
                        p["probability"].as_f64().unwrap() as f32,
                    )
                })
                .collect();
            (obj["file"].as_str().unwrap().to_string(), preds)
        })
        .collect()
}

/// `classify --json` agrees with `inception run` on every photo: its output `node` (the main one
/// by default), softmax applied unless `probs` says it is already probabilities.
fn check_classify(
    weights: &Path,
    preset: Preset,
    nhwc: bool,
    (node, probs): (Option<&str>, bool),
    labels: Labels,
) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("x.npy");
    preprocessed(&preset, nhwc, &input);
    let scores = run_output(weights, &input, node, tmp.path());
    let out = inception()
        .arg("classify")
        .arg("--weights")
        .arg(weights)
        .arg(images_dir())
        .args(["--json", "--top", "5", "--batch", "2"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines = parse_json_lines(&out);
    assert_eq!(lines.len(), PHOTOS.len());
    for ((file, preds), (name, s)) in lines.iter().zip(PHOTOS.iter().zip(&scores)) {
        assert!(file.ends_with(name), "{file} vs {name}");
        let p = if probs { s.clone() } else { softmax(s) };
        let mut want: Vec<usize> = (0..p.len()).collect();
        want.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        assert_eq!(preds.len(), 5.min(p.len()));
        for (rank, (index, label, prob)) in preds.iter().enumerate() {
            assert_eq!(*label, labels.name(*index));
            assert!(
                (prob - p[*index]).abs() <= 1e-5 * p[want[0]].max(1e-3),
                "{file} #{rank}: {prob} vs {}",
                p[*index]
            );
            // Same ranking, up to ties within float noise.
            assert!(
                (p[want[rank]] - p[*index]).abs() <= 1e-6,
                "{file} rank {rank}"
            );
        }
    }
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn classify_equals_run_on_the_preprocessed_photos() {
    let dir = fixtures();
    // torchvision layout from a PyTorch/safetensors file: torchvision preprocessing at 299.
    check_classify(
        &dir.join("inception_v3_tv_fp16.safetensors"),
        Preset::torchvision(299),
        false,
        (None, false),
        Labels::imagenet(),
    );
    // Keras: Keras preprocessing (nearest resize to 299, x/127.5-1), NHWC, softmax top.
    check_classify(
        &dir.join("keras_inception_v3.h5"),
        Preset::keras(),
        true,
        (None, true),
        Labels::imagenet(),
    );
    // ONNX zoo layout: Caffe preprocessing at the graph's 64x64, its 10 classes numbered.
    check_classify(
        &dir.join("googlenet_caffe_small.onnx"),
        Preset::Caffe { size: 64 },
        false,
        (Some("prob_1"), true),
        Labels::numbered(10),
    );
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn features_equal_run_on_the_preprocessed_photos() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    // (weights, preset, NHWC input, `run` output node, features options, vector length)
    type Case = (
        &'static str,
        Preset,
        bool,
        &'static str,
        &'static [&'static str],
        usize,
    );
    let cases: [Case; 3] = [
        (
            "googlenet_tv_aux.pth",
            Preset::torchvision(224),
            false,
            "avgpool",
            &[],
            1024,
        ),
        (
            "inception_v3_tv_fp16.safetensors",
            Preset::torchvision(299),
            false,
            "avgpool",
            &["--pooling", "avg"],
            2048,
        ),
        // Keras: the raw mixed5 activation flattened in Keras's NHWC order.
        (
            "keras_inception_v3.h5",
            Preset::keras(),
            true,
            "mixed5",
            &["--layer", "mixed5", "--pooling", "none"],
            17 * 17 * 768,
        ),
    ];
    for (file, preset, nhwc, node, extra, dim) in cases {
        let weights = dir.join(file);
        let input = tmp.path().join("x.npy");
        preprocessed(&preset, nhwc, &input);
        let want = run_output(&weights, &input, Some(node), tmp.path());
        for ext in ["npy", "safetensors", "csv"] {
            let out = tmp.path().join(format!("features.{ext}"));
            inception()
                .arg("features")
                .arg("--weights")
                .arg(&weights)
                .arg(images_dir())
                .arg("-o")
                .arg(&out)
                .args(extra)
                .args(["--batch", "2"])
                .assert()
                .success();
            let (files, rows) = read_features(&out, dim);
            assert_eq!(files.len(), PHOTOS.len(), "{file} {ext}");
            for ((f, name), (got, want)) in files.iter().zip(PHOTOS).zip(rows.iter().zip(&want)) {
                if !f.is_empty() {
                    assert!(f.ends_with(name), "{f}");
                }
                let e = relative_error(got, want);
                assert!(e < 1e-5, "{file} .{ext} {name}: {e}");
            }
        }
    }
}

/// The file names (empty for .npy, which has nowhere to keep them) and vectors of a features file.
fn read_features(path: &Path, dim: usize) -> (Vec<String>, Vec<Vec<f32>>) {
    let ext = path.extension().unwrap().to_str().unwrap();
    match ext {
        "csv" => {
            let mut r = csv::Reader::from_path(path).unwrap();
            assert_eq!(r.headers().unwrap().len(), dim + 1);
            assert_eq!(&r.headers().unwrap()[0], "file");
            let mut files = Vec::new();
            let mut rows = Vec::new();
            for rec in r.records() {
                let rec = rec.unwrap();
                files.push(rec[0].to_string());
                rows.push(rec.iter().skip(1).map(|v| v.parse().unwrap()).collect());
            }
            (files, rows)
        }
        "safetensors" => {
            let sd = weights::read(path).unwrap();
            let t = sd.get("features").unwrap();
            assert_eq!(t.shape[1], dim);
            let files: Vec<String> = serde_json::from_str(&sd.metadata["files"]).unwrap();
            assert!(!sd.metadata["pooling"].is_empty());
            (files, t.data.chunks(dim).map(<[f32]>::to_vec).collect())
        }
        _ => {
            let a = read_array(path, None).unwrap();
            assert_eq!(a.shape[1], dim);
            (
                vec![String::new(); a.shape[0]],
                a.data.chunks(dim).map(<[f32]>::to_vec).collect(),
            )
        }
    }
}

/// A folder with two good photos (one in a sub-folder) and every kind of bad file.
fn messy_folder(root: &Path) {
    let photos = images_dir();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::copy(photos.join("chelsea.png"), root.join("a_chelsea.png")).unwrap();
    std::fs::copy(photos.join("rocket.jpg"), root.join("sub/rocket.jpg")).unwrap();
    let jpeg = std::fs::read(photos.join("rocket.jpg")).unwrap();
    let png = std::fs::read(photos.join("chelsea.png")).unwrap();
    let mut corrupt = png[..64].to_vec();
    corrupt.extend(std::iter::repeat_n(0xAB, 4096));
    for (name, bytes) in [
        ("b_empty.jpg", Vec::new()),
        ("c_truncated.jpg", jpeg[..jpeg.len() / 2].to_vec()),
        ("d_corrupt.png", corrupt),
        ("e_text.jpg", b"this is a text file, not a photo\n".to_vec()),
    ] {
        std::fs::write(root.join(name), bytes).unwrap();
    }
    // Not an image extension: a folder walk does not even try it.
    std::fs::write(root.join("notes.txt"), b"hello").unwrap();
}

const BAD: [&str; 4] = [
    "b_empty.jpg",
    "c_truncated.jpg",
    "d_corrupt.png",
    "e_text.jpg",
];

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn bad_files_are_reported_and_skipped() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    messy_folder(&root);
    let weights = dir.join("googlenet_tv_aux.pth");
    let out = inception()
        .arg("classify")
        .arg("--weights")
        .arg(&weights)
        .arg(&root)
        .arg(root.join("missing.png"))
        .args(["--json", "--batch", "2"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let lines = parse_json_lines(&out.stdout);
    let files: Vec<&str> = lines.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].ends_with("a_chelsea.png") && files[1].ends_with("rocket.jpg"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for bad in BAD.iter().chain(&["missing.png"]) {
        let line = stderr
            .lines()
            .find(|l| l.contains(bad))
            .unwrap_or_else(|| panic!("{bad} not reported: {stderr}"));
        assert!(line.starts_with("error: "), "{line}");
    }
    assert!(!stderr.contains("notes.txt") && !stderr.contains("panicked"));
    assert!(stderr.contains("5 input(s) could not be read"), "{stderr}");

    // Features: written for the good photos, naming them; exit code 3.
    let feats = tmp.path().join("f.safetensors");
    inception()
        .arg("features")
        .arg("--weights")
        .arg(&weights)
        .arg(&root)
        .arg("-o")
        .arg(&feats)
        .assert()
        .code(3);
    let (names, rows) = read_features(&feats, 1024);
    assert_eq!(rows.len(), 2);
    assert!(names[0].ends_with("a_chelsea.png") && names[1].ends_with("rocket.jpg"));

    // Nothing readable: an error, and no output file.
    let none = tmp.path().join("none.npy");
    let out = inception()
        .arg("features")
        .arg("--weights")
        .arg(&weights)
        .arg(root.join("e_text.jpg"))
        .arg("-o")
        .arg(&none)
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(!none.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("none of the 1 inputs"));
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn classify_and_features_errors_are_one_line() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let photo = images_dir().join("chelsea.png");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "features".into(),
                "--weights".into(),
                dir.join("googlenet_tv_aux.pth").display().to_string(),
                photo.display().to_string(),
                "-o".into(),
                tmp.path().join("x.txt").display().to_string(),
            ],
            "use .npy, .safetensors or .csv",
        ),
        (
            vec![
                "classify".into(),
                "--weights".into(),
                dir.join("googlenet_tv_aux.pth").display().to_string(),
                tmp.path().display().to_string(),
            ],
            "no images found",
        ),
        (
            vec![
                "features".into(),
                "--weights".into(),
                dir.join("googlenet_tv_aux.pth").display().to_string(),
                "--layer".into(),
                "inception9z".into(),
                photo.display().to_string(),
                "-o".into(),
                tmp.path().join("x.npy").display().to_string(),
            ],
            "no layer named 'inception9z'",
        ),
        (
            vec![
                "classify".into(),
                "--weights".into(),
                dir.join("googlenet_caffe_small.onnx").display().to_string(),
                "--input-size".into(),
                "224".into(),
                photo.display().to_string(),
            ],
            "takes 64x64 inputs",
        ),
    ];
    for (args, want) in cases {
        let out = inception()
            .args(&args)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
}
