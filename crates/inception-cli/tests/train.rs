//! `inception train` on a real ImageFolder: progress lines, the log, the curves, a model that
//! `inception classify` reads with its class names.

use assert_cmd::Command;
use inception::train::ImageSet;

fn inception() -> Command {
    Command::cargo_bin("inception").unwrap()
}

#[test]
fn train_on_a_folder_then_classify_with_its_class_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("digits");
    let (train, _) = ImageSet::digits().unwrap();
    // Three classes named like a user's folders, 80 images each, plus a broken file.
    let names = ["zero", "one", "seven"];
    let subset = train.with_classes(&[0, 1, 7]).take_per_class(80, 0);
    for i in 0..subset.len() {
        let dir = data.join(names[subset.labels[i]]);
        std::fs::create_dir_all(&dir).unwrap();
        image::GrayImage::from_raw(28, 28, subset.image(i).to_vec())
            .unwrap()
            .save(dir.join(format!("{i:03}.png")))
            .unwrap();
    }
    std::fs::write(data.join("seven/broken.jpg"), b"not a jpeg").unwrap();
    let out = tmp.path().join("run");
    let result = inception()
        .arg("train")
        .arg("--data")
        .arg(&data)
        .args(["--epochs", "3", "--batch", "16", "--json", "-o"])
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("epoch   1/3") && stderr.contains("epoch   3/3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("skipped") && stderr.contains("broken.jpg"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(report["history"].as_array().unwrap().len(), 3);
    assert!(
        report["evaluation"]["top1"].as_f64().unwrap() > 0.6,
        "{report}"
    );
    let log = std::fs::read_to_string(out.join("log.csv")).unwrap();
    assert_eq!(log.lines().count(), 4);
    assert!(log.starts_with("epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5"));
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    assert!(out.join("curves.png").is_file());

    // The model is ordinary weights: classify names the user's classes.
    let classified = inception()
        .arg("classify")
        .arg("--weights")
        .arg(out.join("model.safetensors"))
        .arg(data.join("seven"))
        .args(["--json", "--top", "3"])
        .assert()
        .code(3) // broken.jpg is reported and skipped
        .get_output()
        .stdout
        .clone();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&classified)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 80);
    let labels: Vec<&str> = lines[0]["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    let mut sorted = labels.clone();
    sorted.sort();
    assert_eq!(sorted, ["one", "seven", "zero"]);
    let sevens = lines
        .iter()
        .filter(|l| l["predictions"][0]["label"] == "seven")
        .count();
    assert!(sevens >= 56, "{sevens} of 80 sevens recognised");
}

#[test]
fn train_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, want) in [
        (vec!["train", "--model", "resnet50"], "unknown model"),
        (vec!["train", "--schedule", "step:8"], "unknown schedule"),
        (vec!["train", "--batch", "1"], "at least 2"),
        // Issue 16: accepted, or a panic / a 30 GB allocation.
        (vec!["train", "--lr", "NaN"], "learning rate"),
        (vec!["train", "--label-smoothing", "2"], "label smoothing"),
        (vec!["train", "--schedule", "step:0:0"], "period"),
        (vec!["train", "--input-size", "100000"], "over the limit"),
        (
            vec!["train", "--data", ".", "--val-fraction", "1.5"],
            "between 0 and 1",
        ),
        (
            vec!["train", "--data", ".", "--val-fraction", "NaN"],
            "between 0 and 1",
        ),
        (
            vec!["eval", "--weights", "x", "--data", ".", "--batch", "0"],
            "--batch 0",
        ),
    ] {
        let out = inception()
            .args(&args)
            .arg("-o")
            .arg(tmp.path())
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
    let out = inception()
        .args(["train", "--data"])
        .arg(tmp.path().join("nowhere"))
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nowhere") && stderr.contains("no such file"),
        "{stderr}"
    );
    // A folder of one class "trained" to 100% with loss 0.
    let (train, _) = ImageSet::digits().unwrap();
    let one = tmp.path().join("one");
    write_folder(
        &one,
        &train.with_classes(&[3]).take_per_class(30, 0),
        &["three"],
    );
    let out = inception()
        .args(["train", "--epochs", "1", "--data"])
        .arg(&one)
        .arg("-o")
        .arg(tmp.path().join("one-run"))
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least two"), "{stderr}");
    assert!(!tmp.path().join("one-run/model.safetensors").exists());
}

