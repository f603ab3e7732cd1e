//! Output format choice and encoding (turbojpeg for JPEG, `image`'s PNG encoder, libwebp,
//! rav1e through ravif for AVIF).
//!
//! No metadata is ever written: EXIF, ICC and XMP of the source are dropped, and orientation is
//! already baked into the pixels. It does not flatten alpha (the caller does before JPEG).

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

use rgb::FromSlice;

use super::{Accept, AvifSettings, PipelineError, Pixels};
use crate::format::Format;
use crate::options::FormatChoice;

/// Largest width or height libwebp can encode.
pub(crate) const WEBP_MAX_DIMENSION: u32 = 16383;

/// Largest width or height of an AVIF image (the AV1 frame size fields are 16 bits).
const AVIF_MAX_DIMENSION: u32 = 65536;

/// The output format: the source's own (GIF becomes PNG), a fixed one, or for `f_auto` AVIF
/// when accepted and at most `avif_max_pixels`, else WebP when accepted (and not too large for
/// WebP), else PNG with alpha, else JPEG.
pub(crate) fn choose(
    choice: Option<FormatChoice>,
    source: Format,
    accept: Accept,
    size: (u32, u32),
    alpha: bool,
    avif_max_pixels: u64,
) -> Format {
    match choice {
        None => match source {
            Format::Gif => Format::Png,
            f => f,
        },
        Some(FormatChoice::Fixed(Format::Gif)) => Format::Png,
        Some(FormatChoice::Fixed(f)) => f,
        Some(FormatChoice::Lqip) => Format::Webp,
        Some(FormatChoice::Auto) => {
            if accept.avif && u64::from(size.0) * u64::from(size.1) <= avif_max_pixels {
                Format::Avif
            } else if accept.webp && size.0 <= WEBP_MAX_DIMENSION && size.1 <= WEBP_MAX_DIMENSION {
                Format::Webp
            } else if alpha {
                Format::Png
            } else {
                Format::Jpeg
            }
        }
    }
}

