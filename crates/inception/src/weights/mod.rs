//! Weights: reading checkpoints in the reference frameworks' formats, mapping them onto a
//! [`Network`], and writing them back out.
//!
//! Every reader produces a [`StateDict`]: tensor names and values in **PyTorch's conventions**
//! (the names of [`Graph::state_dict_shapes`], convolution kernels `[out, in, kh, kw]`, dense
//! weights `[out, in]`), converted to f32 whatever the stored dtype. [`load_model`] then builds a
//! model and fills it, reporting missing, unexpected and mis-shaped tensors by name.
//!
//! ```no_run
//! use inception::burn::tensor::Device;
//! use inception::models::{Arch, ModelConfig};
//! use inception::weights;
//!
//! let sd = weights::read("googlenet-1378be20.pth".as_ref())?;
//! let cfg = weights::detect(&sd)?.with_transform_input(true);
//! let (net, report) = weights::load_model(&cfg, &sd, &Device::default())?;
//! println!("{} tensors loaded", report.loaded);
//! # Ok::<(), inception::Error>(())
//! ```

#[cfg(feature = "keras")]
pub mod keras;
mod load;
#[cfg(feature = "onnx")]
pub mod onnx;
mod open;
#[cfg(feature = "pytorch")]
pub mod pickle;
#[cfg(feature = "pytorch")]
pub mod pytorch;
pub mod safetensors;
#[cfg(feature = "tensorflow")]
pub mod tf;
pub mod tf_names;
pub mod timm_names;

pub use load::{
    CONFIG_KEY, LoadReport, config_for, detect, detect_as, export, load_into, load_model,
    state_dict,
};
pub use open::{Loaded, ModelSource, load_file, load_file_sized};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, FormatError, Result};

/// Element types found in checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// 64-bit signed integer (e.g. `num_batches_tracked`).
    I64,
    /// 32-bit signed integer.
    I32,
    /// 16-bit signed integer.
    I16,
    /// 8-bit signed integer.
    I8,
    /// 8-bit unsigned integer.
    U8,
    /// Boolean (one byte).
    Bool,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I16 => "i16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
        };
        f.write_str(s)
    }
}

/// Decodes little-endian elements of `dtype` into f32.
pub fn decode(raw: &[u8], dtype: DType) -> std::result::Result<Vec<f32>, FormatError> {
    let size = dtype.size();
    if !raw.len().is_multiple_of(size) {
        return Err(format!(
            "{} bytes is not a whole number of {dtype} elements",
            raw.len()
        )
        .into());
    }
    let chunks = raw.chunks_exact(size);
    Ok(match dtype {
        DType::F32 => chunks
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect(),
        DType::F64 => chunks
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        DType::F16 => chunks
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => chunks
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::I64 => chunks
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        DType::I32 => chunks
            .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as f32)
            .collect(),
        DType::I16 => chunks
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
            .collect(),
        DType::I8 => chunks.map(|c| c[0] as i8 as f32).collect(),
        DType::U8 | DType::Bool => chunks.map(|c| c[0] as f32).collect(),
    })
}

/// The file formats weights come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// PyTorch `torch.save` zip (`.pth`, `.pt`, `.bin`).
    PyTorch,
    /// safetensors.
    Safetensors,
    /// Keras HDF5 (`.h5`, `.weights.h5`) or `.keras`.
    Keras,
    /// An ONNX model (graph and weights).
    Onnx,
    /// A TensorFlow checkpoint (a tensor bundle or a V1 file, maybe in a `.tar.gz`).
    TfCheckpoint,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::PyTorch => "PyTorch checkpoint",
            Format::Safetensors => "safetensors",
            Format::Keras => "Keras weights",
            Format::TfCheckpoint => "TensorFlow checkpoint",
            Format::Onnx => "ONNX model",
        })
    }
}

/// One tensor of a checkpoint, converted to f32.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub data: Vec<f32>,
    /// The dtype the file stored.
    pub dtype: DType,
}