/// Writes `set` as an ImageFolder under `root` with the given class folder names.
fn write_folder(root: &std::path::Path, set: &ImageSet, names: &[&str]) {
    for i in 0..set.len() {
        let dir = root.join(names[set.labels[i]]);
        std::fs::create_dir_all(&dir).unwrap();
        image::GrayImage::from_raw(28, 28, set.image(i).to_vec())
            .unwrap()
            .save(dir.join(format!("{i:04}.png")))
            .unwrap();
    }
}

#[test]
fn finetune_a_trained_model_on_new_classes_then_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = ImageSet::digits().unwrap();
    // A source model on digits 0, 1, 2.
    let source = tmp.path().join("source");
    write_folder(
        &source,
        &train.with_classes(&[0, 1, 2]).take_per_class(150, 0),
        &["0", "1", "2"],
    );
    let base = tmp.path().join("base");
    inception()
        .arg("train")
        .arg("--data")
        .arg(&source)
        .args(["--epochs", "3", "--batch", "16", "-o"])
        .arg(&base)
        .assert()
        .success();
    // Fine-tuned on 3 and 4 with a frozen backbone, then its top block unfrozen.
    let target = tmp.path().join("target");
    write_folder(
        &target.join("train"),
        &train.with_classes(&[3, 4]).take_per_class(40, 0),
        &["three", "four"],
    );
    write_folder(
        &target.join("val"),
        &test.with_classes(&[3, 4]).take_per_class(30, 0),
        &["three", "four"],
    );
    let tuned = tmp.path().join("tuned");
    let out = inception()
        .arg("finetune")
        .arg("--weights")
        .arg(base.join("model.safetensors"))
        .arg("--data")
        .arg(&target)
        .args(["--epochs", "6", "--batch", "10", "--lr", "0.3"])
        .args([
            "--unfreeze-after",
            "inception4a",
            "--unfreeze-epochs",
            "1",
            "--json",
            "-o",
        ])
        .arg(&tuned)
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        stderr.contains("frozen") && stderr.contains("unfreezing"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["history"].as_array().unwrap().len(), 7);
    // eval on the validation folder: the same accuracy, a confusion matrix, its pictures.
    let ev = tmp.path().join("eval");
    let out = inception()
        .arg("eval")
        .arg("--weights")
        .arg(tuned.join("model.safetensors"))
        .arg("--data")
        .arg(target.join("val"))
        .arg("--json")
        .arg("-o")
        .arg(&ev)
        .assert()
        .success()
        .get_output()
        .clone();
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["count"], 60);
    assert_eq!(e["classes"], serde_json::json!(["four", "three"]));
    let confusion: Vec<Vec<u64>> = serde_json::from_value(e["confusion"].clone()).unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 60);
    let top1 = e["top1"].as_f64().unwrap();
    let reported = report["evaluation"]["top1"].as_f64().unwrap();
    assert!((top1 - reported).abs() < 1e-9, "{top1} vs {reported}");
    assert!(top1 > 0.8, "{top1}");
    for f in ["confusion.svg", "confusion.png", "eval.json"] {
        assert!(ev.join(f).is_file(), "{f}");
    }
    // The fine-tuning run's checkpoint continues with `train --resume`, the layers it had
    // frozen still frozen.
    let (before, _) = inception::train::load_checkpoint(
        &tuned.join("checkpoint.safetensors"),
        &Default::default(),
    )
    .unwrap();
    let out = inception()
        .args(["train", "--resume", "--epochs", "8", "--json", "--data"])
        .arg(&target)
        .arg("-o")
        .arg(&tuned)
        .assert()
        .success()
        .get_output()
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["history"].as_array().unwrap().len(), 8);
    let (after, _) = inception::train::load_checkpoint(
        &tuned.join("checkpoint.safetensors"),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(after.frozen_nodes, before.frozen_nodes);
    let stem = |t: &inception::train::Trainer| {
        inception::weights::state_dict(&t.network)
            .get("conv1.conv.weight")
            .unwrap()
            .data
            .clone()
    };
    assert_eq!(stem(&before), stem(&after), "a frozen layer changed");
}

