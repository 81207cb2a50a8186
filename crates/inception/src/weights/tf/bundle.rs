//! TensorFlow's checkpoint formats: the tensor bundle (`PREFIX.index` + `PREFIX.data-*`,
//! TensorFlow ≥ 1.0's `SaverDef.V2`) and the legacy single-file V1 format of the 2016 TF-slim
//! tarballs (`SavedTensorSlices` values). Partitioned variables are reassembled from their slices.
//! Non-numeric tensors (strings) are checked and skipped.

use prost::Message;

use super::ordered_code::slice_key;
use super::proto::{
    BundleEntryProto, BundleHeaderProto, SavedObjectGraph, SavedTensorSlices, TensorProto,
    TensorShapeProto, TensorSliceProto, TrackableObjectGraph,
};
use super::table;
use crate::error::FormatError;
use crate::weights::{DType, StateDict, WeightTensor};

/// Largest tensor assembled (2^31 values: 8 GiB of f32).
const MAX_VALUES: usize = 1 << 31;

/// TensorFlow's `DataType` → ours, with the element size in bytes; `None` for types that are not
/// numbers we keep (strings, resources, variants).
fn dtype(t: i32) -> Option<(DType, usize)> {
    Some(match t {
        1 => (DType::F32, 4),
        2 => (DType::F64, 8),
        3 => (DType::I32, 4),
        9 => (DType::I64, 8),
        14 => (DType::BF16, 2),
        19 => (DType::F16, 2),
        _ => return None,
    })
}

/// Dimensions of a shape proto, checked: no negative size, no overflowing product.
fn dims(shape: Option<&TensorShapeProto>) -> Result<Vec<usize>, FormatError> {
    let Some(shape) = shape else {
        return Ok(Vec::new());
    };
    let d: Vec<usize> = shape
        .dim
        .iter()
        .map(|d| usize::try_from(d.size).map_err(|_| FormatError::from("a negative dimension")))
        .collect::<Result<_, _>>()?;
    let n = d
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or("a shape whose size overflows")?;
    if n > MAX_VALUES {
        return Err(FormatError::TooLarge {
            what: "a tensor's number of values".into(),
            got: n as u64,
            limit: MAX_VALUES as u64,
        });
    }
    Ok(d)
}

/// Decodes `raw` (little- or big-endian elements of `dt`) to f32.
fn decode(raw: &[u8], dt: DType, size: usize, big: bool) -> Result<Vec<f32>, FormatError> {
    if !raw.len().is_multiple_of(size) {
        return Err("a tensor's bytes are not a whole number of elements".into());
    }
    let mut bytes = raw.to_vec();
    if big {
        for c in bytes.chunks_exact_mut(size) {
            c.reverse();
        }
    }
    Ok(match dt {
        DType::I32 => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        DType::I64 => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()) as f32)
            .collect(),
        _ => crate::weights::decode(&bytes, dt)?,
    })
}

/// `(offset, length)` per dimension of `slice` within `full`, checked.
fn extents(slice: &TensorSliceProto, full: &[usize]) -> Result<Vec<(usize, usize)>, FormatError> {
    if slice.extent.len() != full.len() {
        return Err("a slice's rank differs from its variable's".into());
    }
    slice
        .extent
        .iter()
        .zip(full)
        .map(|(e, &n)| {
            let start = usize::try_from(e.start).map_err(|_| "a negative slice start")?;
            let len = match e.length {
                None | Some(-1) => n
                    .checked_sub(start)
                    .ok_or("a slice starts past its variable")?,
                Some(l) => usize::try_from(l).map_err(|_| "a negative slice length")?,
            };
            if start.checked_add(len).is_none_or(|end| end > n) {
                return Err(FormatError::from("a slice reaches past its variable"));
            }
            Ok((start, len))
        })
        .collect()
}

