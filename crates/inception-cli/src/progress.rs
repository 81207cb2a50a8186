//! What the command line draws while the library works: download bars fed by the library's
//! progress callback.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use inception::pretrained::{Cache, DownloadProgress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The download cache, drawing a progress bar on stderr (when it is a terminal) while a
/// checkpoint downloads, and saying what arrived with its SHA-256.
pub fn download_cache() -> Result<Cache> {
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    let report = move |p: &DownloadProgress| {
        let Ok(mut slot) = bar.lock() else {
            return;
        };
        let b = slot.get_or_insert_with(|| {
            let b = ProgressBar::with_draw_target(p.total, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_message(format!("downloading {}", p.file));
            b
        });
        b.set_position(p.received);
        if let Some(sha) = p.sha256 {
            b.finish_and_clear();
            *slot = None;
            eprintln!(
                "downloaded {} ({} bytes, SHA-256 {sha})",
                p.file, p.received
            );
        }
    };
    Ok(Cache::new()?.with_progress(Arc::new(report)))
}