/// Waits (up to two minutes) until `ready` holds, failing if `child` exits first.
fn wait_for(child: &mut std::process::Child, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before {what}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn checkpoint_epoch(path: &std::path::Path) -> usize {
    let (t, _) = inception::train::load_checkpoint(path, &Default::default())
        .unwrap_or_else(|e| panic!("the checkpoint does not load: {e}"));
    t.epoch
}

#[test]
fn killed_and_interrupted_runs_keep_their_checkpoint_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, _) = ImageSet::digits().unwrap();
    let data = tmp.path().join("data");
    write_folder(
        &data,
        &train.with_classes(&[0, 1]).take_per_class(10, 0),
        &["0", "1"],
    );
    let out = tmp.path().join("run");
    // The full GoogLeNet at 32x32: quick epochs, but a 120 MB checkpoint that takes a while to
    // write — long enough to kill the run in the middle of writing it.
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("inception"));
        cmd.args([
            "train",
            "--model",
            "googlenet",
            "--input-size",
            "32",
            "--batch",
            "4",
        ])
        .arg("--data")
        .arg(&data)
        .arg("-o")
        .arg(&out)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        cmd
    };
    let checkpoint = out.join("checkpoint.safetensors");

    // 1. SIGKILL while a checkpoint is being replaced: the previous one stays whole.
    let mut child = run(&["--epochs", "60"]).spawn().unwrap();
    let partial = out.join(format!(".checkpoint.safetensors.{}.tmp", child.id()));
    wait_for(&mut child, "a checkpoint is being replaced", || {
        checkpoint.is_file() && partial.is_file()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(partial.is_file(), "the killed write left its temporary");
    let first = checkpoint_epoch(&checkpoint);
    assert!(first >= 1);

    // 2. Resume, then Ctrl-C (SIGINT) once a later epoch is saved: exit code 130, a message
    // that says how to continue, the checkpoint whole.
    let mut child = run(&["--resume", "--epochs", "60"]).spawn().unwrap();
    wait_for(&mut child, "a later checkpoint", || {
        !partial.exists()
            && std::fs::metadata(&checkpoint)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_millis() < 1000))
            && checkpoint_epoch(&checkpoint) > first
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("resuming googlenet from epoch")
            && stderr.contains("removed")
            && stderr.contains("interrupted"),
        "{stderr}"
    );
    // The message says what to type: `--resume FILE` (it said `--resume 1`).
    let hint = format!("--resume {}", checkpoint.display());
    assert!(stderr.contains(&hint), "{stderr}");
    let second = checkpoint_epoch(&checkpoint);
    assert!(second > first, "{second} after {first}");

    // 3. Resume to the end as the message says, from the checkpoint alone: the run's data
    // folder and output folder come from it. The log has one row per epoch of the whole run.
    let total = (second + 1).to_string();
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("inception"))
        .current_dir(tmp.path())
        .args(["train", "--resume"])
        .arg(&checkpoint)
        .args(["--epochs", &total])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(out.join("model.safetensors").is_file());
    let log = std::fs::read_to_string(out.join("log.csv")).unwrap();
    assert_eq!(log.lines().count(), 1 + second + 1, "{log}");
    assert_eq!(checkpoint_epoch(&checkpoint), second + 1);
}
