//! Images in, model inputs out: decoding (every common format, EXIF orientation, grayscale and
//! alpha handled), the reference frameworks' preprocessing pipelines reproduced exactly, class
//! names, and a parallel loader from files and folders to batches.

pub mod decode;
pub mod labels;
pub mod pipeline;
pub mod preprocess;
pub mod resize;

pub use decode::{decode_bytes, decode_file};
pub use labels::{CLASSES_KEY, Labels};
pub use pipeline::{
    Batch, Failure, IMAGE_EXTENSIONS, ImageBatches, collect_images, image_batches, is_image_path,
};
pub use preprocess::{PREPROCESSING_KEY, Preset};
pub use resize::Filter;
