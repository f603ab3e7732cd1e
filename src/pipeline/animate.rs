//! Animated output: every frame of an animated GIF or WebP source is decoded (composed onto
//! the canvas by `image`'s animation decoders), shaped exactly like a still (crop, resize, ICC,
//! orient, filters, pad: [`Shaper`]) and encoded as an animated WebP (libwebp's animation
//! encoder, which stores only what changed between frames) or an animated GIF (`image`'s
//! encoder, a NeuQuant palette per frame), keeping each frame's duration. Loops forever.
//!
//! Memory: the decoder holds one source canvas and one frame; GIF frames are encoded as they
//! come; libwebp's encoder needs every shaped (output-sized) frame at once, bounded by
//! `limits.max_animation_pixels` on the output side as the source side is in `probe`.

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, Delay, ImageError};

use super::encode::{self, GIF_SPEED, WEBP_MAX_DIMENSION};
use super::probe::Probe;
use super::{Limits, PipelineError, Pixels, Shaper};
use crate::format::Format;

/// An encoded animation.
pub(crate) struct Animation {
    pub bytes: Vec<u8>,
    pub frames: u32,
    /// Some frame has a pixel that is not opaque.
    pub alpha: bool,
    /// The first shaped frame, when asked for (the `/meta` summary is made from it).
    pub first: Option<Pixels>,
}

/// Decode every frame of `bytes`, shape it with `shaper`, and encode them all as `format`
/// (WebP or GIF) at `quality`.
/// Whether sources in `format` can be kept animated (the others give one frame).
pub(crate) fn reads(format: Format) -> bool {
    matches!(format, Format::Gif | Format::Webp)
}

pub(crate) fn render(
    bytes: &[u8],
    probe: &Probe,
    shaper: &Shaper<'_>,
    format: Format,
    quality: u8,
    limits: &Limits,
    keep_first: bool,
) -> Result<Animation, PipelineError> {
    let (cw, ch) = shaper.plan.canvas;
    let out_pixels = u64::from(probe.frames)
        .saturating_mul(u64::from(cw))
        .saturating_mul(u64::from(ch));
    if out_pixels > limits.max_animation_pixels {
        return Err(PipelineError::AnimationTooLarge {
            frames: probe.frames,
            width: cw,
            height: ch,
            limit: limits.max_animation_pixels,
        });
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(probe.width);
    image_limits.max_image_height = Some(probe.height);
    image_limits.max_alloc = Some(limits.max_decode_bytes);
    let error = |e: ImageError| match e {
        ImageError::Limits(_) => PipelineError::DecodeTooLarge {
            width: probe.width,
            height: probe.height,
            limit: limits.max_decode_bytes,
        },
        e => PipelineError::Corrupt(format!("{}: {e}", probe.format)),
    };
    let frames = match probe.format {
        Format::Gif => {
            let mut d = GifDecoder::new(Cursor::new(bytes)).map_err(error)?;
            image::ImageDecoder::set_limits(&mut d, image_limits).map_err(error)?;
            d.into_frames()
        }
        Format::Webp => {
            let mut d = WebPDecoder::new(Cursor::new(bytes)).map_err(error)?;
            image::ImageDecoder::set_limits(&mut d, image_limits).map_err(error)?;
            d.into_frames()
        }
        f => {
            return Err(PipelineError::Internal(format!(
                "{f} has no animation decoder"
            )))
        }
    };
    // Each frame shaped as it is decoded: (pixels, duration in ms).
    let shaped = frames.take(limits.max_frames as usize).map(|frame| {
        limits.check_deadline()?;
        let frame = frame.map_err(error)?;
        let (numer, denom) = frame.delay().numer_denom_ms();
        let duration = numer.checked_div(denom).unwrap_or(0);
        let buffer = frame.into_buffer();
        let (width, height) = buffer.dimensions();
        if (width, height) != (probe.width, probe.height) {
            return Err(PipelineError::Corrupt(format!(
                "{}: frame of {width}x{height} on a {}x{} canvas",
                probe.format, probe.width, probe.height
            )));
        }
        let pixels = Pixels {
            buf: buffer.into_raw(),
            width,
            height,
            alpha: true,
        };
        Ok((shaper.shape(pixels)?, duration))
    });
    let mut alpha = false;
    let shaped = shaped.inspect(|frame| {
        if let Ok((p, _)) = frame {
            alpha = alpha || (p.alpha && p.buf.chunks_exact(4).any(|px| px[3] != 255));
        }
    });
    let mut animation = match format {
        Format::Gif => gif(shaped, (cw, ch), keep_first),
        Format::Webp => webp(shaped, (cw, ch), quality, keep_first),
        f => Err(PipelineError::Internal(format!(
            "{f} cannot hold an animation"
        ))),
    }?;
    animation.alpha = alpha;
    Ok(animation)
}

type ShapedFrame = Result<(Pixels, u32), PipelineError>;

fn gif(
    frames: impl Iterator<Item = ShapedFrame>,
    size: (u32, u32),
    keep_first: bool,
) -> Result<Animation, PipelineError> {
    if size.0 > encode::GIF_MAX_DIMENSION || size.1 > encode::GIF_MAX_DIMENSION {
        return Err(PipelineError::OutputTooLarge {
            width: size.0,
            height: size.1,
            limit: u64::from(encode::GIF_MAX_DIMENSION).pow(2),
        });
    }
    let internal = |e: ImageError| PipelineError::Internal(format!("gif encode: {e}"));
    let mut bytes = Vec::new();
    let mut first = None;
    let mut count = 0u32;
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, GIF_SPEED);
        encoder.set_repeat(Repeat::Infinite).map_err(internal)?;
        for frame in frames {
            let (pixels, duration) = frame?;
            let delay = Delay::from_numer_denom_ms(duration, 1);
            encoder
                .encode_frame(encode::gif_frame(&pixels, delay)?)
                .map_err(internal)?;
            if keep_first && first.is_none() {
                first = Some(pixels);
            }
            count += 1;
        }
    }
    Ok(Animation {
        bytes,
        frames: count,
        alpha: false,
        first,
    })
}

