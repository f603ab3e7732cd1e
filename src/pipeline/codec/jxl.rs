//! JPEG XL input, a bare codestream or an ISOBMFF container, decoded by jxl-oxide (pure Rust,
//! no threads of its own: the worker pool is the parallelism).
//!
//! - **Geometry:** jxl-oxide applies the codestream's own orientation field, so the header
//!   reports the *oriented* size and `orientation: 1`, and the pixels have that size. (JPEG XL
//!   says the codestream's orientation wins over any EXIF one, so EXIF is not consulted.)
//! - **Colour:** pixels are rendered to sRGB by jxl-oxide: XYB and enumerated colour spaces
//!   natively, an embedded ICC profile through moxcms; so [`Metadata::icc`] is always `None`.
//!   Grey becomes RGB; 16-bit and float samples are rounded to 8 bits; alpha gives RGBA.
//! - **Frames:** a still reports 1; an animation reports its keyframes, counted by reading the
//!   frame headers and tables of contents (no pixels decoded), and `decode` renders `at.page`.
//! - **Limits:** the probe reads the image header itself, before jxl-oxide sees the bytes, and
//!   refuses a size over `max_source_pixels` or an ICC profile over `MAX_PROFILE_BYTES`.
//!   jxl-oxide then runs under an allocation tracker of `max_decode_bytes` (its pixel grids and
//!   frame data), is fed 64 KiB at a time, and between chunks we check the deadline, the frame
//!   count (every frame, layers and reference frames too, against `max_frames`) and an estimate
//!   of the untracked table-of-contents memory. Only the codestream reaches jxl-oxide: it would
//!   inflate `brob` metadata boxes without a bound.
//!
//! jxl-oxide renders in 32-bit float planes: a 12 MP photo needs about 280 MB of tracked
//! memory (some 24 bytes a pixel), so `max_decode_bytes` caps JPEG XL sources at about that
//! ratio; the deadline is checked before and after rendering, which cannot be interrupted
//! (about 1 s for 12 MP on one core).
//!
//! Not done: progressive or cropped decoding (`at.shrink`/`at.scale` are ignored), XMP, and a
//! Brotli-compressed `brob` box is read for EXIF only.

use std::borrow::Cow;
use std::io::Read;

use jxl_bitstream::Bitstream;
use jxl_oxide::{
    AllocTracker, EnumColourEncoding, ImageHeader, InitializeResult, JxlImage, JxlThreadPool,
    RenderingIntent,
};
use jxl_oxide_common::Bundle;

use super::super::container::{MAX_EXIF_BYTES, MAX_PROFILE_BYTES};
use super::super::{alloc_zeroed, Limits, PipelineError, Pixels};
use super::{Codec, DecodeAt, Header, Metadata};
use crate::format::Format;

pub(crate) const CODEC: Codec = Codec {
    format: Format::Jxl,
    sniff,
    probe,
    decode,
    metadata,
    vector: false,
    // jxl-oxide renders in f32 planes: about 24 B/px tracked (measured at 12 MP).
    decode_bytes_per_pixel: 24,
};

const CODESTREAM: [u8; 2] = [0xFF, 0x0A];
const CONTAINER: [u8; 12] = [
    0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A,
];

/// How much codestream jxl-oxide gets between two of our checks.
const CHUNK: usize = 64 << 10;
/// Memory jxl-oxide keeps per table-of-contents entry outside its allocation tracker (the
/// entry, its group's buffer header, the permutation): an overestimate. A frame may have 65,536
/// entries at 12 bits each, so without this a few MB of frame headers would hold a GB.
const TOC_ENTRY_BYTES: u64 = 128;
/// Most container boxes we walk (a real file has under ten).
const MAX_BOXES: usize = 1 << 12;

/// True for a bare codestream or a JPEG XL container.
pub(crate) fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(&CODESTREAM) || bytes.starts_with(&CONTAINER)
}

/// The oriented size and frame count, from the image header (and, for an animation, the frame
/// headers), refusing a source over `max_source_pixels` before anything is allocated for it.
pub(crate) fn probe(bytes: &[u8], limits: &Limits) -> Result<Header, PipelineError> {
    let codestream = codestream(bytes)?;
    let header = image_header(&codestream, limits)?;
    let frames = if header.metadata.animation.is_some() {
        let image = load(&codestream, limits, usize::MAX)?;
        u32::try_from(image.num_loaded_keyframes()).unwrap_or(u32::MAX)
    } else {
        1
    };
    Ok(Header {
        width: header.width_with_orientation(),
        height: header.height_with_orientation(),
        orientation: 1,
        frames: frames.max(1),
        ..Header::default()
    })
}

