//! The library's error type.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::graph::Shape;

/// Everything that can go wrong when building, configuring or running a network.
///
/// Each message is one line that says what was wrong and, where there is one, the fix.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A layer cannot take the shape it is given (too-small input, channel mismatch, an output
    /// over the size limit).
    #[error("{0}")]
    Shape(Box<ShapeError>),
    /// A batch that does not fit the network's input.
    #[error(
        "{model} takes input [N, {}, {}, {}] but got {got:?}; build the model for this input \
         size ({})",
        expected[0], expected[1], expected[2], got.get(2).copied().unwrap_or(0)
    )]
    Input {
        /// The network.
        model: String,
        /// Its input `[C, H, W]`.
        expected: [usize; 3],
        /// The batch's dimensions.
        got: Vec<usize>,
    },
    /// A model option combination that makes no sense (e.g. aux heads without a classifier).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A name (model, layer, output) that does not exist.
    #[error("{0}")]
    Unknown(String),
    /// The graph itself is malformed (no input, no output, a dangling reference).
    #[error("invalid graph: {0}")]
    Graph(String),
    /// A file that cannot be read or written.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why (`no such file`, `permission denied`, `is a folder`, …).
        reason: String,
    },
    /// Contents that are not what their format says.
    #[error("{0}")]
    Format(FormatError),
    /// Weights that do not fit the model: missing, unexpected or mis-shaped tensors.
    #[error("{0}")]
    Weights(Box<WeightsFault>),
    /// Pretrained weights that could not be downloaded.
    #[error("{weights}: {reason}")]
    Download {
        /// The registry entry.
        weights: String,
        /// Why, with what to do offline.
        reason: String,
    },
    /// Any other error, met while reading or writing a file.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What went wrong in it.
        error: Box<Error>,
    },
    /// Training diverged: the loss of a step is not a finite number.
    #[error(
        "training diverged: the loss of step {step} (epoch {epoch}, batch {batch}) is {loss}; \
         lower the learning rate, add warm-up or clip the gradients' norm"
    )]
    Diverged {
        /// The epoch, counted from 1.
        epoch: usize,
        /// The batch within the epoch, counted from 1.
        batch: usize,
        /// The optimizer step, counted from 1 over the whole run.
        step: usize,
        /// The loss.
        loss: f64,
    },
}

/// The fields of [`Error::Shape`].
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeError {
    /// The model (its graph's name; `googlenet with aux heads` for a built-in one).
    pub model: String,
    /// The layer's name.
    pub layer: String,
    /// Its operation (`Conv2d`, `MaxPool2d`, …).
    pub op: String,
    /// What is wrong.
    pub fault: ShapeFault,
    /// The shapes it was given.
    pub input: Vec<Shape>,
    /// The smallest square input the model accepts, when the input is too small for it.
    pub min_input: Option<usize>,
}

