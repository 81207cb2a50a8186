//! safetensors files (Hugging Face / timm), read and written through the `safetensors` crate,
//! which validates the header against the file's size before anything is allocated.

use std::collections::HashMap;
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{DType, Format, StateDict, WeightTensor, decode};
use crate::error::{Error, FormatError, Result};
use crate::files::write_atomic;

/// The byte tensor of a training checkpoint that holds the optimizer state.
pub(crate) const OPTIMIZER_TENSOR: &str = "optimizer";
/// The prefix of a training checkpoint's moving-average tensors.
pub(crate) const EMA_PREFIX: &str = "ema.";
/// The metadata key that marks a training checkpoint (its parameters' identities).
pub(crate) const PARAM_IDS_KEY: &str = "inception.param_ids";

/// Reads every tensor of a safetensors file, in file order, converted to f32.
///
/// A training checkpoint (`inception train` writes one after every epoch) reads as the model
/// that run saves: its moving average of the weights where it keeps one, else its weights;
/// the optimizer state is left out.
pub fn read(path: &Path) -> Result<StateDict> {
    let bytes = crate::files::read_regular(path, crate::files::MAX_WEIGHTS_FILE_BYTES)?;
    let sd = read_bytes(&bytes).map_err(|e| Error::format(format!("{e}")).in_file(path))?;
    Ok(model_view(sd))
}

/// The model weights of a training checkpoint (see [`read`]); other files are returned as
/// they are.
fn model_view(sd: StateDict) -> StateDict {
    if !sd.metadata.contains_key(PARAM_IDS_KEY) {
        return sd;
    }
    let has_ema = sd.iter().any(|(n, _)| n.starts_with(EMA_PREFIX));
    let mut out = StateDict::new(sd.format);
    out.metadata = sd.metadata.clone();
    for (name, t) in sd.iter() {
        let kept = match name.strip_prefix(EMA_PREFIX) {
            Some(n) => has_ema.then_some(n),
            None => (!has_ema).then_some(name),
        };
        if let Some(n) = kept {
            out.insert(n.to_string(), t.clone());
        }
    }
    out
}

/// Reads a safetensors file already in memory.
pub fn read_bytes(bytes: &[u8]) -> std::result::Result<StateDict, FormatError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let mut sd = StateDict::new(Format::Safetensors);
    if let Some(m) = meta.metadata() {
        sd.metadata = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    for name in meta.offset_keys() {
        let view = st
            .tensor(&name)
            .map_err(|e| format!("tensor `{name}`: {e}"))?;
        // A checkpoint's optimizer record is bytes, not a tensor: read by `read_blob`.
        if name == OPTIMIZER_TENSOR && view.dtype() == Dtype::U8 {
            continue;
        }
        let dtype = dtype(view.dtype()).map_err(|e| format!("tensor `{name}`: {e}"))?;
        let data = decode(view.data(), dtype).map_err(|e| format!("tensor `{name}`: {e}"))?;
        sd.insert(name, WeightTensor::new(view.shape().to_vec(), data, dtype));
    }
    Ok(sd)
}

fn dtype(d: Dtype) -> std::result::Result<DType, FormatError> {
    Ok(match d {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        other => return Err(format!("dtype {other:?} is not supported").into()),
    })
}

/// Encodes a state dict as safetensors bytes: floats as f32, integer tensors (such as
/// `num_batches_tracked`) as i64, with `sd.metadata` as the `__metadata__` header.
pub fn to_bytes(sd: &StateDict) -> Result<Vec<u8>> {
    to_bytes_with_blobs(sd, &[])
}

/// [`to_bytes`] plus raw byte strings stored as 1-D `U8` tensors (a training checkpoint's
/// optimizer state), so that everything lives in one file written in one atomic rename.
pub fn to_bytes_with_blobs(sd: &StateDict, blobs: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = sd
        .iter()
        .map(|(name, t)| {
            let (dt, bytes) = match t.dtype {
                DType::I64 | DType::I32 | DType::I16 | DType::I8 | DType::U8 | DType::Bool => (
                    Dtype::I64,
                    t.data
                        .iter()
                        .flat_map(|&v| (v as i64).to_le_bytes())
                        .collect(),
                ),
                _ => (
                    Dtype::F32,
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
            };
            (name.to_string(), dt, t.shape.clone(), bytes)
        })
        .collect();
    encoded.extend(
        blobs
            .iter()
            .map(|(n, b)| (n.to_string(), Dtype::U8, vec![b.len()], b.to_vec())),
    );
    let views = encoded
        .iter()
        .map(|(n, dt, shape, bytes)| {
            TensorView::new(*dt, shape.clone(), bytes)
                .map(|v| (n.as_str(), v))
                .map_err(|e| Error::format(format!("tensor `{n}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata: Option<HashMap<String, String>> = (!sd.metadata.is_empty()).then(|| {
        sd.metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    ::safetensors::serialize(views, metadata)
        .map_err(|e| Error::format(format!("cannot encode safetensors: {e}")))
}

/// The raw bytes of a `U8` tensor written by [`to_bytes_with_blobs`].
pub fn read_blob(bytes: &[u8], name: &str) -> std::result::Result<Vec<u8>, FormatError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let view = st
        .tensor(name)
        .map_err(|e| format!("tensor `{name}`: {e}"))?;
    if view.dtype() != Dtype::U8 {
        return Err(format!("tensor `{name}` is not a byte string").into());
    }
    Ok(view.data().to_vec())
}

/// Writes a state dict to `path` atomically (see [`to_bytes`]).
pub fn write(path: &Path, sd: &StateDict) -> Result<()> {
    write_atomic(path, &to_bytes(sd)?)
}