/// Frame `at.page` as oriented 8-bit sRGB, RGBA when the image has alpha.
pub(crate) fn decode(
    bytes: &[u8],
    header: &Header,
    at: &DecodeAt,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    let codestream = codestream(bytes)?;
    // Cheap, and this function must be safe on its own: the same checks as the probe.
    image_header(&codestream, limits)?;
    let keyframe = at.page.max(1) as usize - 1;
    let mut image = load(&codestream, limits, keyframe + 1)?;
    if image.num_loaded_keyframes() <= keyframe {
        return Err(PipelineError::Corrupt("truncated JPEG XL frame".into()));
    }
    image.request_color_encoding(EnumColourEncoding::srgb(RenderingIntent::Relative));
    limits.check_deadline()?;
    let render = image
        .render_frame(keyframe)
        .map_err(|e| failure(&*e, header, limits))?;
    limits.check_deadline()?;

    let mut stream = render.stream();
    let (width, height, channels) = (stream.width(), stream.height(), stream.channels() as usize);
    if (width, height) != (header.width, header.height) || !(1..=4).contains(&channels) {
        return Err(PipelineError::Corrupt(format!(
            "JPEG XL frame is {width}x{height}x{channels}, not the header's {}x{}",
            header.width, header.height
        )));
    }
    let alpha = channels % 2 == 0;
    let out_channels = if alpha { 4 } else { 3 };
    let pixels = u64::from(width) * u64::from(height);
    let too_large = PipelineError::DecodeTooLarge {
        width,
        height,
        limit: limits.max_decode_bytes,
    };
    if pixels * out_channels as u64 > limits.max_decode_bytes {
        return Err(too_large);
    }
    let len = |c: usize| usize::try_from(pixels).ok()?.checked_mul(c);
    let mut buf = len(channels)
        .and_then(alloc_zeroed)
        .ok_or(too_large.clone())?;
    if !interleave(&render, width as usize, channels, &mut buf) {
        stream.write_to_buffer::<u8>(&mut buf);
    }
    if channels < 3 {
        // Grey (and grey with alpha): repeat the grey sample into R, G and B.
        let mut rgb = len(out_channels).and_then(alloc_zeroed).ok_or(too_large)?;
        for (from, to) in buf
            .chunks_exact(channels)
            .zip(rgb.chunks_exact_mut(out_channels))
        {
            to[..3].fill(from[0]);
            if let (Some(a), Some(out)) = (from.get(1), to.get_mut(3)) {
                *out = *a;
            }
        }
        buf = rgb;
    }
    Ok(Pixels {
        buf,
        width,
        height,
        alpha,
    })
}

