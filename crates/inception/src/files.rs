//! Files: atomic writes and the array formats scripts exchange with us (`.npy`, `.safetensors`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, FormatError, NameKind, Result};
use crate::weights::{self, DType, Format, StateDict, WeightTensor};

/// Reads a whole regular file of at most `max` bytes. A device (`/dev/zero`), a pipe or a folder
/// is refused before anything is read, so no stream can make a reader allocate without end.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>> {
    let meta = check_regular(path)?;
    if meta.len() > max {
        return Err(Error::io_reason(
            path,
            format!(
                "{} bytes, over the limit of {max} for this kind of file",
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Checks that `path` is a regular file (following links) and returns its metadata.
pub fn check_regular(path: &Path) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::io_reason(
            path,
            "not a regular file (a device, pipe or folder); give a file",
        ));
    }
    Ok(meta)
}

/// Refuses to write over anything but a regular file: replacing a device node, a folder or a
/// symbolic link with a new file would report success and leave the target untouched.
pub fn check_output_target(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.file_type().is_symlink() => {
            let target = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".into());
            Err(Error::io_reason(
                path,
                format!(
                    "a symbolic link (to {target}); outputs replace files whole, so write to \
                 the target's own path instead"
                ),
            ))
        }
        Ok(m) if m.is_dir() => Err(Error::io_reason(
            path,
            "a folder; give a file name for the output",
        )),
        Ok(m) if !m.is_file() => Err(Error::io_reason(
            path,
            "not a regular file (a device or pipe); refusing to replace it",
        )),
        Ok(_) => Ok(()),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so an
/// interrupted run never leaves a half-written file behind (the previous file, if any, stays).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::io_reason(
            path,
            format!(
                "directory {} does not exist; create it first",
                dir.display()
            ),
        ));
    }
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::io_reason(path, "not a file name"))?;
    check_output_target(path)?;
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io_reason(path, format!("cannot write: {e}")));
    }
    Ok(())
}

/// The largest `.npy` input read (4 GiB).
pub const MAX_ARRAY_FILE_BYTES: u64 = 4 << 30;

/// The largest weights file read whole (16 GiB: ten times the largest Inception checkpoint in f64).
pub const MAX_WEIGHTS_FILE_BYTES: u64 = 16 << 30;

/// An n-dimensional f32 array.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Reads one array from a `.npy` file, or tensor `key` of a `.safetensors` file (the only tensor
/// when `key` is `None` and the file holds one).
pub fn read_array(path: &Path, key: Option<&str>) -> Result<Array> {
    let ext = extension(path);
    match ext.as_str() {
        "npy" => {
            if key.is_some() {
                return Err(Error::config_of(
                    path.display(),
                    "tensor name",
                    key.unwrap_or_default(),
                    "a .npy file holds one array; drop the `:KEY`",
                ));
            }
            let bytes = read_regular(path, MAX_ARRAY_FILE_BYTES)?;
            parse_npy(&bytes).map_err(|e| Error::format(format!("{e}")).in_file(path))
        }
        "safetensors" => {
            let sd = weights::safetensors::read(path)?;
            let names: Vec<&str> = sd.iter().map(|(n, _)| n).collect();
            let name = match key {
                Some(k) => k,
                None if names.len() == 1 => names[0],
                None => {
                    return Err(Error::unknown_of_many(
                        NameKind::Tensor,
                        "",
                        Some(path.display().to_string()),
                        names,
                        8,
                    ));
                }
            };
            let t = sd.get(name).ok_or_else(|| {
                Error::unknown_of_many(
                    NameKind::Tensor,
                    name,
                    Some(path.display().to_string()),
                    &names,
                    8,
                )
            })?;
            Ok(Array {
                shape: t.shape.clone(),
                data: t.data.clone(),
            })
        }
        _ => Err(unknown_array_format(path)),
    }
}

