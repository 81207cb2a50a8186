//! The library's error type.

use thiserror::Error;

/// Everything that can go wrong when building, configuring or running a network.
///
/// Each message is one line that says what was wrong and, where there is one, the fix.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A layer cannot take the shape it is given (too-small input, rank mismatch, channel mismatch).
    #[error("{0}")]
    Shape(String),
    /// A model option combination that makes no sense (e.g. aux heads without a classifier).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A name (model, layer, output) that does not exist.
    #[error("{0}")]
    Unknown(String),
    /// The graph itself is malformed (no input, no output, a dangling reference).
    #[error("invalid graph: {0}")]
    Graph(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