/// Why a layer cannot take the shapes it is given: the part of a [`ShapeError`] that says what
/// was expected and what came.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ShapeFault {
    /// The layer has fewer inputs than it needs.
    #[error("is missing an input")]
    MissingInput,
    /// A spatial layer fed a feature vector.
    #[error("expects a feature map but gets a vector of {features} features")]
    NotAMap {
        /// The vector's length.
        features: usize,
    },
    /// A dense layer fed a feature map.
    #[error("expects a vector but gets a feature map {got}; add a flatten or global pooling first")]
    NotAVector {
        /// The map it got.
        got: Shape,
    },
    /// Wrong number of input channels.
    #[error("expects {expected} input channels but gets {got}")]
    Channels {
        /// What the layer's weights take.
        expected: usize,
        /// What came.
        got: usize,
    },
    /// Wrong number of input features.
    #[error("expects {expected} input features but gets {got}")]
    Features {
        /// What the layer's weights take.
        expected: usize,
        /// What came.
        got: usize,
    },
    /// Branches of a concatenation with different spatial sizes.
    #[error(
        "cannot concatenate branches of sizes {}x{} and {}x{}",
        first[0], first[1], other[0], other[1]
    )]
    Concat {
        /// The first branch's `[height, width]`.
        first: [usize; 2],
        /// The first branch that differs.
        other: [usize; 2],
    },
    /// Summands of different shapes.
    #[error("cannot add shapes {first} and {other}")]
    Add {
        /// The first input's shape.
        first: Shape,
        /// The first that differs.
        other: Shape,
    },
    /// A window with a zero kernel or stride.
    #[error("has kernel {kernel:?} and stride {stride:?}; both must be non-zero")]
    ZeroWindow {
        /// The window.
        kernel: [usize; 2],
        /// Its stride.
        stride: [usize; 2],
    },
    /// An input smaller than the window.
    #[error(
        "needs at least a {}x{} input (after padding) but gets {}x{}",
        needs[0], needs[1], got[0], got[1]
    )]
    TooSmall {
        /// The smallest `[height, width]` the window fits.
        needs: [usize; 2],
        /// The `[height, width]` it got.
        got: [usize; 2],
    },
    /// An output over the per-image size limit.
    #[error(
        "would output {shape} = {} values per image, over the limit of {limit} (1 GiB of f32); \
         use a smaller input size or padding",
        shape.numel()
    )]
    TooLarge {
        /// The output shape.
        shape: Shape,
        /// The limit in values per image.
        limit: usize,
    },
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let input = self
            .input
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let base = format!(
            "layer '{}' ({}) {} (input {input})",
            self.layer, self.op, self.fault
        );
        match self.min_input {
            Some(m) => write!(
                f,
                "the input is too small for {}: {base}; the smallest input it accepts is {m}x{m}",
                self.model
            ),
            None => f.write_str(&base),
        }
    }
}

impl Error {
    /// An I/O failure on `path`, as one line.
    pub fn io(path: &Path, e: std::io::Error) -> Error {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        Error::Io {
            path: path.to_path_buf(),
            reason,
        }
    }

    /// A file that cannot be used, and why.
    pub fn io_reason(path: &Path, reason: impl Into<String>) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// `self`, met in `path`. An error that already names a file is left as it is.
    pub fn in_file(self, path: &Path) -> Error {
        match self {
            e @ (Error::Io { .. } | Error::InFile { .. }) => e,
            e => Error::InFile {
                path: path.to_path_buf(),
                error: Box::new(e),
            },
        }
    }

    /// A malformed file's contents, described.
    pub fn format(reason: impl Into<FormatError>) -> Error {
        Error::Format(reason.into())
    }
}

/// Why contents are not what their format says. Readers return it; [`Error::in_file`] adds the
/// file.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FormatError {
    /// The bytes end inside a record.
    #[error("the file ends early: {what} needs {need} bytes at offset {at}, {left} are left")]
    Truncated {
        /// The record being read.
        what: &'static str,
        /// Its offset.
        at: usize,
        /// The bytes it needs.
        need: usize,
        /// The bytes left.
        left: usize,
    },
    /// A size the file claims, over what the format can need.
    #[error("{what} is {got}, over the limit of {limit}")]
    TooLarge {
        /// What the size is of.
        what: String,
        /// The size claimed.
        got: u64,
        /// The limit.
        limit: u64,
    },
    /// A feature of the format that is not read.
    #[error("{what} is not supported{}", if supported.is_empty() { String::new() } else { format!(" ({supported})") })]
    Unsupported {
        /// The feature met.
        what: String,
        /// What is supported instead, if anything is.
        supported: String,
    },
    /// A malformed structure, described.
    #[error("{0}")]
    Invalid(String),
    /// A problem at a place in the file: a node, layer, tensor or metadata key.
    #[error("{place}: {reason}")]
    At {
        /// The place (`node `conv1` (Conv)`, `tensor `fc.weight``, …).
        place: String,
        /// What is wrong there.
        reason: Box<FormatError>,
    },
}