impl WeightTensor {
    /// A tensor from its parts.
    pub fn new(shape: Vec<usize>, data: Vec<f32>, dtype: DType) -> Self {
        Self { shape, data, dtype }
    }
}

/// Named tensors in PyTorch's conventions, in file order.
#[derive(Clone, Debug)]
pub struct StateDict {
    entries: Vec<(String, WeightTensor)>,
    index: HashMap<String, usize>,
    /// The format the tensors were read from.
    pub format: Format,
    /// String metadata stored with the tensors (safetensors `__metadata__`).
    pub metadata: BTreeMap<String, String>,
}

impl StateDict {
    /// An empty state dict.
    pub fn new(format: Format) -> Self {
        Self {
            entries: Vec::new(),
            index: HashMap::new(),
            format,
            metadata: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a tensor.
    pub fn insert(&mut self, name: String, tensor: WeightTensor) {
        match self.index.get(&name) {
            Some(&i) => self.entries[i].1 = tensor,
            None => {
                self.index.insert(name.clone(), self.entries.len());
                self.entries.push((name, tensor));
            }
        }
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&WeightTensor> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    /// Names and tensors, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &WeightTensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total number of elements over all tensors.
    pub fn numel(&self) -> usize {
        self.entries.iter().map(|(_, t)| t.data.len()).sum()
    }
}

/// The error for a format whose reader this build leaves out (see the crate's features).
#[cfg_attr(
    all(feature = "pytorch", feature = "keras", feature = "onnx"),
    allow(dead_code)
)]
pub(crate) fn not_built(path: &Path, format: Format) -> Error {
    let feature = match format {
        Format::PyTorch => "pytorch",
        Format::Keras => "keras",
        Format::Onnx => "onnx",
        Format::Safetensors => "safetensors",
        Format::TfCheckpoint => "tensorflow",
    };
    Error::config_of(
        path.display(),
        "format",
        format,
        format!("this build of the library has no {format} reader (cargo feature `{feature}`)"),
    )
}

/// The largest compression ratio accepted for a zip entry bigger than
/// [`ZIP_RATIO_FREE_BYTES`]: weights barely compress (torch.save stores them, Keras deflates
/// them to ~90%), so a higher ratio is a decompression bomb.
pub const MAX_ZIP_RATIO: u64 = 32;

/// Below this many bytes an entry may have any compression ratio.
pub const ZIP_RATIO_FREE_BYTES: u64 = 64 << 20;

/// Reads zip entry `name`, at most `need` bytes of it (all of it if `None`), refusing an entry
/// that would inflate past `max` or at a ratio no weights file has; never allocates more than
/// the bytes that really arrive.
#[cfg(any(feature = "pytorch", feature = "keras"))]
pub(crate) fn read_zip_entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    need: Option<u64>,
    max: u64,
) -> std::result::Result<Vec<u8>, FormatError> {
    let entry = format!("archive entry `{name}`");
    let f = zip
        .by_name(name)
        .map_err(|e| FormatError::from(e.to_string()).at(&entry))?;
    let size = f.size();
    if let Some(want) = need
        && size < want
    {
        return Err(FormatError::from(format!(
            "has {size} bytes but its tensors need {want} (truncated file?)"
        ))
        .at(entry));
    }
    let limit = need.map_or(size, |w| w.min(size));
    if limit > max {
        return Err(FormatError::TooLarge {
            what: format!("{entry}'s size in bytes"),
            got: limit,
            limit: max,
        });
    }
    let packed = f.compressed_size().max(1);
    if limit > ZIP_RATIO_FREE_BYTES && limit / packed > MAX_ZIP_RATIO {
        return Err(FormatError::TooLarge {
            what: format!(
                "{entry}'s compression ratio ({packed} bytes inflating to {limit}: a \
                 decompression bomb?)"
            ),
            got: limit / packed,
            limit: MAX_ZIP_RATIO,
        });
    }
    let mut buf = Vec::new();
    f.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| FormatError::from(format!("{e} (truncated or corrupt file?)")).at(&entry))?;
    if (buf.len() as u64) < limit {
        return Err(FormatError::Truncated {
            what: "the archive entry",
            at: buf.len(),
            need: (limit as usize).saturating_sub(buf.len()),
            left: 0,
        }
        .at(entry));
    }
    Ok(buf)
}

