//! Output format choice and encoding (turbojpeg for JPEG, `image`'s PNG encoder, libwebp,
//! rav1e through ravif for AVIF).
//!
//! No metadata is written (EXIF, ICC and XMP of the source are dropped, orientation is already
//! baked into the pixels), except an EXIF block handed to the AVIF encoder for
//! `output.keep_copyright` (`metadata` adds it to the other formats). It does not flatten alpha (the caller does before JPEG).

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

use rgb::FromSlice;

use super::{Accept, Codecs, PipelineError, Pixels};
use crate::format::Format;
use crate::options::FormatChoice;

/// Largest width or height libwebp can encode.
pub(crate) const WEBP_MAX_DIMENSION: u32 = 16383;

/// Largest width or height of an AVIF image (the AV1 frame size fields are 16 bits).
const AVIF_MAX_DIMENSION: u32 = 65536;

/// The output format: the source's own (a still GIF becomes PNG, an animated one stays GIF), a
/// fixed one, or for `f_auto`: an animation as WebP when accepted, else GIF; a still as AVIF
/// when accepted and at most `avif_max_pixels`, else WebP when accepted (and not too large for
/// WebP), else PNG with alpha, else JPEG.
pub(crate) fn choose(
    choice: Option<FormatChoice>,
    source: Format,
    accept: Accept,
    size: (u32, u32),
    alpha: bool,
    avif_max_pixels: u64,
    animated: bool,
) -> Format {
    let webp_fits = size.0 <= WEBP_MAX_DIMENSION && size.1 <= WEBP_MAX_DIMENSION;
    match choice {
        None => match source {
            Format::Gif if !animated => Format::Png,
            f if f.is_output() => f,
            // Input-only formats (HEIC, TIFF, SVG, ...): what a browser shows everywhere.
            _ if alpha => Format::Png,
            _ => Format::Jpeg,
        },
        Some(FormatChoice::Fixed(f)) => f,
        Some(FormatChoice::Lqip) => Format::Webp,
        Some(FormatChoice::Auto) if animated => {
            if accept.webp && webp_fits {
                Format::Webp
            } else {
                Format::Gif
            }
        }
        Some(FormatChoice::Auto) => {
            if accept.avif && u64::from(size.0) * u64::from(size.1) <= avif_max_pixels {
                Format::Avif
            } else if accept.webp && webp_fits {
                Format::Webp
            } else if alpha {
                Format::Png
            } else {
                Format::Jpeg
            }
        }
    }
}

/// Whether `format` can hold an animation (the others get the first frame).
pub(crate) fn animates(format: Format) -> bool {
    matches!(format, Format::Webp | Format::Gif)
}

/// Largest width or height of a GIF (16-bit fields).
pub(crate) const GIF_MAX_DIMENSION: u32 = 65535;

/// GIF quantizer speed (1 = best palette, slowest; 30 = fastest). 10 is what `image` suggests
/// as the balance: NeuQuant looks at every 10th pixel.
pub(crate) const GIF_SPEED: i32 = 10;

/// Encode `img` as `format` (a GIF of one frame for `Gif`). `img` must be RGB when `format` is JPEG.
pub(crate) fn encode(
    img: &Pixels,
    format: Format,
    quality: u8,
    codecs: &Codecs,
    avif_exif: Option<&[u8]>,
) -> Result<Vec<u8>, PipelineError> {
    let avif = &codecs.avif;
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
        Format::Gif => {
            if w > GIF_MAX_DIMENSION || h > GIF_MAX_DIMENSION {
                return Err(PipelineError::OutputTooLarge {
                    width: w,
                    height: h,
                    limit: u64::from(GIF_MAX_DIMENSION) * u64::from(GIF_MAX_DIMENSION),
                });
            }
            let mut out = Vec::new();
            let frame = gif_frame(img, image::Delay::from_numer_denom_ms(0, 1))?;
            let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut out, GIF_SPEED);
            encoder
                .encode_frame(frame)
                .map_err(|e| internal("gif", &e))?;
            drop(encoder);
            Ok(out)
        }
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
            // `encode`/`encode_lossless` unwrap internally; `encode_advanced` returns the error.
            let mut config = webp_config(quality, codecs.webp_effort)?;
            config.alpha_compression = i32::from(config.lossless == 0);
            let memory = encoder
                .encode_advanced(&config)
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
            if !img.alpha && avif_exif.is_none() {
                return avif_aom(buf, w, h, quality, avif.speed).map_err(|e| internal("avif", &e));
            }
            // Alpha, or EXIF to keep: rav1e. 8-bit: as small as 10-bit at equal PSNR here, and
            // 1.3-2x faster to encode. One thread: the worker pool is the parallelism.
            let encoder = ravif::Encoder::new()
                .with_quality(f32::from(quality))
                .with_speed(avif.speed.saturating_add(1).clamp(1, 10))
                .with_bit_depth(ravif::BitDepth::Eight)
                .with_num_threads(Some(1));
            let encoder = match avif_exif {
                Some(exif) => encoder.with_exif(exif),
                None => encoder,
            };
            let encoded = if img.alpha {
                encoder.encode_rgba(ravif::Img::new(buf.as_rgba(), wu, hu))
            } else {
                encoder.encode_rgb(ravif::Img::new(buf.as_rgb(), wu, hu))
            };
            encoded
                .map(|e| e.avif_file)
                .map_err(|e| internal("avif", &e))
        }
        other => Err(internal(other.name(), &"not an output format")),
    }
}

