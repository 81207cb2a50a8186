//! ONNX tensors (initializers and `Constant` values) decoded to f32.

use super::proto::TensorProto;
use crate::error::FormatError;
use crate::weights::{DType, decode};

/// A constant tensor of the graph.
#[derive(Clone, Debug)]
pub(super) struct Const {
    pub(super) dims: Vec<usize>,
    pub(super) data: Vec<f32>,
}

pub(super) fn tensor(t: &TensorProto) -> std::result::Result<Const, FormatError> {
    let name = &t.name;
    if t.data_location == 1 {
        return Err(format!(
            "tensor `{name}` is stored in an external file; load and re-save the model with \
             onnx.save(model, path, save_as_external_data=False)"
        )
        .into());
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| format!("tensor `{name}` has a negative dimension"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let numel = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("tensor `{name}` is impossibly large"))?;
    let dtype = match t.data_type {
        1 => DType::F32,
        10 => DType::F16,
        16 => DType::BF16,
        11 => DType::F64,
        7 => DType::I64,
        6 => DType::I32,
        other => {
            return Err(format!("tensor `{name}` has unsupported ONNX data type {other}").into());
        }
    };
    let data: Vec<f32> = if !t.raw_data.is_empty() {
        decode(&t.raw_data, dtype).map_err(|e| format!("tensor `{name}`: {e}"))?
    } else {
        match dtype {
            DType::F32 => t.float_data.clone(),
            DType::F64 => t.double_data.iter().map(|&v| v as f32).collect(),
            DType::I64 => t.int64_data.iter().map(|&v| v as f32).collect(),
            DType::I32 => t.int32_data.iter().map(|&v| v as f32).collect(),
            // f16/bf16 without raw_data are stored as int32 bit patterns.
            DType::F16 => t
                .int32_data
                .iter()
                .map(|&v| half::f16::from_bits(v as u16).to_f32())
                .collect(),
            _ => t
                .int32_data
                .iter()
                .map(|&v| half::bf16::from_bits(v as u16).to_f32())
                .collect(),
        }
    };
    if data.len() != numel {
        return Err(format!(
            "tensor `{name}` has {} values for dims {dims:?} (truncated file?)",
            data.len()
        )
        .into());
    }
    Ok(Const { dims, data })
}
