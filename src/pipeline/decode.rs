//! Decoding through the `image` crate's pure-Rust decoders (PNG, GIF, WebP, TIFF, BMP, ICO,
//! QOI, PNM, TGA, and JPEG with zune-jpeg), under explicit limits: the codecs in `codec` that
//! have no decoder of their own call this.
//!
//! It produces 8-bit RGB or RGBA only (16-bit is reduced exactly, palettes are expanded), and
//! one frame of an animation (the first, or the `page_` one composed onto the canvas). It does
//! not orient or resize.

use std::io::Cursor;

use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageError, ImageFormat};

use super::codec::Header;
use super::{Limits, PipelineError, Pixels};
use crate::format::Format;

/// The `image` crate's name for `format`, for the formats it decodes for us.
pub(crate) fn image_format(format: Format) -> Option<ImageFormat> {
    Some(match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Gif => ImageFormat::Gif,
        Format::Webp => ImageFormat::WebP,
        Format::Tiff => ImageFormat::Tiff,
        Format::Bmp => ImageFormat::Bmp,
        Format::Ico => ImageFormat::Ico,
        Format::Qoi => ImageFormat::Qoi,
        Format::Pnm => ImageFormat::Pnm,
        Format::Tga => ImageFormat::Tga,
        Format::Avif | Format::Heic | Format::Jxl | Format::Svg => return None,
    })
}

/// `image`'s limits for a source of `header`'s size.
pub(crate) fn image_limits(header: &Header, limits: &Limits) -> image::Limits {
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(header.width);
    image_limits.max_image_height = Some(header.height);
    image_limits.max_alloc = Some(limits.max_decode_bytes);
    image_limits
}

/// The size in `format`'s header, read by `image` without decoding pixels.
pub(crate) fn dimensions(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<(u32, u32), PipelineError> {
    let Some(image_format) = image_format(format) else {
        return Err(PipelineError::Internal(format!(
            "{format}: no image decoder"
        )));
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_decode_bytes);
    reader.limits(image_limits);
    reader
        .into_dimensions()
        .map_err(|e| PipelineError::Corrupt(format!("{format} header: {e}")))
}

/// Decode frame `page` (1-based; 1 for a still) into 8-bit RGB(A).
pub(crate) fn decode(
    bytes: &[u8],
    format: Format,
    probe: &Header,
    page: u32,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    let Some(image_format) = image_format(format) else {
        return Err(PipelineError::Internal(format!(
            "{format}: no image decoder"
        )));
    };
    let image_limits = image_limits(probe, limits);
    let error = |e| match e {
        ImageError::Limits(_) => PipelineError::DecodeTooLarge {
            width: probe.width,
            height: probe.height,
            limit: limits.max_decode_bytes,
        },
        ImageError::Unsupported(e) => PipelineError::Unsupported(format!("{format}: {e}")),
        e => PipelineError::Corrupt(format!("{format}: {e}")),
    };
    let image = if page > 1 {
        nth_frame(bytes, format, page, image_limits).map_err(error)?
    } else {
        let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format);
        reader.limits(image_limits);
        reader.decode().map_err(error)?
    };
    let (width, height) = (image.width(), image.height());
    if (width, height) != (probe.width, probe.height) {
        return Err(PipelineError::Corrupt(format!(
            "{format}: decoded {width}x{height}, header said {}x{}",
            probe.width, probe.height
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

/// Frame `page` (1-based) of an animated GIF or WebP, composed onto the full canvas. The frames
/// before it are decoded (later ones may depend on them) but each is dropped as soon as the
/// next one is made, so at most one canvas and one frame are held.
fn nth_frame(
    bytes: &[u8],
    format: Format,
    page: u32,
    image_limits: image::Limits,
) -> Result<DynamicImage, ImageError> {
    let skip = usize::try_from(page - 1).unwrap_or(usize::MAX);
    let frame = match format {
        Format::Gif => {
            let mut d = image::codecs::gif::GifDecoder::new(Cursor::new(bytes))?;
            d.set_limits(image_limits)?;
            d.into_frames().nth(skip)
        }
        Format::Webp => {
            let mut d = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))?;
            d.set_limits(image_limits)?;
            d.into_frames().nth(skip)
        }
        // `prepare` refuses a page beyond the frame count, and stills have one frame.
        _ => None,
    };
    match frame {
        Some(frame) => Ok(DynamicImage::ImageRgba8(frame?.into_buffer())),
        None => Err(ImageError::Parameter(
            image::error::ParameterError::from_kind(image::error::ParameterErrorKind::Generic(
                format!("the source has no frame {page}"),
            )),
        )),
    }
}
