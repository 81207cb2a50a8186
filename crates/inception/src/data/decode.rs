//! Decoding with the `image` crate: JPEG (baseline, progressive, CMYK), PNG (8/16-bit, palette,
//! grayscale, alpha), GIF (first frame), BMP, TIFF, WebP. The EXIF orientation is applied,
//! grayscale is expanded to RGB and transparency is composited on white, so every photo becomes
//! the 8-bit RGB image the preprocessing pipelines expect.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::error::{Error, Result};

/// Decodes an image file into 8-bit RGB (see the module docs).
pub fn decode_file(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_bytes(&bytes).map_err(|e| Error::Format(format!("{}: {e}", path.display())))
}

/// Decodes an image held in memory; the format is recognised from its bytes.
pub fn decode_bytes(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let format = reader.format().ok_or("not an image (unknown format)")?;
    if format == image::ImageFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("cannot decode: {e}"))?;
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
fn check_jpeg_complete(bytes: &[u8]) -> std::result::Result<(), String> {
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
