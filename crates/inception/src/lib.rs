//! # inception
//!
//! The Inception family of convolutional networks — GoogLeNet (Inception v1) and Inception v3 —
//! on [Burn](https://burn.dev): exact architectures that match torchvision, Keras and the Caffe /
//! ONNX-zoo layouts parameter for parameter, the building blocks to write your own, a Keras-style
//! functional and sequential graph API, summaries and diagrams.
//!
//! ```
//! use inception::models::{Arch, ModelConfig};
//!
//! let cfg = ModelConfig::new(Arch::GoogLeNet).with_aux_logits(true);
//! let graph = cfg.graph().unwrap();
//! assert_eq!(graph.params().trainable, 13_004_888);
//! ```
//!
//! Modules mirror the concepts:
//! - [`graph`]: the network representation (functional and sequential APIs, shape inference);
//! - [`blocks`]: inception modules, aux classifiers, stems;
//! - [`data`]: image decoding and the reference preprocessing pipelines;
//! - [`device`]: choosing the CPU or GPUs (one, or several data-parallel);
//! - [`models`]: the built-in architectures and their Keras-style options;
//! - [`network`]: [`Network`], the trainable Burn module that executes a graph;
//! - [`predict`]: classification (top-k with class names) and frozen feature extraction;
//! - [`pretrained`]: the published checkpoints by name and a verifying download cache;
//! - [`train`]: datasets (embedded digits, ImageFolder), augmentation, losses, schedules and the
//!   training loop;
//! - [`weights`]: checkpoint readers (PyTorch `.pth`, safetensors), name mapping, export;
//! - [`files`]: atomic writes and `.npy` / `.safetensors` arrays;
//! - [`summary`] and [`diagram`]: the Keras-style table and the paper-style picture.

#![warn(missing_docs)]

pub mod bench;
pub mod blocks;
pub mod data;
pub mod device;
pub mod diagram;
pub mod engine;
pub mod error;
pub mod files;
pub mod graph;
pub mod models;
pub mod network;
pub mod nn;
pub mod ops;
pub mod predict;
pub mod pretrained;
pub mod summary;
pub mod train;
pub mod weights;

pub use error::{
    ConfigError, Error, FormatError, GraphFault, NameKind, Result, ShapeError, ShapeFault,
    UnknownName, WeightsFault,
};
pub use graph::{Graph, GraphBuilder};
pub use models::{Arch, ModelConfig, Pooling};
pub use network::{ModelOutput, Network};
pub use nn::Value;

/// Re-export of the Burn version this crate is built on, so users name the same types.
pub use burn;
