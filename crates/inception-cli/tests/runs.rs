//! Run folders and what a user sees of a run: numbered folders that never overwrite a finished
//! run, resuming the latest, progress lines in a log, a quiet end on a closed pipe.

use assert_cmd::Command;
use inception::train::ImageSet;

fn inception() -> Command {
    Command::cargo_bin("inception").unwrap()
}

#[test]
fn runs_are_numbered_never_overwritten_and_resume_the_latest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (train, _) = ImageSet::digits().unwrap();
    let subset = train.with_classes(&[0, 1]).take_per_class(24, 0);
    for i in 0..subset.len() {
        let dir = data.join(["zero", "one"][subset.labels[i]]);
        std::fs::create_dir_all(&dir).unwrap();
        image::GrayImage::from_raw(28, 28, subset.image(i).to_vec())
            .unwrap()
            .save(dir.join(format!("{i:03}.png")))
            .unwrap();
    }
    let train_once = |extra: &[&str]| {
        inception()
            .current_dir(tmp.path())
            .args(["train", "--data", "data", "--epochs", "1", "--batch", "8"])
            .args(extra)
            .output()
            .unwrap()
    };
    // Two runs: runs/train, then runs/train2 (the first model is kept).
    let first = train_once(&[]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    let model = tmp.path().join("runs/train/model.safetensors");
    let before = std::fs::read(&model).unwrap();
    // stderr is not a terminal here: progress comes as lines, with an estimate first.
    assert!(stderr.contains("per epoch"), "{stderr}");
    assert!(stderr.contains("epoch 1/1 batch"), "{stderr}");
    assert!(stderr.contains("of 2 classes"), "{stderr}");
    // Two classes: no top-5 (always 100%).
    assert!(!stderr.contains("top-5"), "{stderr}");
    let second = train_once(&[]);
    assert!(second.status.success());
    assert!(tmp.path().join("runs/train2/model.safetensors").is_file());
    assert_eq!(std::fs::read(&model).unwrap(), before);
    // An explicit folder holding a finished run is refused, unless asked for.
    let refused = train_once(&["-o", "runs/train"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("finished run") && stderr.contains("--exist-ok"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&model).unwrap(), before);
    assert!(
        train_once(&["-o", "runs/train", "--exist-ok"])
            .status
            .success()
    );
    // --resume alone continues the latest run (runs/train2), with the data it recorded.
    let resumed = inception()
        .current_dir(tmp.path())
        .args(["train", "--resume", "--epochs", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("runs/train2"), "{stderr}");
    let log = std::fs::read_to_string(tmp.path().join("runs/train2/log.csv")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
}

#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    // `inception summary … --json | head` panicked with a broken pipe (exit 101).
    use std::io::Read;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("inception"))
        .args(["summary", "inception-v3", "--aux", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The pipe is closed here, long before the ~200 kB of JSON are written.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{:?}",
            out.status
        );
    }
}

#[test]
fn help_names_every_model() {
    let out = inception().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for arch in inception::models::Arch::ALL {
        assert!(help.contains(arch.name()), "{arch}: {help}");
    }
}
