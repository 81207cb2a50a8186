//! PyTorch `.pth` / `.pt` checkpoints (the zip format `torch.save` writes since PyTorch 1.6).
//!
//! The archive holds `<name>/data.pkl` (the pickled object, read by the restricted
//! [`unpickle`]), `<name>/byteorder` (`little` or `big`: the writer's byte order) and one raw
//! file per storage under `<name>/data/`. Bare state dicts
//! and the usual wrappers (`{"state_dict": …}`, `{"model": …}`, `{"model_state": …}`) are
//! accepted; non-tensor entries are ignored.

use std::io::{Read, Seek};
use std::path::Path;

use super::pickle::{Object, TensorRef, unpickle};
use super::{Format, StateDict, WeightTensor, decode, read_zip_entry};

/// The largest `data.pkl` read: the pickle holds names, shapes and storage keys, never tensor
/// data, so even a checkpoint with optimizer state is a few MB.
pub const MAX_PICKLE_BYTES: u64 = 256 << 20;
use crate::error::{Error, FormatError, Result};

/// Reads a PyTorch zip checkpoint.
pub fn read(path: &Path) -> Result<StateDict> {
    crate::files::check_regular(path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_from(file).map_err(|e| Error::format(format!("{e}")).in_file(path))
}

/// Reads a PyTorch zip checkpoint from any seekable reader.
pub fn read_from<R: Read + Seek>(reader: R) -> std::result::Result<StateDict, FormatError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| {
        format!(
            "not a PyTorch zip checkpoint ({e}); files from PyTorch < 1.6 must be re-saved with \
             a newer torch.save"
        )
    })?;
    let pkl_name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.to_string()))
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .ok_or("the archive has no data.pkl, so it is not a torch.save checkpoint")?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let pickle = read_zip_entry(&mut zip, &pkl_name, None, MAX_PICKLE_BYTES)?;
    // torch.save records the writer's byte order; storages are raw bytes in that order.
    // Files from before the record existed are little-endian; a record that is there must be
    // readable and say which.
    let order_name = format!("{prefix}byteorder");
    let big_endian = if zip.index_for_name(&order_name).is_some() {
        let b = read_zip_entry(&mut zip, &order_name, None, 16)?;
        match String::from_utf8_lossy(&b).trim() {
            "little" => false,
            "big" => true,
            other => return Err(format!("unknown byteorder record `{other}`").into()),
        }
    } else {
        false
    };
    let object = unpickle(&pickle)?;
    let entries = state_dict_entries(object)?;
    let mut sd = StateDict::new(Format::PyTorch);
    for (name, t) in entries {
        let storage_name = format!("{prefix}data/{}", t.key);
        let bytes = t
            .storage_numel
            .checked_mul(t.dtype.size())
            .ok_or_else(|| format!("tensor `{name}` claims an impossible storage size"))?;
        let mut raw = read_zip_entry(&mut zip, &storage_name, Some(bytes as u64), u64::MAX)?;
        if big_endian {
            let size = t.dtype.size();
            raw.chunks_exact_mut(size).for_each(|c| c.reverse());
        }
        let data = gather(&raw, &t).map_err(|e| format!("tensor `{name}`: {e}"))?;
        sd.insert(name, WeightTensor::new(t.shape.clone(), data, t.dtype));
    }
    Ok(sd)
}

/// Finds the `name → tensor` map, looking through the common wrappers.
fn state_dict_entries(
    object: Object,
) -> std::result::Result<Vec<(String, TensorRef)>, FormatError> {
    let Object::Dict(items) = object else {
        return Err(
            "the checkpoint is not a dict of tensors (a pickled nn.Module? save \
                    model.state_dict() instead)"
                .into(),
        );
    };
    let has_tensors = items.iter().any(|(_, v)| matches!(v, Object::Tensor(_)));
    if !has_tensors {
        for wrapper in [
            "state_dict",
            "model",
            "model_state",
            "model_state_dict",
            "net",
        ] {
            if let Some((_, inner)) = items
                .iter()
                .find(|(k, _)| matches!(k, Object::Str(s) if s == wrapper))
            {
                return state_dict_entries(inner.clone());
            }
        }
        return Err(
            "the checkpoint holds no tensors (and no `state_dict` or `model` entry)".into(),
        );
    }
    Ok(items
        .into_iter()
        .filter_map(|(k, v)| match (k, v) {
            (Object::Str(k), Object::Tensor(t)) => Some((k, t)),
            _ => None,
        })
        .collect())
}

/// Copies a strided view out of a storage, converting to f32.
fn gather(raw: &[u8], t: &TensorRef) -> std::result::Result<Vec<f32>, FormatError> {
    let numel = t
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("its size overflows")?;
    if numel == 0 {
        return Ok(Vec::new());
    }
    if numel > t.storage_numel {
        return Err(format!(
            "it views {numel} elements of a storage of {} (broadcast views are not supported)",
            t.storage_numel
        )
        .into());
    }
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&d, &s)| {
            acc.checked_add((d - 1).checked_mul(s)?)
        })
        .ok_or("its view overflows")?;
    if last >= t.storage_numel {
        return Err(format!(
            "its view reaches element {last} of a storage of {}",
            t.storage_numel
        )
        .into());
    }
    let all = decode(&raw[..t.storage_numel * t.dtype.size()], t.dtype)?;
    let contiguous = {
        let mut expect = 1;
        let mut ok = true;
        for (&d, &s) in t.shape.iter().zip(&t.stride).rev() {
            if d != 1 && s != expect {
                ok = false;
            }
            expect *= d;
        }
        ok
    };
    if contiguous {
        return Ok(all[t.offset..t.offset + numel].to_vec());
    }
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.push(all[at]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
}
