//! Counting animation frames from the container, without decoding any of them: GIF image
//! descriptors and WebP `ANMF` chunks. Used to refuse sources with more frames than
//! `limits.max_frames` before any work is spent on them. Stops counting past the limit, so the
//! cost is at most one pass over the bytes. A truncated file counts the frames it has.

use crate::format::Format;

/// Frames in `bytes`, counting at most `stop_after + 1`.
pub(crate) fn count(bytes: &[u8], format: Format, stop_after: u32) -> u32 {
    match format {
        Format::Gif => gif(bytes, stop_after),
        Format::Webp => webp(bytes, stop_after),
        _ => 1,
    }
}

/// Pixels of the largest frame of a GIF (its image descriptors may be larger than the
/// logical screen, and a decoder allocates for the frame, not the screen), looking at no more
/// than `stop_after + 1` frames.
pub(crate) fn gif_largest_frame(bytes: &[u8], stop_after: u32) -> u64 {
    let mut largest = 0u64;
    gif_walk(bytes, stop_after, |w, h, _| {
        largest = largest.max(u64::from(w) * u64::from(h));
    });
    largest
}

fn gif(b: &[u8], stop_after: u32) -> u32 {
    gif_walk(b, stop_after, |_, _, _| {})
}

/// Whether a frame of a GIF without a global colour table has no local one either (looking
/// at the first 1000 frames).
pub(crate) fn gif_frame_without_palette(bytes: &[u8]) -> bool {
    let mut missing = false;
    gif_walk(bytes, 1000, |_, _, local_flags| {
        missing |= local_flags & 0x80 == 0;
    });
    missing
}

/// Walk a GIF's blocks, calling `frame(width, height, flags)` for each image descriptor.
fn gif_walk(b: &[u8], stop_after: u32, mut frame: impl FnMut(u32, u32, u8)) -> u32 {
    // Header (6) + logical screen descriptor (7), then the global colour table if present.
    let Some(&flags) = b.get(10) else { return 0 };
    let mut at = 13 + colour_table(flags);
    let mut frames = 0u32;
    while frames <= stop_after {
        match b.get(at) {
            // Image descriptor: 9 bytes after the separator, a local colour table, the LZW
            // minimum code size, then data sub-blocks.
            Some(0x2C) => {
                frames += 1;
                let Some(&local) = b.get(at + 9) else { break };
                let le = |i: usize| u32::from(b[at + i]) | (u32::from(b[at + i + 1]) << 8);
                frame(le(5), le(7), local);
                at += 10 + colour_table(local) + 1;
                at = skip_sub_blocks(b, at);
            }
            // Extension: label, then sub-blocks.
            Some(0x21) => at = skip_sub_blocks(b, at + 2),
            // Trailer, garbage or end of data.
            _ => break,
        }
    }
    frames
}

fn colour_table(flags: u8) -> usize {
    if flags & 0x80 != 0 {
        3 << ((flags & 0x07) + 1)
    } else {
        0
    }
}

/// Skip a chain of sub-blocks (length byte + data) ending with a zero length.
fn skip_sub_blocks(b: &[u8], mut at: usize) -> usize {
    while let Some(&len) = b.get(at) {
        at += 1;
        if len == 0 {
            return at;
        }
        at += usize::from(len);
    }
    usize::MAX
}

fn webp(b: &[u8], stop_after: u32) -> u32 {
    let mut at = 12; // "RIFF" size "WEBP"
    let mut frames = 0u32;
    let mut animated = false;
    while frames <= stop_after {
        let (Some(tag), Some(size)) = (b.get(at..at + 4), b.get(at + 4..at + 8)) else {
            break;
        };
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        match tag {
            b"ANMF" => {
                animated = true;
                frames += 1;
            }
            b"ANIM" => animated = true,
            _ => {}
        }
        // Chunks are padded to an even size.
        at = at
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size & 1);
    }
    if animated {
        frames
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gif_with(frames: usize) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            let frame = image::RgbaImage::from_pixel(4, 4, image::Rgba([1, 2, 3, 255]));
            let frames = (0..frames).map(|i| {
                let mut f = frame.clone();
                f.put_pixel(0, 0, image::Rgba([i as u8, 0, 0, 255]));
                image::Frame::new(f)
            });
            enc.encode_frames(frames).unwrap_or_else(|e| panic!("{e}"));
        }
        out
    }

    #[test]
    fn frames_gif_largest_frame_reads_the_descriptors() {
        // 1x1 screen, no colour table, one 300x200 image descriptor.
        let mut g = b"GIF89a\x01\0\x01\0\0\0\0".to_vec();
        g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 0x2C, 0x01, 0xC8, 0, 0, 2, 0]);
        assert_eq!(gif_largest_frame(&g, 10), 300 * 200);
        assert_eq!(gif_largest_frame(&gif_with(3), 10), 16);
    }

    #[test]
    fn frames_gif_counts_image_descriptors() {
        assert_eq!(count(&gif_with(1), Format::Gif, 100), 1);
        assert_eq!(count(&gif_with(7), Format::Gif, 100), 7);
        // Stops one past the limit.
        assert_eq!(count(&gif_with(50), Format::Gif, 3), 4);
        let fixture = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/animated-480x300.gif"
        ));
        assert_eq!(count(&fixture.unwrap_or_default(), Format::Gif, 100), 5);
    }

    #[test]
    fn frames_webp_still_image_is_one_and_garbage_never_panics() {
        let still = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lossy-2560x1600.webp"
        ));
        assert_eq!(count(&still.unwrap_or_default(), Format::Webp, 100), 1);
        let mut anim = b"RIFF\0\0\0\0WEBPANIM\x06\0\0\0\0\0\0\0\0\0".to_vec();
        for _ in 0..5 {
            anim.extend_from_slice(b"ANMF\x02\0\0\0xx");
        }
        assert_eq!(count(&anim, Format::Webp, 100), 5);
        for n in 0..anim.len() {
            let _ = count(&anim[..n], Format::Webp, 100);
        }
        let g = gif_with(3);
        for n in 0..g.len() {
            assert!(count(&g[..n], Format::Gif, 100) <= 3);
        }
    }
}
