//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The reference fixtures folder (`$INCEPTION_FIXTURES`, default `../shared/fixtures` beside the
/// repository), or `None` with a note when it is absent (a user's fresh clone; `.ci/run` always
/// provides it).
pub fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("INCEPTION_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: fixtures folder {} not found (set INCEPTION_FIXTURES)",
            dir.display()
        );
        None
    }
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