/// Copies a row-major slice with `ext` extents into the row-major `full` tensor of `shape`.
fn place(
    full: &mut [f32],
    shape: &[usize],
    ext: &[(usize, usize)],
    values: &[f32],
) -> Result<(), FormatError> {
    let count: usize = ext.iter().map(|e| e.1).product();
    if values.len() != count {
        return Err(FormatError::from(format!(
            "a slice holds {} values for its {count}",
            values.len()
        )));
    }
    if shape.is_empty() {
        full.copy_from_slice(values);
        return Ok(());
    }
    let rank = shape.len();
    let inner = ext[rank - 1].1;
    if inner == 0 {
        return Ok(());
    }
    let mut strides = vec![1usize; rank];
    for d in (0..rank - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    for (row, chunk) in values.chunks_exact(inner).enumerate() {
        // The row's index in the slice, per dimension but the last.
        let mut rest = row;
        let mut at = ext[rank - 1].0;
        for d in (0..rank - 1).rev() {
            let i = rest % ext[d].1;
            rest /= ext[d].1;
            at += (ext[d].0 + i) * strides[d];
        }
        full[at..at + inner].copy_from_slice(chunk);
    }
    Ok(())
}

/// The value under `key` in a table's sorted entries.
fn find<'a>(entries: &'a [table::Entry], key: &[u8]) -> Option<&'a [u8]> {
    entries
        .binary_search_by(|(k, _)| k.as_slice().cmp(key))
        .ok()
        .map(|i| entries[i].1.as_slice())
}

fn tensor_name(key: &[u8]) -> Result<String, FormatError> {
    String::from_utf8(key.to_vec()).map_err(|_| "a tensor name is not UTF-8".into())
}

/// A V2 tensor bundle: its index table's bytes and its data shards' bytes.
pub fn read_bundle(index: &[u8], shards: &[Vec<u8>]) -> Result<StateDict, FormatError> {
    read_bundle_named(index, shards, None)
}

/// The tensor bundle of a SavedModel's `variables/`, its variables named by the SavedModel's
/// object graph (`saved_model.pb`'s bytes). A TensorFlow 1 SavedModel or TF1 Hub module has no
/// object graph: its checkpoint keys are the variables' names already.
pub fn read_saved_model_bundle(
    index: &[u8],
    shards: &[Vec<u8>],
    saved_model_pb: &[u8],
) -> Result<StateDict, FormatError> {
    let saved = super::saved_model::object_graph_if_any(saved_model_pb)?;
    read_bundle_named(index, shards, saved.as_ref())
}

