//! Run folders, as YOLO and Lightning users know them: each new run gets its own numbered folder
//! (`runs/train`, `runs/train2`, …), a finished run is never overwritten by accident, and
//! what a killed run left half-written is cleaned up.

use std::path::{Path, PathBuf};

use super::dataset::ImageSet;
use super::trainer::{EpochStats, Event, Trainer};
use super::{report, save_checkpoint};
use crate::error::{Error, Result};

/// Where a run writes as it goes: its folder, the curves' title and the class names the
/// checkpoint records.
#[derive(Clone, Copy, Debug)]
pub struct RunFolder<'a> {
    /// The run's folder (created if needed).
    pub dir: &'a Path,
    /// The title of `curves.svg`.
    pub title: &'a str,
    /// The class names, in label order.
    pub classes: &'a [String],
}

impl RunFolder<'_> {
    /// The checkpoint's path.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// Writes `log.csv`, `curves.svg` (and `curves.png` with the `png` feature) for `history`.
    pub fn write_reports(&self, history: &[EpochStats]) -> Result<()> {
        report::write_csv(&self.dir.join("log.csv"), history)?;
        let svg = report::curves_svg(self.title, history);
        crate::files::write_atomic(&self.dir.join("curves.svg"), svg.as_bytes())?;
        #[cfg(feature = "png")]
        {
            let png = crate::diagram::svg_to_png(&svg, 1.0)
                .map_err(|e| e.in_file(&self.dir.join("curves.png")))?;
            crate::files::write_atomic(&self.dir.join("curves.png"), &png)?;
        }
        Ok(())
    }
}

impl Trainer {
    /// Trains for the remaining epochs as [`Trainer::fit`] does, and after every epoch rewrites
    /// the run's reports and its checkpoint in `folder` (atomically), before `on` sees the
    /// epoch. `on` returning `false` stops at the next step, the last epoch's checkpoint kept.
    /// Returns whether every epoch ran. Stale temporaries of killed runs in the folder are
    /// removed first (see [`remove_stale_temporaries`]; `on` is not told).
    pub fn fit_into(
        &mut self,
        train: &ImageSet,
        val: &ImageSet,
        folder: &RunFolder,
        on: &mut dyn FnMut(Event) -> bool,
    ) -> Result<bool> {
        std::fs::create_dir_all(folder.dir).map_err(|e| Error::io(folder.dir, e))?;
        while self.epoch < self.config.epochs {
            let Some(stats) = self.train_epoch(train, val, on)? else {
                return Ok(false);
            };
            folder.write_reports(&self.history)?;
            save_checkpoint(&folder.checkpoint(), self, folder.classes)?;
            if !on(Event::Epoch(&stats)) {
                return Ok(self.epoch >= self.config.epochs);
            }
        }
        Ok(true)
    }
}

/// The file a finished run leaves: its model.
pub const MODEL_FILE: &str = "model.safetensors";

/// The file a run rewrites after every epoch: its checkpoint.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// The `n`-th run folder of `name` under `parent`: `parent/name`, then `parent/name2`, …
fn numbered(parent: &Path, name: &str, n: usize) -> PathBuf {
    if n <= 1 {
        parent.join(name)
    } else {
        parent.join(format!("{name}{n}"))
    }
}

/// Whether `dir` holds a run: its model or its checkpoint.
pub fn holds_run(dir: &Path) -> bool {
    dir.join(MODEL_FILE).exists() || dir.join(CHECKPOINT_FILE).exists()
}

/// The folder for a new run: the first of `parent/name`, `parent/name2`, `parent/name3`, …
/// that does not exist or holds no run.
pub fn next_run_dir(parent: &Path, name: &str) -> PathBuf {
    (1..)
        .map(|n| numbered(parent, name, n))
        .find(|d| !d.exists() || (d.is_dir() && !holds_run(d)))
        .unwrap_or_else(|| parent.join(name))
}

/// The most recent run folder of `name` under `parent` that holds a checkpoint (the highest
/// number), for `--resume` without a path.
pub fn latest_run_dir(parent: &Path, name: &str) -> Option<PathBuf> {
    let mut latest = None;
    let mut missing = 0;
    for n in 1.. {
        let d = numbered(parent, name, n);
        if d.join(CHECKPOINT_FILE).is_file() {
            latest = Some(d);
            missing = 0;
        } else {
            // Folders may have been deleted in between: look a little past a gap.
            missing += 1;
            if missing > 16 {
                break;
            }
        }
    }
    latest
}

/// Refuses to start a new run in `dir` when it already holds one (its model or checkpoint
/// would be replaced), unless `overwrite`.
pub fn check_new_run_dir(dir: &Path, overwrite: bool) -> Result<()> {
    if overwrite || !holds_run(dir) {
        return Ok(());
    }
    let what = if dir.join(MODEL_FILE).exists() {
        "a finished run (model.safetensors)"
    } else {
        "an unfinished run (checkpoint.safetensors)"
    };
    Err(Error::config_of(
        dir.display(),
        "output folder",
        "",
        format!(
            "holds {what}; continue it by resuming, choose another output folder, or allow \
             replacing it"
        ),
    ))
}

/// Deletes what killed runs left in `dir`: the half-written temporaries of
/// [`crate::files::write_atomic`] (`.NAME.PID.tmp`) whose process is gone. A process's
/// liveness is only known on Linux (`/proc`); elsewhere nothing is deleted, so a running run's
/// files are never touched. Returns the files removed.
pub fn remove_stale_temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    if !cfg!(target_os = "linux") || !Path::new("/proc/self").exists() {
        return removed;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_runs_are_numbered_and_resume_finds_the_latest() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path();
        assert_eq!(next_run_dir(runs, "train"), runs.join("train"));
        assert_eq!(latest_run_dir(runs, "train"), None);
        std::fs::create_dir_all(runs.join("train")).unwrap();
        // An empty folder is free.
        assert_eq!(next_run_dir(runs, "train"), runs.join("train"));
        std::fs::write(runs.join("train").join(MODEL_FILE), b"x").unwrap();
        assert_eq!(next_run_dir(runs, "train"), runs.join("train2"));
        assert!(check_new_run_dir(&runs.join("train"), false).is_err());
        assert!(check_new_run_dir(&runs.join("train"), true).is_ok());
        assert!(check_new_run_dir(&runs.join("train2"), false).is_ok());
        std::fs::create_dir_all(runs.join("train2")).unwrap();
        std::fs::write(runs.join("train2").join(CHECKPOINT_FILE), b"x").unwrap();
        assert_eq!(next_run_dir(runs, "train"), runs.join("train3"));
        assert_eq!(latest_run_dir(runs, "train"), Some(runs.join("train2")));
    }
}
