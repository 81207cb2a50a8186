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
    /// A setting that cannot be used: a value out of its range, an option the model does not
    /// have, two options that exclude each other, data that does not fit a training run.
    #[error("{0}")]
    Config(Box<ConfigError>),
    /// A name (model, layer, tensor, preset, …) that does not exist.
    #[error("{0}")]
    Unknown(Box<UnknownName>),
    /// The graph itself is malformed (no input, no output, a dangling reference).
    #[error("invalid graph {graph}: {fault}")]
    Graph {
        /// The graph's (model's) name.
        graph: String,
        /// What is wrong with it.
        fault: GraphFault,
    },
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

/// The fields of [`Error::Config`]: which setting, its value, and what it must be.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// What the setting belongs to (a model, a file, a folder), when it belongs to one.
    pub subject: Option<String>,
    /// The setting, as the library's API names it (`dropout`, `pooling`, `learning rate`).
    pub setting: &'static str,
    /// The value given, as written (empty when the setting is merely present).
    pub value: String,
    /// What it must be instead, or why it cannot be used.
    pub expected: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(subject) = &self.subject {
            write!(f, "{subject}: ")?;
        }
        f.write_str(self.setting)?;
        if !self.value.is_empty() {
            write!(f, " {}", self.value)?;
        }
        write!(f, ": {}", self.expected)
    }
}

/// What kind of name an [`UnknownName`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A built-in architecture.
    Model,
    /// A layer or block of a network.
    Layer,
    /// A node of a graph, by index.
    Node,
    /// A tensor in an array file.
    Tensor,
    /// A pretrained-weights name of the registry.
    Pretrained,
    /// A preprocessing preset.
    Preset,
    /// An optimizer.
    Optimizer,
    /// A training recipe.
    Recipe,
    /// A global pooling (`none`, `avg`, `max`).
    Pooling,
    /// A freezing spec for fine-tuning.
    Freeze,
    /// A class (a data folder's sub-folder) a model does not have.
    Class,
    /// A compute device.
    Device,
}

impl NameKind {
    fn noun(self) -> &'static str {
        match self {
            NameKind::Model => "model",
            NameKind::Layer => "layer",
            NameKind::Node => "node",
            NameKind::Tensor => "tensor",
            NameKind::Pretrained => "pretrained weights",
            NameKind::Preset => "preprocessing preset",
            NameKind::Optimizer => "optimizer",
            NameKind::Recipe => "recipe",
            NameKind::Pooling => "pooling",
            NameKind::Freeze => "freeze spec",
            NameKind::Class => "class",
            NameKind::Device => "device",
        }
    }
}

/// The fields of [`Error::Unknown`]: a name that was looked up and not found.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownName {
    /// What was looked up.
    pub kind: NameKind,
    /// The name given.
    pub name: String,
    /// Where it was looked up (a model, a file, a folder), when somewhere in particular.
    pub within: Option<String>,
    /// The names that exist, or their first few.
    pub known: Vec<String>,
    /// How many names exist, when `known` shows only some.
    pub total: usize,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut known = self.known.join(", ");
        if self.total > self.known.len() {
            known.push_str(&format!(", … ({} in all)", self.total));
        }
        let (kind, name) = (self.kind.noun(), &self.name);
        match (self.kind, &self.within) {
            (NameKind::Layer, Some(model)) => write!(
                f,
                "no layer named '{name}' in {model}; its summary lists the layer names"
            ),
            (NameKind::Node, Some(graph)) => {
                write!(f, "{graph}: no node {name} (the graph has {})", self.total)
            }
            (NameKind::Tensor, Some(file)) if name.is_empty() => write!(
                f,
                "{file}: holds {} tensors ({known}); pick one with {file}:NAME",
                self.total.max(self.known.len())
            ),
            (NameKind::Class, Some(dir)) => write!(
                f,
                "{dir}: class folder `{name}` is not one of the model's classes ({known})"
            ),
            (NameKind::Pretrained, _) if self.known.is_empty() => write!(
                f,
                "{name} has no published weights; train it (the training loop does)"
            ),
            (NameKind::Freeze, _) => {
                write!(f, "freeze '{name}': use {known}")
            }
            (NameKind::Device, _) => write!(
                f,
                "device '{name}': this build knows {known} (GPU backends are the cargo features \
                 `cuda` and `wgpu`)"
            ),
            (NameKind::Model, _) => write!(f, "unknown model '{name}'; choose one of: {known}"),
            (_, Some(within)) => write!(f, "{within}: no {kind} `{name}`; it has {known}"),
            (_, None) => write!(f, "no {kind} called '{name}'; known: {known}"),
        }
    }
}

/// Why a graph is malformed: the part of [`Error::Graph`] that says what is wrong.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GraphFault {
    /// A second input layer.
    #[error("a graph has exactly one input")]
    SecondInput,
    /// No input layer.
    #[error("the graph has no input")]
    NoInput,
    /// No main output.
    #[error("the graph has no main output")]
    NoOutput,
    /// A layer reading a node that does not exist (yet).
    #[error("layer `{layer}` reads node {input}, which does not exist")]
    DanglingInput {
        /// The layer.
        layer: String,
        /// The node index it reads.
        input: usize,
    },
    /// Two layers with one name.
    #[error("two layers are named '{name}'")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A node read before it is computed (a plan built in the wrong order).
    #[error("node {node} is read before it is computed")]
    RunsEarly {
        /// The node's index.
        node: usize,
    },
    /// An input that is not single-precision floating point.
    #[error("the input is not f32 ({got})")]
    InputType {
        /// What it is.
        got: String,
    },
}

impl Error {
    /// A setting that cannot be used: `setting value: expected`.
    pub fn config(
        setting: &'static str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Error {
        Error::Config(Box::new(ConfigError {
            subject: None,
            setting,
            value: value.to_string(),
            expected: expected.into(),
        }))
    }

    /// A setting of `subject` (a model, a file) that cannot be used.
    pub fn config_of(
        subject: impl std::fmt::Display,
        setting: &'static str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Error {
        let mut e = Error::config(setting, value, expected);
        if let Error::Config(c) = &mut e {
            c.subject = Some(subject.to_string());
        }
        e
    }

    /// A name that does not exist, with the names that do.
    pub fn unknown<S: ToString>(
        kind: NameKind,
        name: impl Into<String>,
        within: Option<String>,
        known: impl IntoIterator<Item = S>,
    ) -> Error {
        Error::unknown_of_many(kind, name, within, known, usize::MAX)
    }

    /// A name that does not exist, shown with the first `shown` of the names that do.
    pub fn unknown_of_many<S: ToString>(
        kind: NameKind,
        name: impl Into<String>,
        within: Option<String>,
        known: impl IntoIterator<Item = S>,
        shown: usize,
    ) -> Error {
        let all: Vec<String> = known.into_iter().map(|s| s.to_string()).collect();
        Error::Unknown(Box::new(UnknownName {
            kind,
            name: name.into(),
            within,
            total: all.len(),
            known: all.into_iter().take(shown).collect(),
        }))
    }

    /// A node index that is not in `graph` (of `count` nodes).
    pub fn unknown_node(graph: impl Into<String>, node: usize, count: usize) -> Error {
        Error::Unknown(Box::new(UnknownName {
            kind: NameKind::Node,
            name: node.to_string(),
            within: Some(graph.into()),
            known: Vec::new(),
            total: count,
        }))
    }

    /// A malformed graph.
    pub fn graph(graph: impl Into<String>, fault: GraphFault) -> Error {
        Error::Graph {
            graph: graph.into(),
            fault,
        }
    }

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