/// libwebp settings for `quality` (lossless at 100) and `method` (0-6; 4 is libwebp's own
/// default), for stills and animations alike.
pub(crate) fn webp_config(quality: u8, method: u8) -> Result<webp::WebPConfig, PipelineError> {
    let mut config = webp::WebPConfig::new()
        .map_err(|()| PipelineError::Internal("webp encode: no config".into()))?;
    config.lossless = i32::from(quality == 100);
    config.quality = f32::from(quality.clamp(1, 100));
    config.method = i32::from(method.min(6));
    Ok(config)
}

/// An opaque AVIF through libaom (libavif's safe API): 8-bit 4:2:0 (as WebP), all-intra at
/// `speed` (aom's cpu-used), constant quality, one thread (the worker pool is the
/// parallelism). `rgb` is exactly `w * h * 3` bytes.
fn avif_aom(rgb: &[u8], w: u32, h: u32, quality: u8, speed: u8) -> Result<Vec<u8>, String> {
    // libavif sizes the RGB buffer in 32-bit arithmetic.
    if u64::from(w) * u64::from(h) * 4 > u64::from(u32::MAX) {
        return Err("image too large".to_owned());
    }
    let pixels = libavif::RgbPixels::new(w, h, rgb).map_err(|e| e.to_string())?;
    let image = pixels.to_image(libavif::YuvFormat::Yuv420);
    let mut encoder = libavif::Encoder::new();
    encoder
        .set_max_threads(1)
        .set_speed(speed.clamp(1, 10))
        .set_quality(quality);
    let encoded = encoder.encode(&image).map_err(|e| e.to_string())?;
    Ok(encoded.to_vec())
}

/// One GIF frame of `img` (RGB is given an opaque alpha channel; GIF keeps 1-bit alpha).
pub(crate) fn gif_frame(img: &Pixels, delay: image::Delay) -> Result<image::Frame, PipelineError> {
    let rgba = if img.alpha {
        img.buf.clone()
    } else {
        let mut v = Vec::new();
        v.try_reserve_exact(img.buf.len() / 3 * 4)
            .map_err(|_| PipelineError::Internal("gif encode: out of memory".into()))?;
        for px in img.buf.chunks_exact(3) {
            v.extend_from_slice(&[px[0], px[1], px[2], 255]);
        }
        v
    };
    let buffer = image::RgbaImage::from_raw(img.width, img.height, rgba)
        .ok_or_else(|| PipelineError::Internal("gif encode: buffer smaller than image".into()))?;
    Ok(image::Frame::from_parts(buffer, 0, 0, delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_animation_keeps_an_animated_format() {
        let a = Accept::default();
        let webp = Accept {
            webp: true,
            avif: true,
        };
        let auto = Some(FormatChoice::Auto);
        assert_eq!(
            choose(None, Format::Gif, a, (10, 10), true, 0, true),
            Format::Gif
        );
        assert_eq!(
            choose(auto, Format::Gif, webp, (10, 10), true, 9, true),
            Format::Webp
        );
        assert_eq!(
            choose(auto, Format::Gif, a, (10, 10), true, 9, true),
            Format::Gif
        );
        let gif = Some(FormatChoice::Fixed(Format::Gif));
        assert_eq!(
            choose(gif, Format::Jpeg, a, (10, 10), false, 0, false),
            Format::Gif
        );
        assert!(animates(Format::Webp) && animates(Format::Gif));
        assert!(!animates(Format::Png) && !animates(Format::Avif) && !animates(Format::Jpeg));
    }

    #[test]
    fn choose_source_format_gif_becomes_png() {
        let a = Accept::default();
        assert_eq!(
            choose(None, Format::Gif, a, (10, 10), true, 0, false),
            Format::Png
        );
        assert_eq!(
            choose(None, Format::Webp, a, (10, 10), false, 0, false),
            Format::Webp
        );
        assert_eq!(
            choose(
                Some(FormatChoice::Fixed(Format::Jpeg)),
                Format::Png,
                a,
                (10, 10),
                true,
                0,
                false
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
            choose(auto, Format::Jpeg, yes, (10, 10), false, 0, false),
            Format::Webp
        );
        assert_eq!(
            choose(auto, Format::Jpeg, no, (10, 10), true, 0, false),
            Format::Png
        );
        assert_eq!(
            choose(auto, Format::Png, no, (10, 10), false, 0, false),
            Format::Jpeg
        );
        assert_eq!(
            choose(auto, Format::Jpeg, yes, (20000, 10), false, 0, false),
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
            choose(auto, Format::Jpeg, all, (100, 100), false, max, false),
            Format::Avif
        );
        assert_eq!(
            choose(auto, Format::Jpeg, all, (101, 100), false, max, false),
            Format::Webp
        );
        assert_eq!(
            choose(auto, Format::Png, avif_only, (100, 100), true, max, false),
            Format::Avif
        );
        assert_eq!(
            choose(auto, Format::Png, avif_only, (101, 100), true, max, false),
            Format::Png
        );
        assert_eq!(
            choose(auto, Format::Jpeg, all, (100, 100), false, 0, false),
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
                max,
                false
            ),
            Format::Avif
        );
    }
}