fn read_bundle_named(
    index: &[u8],
    shards: &[Vec<u8>],
    saved: Option<&SavedObjectGraph>,
) -> Result<StateDict, FormatError> {
    let entries = table::entries(index)?;
    let lookup = |key: &[u8]| find(&entries, key);
    let header = lookup(b"").ok_or("a tensor bundle without its header entry")?;
    let header =
        BundleHeaderProto::decode(header).map_err(|e| format!("the bundle header: {e}"))?;
    let big = header.endianness == 1;
    if usize::try_from(header.num_shards).ok() != Some(shards.len()) {
        return Err(FormatError::from(format!(
            "the bundle has {} data shards, {} were found",
            header.num_shards,
            shards.len()
        )));
    }
    let read = |name: &str, e: &BundleEntryProto| -> Result<Option<WeightTensor>, FormatError> {
        let shape = dims(e.shape.as_ref())?;
        let shard = usize::try_from(e.shard_id)
            .ok()
            .and_then(|s| shards.get(s))
            .ok_or_else(|| {
                FormatError::from(format!("`{name}` is in a shard that does not exist"))
            })?;
        let (start, size) = (e.offset.max(0) as usize, e.size.max(0) as usize);
        let bytes = start
            .checked_add(size)
            .filter(|&end| end <= shard.len() && e.offset >= 0 && e.size >= 0)
            .map(|end| &shard[start..end])
            .ok_or_else(|| {
                FormatError::from(format!(
                    "`{name}`'s bytes reach past its data shard (truncated?)"
                ))
            })?;
        if table::unmask(e.crc32c) != crc32c::crc32c(bytes) {
            return Err(FormatError::from(format!(
                "`{name}` fails its CRC32C check (corrupt data shard)"
            )));
        }
        let Some((dt, width)) = dtype(e.dtype) else {
            return Ok(None);
        };
        let values = decode(bytes, dt, width, big)?;
        if values.len() != shape.iter().product::<usize>() {
            return Err(FormatError::from(format!(
                "`{name}` has {} values for its shape {shape:?}",
                values.len()
            )));
        }
        Ok(Some(WeightTensor::new(shape, values, dt)))
    };
    let mut sd = StateDict::new(crate::weights::Format::TfCheckpoint);
    // A TF2 checkpoint names its variables in its object graph.
    let names = match lookup(OBJECT_GRAPH.as_bytes()) {
        Some(raw) => {
            let entry = BundleEntryProto::decode(raw)
                .map_err(|e| FormatError::from(format!("the object graph's entry: {e}")))?;
            object_names(&scalar_string(&entry, shards)?, saved)?
        }
        None => Default::default(),
    };
    for (key, value) in &entries {
        // The header, and the slices of partitioned variables (their keys start with 0x00).
        if key.is_empty() || key[0] == 0 {
            continue;
        }
        let key_name = tensor_name(key)?;
        // Object-based keys (`variables/0/.ATTRIBUTES/VARIABLE_VALUE`) take the variable's own
        // name; optimizer slots and bookkeeping are left out.
        let name = if names.is_empty() {
            key_name
        } else {
            match names.get(&key_name) {
                Some(n) => n.clone(),
                None => continue,
            }
        };
        let entry = BundleEntryProto::decode(value.as_slice())
            .map_err(|e| FormatError::from(format!("`{name}`'s entry: {e}")))?;
        if entry.slices.is_empty() {
            if let Some(t) = read(&name, &entry)? {
                sd.insert(name, t);
            }
            continue;
        }
        // A partitioned variable: its slices are entries of their own.
        let Some((dt, _)) = dtype(entry.dtype) else {
            continue;
        };
        let shape = dims(entry.shape.as_ref())?;
        let mut full = vec![0.0f32; shape.iter().product()];
        for slice in &entry.slices {
            let ext = extents(slice, &shape)?;
            let raw = lookup(&slice_key(&name, slice))
                .ok_or_else(|| FormatError::from(format!("a slice of `{name}` is missing")))?;
            let part = BundleEntryProto::decode(raw)
                .map_err(|e| FormatError::from(format!("a slice of `{name}`: {e}")))?;
            if let Some(t) = read(&name, &part)? {
                place(&mut full, &shape, &ext, &t.data)?;
            }
        }
        sd.insert(name, WeightTensor::new(shape, full, dt));
    }
    Ok(sd)
}

/// The key of a TF2 checkpoint's object graph.
const OBJECT_GRAPH: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";

/// The bytes of a scalar `DT_STRING` bundle entry: a varint length, a masked CRC32C of the
/// lengths, then the string.
fn scalar_string(e: &BundleEntryProto, shards: &[Vec<u8>]) -> Result<Vec<u8>, FormatError> {
    if e.dtype != 7 {
        return Err("the object graph is not a string".into());
    }
    let shard = usize::try_from(e.shard_id)
        .ok()
        .and_then(|s| shards.get(s))
        .ok_or("the object graph is in a shard that does not exist")?;
    let (start, size) = (
        usize::try_from(e.offset).map_err(|_| "a negative offset")?,
        usize::try_from(e.size).map_err(|_| "a negative size")?,
    );
    let bytes = start
        .checked_add(size)
        .filter(|&end| end <= shard.len())
        .map(|end| &shard[start..end])
        .ok_or("the object graph reaches past its data shard")?;
    let mut r = table::Reader::new(bytes);
    let len = usize::try_from(r.varint()?).map_err(|_| "a string length out of range")?;
    let _crc = r.bytes(4)?;
    Ok(r.bytes(len)?.to_vec())
}

