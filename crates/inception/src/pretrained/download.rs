//! Downloading a registry entry over HTTPS (ureq with rustls) into the cache: the checksum
//! its publisher verifies is checked before the file is renamed into place.

use std::io::{Read, Write};
use std::path::Path;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::{Checksum, DownloadProgress, Pretrained, ProgressFn, offline_hint};
use crate::error::{Error, Result};

pub(super) fn download(entry: &Pretrained, path: &Path, progress: &ProgressFn) -> Result<()> {
    let fail = |why: String| Error::Download {
        weights: entry.name.to_string(),
        reason: format!("{why}; {}", offline_hint(entry, path)),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    // The hub's checksum is on its redirect response, before the CDN.
    let etag = if entry.checksum == Checksum::HubEtag {
        let head: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        let resp = head
            .head(&entry.url)
            .call()
            .map_err(|e| fail(format!("cannot reach {} ({e})", entry.url)))?;
        let tag = resp
            .headers()
            .get("x-linked-etag")
            .or_else(|| resp.headers().get("etag"))
            .and_then(|v| v.to_str().ok())
            .map(|s| {
                s.trim_matches('"')
                    .trim_start_matches("W/")
                    .trim_matches('"')
                    .to_string()
            });
        match tag {
            Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => Some(t),
            _ => {
                return Err(fail(format!(
                    "{} publishes no SHA-256 ETag to verify against",
                    entry.url
                )));
            }
        }
    } else {
        None
    };
    let resp = agent
        .get(&entry.url)
        .call()
        .map_err(|e| fail(format!("cannot download {} ({e})", entry.url)))?;
    let total: Option<u64> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let tmp = path.with_file_name(format!(".{}.{}.part", entry.file_name, std::process::id()));
    let result = (|| -> Result<()> {
        let report = |received: u64, sha256: Option<&str>| {
            progress(&DownloadProgress {
                file: &entry.file_name,
                received,
                total,
                sha256,
            })
        };
        report(0, None);
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut reader = resp.into_body().into_reader();
        let mut sha = Sha256::new();
        let mut md5 = Md5::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut got: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|e| {
                fail(format!(
                    "the download was interrupted after {got} bytes{} ({e})",
                    total.map(|t| format!(" of {t}")).unwrap_or_default()
                ))
            })?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            md5.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
            got += n as u64;
            report(got, None);
        }
        if let Some(t) = total
            && got != t
        {
            return Err(fail(format!(
                "the download was cut short: {got} of {t} bytes"
            )));
        }
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        let sha = hex(&sha.finalize());
        let md5 = hex(&md5.finalize());
        let (ok, want, have) = match &entry.checksum {
            Checksum::Sha256Prefix(p) => (
                sha.starts_with(p.as_str()),
                format!("SHA-256 {p}…"),
                sha.clone(),
            ),
            Checksum::Sha256(h) => (sha == *h, format!("SHA-256 {h}"), sha.clone()),
            Checksum::Md5(h) => (md5 == *h, format!("MD5 {h}"), md5.clone()),
            Checksum::HubEtag => {
                let t = etag.clone().unwrap_or_default();
                (sha == t, format!("SHA-256 {t}"), sha.clone())
            }
            // Nothing to check against: the SHA-256 is in the file's name in the cache
            // listing (`inception pretrained --json` shows the path) for users to compare.
            Checksum::Unpublished => (true, String::new(), sha.clone()),
        };
        if !ok {
            return Err(Error::Download {
                weights: entry.name.to_string(),
                reason: format!(
                    "checksum mismatch for {}: expected {want}, got {have} (corrupt download or \
                     changed upstream file; nothing was kept — retry, or verify the file yourself)",
                    entry.url
                ),
            });
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        report(got, Some(&sha));
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