/// Encode `img` as `format` (never GIF). `img` must be RGB when `format` is JPEG.
pub(crate) fn encode(
    img: &Pixels,
    format: Format,
    quality: u8,
    avif: &AvifSettings,
) -> Result<Vec<u8>, PipelineError> {
    let quality = quality.clamp(1, 100);
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        PipelineError::Internal(format!("{what} encode: {e}"))
    };
    let (w, h) = (img.width, img.height);
    match format {
        Format::Jpeg => {
            if img.alpha {
                return Err(PipelineError::Internal(
                    "jpeg encode: image still has alpha".into(),
                ));
            }
            let tj = |e: turbojpeg::Error| internal("jpeg", &e);
            let mut c = Compressor::new().map_err(tj)?;
            c.set_quality(i32::from(quality)).map_err(tj)?;
            c.set_subsamp(Subsamp::Sub2x2).map_err(tj)?;
            c.set_optimize(true).map_err(tj)?;
            let (wu, hu) = (w as usize, h as usize);
            if img.buf.len() < wu * hu * 3 {
                return Err(internal("jpeg", &"buffer smaller than image"));
            }
            let image = Image {
                pixels: img.buf.as_slice(),
                width: wu,
                pitch: wu * 3,
                height: hu,
                format: PixelFormat::RGB,
            };
            c.compress_to_vec(image).map_err(tj)
        }
        // `choose` never picks GIF; refusing here keeps `Rendered.format` honest.
        Format::Gif => Err(PipelineError::Internal(
            "gif output is not supported".into(),
        )),
        Format::Png => {
            let mut out = Vec::new();
            let color = if img.alpha {
                ExtendedColorType::Rgba8
            } else {
                ExtendedColorType::Rgb8
            };
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(&img.buf, w, h, color)
                .map_err(|e| internal("png", &e))?;
            Ok(out)
        }
        Format::Webp => {
            if w > WEBP_MAX_DIMENSION || h > WEBP_MAX_DIMENSION {
                return Err(PipelineError::OutputTooLarge {
                    width: w,
                    height: h,
                    limit: u64::from(WEBP_MAX_DIMENSION) * u64::from(WEBP_MAX_DIMENSION),
                });
            }
            let channels = if img.alpha { 4 } else { 3 };
            if img.buf.len() < (w as usize) * (h as usize) * channels {
                return Err(internal("webp", &"buffer smaller than image"));
            }
            let encoder = if img.alpha {
                webp::Encoder::from_rgba(&img.buf, w, h)
            } else {
                webp::Encoder::from_rgb(&img.buf, w, h)
            };
            // `encode`/`encode_lossless` unwrap internally; `encode_simple` returns the error.
            let lossless = quality == 100;
            let memory = encoder
                .encode_simple(lossless, f32::from(quality))
                .map_err(|e| internal("webp", &format!("{e:?}")))?;
            Ok(memory.to_vec())
        }
        Format::Avif => {
            if w > AVIF_MAX_DIMENSION || h > AVIF_MAX_DIMENSION {
                return Err(PipelineError::OutputTooLarge {
                    width: w,
                    height: h,
                    limit: u64::from(AVIF_MAX_DIMENSION) * u64::from(AVIF_MAX_DIMENSION),
                });
            }
            let (wu, hu) = (w as usize, h as usize);
            let channels = if img.alpha { 4 } else { 3 };
            let Some(buf) = img.buf.get(..wu * hu * channels) else {
                return Err(internal("avif", &"buffer smaller than image"));
            };
            // 8-bit: as small as 10-bit at equal PSNR here, and 1.3-2x faster to encode. One
            // thread: the worker pool is the parallelism.
            let encoder = ravif::Encoder::new()
                .with_quality(f32::from(quality))
                .with_speed(avif.speed.clamp(1, 10))
                .with_bit_depth(ravif::BitDepth::Eight)
                .with_num_threads(Some(1));
            let encoded = if img.alpha {
                encoder.encode_rgba(ravif::Img::new(buf.as_rgba(), wu, hu))
            } else {
                encoder.encode_rgb(ravif::Img::new(buf.as_rgb(), wu, hu))
            };
            encoded
                .map(|e| e.avif_file)
                .map_err(|e| internal("avif", &e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_source_format_gif_becomes_png() {
        let a = Accept::default();
        assert_eq!(choose(None, Format::Gif, a, (10, 10), true, 0), Format::Png);
        assert_eq!(
            choose(None, Format::Webp, a, (10, 10), false, 0),
            Format::Webp
        );
        assert_eq!(
            choose(
                Some(FormatChoice::Fixed(Format::Jpeg)),
                Format::Png,
                a,
                (10, 10),
                true,
                0
            ),
            Format::Jpeg
        );
    }

    #[test]
    fn choose_auto_prefers_webp_then_png_for_alpha_then_jpeg() {
        let yes = Accept {
            webp: true,
            avif: false,
        };
        let no = Accept::default();
        let auto = Some(FormatChoice::Auto);
        assert_eq!(
            choose(auto, Format::Jpeg, yes, (10, 10), false, 0),
            Format::Webp
        );
        assert_eq!(
            choose(auto, Format::Jpeg, no, (10, 10), true, 0),
            Format::Png
        );
        assert_eq!(
            choose(auto, Format::Png, no, (10, 10), false, 0),
            Format::Jpeg
        );
        assert_eq!(
            choose(auto, Format::Jpeg, yes, (20000, 10), false, 0),
            Format::Jpeg
        );
    }

    #[test]
    fn choose_auto_prefers_avif_up_to_its_pixel_limit() {
        let all = Accept {
            webp: true,
            avif: true,
        };
        let avif_only = Accept {
            webp: false,
            avif: true,
        };
        let auto = Some(FormatChoice::Auto);
        let max = 100 * 100;
        assert_eq!(
            choose(auto, Format::Jpeg, all, (100, 100), false, max),
            Format::Avif
        );
        assert_eq!(
            choose(auto, Format::Jpeg, all, (101, 100), false, max),
            Format::Webp
        );
        assert_eq!(
            choose(auto, Format::Png, avif_only, (100, 100), true, max),
            Format::Avif
        );
        assert_eq!(
            choose(auto, Format::Png, avif_only, (101, 100), true, max),
            Format::Png
        );
        assert_eq!(
            choose(auto, Format::Jpeg, all, (100, 100), false, 0),
            Format::Webp
        );
        let fixed = Some(FormatChoice::Fixed(Format::Avif));
        assert_eq!(
            choose(
                fixed,
                Format::Jpeg,
                Accept::default(),
                (101, 100),
                false,
                max
            ),
            Format::Avif
        );
    }
}