/// `checkpoint_key → variable name` for every variable value of an object graph: the name the
/// SavedModel gives the variable when there is one, else the checkpoint's own `full_name`.
fn object_names(
    graph: &[u8],
    saved: Option<&SavedObjectGraph>,
) -> Result<std::collections::HashMap<String, String>, FormatError> {
    let g = TrackableObjectGraph::decode(graph)
        .map_err(|e| FormatError::from(format!("the checkpoint's object graph: {e}")))?;
    let joined = saved
        .map(|s| super::saved_model::join(&g, s))
        .unwrap_or_default();
    Ok(g.nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.attributes.iter().map(move |a| (i, a)))
        .filter(|(_, a)| a.name == "VARIABLE_VALUE")
        .filter_map(|(i, a)| {
            let name = match joined.get(&i) {
                Some(v) if !v.name.is_empty() => v.name.as_str(),
                _ => a.full_name.strip_suffix(":0").unwrap_or(&a.full_name),
            };
            (!name.is_empty()).then(|| (a.checkpoint_key.clone(), name.to_string()))
        })
        .collect())
}

/// The values of a V1 `TensorProto`: typed repeated fields, or `tensor_content`.
fn proto_values(t: &TensorProto, dt: DType, width: usize) -> Result<Vec<f32>, FormatError> {
    if !t.tensor_content.is_empty() {
        return decode(&t.tensor_content, dt, width, false);
    }
    Ok(match dt {
        DType::F32 => t.float_val.clone(),
        DType::F64 => t.double_val.iter().map(|&v| v as f32).collect(),
        DType::I32 => t.int_val.iter().map(|&v| v as f32).collect(),
        DType::I64 => t.int64_val.iter().map(|&v| v as f32).collect(),
        DType::F16 => t
            .half_val
            .iter()
            .map(|&v| half::f16::from_bits(v as u16).to_f32())
            .collect(),
        DType::BF16 => t
            .half_val
            .iter()
            .map(|&v| half::bf16::from_bits(v as u16).to_f32())
            .collect(),
        other => {
            return Err(FormatError::unsupported(
                format!("{other} values in a V1 checkpoint"),
                "",
            ));
        }
    })
}

/// A V1 checkpoint (one table file of `SavedTensorSlices`).
pub fn read_v1(file: &[u8]) -> Result<StateDict, FormatError> {
    let entries = table::entries(file)?;
    let lookup = |key: &[u8]| find(&entries, key);
    let meta = lookup(b"").ok_or("a V1 checkpoint without its metadata entry")?;
    let meta = SavedTensorSlices::decode(meta)
        .map_err(|e| format!("the checkpoint's metadata: {e}"))?
        .meta
        .ok_or("a V1 checkpoint without its metadata")?;
    let mut sd = StateDict::new(crate::weights::Format::TfCheckpoint);
    for t in &meta.tensor {
        let Some((dt, width)) = dtype(t.r#type) else {
            continue;
        };
        let shape = dims(t.shape.as_ref())?;
        let mut full = vec![0.0f32; shape.iter().product()];
        for slice in &t.slice {
            let ext = extents(slice, &shape)?;
            let raw = lookup(&slice_key(&t.name, slice))
                .ok_or_else(|| FormatError::from(format!("the data of `{}` is missing", t.name)))?;
            let saved = SavedTensorSlices::decode(raw)
                .map_err(|e| FormatError::from(format!("`{}`: {e}", t.name)))?;
            let data = saved
                .data
                .and_then(|d| d.data)
                .ok_or_else(|| FormatError::from(format!("`{}` has no values", t.name)))?;
            place(&mut full, &shape, &ext, &proto_values(&data, dt, width)?)?;
        }
        sd.insert(t.name.clone(), WeightTensor::new(shape, full, dt));
    }
    Ok(sd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_land_where_their_extents_say() {
        // A [2, 3] tensor from its column 1..3 and column 0.
        let shape = [2, 3];
        let mut full = vec![0.0; 6];
        place(&mut full, &shape, &[(0, 2), (1, 2)], &[1.0, 2.0, 4.0, 5.0]).unwrap();
        place(&mut full, &shape, &[(0, 2), (0, 1)], &[0.0, 3.0]).unwrap();
        assert_eq!(full, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(place(&mut full, &shape, &[(0, 2), (0, 1)], &[0.0]).is_err());
    }
}