fn webp(
    frames: impl Iterator<Item = ShapedFrame>,
    size: (u32, u32),
    quality: u8,
    keep_first: bool,
) -> Result<Animation, PipelineError> {
    if size.0 > WEBP_MAX_DIMENSION || size.1 > WEBP_MAX_DIMENSION {
        return Err(PipelineError::OutputTooLarge {
            width: size.0,
            height: size.1,
            limit: u64::from(WEBP_MAX_DIMENSION).pow(2),
        });
    }
    // libwebp's animation encoder takes RGBA frames, all alive until it assembles the file.
    let mut shaped: Vec<(Vec<u8>, u32)> = Vec::new();
    for frame in frames {
        let (pixels, duration) = frame?;
        let rgba = if pixels.alpha {
            pixels.buf
        } else {
            pixels
                .buf
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect()
        };
        shaped.push((rgba, duration));
    }
    let count = u32::try_from(shaped.len()).unwrap_or(u32::MAX);
    let first = match shaped.first() {
        Some((rgba, _)) if keep_first => Some(Pixels {
            buf: rgba.clone(),
            width: size.0,
            height: size.1,
            alpha: true,
        }),
        _ => None,
    };
    // Animations keep libwebp's default method (`output.webp_effort` is for stills).
    let config = encode::webp_config(quality, 4)?;
    let mut encoder = webp::AnimEncoder::new(size.0, size.1, &config);
    encoder.set_loop_count(0);
    let mut timestamp = 0i32;
    for (rgba, duration) in &shaped {
        encoder.add_frame(webp::AnimFrame::from_rgba(rgba, size.0, size.1, timestamp));
        timestamp = timestamp.saturating_add(i32::try_from(*duration).unwrap_or(i32::MAX));
    }
    let memory = encoder
        .try_encode()
        .map_err(|e| PipelineError::Internal(format!("webp encode: {e:?}")))?;
    let mut bytes = memory.to_vec();
    // The `webp` crate never tells libwebp when the last frame ends, so libwebp gives it the
    // average duration: write the real one.
    if let Some((_, last)) = shaped.last() {
        set_last_duration(&mut bytes, *last);
    }
    Ok(Animation {
        bytes,
        frames: count,
        alpha: false,
        first,
    })
}

/// Set the duration (ms, 24 bits) of the last `ANMF` chunk of an animated WebP.
fn set_last_duration(webp: &mut [u8], duration: u32) {
    let mut at = 12; // "RIFF" size "WEBP"
    let mut last = None;
    while let Some(header) = webp.get(at..at + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if &header[..4] == b"ANMF" {
            last = Some(at + 8);
        }
        // Chunks are padded to an even size.
        at = at
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size & 1);
    }
    // ANMF payload: X (3), Y (3), width-1 (3), height-1 (3), duration (3), flags (1).
    if let Some(field) = last.and_then(|payload| webp.get_mut(payload + 12..payload + 15)) {
        let d = duration.min(0xFF_FFFF).to_le_bytes();
        field.copy_from_slice(&d[..3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_last_duration_patches_only_the_last_frame() {
        let anmf = |d: u8| {
            let mut c = b"ANMF".to_vec();
            c.extend(16u32.to_le_bytes());
            c.extend([0, 0, 0, 0, 0, 0, 9, 0, 0, 9, 0, 0, d, 0, 0, 0]);
            c
        };
        let mut file = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        file.extend(10u32.to_le_bytes());
        file.extend([0u8; 10]);
        let first_at = file.len();
        file.extend(anmf(50));
        let last_at = file.len();
        file.extend(anmf(50));
        set_last_duration(&mut file, 0x01_0203);
        assert_eq!(file[first_at + 20..first_at + 23], [50, 0, 0]);
        assert_eq!(file[last_at + 20..last_at + 23], [3, 2, 1]);
        // Garbage is left alone without panicking.
        let mut junk = vec![0xFFu8; 30];
        set_last_duration(&mut junk, 5);
        set_last_duration(&mut [], 5);
    }
}
