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
