//! Decoding of PNG, GIF and WebP through the `image` crate, under explicit limits.
//!
//! It produces 8-bit RGB or RGBA only (16-bit is reduced exactly, palettes are expanded), and
//! only the first frame of an animation. JPEG lives in `jpeg`; it does not orient or resize.

use std::io::Cursor;

use image::{ImageError, ImageFormat};

use super::probe::Probe;
use super::{Limits, PipelineError, Pixels};
use crate::format::Format;

pub(crate) fn image_format(format: Format) -> ImageFormat {
    match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Gif => ImageFormat::Gif,
        Format::Webp => ImageFormat::WebP,
        Format::Avif => ImageFormat::Avif,
    }
}

/// Decode the first frame of a PNG, GIF or WebP into 8-bit RGB(A).
pub(crate) fn decode(
    bytes: &[u8],
    probe: &Probe,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(probe.width);
    image_limits.max_image_height = Some(probe.height);
    image_limits.max_alloc = Some(limits.max_decode_bytes);
    let mut reader =
        image::ImageReader::with_format(Cursor::new(bytes), image_format(probe.format));
    reader.limits(image_limits);
    let image = reader.decode().map_err(|e| match e {
        ImageError::Limits(_) => PipelineError::DecodeTooLarge {
            width: probe.width,
            height: probe.height,
            limit: limits.max_decode_bytes,
        },
        ImageError::Unsupported(e) => PipelineError::Unsupported(format!("{}: {e}", probe.format)),
        e => PipelineError::Corrupt(format!("{}: {e}", probe.format)),
    })?;
    let (width, height) = (image.width(), image.height());
    if (width, height) != (probe.width, probe.height) {
        return Err(PipelineError::Corrupt(format!(
            "{}: decoded {width}x{height}, header said {}x{}",
            probe.format, probe.width, probe.height
        )));
    }
    // `into_rgb8`/`into_rgba8` move the buffer when it already has that layout and convert
    // (exactly, for 16-bit) otherwise.
    let pixels = if image.color().has_alpha() {
        Pixels {
            buf: image.into_rgba8().into_raw(),
            width,
            height,
            alpha: true,
        }
    } else {
        Pixels {
            buf: image.into_rgb8().into_raw(),
            width,
            height,
            alpha: false,
        }
    };
    Ok(pixels)
}