impl FormatError {
    /// `self`, at `place` in the file.
    pub fn at(self, place: impl Into<String>) -> FormatError {
        FormatError::At {
            place: place.into(),
            reason: Box::new(self),
        }
    }

    /// An unsupported feature, with what is supported instead.
    pub fn unsupported(what: impl Into<String>, supported: impl Into<String>) -> FormatError {
        FormatError::Unsupported {
            what: what.into(),
            supported: supported.into(),
        }
    }
}

impl From<String> for FormatError {
    fn from(s: String) -> FormatError {
        FormatError::Invalid(s)
    }
}

impl From<&str> for FormatError {
    fn from(s: &str) -> FormatError {
        FormatError::Invalid(s.to_string())
    }
}

/// Why weights do not fit a model.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WeightsFault {
    /// Tensors missing, left over or of the wrong shape, by name.
    #[error(
        "the weights do not fit {model}: {} (wrong architecture, number of classes or input \
         channels?)",
        mismatch_parts(missing, unexpected, mis_shaped)
    )]
    Mismatch {
        /// The model.
        model: String,
        /// Tensors the model needs that the file lacks.
        missing: Vec<String>,
        /// Tensors in the file the model has no place for.
        unexpected: Vec<String>,
        /// Tensors of the wrong shape, each with its shapes.
        mis_shaped: Vec<String>,
    },
    /// A state dict whose architecture cannot be recognised.
    #[error(
        "cannot tell which model these {tensors} tensors belong to (first names: {}){}; name \
         the model they were saved from",
        sample.join(", "),
        closest.as_ref().map(|(a, n)| format!(" (closest: {a}, with {n} of its backbone tensors)")).unwrap_or_default()
    )]
    Unrecognised {
        /// How many tensors the file has.
        tensors: usize,
        /// The first few names.
        sample: Vec<String>,
        /// The closest built-in architecture and how many of its backbone tensors were found.
        closest: Option<(String, usize)>,
    },
    /// A layer of a Keras file that does not fit the model's layer it maps to.
    #[error("Keras layer `{file_layer}` (for model layer `{model_layer}`) {reason}")]
    Layer {
        /// The file's layer.
        file_layer: String,
        /// The model's layer.
        model_layer: String,
        /// What does not fit.
        reason: String,
    },
    /// A Keras file with a different number of layers of a kind than the model.
    #[error(
        "the Keras file has {in_file} {class} layers but {model} has {in_model} ({file_counts} in \
         the file; wrong model?)"
    )]
    LayerCount {
        /// The Keras layer class.
        class: String,
        /// How many the file has.
        in_file: usize,
        /// The model.
        model: String,
        /// How many the model has.
        in_model: usize,
        /// The file's count of every class.
        file_counts: String,
    },
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

fn mismatch_parts(missing: &[String], unexpected: &[String], mis_shaped: &[String]) -> String {
    const SHOWN: usize = 6;
    let list = |names: &[String]| {
        let mut s = names
            .iter()
            .take(SHOWN)
            .map(|n| {
                if n.starts_with('`') {
                    n.clone()
                } else {
                    format!("`{n}`")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > SHOWN {
            s.push_str(&format!(" and {} more", names.len() - SHOWN));
        }
        s
    };
    [
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", mis_shaped),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(what, v)| format!("{what} {}: {}", v.len(), list(v)))
    .collect::<Vec<_>>()
    .join("; ")
}

impl From<WeightsFault> for Error {
    fn from(w: WeightsFault) -> Error {
        Error::Weights(Box::new(w))
    }
}

impl From<FormatError> for Error {
    fn from(f: FormatError) -> Error {
        Error::Format(f)
    }
}

impl Error {
    /// The error itself, under any file it was met in.
    pub fn root(&self) -> &Error {
        match self {
            Error::InFile { error, .. } => error.root(),
            e => e,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
