//! TensorFlow's checkpoints, read without TensorFlow: tensor bundles (`PREFIX.index` +
//! `PREFIX.data-NNNNN-of-NNNNN`), the legacy V1 single-file format of the 2016 TF-slim tarballs,
//! either inside a `.tar.gz`, a directory with a `checkpoint` file, or a prefix. The tensors keep
//! TensorFlow's names (`InceptionV3/Mixed_6e/Branch_1/Conv2d_0b_1x7/weights`) and layouts; the
//! TF-slim layouts load them through [`super::tf_names`]. A checkpoint is data: every offset,
//! length, CRC and shape is checked against the file.
//!
//! ```no_run
//! use inception::weights::tf;
//! // A prefix, its .index file, a directory with a `checkpoint` file, or a .tar.gz of any.
//! let sd = tf::read("inception_v4_2016_09_09.tar.gz".as_ref()).unwrap();
//! assert!(sd.get("InceptionV4/Conv2d_1a_3x3/weights").is_some());
//! ```

mod bundle;
mod ordered_code;
mod proto;
mod saved_model;
mod table;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, FormatError, Result};
use crate::files::{MAX_WEIGHTS_FILE_BYTES, read_regular};
use crate::weights::StateDict;

pub use bundle::{read_bundle, read_saved_model_bundle, read_v1};
pub use saved_model::{SavedVariableInfo, saved_variables};
pub use table::entries as table_entries;

/// Largest `.tar.gz` member read (the checkpoint inside; 16 GiB).
const MAX_MEMBER: u64 = MAX_WEIGHTS_FILE_BYTES;

/// Whether `bytes` end with a TensorFlow table's magic number (an index, or a V1 checkpoint).
pub fn is_table(bytes: &[u8]) -> bool {
    bytes.len() >= 48 && bytes[bytes.len() - 8..] == table::MAGIC.to_le_bytes()
}

/// Whether `path` names a TensorFlow checkpoint: a prefix whose `.index` exists, an `.index` or
/// `.data-*` file, a directory holding a checkpoint, a V1 file, or a `.tar.gz`.
pub fn is_checkpoint(path: &Path) -> bool {
    resolve(path).is_ok_and(|r| r.is_some())
}

/// Where a checkpoint's files are.
enum Found {
    /// A V2 bundle: the index and its data shards, in order.
    Bundle(PathBuf, Vec<PathBuf>),
    /// A V1 file.
    V1(PathBuf),
    /// A gzipped tar of either.
    Archive(PathBuf),
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn is_gzip(path: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == [0x1f, 0x8b]
}

/// The data shards of the bundle at `prefix`: `PREFIX.data-00000-of-0000N`, …
fn shards(prefix: &Path) -> Vec<PathBuf> {
    let Some(dir) = prefix.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    }) else {
        return Vec::new();
    };
    let Some(stem) = prefix.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&format!("{stem}.data-")))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The `model_checkpoint_path` of a `checkpoint` text file, relative to its directory.
fn latest(checkpoint_file: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(checkpoint_file).ok()?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("model_checkpoint_path:"))?;
    let value = line.split_once(':')?.1.trim().trim_matches('"');
    let p = Path::new(value);
    Some(if p.is_absolute() {
        p.to_path_buf()
    } else {
        checkpoint_file.parent().unwrap_or(Path::new(".")).join(p)
    })
}

/// Works out which checkpoint `path` names, if it names one.
fn resolve(path: &Path) -> Result<Option<Found>> {
    if path.is_dir() {
        if let Some(prefix) = latest(&path.join("checkpoint")) {
            return resolve(&prefix);
        }
        // A SavedModel's `variables/variables`, or the only index in the folder.
        let saved = path.join("variables").join("variables");
        if with_suffix(&saved, ".index").is_file() {
            return resolve(&saved);
        }
        let indexes: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "index"))
            .collect();
        return match indexes.as_slice() {
            [one] => resolve(one),
            _ => Ok(None),
        };
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name == "checkpoint" && path.is_file() {
        return match latest(path) {
            Some(p) => resolve(&p),
            None => Ok(None),
        };
    }
    if let Some(prefix) = name.strip_suffix(".index") {
        return Ok(Some(Found::Bundle(
            path.to_path_buf(),
            shards(&path.with_file_name(prefix)),
        )));
    }
    if let Some((prefix, _)) = name.split_once(".data-") {
        return resolve(&path.with_file_name(format!("{prefix}.index")));
    }
    let index = with_suffix(path, ".index");
    if index.is_file() {
        return Ok(Some(Found::Bundle(index, shards(path))));
    }
    if path.is_file() {
        if is_gzip(path) {
            return Ok(Some(Found::Archive(path.to_path_buf())));
        }
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut tail = [0u8; 8];
        let ok = len >= 48
            && std::fs::File::open(path)
                .and_then(|mut f| {
                    use std::io::Seek;
                    f.seek(std::io::SeekFrom::End(-8))?;
                    f.read_exact(&mut tail)
                })
                .is_ok();
        if ok && tail == table::MAGIC.to_le_bytes() {
            return Ok(Some(Found::V1(path.to_path_buf())));
        }
    }
    Ok(None)
}