/// The common case written straight from jxl-oxide's planes into `out` (packed samples of
/// the colour channels, then alpha): no orientation, no spot colours, every plane float and
/// exactly the image's size. False for anything else, which then goes through jxl-oxide's
/// general sample stream (several times slower: it maps coordinates and dispatches on the
/// plane type for every sample). Rounds as that stream does.
fn interleave(render: &jxl_oxide::Render, width: usize, channels: usize, out: &mut [u8]) -> bool {
    let (info, extra) = render.extra_channels();
    if render.orientation() != 1 || info.iter().any(|c| c.is_spot_colour() || c.is_black()) {
        return false;
    }
    let alpha = info.iter().position(|c| c.is_alpha());
    let planes = render
        .color_channels()
        .iter()
        .chain(alpha.and_then(|i| extra.get(i)))
        .map(|plane| plane.as_float())
        .collect::<Option<Vec<_>>>();
    let Some(planes) = planes else {
        return false;
    };
    let height = out.len() / (width * channels).max(1);
    if planes.len() != channels
        || planes
            .iter()
            .any(|p| (p.width(), p.height()) != (width, height))
    {
        return false;
    }
    for (y, row) in out.chunks_exact_mut(width * channels).enumerate() {
        for (c, plane) in planes.iter().enumerate() {
            let Some(samples) = plane.try_get_row(y) else {
                return false;
            };
            for (to, v) in row.iter_mut().skip(c).step_by(channels).zip(samples) {
                *to = (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    true
}

/// The container's EXIF block (a TIFF header onwards), plain or Brotli-compressed (`brob`),
/// bounded by `MAX_EXIF_BYTES`. Never an ICC profile: `decode` already renders sRGB.
pub(crate) fn metadata(bytes: &[u8]) -> Metadata {
    Metadata {
        exif: exif(bytes),
        icc: None,
    }
}

/// The codestream: the bytes themselves, the `jxlc` box, or the `jxlp` parts joined.
fn codestream(bytes: &[u8]) -> Result<Cow<'_, [u8]>, PipelineError> {
    if bytes.starts_with(&CODESTREAM) {
        return Ok(Cow::Borrowed(bytes));
    }
    if !bytes.starts_with(&CONTAINER) {
        return Err(PipelineError::Unsupported("not a JPEG XL file".into()));
    }
    let mut parts: Vec<u8> = Vec::new();
    for (kind, payload) in boxes(bytes) {
        match &kind {
            b"jxlc" => return Ok(Cow::Borrowed(payload)),
            b"jxlp" => {
                // A 4-byte index whose top bit marks the last part, then the part.
                let (Some(index), Some(part)) = (payload.get(..4), payload.get(4..)) else {
                    break;
                };
                parts
                    .try_reserve(part.len())
                    .map_err(|_| PipelineError::Corrupt("JPEG XL part too large".into()))?;
                parts.extend_from_slice(part);
                if index.first().is_some_and(|b| b & 0x80 != 0) {
                    break;
                }
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        return Err(PipelineError::Corrupt(
            "JPEG XL container without a codestream".into(),
        ));
    }
    Ok(Cow::Owned(parts))
}

/// The image header, checked against `max_source_pixels`, and the declared size of an
/// embedded ICC profile against `MAX_PROFILE_BYTES` (jxl-oxide allocates it up front, up to
/// 256 MiB, from a few bytes).
fn image_header(codestream: &[u8], limits: &Limits) -> Result<ImageHeader, PipelineError> {
    let mut bits = Bitstream::new(codestream);
    let header = ImageHeader::parse(&mut bits, ())
        .map_err(|e| PipelineError::Corrupt(format!("JPEG XL header: {e}")))?;
    let (width, height) = (header.size.width, header.size.height);
    if u64::from(width) * u64::from(height) > limits.max_source_pixels {
        return Err(PipelineError::SourceTooLarge {
            width,
            height,
            limit: limits.max_source_pixels,
        });
    }
    if header.metadata.colour_encoding.want_icc() {
        let size = bits
            .read_u64()
            .map_err(|e| PipelineError::Corrupt(format!("JPEG XL ICC profile: {e}")))?;
        if size > MAX_PROFILE_BYTES as u64 {
            return Err(PipelineError::MetadataTooLarge {
                what: "ICC profile",
                limit: MAX_PROFILE_BYTES as u64,
            });
        }
    }
    Ok(header)
}

/// jxl-oxide with the codestream fed a chunk at a time until `keyframes` keyframes are loaded
/// (or the codestream ends), checking the limits between chunks.
fn load(codestream: &[u8], limits: &Limits, keyframes: usize) -> Result<JxlImage, PipelineError> {
    let budget = usize::try_from(limits.max_decode_bytes).unwrap_or(usize::MAX);
    let mut uninit = JxlImage::builder()
        .pool(JxlThreadPool::none())
        .alloc_tracker(AllocTracker::with_limit(budget))
        .build_uninit();
    let mut chunks = codestream.chunks(CHUNK);
    let too_large = || PipelineError::DecodeTooLarge {
        width: 0,
        height: 0,
        limit: limits.max_decode_bytes,
    };
    let mut image = loop {
        let chunk = chunks
            .next()
            .ok_or_else(|| PipelineError::Corrupt("truncated JPEG XL header".into()))?;
        uninit.feed_bytes(chunk).map_err(|e| corrupt(&*e))?;
        match uninit.try_init().map_err(|e| loading(&*e, limits))? {
            InitializeResult::NeedMoreData(more) => uninit = more,
            InitializeResult::Initialized(image) => break image,
        }
    };
    let (mut counted, mut toc_bytes, mut area) = (0, 0u64, 0u64);
    loop {
        limits.check_deadline()?;
        let frames = image.num_loaded_frames();
        if frames > limits.max_frames as usize {
            return Err(PipelineError::TooManyFrames {
                limit: limits.max_frames,
            });
        }
        // Count each complete frame's table once; the one still loading is counted in full.
        let toc = |i| {
            image
                .frame(i)
                .map_or(0, |f| f.toc().iter_bitstream_order().count())
        };
        for i in counted..frames {
            toc_bytes += toc(i) as u64 * TOC_ENTRY_BYTES;
            // Layers and reference frames before a keyframe are each rendered and blended
            // (a "still" may hold 1000 full-size layers): their summed area is bounded like
            // an animation's.
            let (w, h) = image
                .frame(i)
                .map_or((0, 0), |f| (f.header().width, f.header().height));
            area = area.saturating_add(u64::from(w) * u64::from(h));
        }
        counted = frames;
        if area > limits.max_animation_pixels.max(limits.max_source_pixels) {
            let size = &image.image_header().size;
            return Err(PipelineError::AnimationTooLarge {
                frames: u32::try_from(frames).unwrap_or(u32::MAX),
                width: size.width,
                height: size.height,
                limit: limits.max_animation_pixels,
            });
        }
        if toc_bytes + toc(frames) as u64 * TOC_ENTRY_BYTES > limits.max_decode_bytes {
            return Err(too_large());
        }
        if image.num_loaded_keyframes() >= keyframes || image.is_loading_done() {
            return Ok(image);
        }
        let Some(chunk) = chunks.next() else {
            return Ok(image);
        };
        image.feed_bytes(chunk).map_err(|e| loading(&*e, limits))?;
    }
}

/// A jxl-oxide error while rendering: its allocation tracker said no (413), or bad data (422).
fn failure(
    e: &(dyn std::error::Error + 'static),
    header: &Header,
    limits: &Limits,
) -> PipelineError {
    if out_of_memory(e) {
        PipelineError::DecodeTooLarge {
            width: header.width,
            height: header.height,
            limit: limits.max_decode_bytes,
        }
    } else {
        corrupt(e)
    }
}

/// [`failure`] for an image whose size is not known yet.
fn loading(e: &(dyn std::error::Error + 'static), limits: &Limits) -> PipelineError {
    failure(e, &Header::default(), limits)
}

fn corrupt(e: &(dyn std::error::Error + 'static)) -> PipelineError {
    PipelineError::Corrupt(format!("JPEG XL: {e}"))
}

/// Whether an error (or one it wraps) is jxl-oxide's allocation tracker refusing. Its crates
/// wrap `jxl_grid::OutOfMemory` in their own enums, so the messages are what they share.
fn out_of_memory(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if text.contains("failed to allocate") || text.contains("out of memory") {
            return true;
        }
        next = e.source();
    }
    false
}

/// The EXIF box's TIFF block: the payload starts with a 4-byte offset to the TIFF header.
fn exif(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.starts_with(&CONTAINER) {
        return None;
    }
    let payload: Cow<'_, [u8]> = boxes(bytes).find_map(|(kind, payload)| match &kind {
        b"Exif" => Some(Cow::Borrowed(payload)),
        b"brob" if payload.starts_with(b"Exif") => inflate(payload.get(4..)?).map(Cow::Owned),
        _ => None,
    })?;
    let offset = u32::from_be_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let tiff = payload.get(offset.checked_add(4)?..)?;
    let valid = tiff.starts_with(b"II*\0") || tiff.starts_with(b"MM\0*");
    (valid && tiff.len() <= MAX_EXIF_BYTES).then(|| tiff.to_vec())
}

/// A Brotli stream inflated to at most `MAX_EXIF_BYTES` plus its offset field.
fn inflate(compressed: &[u8]) -> Option<Vec<u8>> {
    let limit = MAX_EXIF_BYTES as u64 + 4;
    let mut out = Vec::new();
    brotli_decompressor::Decompressor::new(compressed, 4096)
        .take(limit + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= limit).then_some(out)
}

/// ISOBMFF boxes `(type, payload)` in file order, ending quietly at one that runs past the
/// bytes, and after `MAX_BOXES`.
fn boxes(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let head = bytes.get(at..at.checked_add(8)?)?;
        let size = u64::from(u32::from_be_bytes(head.get(..4)?.try_into().ok()?));
        let kind: [u8; 4] = head.get(4..8)?.try_into().ok()?;
        let (start, size) = match size {
            // A 64-bit size follows the type; 0 means "to the end of the file".
            1 => {
                let large = bytes.get(at.checked_add(8)?..at.checked_add(16)?)?;
                (16, u64::from_be_bytes(large.try_into().ok()?))
            }
            0 => (8, (bytes.len() - at) as u64),
            size => (8, size),
        };
        let end = at.checked_add(usize::try_from(size).ok()?)?;
        let payload = bytes.get(at.checked_add(start)?..end)?;
        at = end;
        Some((kind, payload))
    })
    .take(MAX_BOXES)
}

#[cfg(test)]
mod tests;