fn unknown_array_format(path: &Path) -> Error {
    let ext = extension(path);
    Error::config_of(
        path.display(),
        "file extension",
        if ext.is_empty() {
            "(none)".to_string()
        } else {
            format!(".{ext}")
        },
        "unknown array format; use .npy or .safetensors",
    )
}

/// Parses a `.npy` file already in memory (float32 or float64, C order).
pub fn parse_npy(bytes: &[u8]) -> std::result::Result<Array, FormatError> {
    check_npy_header(bytes)?;
    let npy = npyz::NpyFile::new(bytes).map_err(|e| format!("not a valid .npy file: {e}"))?;
    if npy.order() == npyz::Order::Fortran {
        return Err(
            "Fortran-ordered arrays are not supported; save with np.ascontiguousarray".into(),
        );
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("its shape overflows")?;
    let type_str = npy.dtype().descr();
    let size = match type_str.as_str() {
        "'<f4'" => 4,
        "'<f8'" => 8,
        other => return Err(format!("dtype {other} is not supported; save as float32").into()),
    };
    if numel.saturating_mul(size) > bytes.len() {
        return Err(format!(
            "its header claims {numel} elements but the file is shorter (truncated?)"
        )
        .into());
    }
    let data = if size == 4 {
        npy.into_vec::<f32>().map_err(|e| e.to_string())?
    } else {
        npy.into_vec::<f64>()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|v| v as f32)
            .collect()
    };
    Ok(Array { shape, data })
}

/// Rejects headers that are not the plain dict NumPy writes for a numeric array before they
/// reach the Python-literal parser (deeply nested literals make it slow).
fn check_npy_header(bytes: &[u8]) -> std::result::Result<(), FormatError> {
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        return Err("not a .npy file (wrong magic)".into());
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}").into()),
    };
    let header = bytes
        .get(start..start.saturating_add(len))
        .ok_or("the .npy header is truncated")?;
    let mut depth = 0usize;
    for &b in header {
        match b {
            b'{' | b'(' | b'[' => {
                depth += 1;
                if depth > 2 {
                    return Err("the .npy header is not a plain numeric array's".into());
                }
            }
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Writes named arrays: a `.safetensors` file holds them all; a `.npy` file holds exactly one.
pub fn write_arrays(path: &Path, arrays: &[(String, Array)]) -> Result<()> {
    write_arrays_with_metadata(path, arrays, &BTreeMap::new())
}

/// [`write_arrays`], with string metadata in a `.safetensors` file's header (a `.npy` file has
/// nowhere to put it).
pub fn write_arrays_with_metadata(
    path: &Path,
    arrays: &[(String, Array)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    match extension(path).as_str() {
        "npy" => {
            let [(_, a)] = arrays else {
                return Err(Error::config_of(
                    path.display(),
                    "arrays",
                    arrays.len(),
                    "a .npy file holds one array; write .safetensors",
                ));
            };
            let mut bytes = Vec::new();
            {
                use npyz::WriterBuilder;
                let shape: Vec<u64> = a.shape.iter().map(|&d| d as u64).collect();
                let mut w = npyz::WriteOptions::new()
                    .default_dtype()
                    .shape(&shape)
                    .writer(&mut bytes)
                    .begin_nd()
                    .map_err(|e| Error::format(e.to_string()))?;
                w.extend(a.data.iter().copied())
                    .map_err(|e| Error::format(e.to_string()))?;
                w.finish().map_err(|e| Error::format(e.to_string()))?;
            }
            write_atomic(path, &bytes)
        }
        "safetensors" => {
            let mut sd = StateDict::new(Format::Safetensors);
            sd.metadata = metadata.clone();
            for (name, a) in arrays {
                sd.insert(
                    name.clone(),
                    WeightTensor::new(a.shape.clone(), a.data.clone(), DType::F32),
                );
            }
            weights::safetensors::write(path, &sd)
        }
        _ => Err(unknown_array_format(path)),
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}
