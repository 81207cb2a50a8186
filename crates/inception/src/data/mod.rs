//! Images in, model inputs out: decoding (every common format, EXIF orientation, grayscale and
//! alpha handled) and the reference frameworks' preprocessing pipelines, reproduced exactly.

pub mod decode;
pub mod preprocess;
pub mod resize;

pub use decode::{decode_bytes, decode_file};
pub use preprocess::Preset;
