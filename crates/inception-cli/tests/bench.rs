//! `inception bench` as a user and a script run it (tiny settings: nothing here is timed).

use assert_cmd::Command;

fn inception() -> Command {
    Command::cargo_bin("inception").unwrap()
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn json_has_one_record_per_measurement_with_the_documented_fields() {
    let out = inception()
        .args([
            "bench",
            "inception-mini",
            "--batch",
            "1,3",
            "--repeats",
            "1",
            "--min-time",
            "0",
            "--reference",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 4, "fast and reference, two batch sizes");
    for r in &rows {
        assert_eq!(r["model"], "inception-mini");
        assert!(r["images_per_sec"].as_f64().unwrap() > 0.0);
        assert!(r["ms_per_batch"].as_f64().unwrap() > 0.0);
        assert!(r["gflops"].as_f64().unwrap() > 0.0);
        let f = r["fraction_of_peak"].as_f64().unwrap();
        assert!(f > 0.0 && f < 1.5, "{f}");
        assert!(r["fma_peak_gflops"].as_f64().unwrap() > 0.0);
    }
    let modes: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["mode"].as_str().unwrap().to_string(),
                r["batch"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        modes.contains(&("infer".into(), 1)) && modes.contains(&("infer_reference".into(), 3)),
        "{modes:?}"
    );
    // Per-image work follows from the architecture: 2 FLOPs per multiply-accumulate.
    let summary = inception()
        .args(["summary", "inception-mini", "--json"])
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    let gflop = rows[0]["gflop_per_image"].as_f64().unwrap();
    let macs = s["macs"].as_f64().unwrap();
    assert!(
        (gflop * 1e9 - 2.0 * macs).abs() / (2.0 * macs) < 1e-9,
        "{gflop} vs {macs}"
    );
}

#[test]
fn training_steps_and_profile_and_table() {
    let out = inception()
        .args([
            "bench",
            "inception-mini",
            "--train",
            "--batch",
            "4",
            "--repeats",
            "1",
            "--min-time",
            "0",
            "--no-peak",
            "--threads",
            "1",
            "--optimizer",
            "rmsprop",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["mode"], "train");
    assert_eq!(rows[0]["threads"], 1);
    assert!(
        rows[0]["fraction_of_peak"].is_null(),
        "no probe, no fraction"
    );

    let out = inception()
        .args([
            "bench",
            "inception-mini",
            "--batch",
            "2",
            "--repeats",
            "1",
            "--min-time",
            "0",
            "--profile",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("machine: "), "{text}");
    assert!(text.contains("img/s") && text.contains("% peak"), "{text}");
    assert!(
        text.contains("profile of inception-mini at batch 2"),
        "{text}"
    );
    assert!(
        text.contains("by kind: ") && text.contains("conv"),
        "{text}"
    );
}

#[test]
fn bad_settings_are_one_line_errors() {
    for args in [
        &["bench", "inception-mini", "--batch", "0"][..],
        &["bench", "no-such-model"],
        &["bench", "inception-mini", "--threads", "0"],
        &["bench", "inception-mini", "--min-time=-1"],
        &[
            "bench",
            "inception-mini",
            "--train",
            "--batch",
            "1",
            "--min-time",
            "0",
        ],
    ] {
        let out = inception().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn help_documents_the_command() {
    let out = inception().args(["bench", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--batch",
        "--threads",
        "--train",
        "--profile",
        "--json",
        "--reference",
        "--weights",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}
