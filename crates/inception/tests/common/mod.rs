//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The reference fixtures: the small ones committed in `crates/inception/tests/fixtures`, the
/// large ones in `$INCEPTION_FIXTURES` (default `../shared/fixtures` beside the repository).
/// Tests that need a large one carry
/// `#[cfg_attr(not(big_fixtures), ignore = "...")]` (see `build.rs`), so a fresh clone reports
/// them as ignored and still checks the small ones.
pub struct Fixtures {
    shared: PathBuf,
}

impl Fixtures {
    /// The path of fixture `name`: the committed copy when there is one, else the shared one.
    pub fn join(&self, name: impl AsRef<str>) -> PathBuf {
        let name = name.as_ref();
        let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../inception/tests/fixtures")
            .join(name);
        if local.exists() {
            return local;
        }
        let shared = self.shared.join(name);
        assert!(
            shared.exists(),
            "fixture {} not found (set INCEPTION_FIXTURES to the shared fixtures folder)",
            shared.display()
        );
        shared
    }
}

/// The fixtures (see [`Fixtures`]).
pub fn fixtures() -> Fixtures {
    let shared = std::env::var_os("INCEPTION_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    Fixtures { shared }
}

/// Largest absolute difference divided by the reference's largest magnitude (at least 1).
pub fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

/// Asserts `got` matches `want` to `tol` relative to the reference's scale.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    let e = relative_error(got, want);
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
    eprintln!("{what}: relative error {e:.2e}");
}

/// The functional model of `fixtures/gen/gen_keras_blocks.py`, written with our blocks.
pub fn keras_functional_blocks() -> inception::Graph {
    use inception::blocks::{
        InceptionV1Filters, V1Variant, inception_v1_block, naive_inception_block,
    };
    use inception::graph::{GraphBuilder, Padding};
    let mut g = GraphBuilder::new("functional_blocks");
    let x = g.input([192, 28, 28]);
    let row = InceptionV1Filters::new(64, 96, 128, 16, 32, 32);
    let y = inception_v1_block(&mut g, x, "inception3a", row, V1Variant::keras());
    let y = g.conv2d("conv2d", y, 32, [1, 1], [1, 1], Padding::Valid, true);
    let y = g.relu("conv2d_relu", y);
    let y = naive_inception_block(&mut g, y, "naive", [64, 128, 32]);
    let y = g.batch_norm("batch_normalization", y, 1e-3, false);
    let y = g.global_avg_pool("gap", y);
    let y = g.dense("dense", y, 10, true);
    let y = g.softmax("softmax", y);
    g.output("probs", y);
    g.finish().unwrap()
}

/// The Sequential model of `fixtures/gen/gen_keras_blocks.py`.
pub fn keras_sequential_small() -> inception::Graph {
    use inception::graph::{Layer, Sequential};
    Sequential::new("sequential_small", [1, 28, 28])
        .add(Layer::conv(32, 5))
        .add(Layer::max_pool(2))
        .add(Layer::Flatten)
        .add(Layer::dense(10))
        .add(Layer::Softmax)
        .build()
        .unwrap()
}

/// The draws behind the fixtures' weight formula (`fixtures/tf/README.md`): for element `i` of
/// the tensor called `name`, SplitMix64 of `fnv1a64(name) + i`, as a uniform value in [-1, 1)
/// (computed in f64). Each fixture scales them by the tensor's kind.
pub fn name_draws(name: &str, n: usize) -> impl Iterator<Item = f64> {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    (0..n).map(move |i| {
        let mut z = h.wrapping_add(i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0
    })
}

/// An `[N, H, W, C]` array (TensorFlow's and Keras's layout) as `[N, C, H, W]`.
pub fn nchw(data: &[f32], shape: &[usize]) -> Vec<f32> {
    let [n, h, w, c] = [shape[0], shape[1], shape[2], shape[3]];
    let mut out = vec![0.0; data.len()];
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    out[((b * c + ch) * h + y) * w + x] = data[((b * h + y) * w + x) * c + ch];
                }
            }
        }
    }
    out
}

/// A network output as a flat vector (maps in `[C, H, W]` order).
pub fn flat_values(v: inception::Value) -> Vec<f32> {
    v.flat().into_data().try_to_vec::<f32>().unwrap()
}

/// A PNG whose header claims `width` x `height` (8-bit RGB) with a tiny, bogus image stream.
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        v.extend_from_slice(&body);
        v.extend_from_slice(&crc(&body).to_be_bytes());
        v
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// A GoogLeNet at 64x64 with three named classes (`cat`, `dog`, `bird`), random weights and
/// `preset` recorded as its preprocessing, saved as `dir/pets.safetensors`.
pub fn pets_model(dir: &std::path::Path, preset: &inception::data::Preset) -> PathBuf {
    use inception::data::{CLASSES_KEY, PREPROCESSING_KEY};
    use inception::models::{Arch, ModelConfig};
    let cfg = ModelConfig::new(Arch::GoogLeNet)
        .with_classes(3)
        .with_input_size(64);
    let net = inception::network::Network::new(
        cfg.graph().unwrap(),
        &inception::burn::tensor::Device::default(),
    );
    let mut sd = inception::weights::export(&net, &cfg);
    sd.metadata.insert(
        CLASSES_KEY.into(),
        serde_json::to_string(&["cat", "dog", "bird"]).unwrap(),
    );
    sd.metadata.insert(
        PREPROCESSING_KEY.into(),
        serde_json::to_string(preset).unwrap(),
    );
    let file = dir.join("pets.safetensors");
    inception::weights::safetensors::write(&file, &sd).unwrap();
    file
}
