//! Decoding with the `image` crate: JPEG (baseline, progressive, CMYK), PNG (8/16-bit, palette,
//! grayscale, alpha), GIF (first frame), BMP, TIFF, WebP. The EXIF orientation is applied,
//! grayscale is expanded to RGB and transparency is composited on white, so every photo becomes
//! the 8-bit RGB image the preprocessing pipelines expect.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use crate::error::{Error, FormatError, Result};

/// The largest image decoded, in pixels: Pillow's `Image.MAX_IMAGE_PIXELS` (89,478,485, about
/// 9459x9459), so a file Pillow opens without a decompression-bomb warning opens here too. A
/// larger one is refused from its header, before any pixel is allocated.
pub const MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// The largest image file read, in bytes (256 MiB; a 89-megapixel JPEG is a few tens of MB).
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

/// Most bytes a decoder may allocate at once (a 16-bit RGBA image at the pixel limit).
const MAX_DECODE_ALLOC: u64 = MAX_IMAGE_PIXELS * 8;

/// Decodes an image file into 8-bit RGB (see the module docs).
pub fn decode_file(path: &Path) -> Result<RgbImage> {
    let bytes = crate::files::read_regular(path, MAX_IMAGE_FILE_BYTES)?;
    decode_bytes(&bytes).map_err(|e| Error::format(format!("{e}")).in_file(path))
}

/// Refuses an image whose header declares more than [`MAX_IMAGE_PIXELS`].
fn check_size(width: u32, height: u32) -> std::result::Result<(), FormatError> {
    let pixels = width as u64 * height as u64;
    if pixels > MAX_IMAGE_PIXELS {
        return Err(FormatError::TooLarge {
            what: format!(
                "the image's pixel count ({width}x{height}; the limit is Pillow's \
                 MAX_IMAGE_PIXELS: downscale the image first)"
            ),
            got: pixels,
            limit: MAX_IMAGE_PIXELS,
        });
    }
    if width == 0 || height == 0 {
        return Err(format!("the image is {width}x{height}").into());
    }
    Ok(())
}

/// Decodes an image held in memory; the format is recognised from its bytes.
pub fn decode_bytes(bytes: &[u8]) -> std::result::Result<RgbImage, FormatError> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(65_535);
    limits.max_image_height = Some(65_535);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let format = reader.format().ok_or("not an image (unknown format)")?;
    if format == image::ImageFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("cannot decode: {e}"))?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    if decoder.total_bytes() > MAX_DECODE_ALLOC {
        return Err(format!(
            "{width}x{height} needs {} bytes to decode, over the limit of {MAX_DECODE_ALLOC}",
            decoder.total_bytes()
        )
        .into());
    }
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode: {e}"))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(to_rgb(img))
}

/// JPEG decoders fill a truncated scan with grey instead of failing; a complete file has its
/// end-of-image marker after the last start-of-scan (entropy-coded data never contains
/// `FF D9`: every `FF` in it is stuffed with a `00`).
fn check_jpeg_complete(bytes: &[u8]) -> std::result::Result<(), FormatError> {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) if eoi > sos => Ok(()),
        _ => Err("truncated JPEG (no end-of-image marker after the image data)".into()),
    }
}

/// 8-bit RGB; transparent pixels are blended onto white.
fn to_rgb(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            // Rounded (c·a + 255·(255 − a)) / 255.
            o[c] = ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}