/// Reads the TensorFlow checkpoint `path` names (see [`is_checkpoint`]) into a state dict under
/// TensorFlow's names and layouts.
pub fn read(path: &Path) -> Result<StateDict> {
    let found = resolve(path)?.ok_or_else(|| {
        Error::format(
            "not a TensorFlow checkpoint (no PREFIX.index, V1 checkpoint, checkpoint file or \
             .tar.gz of one)",
        )
        .in_file(path)
    })?;
    match found {
        Found::Bundle(index, shard_paths) => {
            let idx = read_regular(&index, MAX_WEIGHTS_FILE_BYTES)?;
            let data = shard_paths
                .iter()
                .map(|p| read_regular(p, MAX_WEIGHTS_FILE_BYTES))
                .collect::<Result<Vec<_>>>()?;
            // A SavedModel's `variables/variables`: its variables' names are in saved_model.pb.
            let saved_model = index
                .parent()
                .filter(|d| d.file_name().is_some_and(|n| n == "variables"))
                .and_then(Path::parent)
                .map(|d| d.join("saved_model.pb"))
                .filter(|p| p.is_file());
            match saved_model {
                Some(pb) => {
                    let bytes = read_regular(&pb, MAX_WEIGHTS_FILE_BYTES)?;
                    read_saved_model_bundle(&idx, &data, &bytes)
                        .map_err(|e| Error::Format(e).in_file(&pb))
                }
                None => read_bundle(&idx, &data).map_err(|e| Error::Format(e).in_file(&index)),
            }
        }
        Found::V1(file) => {
            let bytes = read_regular(&file, MAX_WEIGHTS_FILE_BYTES)?;
            read_v1(&bytes).map_err(|e| Error::Format(e).in_file(&file))
        }
        Found::Archive(file) => read_archive(&file).map_err(|e| e.in_file(&file)),
    }
}

/// A checkpoint inside a `.tar.gz` (TF-slim's tarballs, TF-Hub's compressed downloads), read
/// in place: the first bundle index (with its shards) or V1 checkpoint in it.
fn read_archive(path: &Path) -> Result<StateDict> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let entries = tar
        .entries()
        .map_err(|e| Error::format(format!("not a readable .tar.gz: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::format(format!("a damaged .tar.gz: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = entry.header().size().unwrap_or(0);
        if size > MAX_MEMBER {
            return Err(Error::Format(FormatError::TooLarge {
                what: format!("archive member `{name}`"),
                got: size,
                limit: MAX_MEMBER,
            }));
        }
        let mut bytes = Vec::new();
        entry
            .take(MAX_MEMBER)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::format(format!("archive member `{name}`: {e}")))?;
        members.push((name, bytes));
    }
    if let Some((index_name, index)) = members.iter().find(|(n, _)| n.ends_with(".index")) {
        let prefix = index_name.trim_end_matches(".index");
        let mut shard: Vec<&(String, Vec<u8>)> = members
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("{prefix}.data-")))
            .collect();
        shard.sort_by(|a, b| a.0.cmp(&b.0));
        let data: Vec<Vec<u8>> = shard.into_iter().map(|(_, b)| b.clone()).collect();
        // TF-Hub's compressed downloads are SavedModel folders: names from saved_model.pb.
        if let Some((pb_name, pb)) = members
            .iter()
            .find(|(n, _)| n.trim_start_matches("./") == "saved_model.pb")
        {
            return read_saved_model_bundle(index, &data, pb)
                .map_err(|e| Error::Format(e.at(format!("member `{pb_name}`"))));
        }
        return read_bundle(index, &data)
            .map_err(|e| Error::Format(e.at(format!("member `{index_name}`"))));
    }
    if let Some((name, bytes)) = members.iter().find(|(_, b)| is_table(b)) {
        return read_v1(bytes).map_err(|e| Error::Format(e.at(format!("member `{name}`"))));
    }
    Err(Error::format(
        "the archive holds no TensorFlow checkpoint (no .index file or V1 checkpoint)",
    ))
}