/// Which reader a file needs, from its first bytes (never its extension). A TensorFlow
/// checkpoint may be a prefix, a folder or an archive rather than one file.
pub fn sniff(path: &Path) -> Result<Format> {
    #[cfg(feature = "tensorflow")]
    if tf::is_checkpoint(path) {
        return Ok(Format::TfCheckpoint);
    }
    crate::files::check_regular(path)?;
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        // torch.save archives hold `*/data.pkl`; .keras archives `model.weights.h5`.
        #[cfg(not(any(feature = "pytorch", feature = "keras")))]
        return Ok(Format::PyTorch);
        #[cfg(any(feature = "pytorch", feature = "keras"))]
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // A zip with config.json or metadata.json but no data.pkl is a (maybe broken) .keras
        // file: the Keras reader then names what is missing.
        #[cfg(any(feature = "pytorch", feature = "keras"))]
        let is_keras = zip::ZipArchive::new(file)
            .map(|z| {
                let names: Vec<String> = z
                    .file_names()
                    .filter_map(|n| n.ok().map(|n| n.to_string()))
                    .collect();
                let has = |want: &str| names.iter().any(|n| n == want);
                has("model.weights.h5")
                    || (!names.iter().any(|n| n.ends_with("data.pkl"))
                        && (has("config.json") || has("metadata.json")))
            })
            .unwrap_or(false);
        #[cfg(any(feature = "pytorch", feature = "keras"))]
        return Ok(if is_keras {
            Format::Keras
        } else {
            Format::PyTorch
        });
    }
    if head.starts_with(b"\x89HDF") {
        return Ok(Format::Keras);
    }
    if n >= 9 && head[8] == b'{' {
        return Ok(Format::Safetensors);
    }
    // An ONNX ModelProto starts with field 1 (ir_version, a varint).
    if head.first() == Some(&0x08) && n > 2 {
        return Ok(Format::Onnx);
    }
    let what = if head.starts_with(b"\x80\x02\x8a\x0a") {
        "a legacy (PyTorch < 1.6) torch.save file; re-save it with a recent PyTorch: \
         torch.save(torch.load(f), f)"
    } else if n == 0 {
        "empty"
    } else {
        "not a PyTorch (.pth), safetensors, Keras (.h5, .keras) or ONNX file"
    };
    Err(Error::format(what).in_file(path))
}

/// Reads a PyTorch or safetensors checkpoint. Keras files map onto a model by layer order, so
/// they are read with [`keras::read`] and converted with [`keras::KerasWeights::to_state_dict`]
/// (or loaded in one step by [`load_file`]).
pub fn read(path: &Path) -> Result<StateDict> {
    read_as(path, sniff(path)?)
}

/// [`read`] for a file already sniffed as `format`.
pub(crate) fn read_as(path: &Path, format: Format) -> Result<StateDict> {
    match format {
        #[cfg(feature = "pytorch")]
        Format::PyTorch => pytorch::read(path),
        Format::Safetensors => safetensors::read(path),
        #[cfg(feature = "onnx")]
        Format::Onnx => Ok(onnx::read(path, None)?.weights),
        #[cfg(not(feature = "pytorch"))]
        Format::PyTorch => Err(not_built(path, Format::PyTorch)),
        #[cfg(not(feature = "onnx"))]
        Format::Onnx => Err(not_built(path, Format::Onnx)),
        #[cfg(feature = "tensorflow")]
        Format::TfCheckpoint => tf::read(path),
        #[cfg(not(feature = "tensorflow"))]
        Format::TfCheckpoint => Err(not_built(path, Format::TfCheckpoint)),
        Format::Keras => Err(Error::format(
            "a Keras file; its tensors map onto a model by layer order (use \
             weights::load_file or weights::keras::read)",
        )
        .in_file(path)),
    }
}
