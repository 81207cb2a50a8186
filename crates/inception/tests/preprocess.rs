//! The preprocessing presets against the tensors torchvision and Keras produce for the same real
//! photos (`fixtures/preprocess_io.safetensors`): mean absolute difference below 0.01 and
//! maximum below 0.1 in normalised units, as the fixture's README allows for decoder and
//! resampler differences.

mod common;

use std::path::Path;

use common::fixtures;
use inception::data::resize::Filter;
use inception::data::{Preset, decode_file};
use inception::weights;

fn photo(name: &str) -> image::RgbImage {
    decode_file(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/images")
            .join(name),
    )
    .unwrap()
}

/// NHWC (Keras) → CHW.
fn hwc_to_chw(v: &[f32], s: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for i in 0..s * s {
        for c in 0..3 {
            out[c * s * s + i] = v[i * 3 + c];
        }
    }
    out
}

#[test]
fn presets_match_torchvision_and_keras() {
    let Some(dir) = fixtures() else { return };
    let io = weights::read(&dir.join("preprocess_io.safetensors")).unwrap();
    for file in ["chelsea.png", "rocket.jpg", "camera.png"] {
        let img = photo(file);
        let name = file.split('.').next().unwrap();
        for (key, preset, nhwc) in [
            ("torchvision_googlenet", Preset::torchvision(224), false),
            ("torchvision_inception_v3", Preset::torchvision(299), false),
            ("keras_inception_v3", Preset::keras(), true),
            (
                "keras_inception_v3_bilinear",
                Preset::KerasInception {
                    size: 299,
                    filter: Filter::Bilinear,
                },
                true,
            ),
        ] {
            let want = io.get(&format!("{name}.{key}")).unwrap();
            let s = preset.input_size();
            let want = if nhwc {
                hwc_to_chw(&want.data, s)
            } else {
                want.data.clone()
            };
            let got = preset.apply(&img);
            assert_eq!(got.len(), want.len());
            let diffs: Vec<f32> = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).collect();
            let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
            let max = diffs.iter().fold(0.0f32, |m, &d| m.max(d));
            eprintln!("{name}.{key}: mean {mean:.2e} max {max:.2e}");
            assert!(
                mean < 0.01 && max < 0.1,
                "{name}.{key}: mean {mean} max {max}"
            );
        }
    }
}

#[test]
fn grayscale_is_expanded_and_corrupt_files_are_errors() {
    let img = photo("camera.png");
    assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty.jpg", Vec::new()),
        ("text.png", b"not an image at all".to_vec()),
        (
            "cut.jpg",
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/images/rocket.jpg"),
            )
            .unwrap()[..2000]
                .to_vec(),
        ),
    ] {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = decode_file(&p).unwrap_err().to_string();
        assert!(e.contains(name) && !e.contains('\n'), "{e}");
    }
}
