// Tells the tests whether the large reference fixtures are at hand: `cfg(big_fixtures)` when
// `$INCEPTION_FIXTURES` (default `../shared/fixtures` beside the repository) holds them.
// Tests that need them are then run; otherwise they are reported as ignored, never as passed.
// The small fixtures live in `tests/fixtures/` and are always there.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(big_fixtures)");
    println!("cargo::rerun-if-env-changed=INCEPTION_FIXTURES");
    println!("cargo::rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = std::env::var_os("INCEPTION_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../../shared/fixtures"));
    if dir.join("googlenet_tv_aux.pth").is_file() {
        println!("cargo::rustc-cfg=big_fixtures");
        println!("cargo::rerun-if-changed={}", dir.display());
    }
}
