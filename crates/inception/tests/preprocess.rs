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

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn presets_match_torchvision_and_keras() {
    let dir = fixtures();
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

#[test]
fn every_supported_format_decodes_upright_to_rgb() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats");
    let red = [220u8, 30, 30];
    let blue = [30u8, 30, 220];
    let white = [255u8, 255, 255];
    let g = |v: u8| [v, v, v];
    // (file, size, pixel in the red half, its colour, pixel in the blue half, its colour, tolerance)
    type Case = (
        &'static str,
        (u32, u32),
        (u32, u32),
        [u8; 3],
        (u32, u32),
        [u8; 3],
        u8,
    );
    let side = ((2, 8), (21, 8));
    let cases: Vec<Case> = vec![
        ("baseline.jpg", (24, 16), side.0, red, side.1, blue, 12),
        ("progressive.jpg", (24, 16), side.0, red, side.1, blue, 12),
        ("cmyk.jpg", (24, 16), side.0, red, side.1, blue, 20),
        // EXIF orientation 6: stored 24x16, shown turned clockwise, the red half on top.
        ("exif_rotated.jpg", (16, 24), (8, 2), red, (8, 21), blue, 12),
        ("rgb.png", (24, 16), side.0, red, side.1, blue, 0),
        ("palette.png", (24, 16), side.0, red, side.1, blue, 0),
        ("gray.png", (24, 16), side.0, g(220), side.1, g(30), 0),
        ("gray16.png", (24, 16), side.0, g(220), side.1, g(30), 0),
        // The transparent half is composited on white.
        ("alpha.png", (24, 16), side.0, white, side.1, blue, 0),
        ("anim.gif", (24, 16), side.0, red, side.1, blue, 0),
        ("image.bmp", (24, 16), side.0, red, side.1, blue, 0),
        ("image.tiff", (24, 16), side.0, red, side.1, blue, 0),
        ("lossless.webp", (24, 16), side.0, red, side.1, blue, 0),
    ];
    for (file, size, p1, c1, p2, c2, tol) in cases {
        let img = decode_file(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(img.dimensions(), size, "{file}");
        for ((x, y), want) in [(p1, c1), (p2, c2)] {
            let got = img.get_pixel(x, y).0;
            let ok = got.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= tol);
            assert!(ok, "{file} at ({x}, {y}): {got:?}, want {want:?} ± {tol}");
        }
    }
}

#[test]
fn tf_slim_preprocessing_is_tensorflow_1s_crop_and_bilinear() {
    // TF-slim's preprocess_for_eval: central_crop(0.875), resize_bilinear(align_corners=False)
    // with TensorFlow 1's source = dest * in / out mapping, then (x - 0.5) * 2.
    let preset = Preset::parse("tf-slim", 4).unwrap();
    assert_eq!(preset, Preset::TfSlim { size: 4 });
    // A 2x2 image (the crop keeps it whole: int((2 - 1.75) / 2) = 0) brought to 4x4: sources
    // 0, 0.5, 1, 1.5 (clamped) along each axis.
    let img = image::RgbImage::from_fn(2, 2, |x, y| image::Rgb([(x * 100 + y * 50) as u8, 0, 255]));
    let x = preset.apply(&img);
    let v = |p: f32| (p / 255.0 - 0.5) * 2.0;
    let row0 = [v(0.0), v(50.0), v(100.0), v(100.0)];
    let row1 = [v(25.0), v(75.0), v(125.0), v(125.0)];
    for (got, want) in x[..4].iter().zip(row0) {
        assert!((got - want).abs() < 1e-6, "{got} {want}");
    }
    for (got, want) in x[4..8].iter().zip(row1) {
        assert!((got - want).abs() < 1e-6, "{got} {want}");
    }
    assert!(x[16..32].iter().all(|&g| (g - v(0.0)).abs() < 1e-6));
    assert!(x[32..].iter().all(|&b| (b - 1.0).abs() < 1e-6));
    // A 16x16 image loses a one-pixel border (int((16 - 14) / 2) = 1) and, at 14, is copied.
    let img = image::RgbImage::from_fn(16, 16, |x, y| {
        let border = x == 0 || y == 0 || x == 15 || y == 15;
        image::Rgb([if border { 255 } else { (x * 10 + y) as u8 }, 0, 0])
    });
    let x = Preset::TfSlim { size: 14 }.apply(&img);
    for oy in 0..14 {
        for ox in 0..14 {
            let want = v(((ox + 1) * 10 + oy + 1) as f32);
            assert!((x[oy * 14 + ox] - want).abs() < 1e-6);
        }
    }
}
