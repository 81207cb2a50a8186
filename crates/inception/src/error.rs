//! The library's error type.

use thiserror::Error;

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
    /// A file that cannot be read or written (the message names the file).
    #[error("{0}")]
    Io(String),
    /// A file whose contents are not what its format says (the message names the file).
    #[error("{0}")]
    Format(String),
    /// Weights that do not fit the model: missing, unexpected or mis-shaped tensors.
    #[error("{0}")]
    Weights(String),
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
    pub why: String,
    /// The shapes it was given.
    pub input: String,
    /// The smallest square input the model accepts, when the input is too small for it.
    pub min_input: Option<usize>,
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = format!(
            "layer '{}' ({}) {} (input {})",
            self.layer, self.op, self.why, self.input
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
    pub fn io(path: &std::path::Path, e: std::io::Error) -> Error {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        Error::Io(format!("{}: {why}", path.display()))
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
