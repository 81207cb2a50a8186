// Tells the tests whether a Chromium is at hand for the browser test: `cfg(has_chromium)` when
// `$CHROME` names one or `chromium` / `chromium-browser` / `google-chrome` is on the PATH.
// Without one the browser test is reported as ignored, never as passed (`.ci/run` installs
// Debian's `chromium`).

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_chromium)");
    println!("cargo::rerun-if-env-changed=CHROME");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    let found = std::env::var_os("CHROME")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path).find_map(|dir| {
                ["chromium", "chromium-browser", "google-chrome"]
                    .iter()
                    .map(|n| dir.join(n))
                    .find(|p| p.is_file())
            })
        });
    if let Some(p) = found {
        println!("cargo::rustc-cfg=has_chromium");
        println!("cargo::rustc-env=INCEPTION_CHROME={}", p.display());
    }
}
