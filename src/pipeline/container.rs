//! Metadata inside PNG and WebP containers, found by walking their chunks ourselves.
//!
//! Every slice handed out here lies inside the bytes we hold: a chunk's declared length is
//! never used to size an allocation, only to find the next chunk, so a header claiming 4 GB
//! costs nothing. The one compressed piece of metadata any decoder inflates eagerly, a PNG's
//! `iCCP` profile, is inflated here with a hard bound ([`MAX_PROFILE_BYTES`]) before any
//! decoder sees the file; a profile that would inflate past it is refused (413), so no
//! decoder ever inflates it without a bound. `zTXt`/`iTXt` are never inflated (png keeps them
//! compressed unless asked, and we never ask); `eXIf` and WebP `ICCP`/`EXIF`/`XMP` are stored,
//! not compressed.

use super::PipelineError;

/// Largest embedded ICC profile we read; real ones are a few hundred bytes to about 1 MB.
pub(crate) const MAX_PROFILE_BYTES: usize = 4 << 20;

/// Largest EXIF block we parse (JPEG's are under 64 KiB by construction).
pub(crate) const MAX_EXIF_BYTES: usize = 1 << 20;

/// Most chunks we look at before giving up on finding metadata (a real file has a few dozen;
/// the walk is cheap, but it is bounded by more than the file size anyway).
const MAX_CHUNKS: usize = 1 << 16;

/// The chunks of a PNG as `(type, data)`, in file order, ending quietly at `IEND`, at the end
/// of the bytes, or at a chunk whose data would run past them.
pub(crate) fn png_chunks(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut at = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        8usize
    } else {
        usize::MAX
    };
    let mut seen = 0usize;
    std::iter::from_fn(move || {
        seen += 1;
        if seen > MAX_CHUNKS {
            return None;
        }
        let len = bytes.get(at..at.checked_add(4)?)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let kind = bytes.get(at + 4..at + 8)?;
        let start = at + 8;
        let data = bytes.get(start..start.checked_add(len)?)?;
        // Data, then a 4-byte CRC.
        at = start + len + 4;
        if kind == b"IEND" {
            at = usize::MAX;
        }
        Some((kind, data))
    })
}

/// Check the metadata chunks of a PNG before any decoder reads them: a malformed palette
/// (png 0.18.1 panics on one whose length is not a multiple of 3), and an `iCCP` profile that
/// inflates past [`MAX_PROFILE_BYTES`] or is not a zlib stream. Returns the inflated profile.
pub(crate) fn png_check(bytes: &[u8]) -> Result<Option<Vec<u8>>, PipelineError> {
    let bad = |why: &str| Err(PipelineError::Corrupt(format!("png: {why}")));
    let mut palette_entries: Option<usize> = None;
    let mut profile = None;
    let mut image_data = false;
    for (kind, data) in png_chunks(bytes) {
        match kind {
            b"PLTE" => {
                let len = data.len();
                if len == 0 || !len.is_multiple_of(3) || len > 256 * 3 {
                    return bad("palette length is not 1 to 256 RGB entries");
                }
                palette_entries = Some(len / 3);
            }
            b"tRNS" if palette_entries.is_some_and(|n| data.len() > n) => {
                return bad("more transparency entries than palette entries");
            }
            b"iCCP" => {
                if profile.is_some() {
                    return bad("more than one iCCP chunk");
                }
                profile = Some(inflate_iccp(data)?);
            }
            // Metadata that matters comes before the image data.
            b"IDAT" => {
                image_data = true;
                break;
            }
            _ => {}
        }
    }
    // A walk that stopped early (too many chunks, or one running past the bytes) has not seen
    // every chunk a decoder would read first, an `iCCP` bomb among them: refuse the file.
    if !image_data {
        return bad("no image data within the first 65536 chunks");
    }
    Ok(profile.flatten())
}

/// An `iCCP` chunk's profile: a keyword, a NUL, compression method 0, then a zlib stream,
/// inflated to at most [`MAX_PROFILE_BYTES`]. An unreadable profile is `None` (like browsers,
/// we then ignore it); one that inflates past the bound is refused.
fn inflate_iccp(data: &[u8]) -> Result<Option<Vec<u8>>, PipelineError> {
    let Some(nul) = data.iter().take(81).position(|&b| b == 0) else {
        return Ok(None);
    };
    let Some((&0, stream)) = data.get(nul + 1..).and_then(<[u8]>::split_first) else {
        return Ok(None);
    };
    match fdeflate::decompress_to_vec_bounded(stream, MAX_PROFILE_BYTES) {
        Ok(profile) => Ok((!profile.is_empty()).then_some(profile)),
        Err(fdeflate::BoundedDecompressionError::OutputTooLarge { .. }) => {
            Err(PipelineError::MetadataTooLarge {
                what: "PNG iCCP profile",
                limit: MAX_PROFILE_BYTES as u64,
            })
        }
        Err(fdeflate::BoundedDecompressionError::DecompressionError { .. }) => Ok(None),
    }
}

/// A PNG's `eXIf` payload (a TIFF block), if it has one of at most [`MAX_EXIF_BYTES`].
pub(crate) fn png_exif(bytes: &[u8]) -> Option<&[u8]> {
    png_chunks(bytes)
        .find(|(kind, _)| *kind == b"eXIf")
        .map(|(_, data)| data)
        .filter(|d| d.len() <= MAX_EXIF_BYTES)
}

/// The data of the first top-level RIFF chunk `fourcc` of a WebP file.
pub(crate) fn webp_chunk<'a>(bytes: &'a [u8], fourcc: &[u8; 4]) -> Option<&'a [u8]> {
    if bytes.get(0..4)? != b"RIFF" || bytes.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut at = 12usize;
    for _ in 0..MAX_CHUNKS {
        let tag = bytes.get(at..at + 4)?;
        let size = bytes.get(at + 4..at + 8)?;
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        let start = at + 8;
        let end = start.checked_add(size)?;
        if tag == fourcc {
            return bytes.get(start..end);
        }
        // Chunks are padded to an even size.
        at = end.checked_add(size & 1)?;
    }
    None
}

/// Check that every VP8/VP8L bitstream in a WebP is exactly as large as the canvas (a still
/// with `VP8X`) or its `ANMF` frame, and every frame lies inside the canvas, before a decoder
/// sizes buffers from the bitstream's own header (image-webp allocates for the bitstream's
/// size first and compares with the canvas afterwards: a 16383² frame in a 1×1 canvas).
pub(crate) fn webp_check(bytes: &[u8]) -> Result<(), PipelineError> {
    let bad = |why: &str| Err(PipelineError::Corrupt(format!("webp: {why}")));
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WEBP") {
        return Ok(());
    }
    let mut canvas: Option<(u32, u32)> = None;
    for (kind, data) in riff_chunks(bytes, 12) {
        match kind {
            b"VP8X" => {
                let (Some(w), Some(h)) = (u24(data, 4), u24(data, 7)) else {
                    return bad("short VP8X chunk");
                };
                canvas = Some((w + 1, h + 1));
            }
            b"VP8 " | b"VP8L" => {
                let Some(size) = bitstream_size(kind, data) else {
                    return bad("unreadable bitstream header");
                };
                if canvas.is_some_and(|c| c != size) {
                    return bad("bitstream size differs from the canvas");
                }
            }
            b"ANMF" => {
                let Some(c) = canvas else {
                    return bad("ANMF without VP8X");
                };
                let (Some(x), Some(y), Some(w), Some(h)) =
                    (u24(data, 0), u24(data, 3), u24(data, 6), u24(data, 9))
                else {
                    return bad("short ANMF chunk");
                };
                let (x, y, w, h) = (u64::from(x) * 2, u64::from(y) * 2, w + 1, h + 1);
                if x + u64::from(w) > u64::from(c.0) || y + u64::from(h) > u64::from(c.1) {
                    return bad("frame outside the canvas");
                }
                for (kind, frame) in riff_chunks(data.get(16..).unwrap_or(&[]), 0) {
                    let bitstream = kind == b"VP8 " || kind == b"VP8L";
                    if bitstream && bitstream_size(kind, frame) != Some((w, h)) {
                        return bad("frame bitstream size differs from its frame");
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// RIFF chunks `(fourcc, data)` from `at`, bounded by the bytes and by [`MAX_CHUNKS`].
fn riff_chunks(bytes: &[u8], mut at: usize) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut seen = 0usize;
    std::iter::from_fn(move || {
        seen += 1;
        if seen > MAX_CHUNKS {
            return None;
        }
        let tag = bytes.get(at..at.checked_add(4)?)?;
        let size = bytes.get(at + 4..at + 8)?;
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        let start = at + 8;
        let end = start.checked_add(size)?;
        let data = bytes.get(start..end)?;
        at = end.checked_add(size & 1)?;
        Some((tag, data))
    })
}

fn u24(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 3)?;
    Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

/// Width and height a VP8 (lossy key frame) or VP8L (lossless) bitstream declares.
fn bitstream_size(kind: &[u8], data: &[u8]) -> Option<(u32, u32)> {
    if kind == b"VP8 " {
        if data.get(3..6)? != [0x9d, 0x01, 0x2a] {
            return None;
        }
        let w = u32::from(u16::from_le_bytes([*data.get(6)?, *data.get(7)?]) & 0x3fff);
        let h = u32::from(u16::from_le_bytes([*data.get(8)?, *data.get(9)?]) & 0x3fff);
        Some((w, h))
    } else {
        if *data.first()? != 0x2f {
            return None;
        }
        let bits = u32::from_le_bytes(data.get(1..5)?.try_into().ok()?);
        Some((1 + (bits & 0x3fff), 1 + ((bits >> 14) & 0x3fff)))
    }
}

/// A WebP's `EXIF` chunk as a TIFF block (some writers put JPEG's `Exif\0\0` in front).
pub(crate) fn webp_exif(bytes: &[u8]) -> Option<&[u8]> {
    let data = webp_chunk(bytes, b"EXIF")?;
    let data = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
    (data.len() <= MAX_EXIF_BYTES).then_some(data)
}

/// A WebP's `ICCP` profile, if it has one of at most [`MAX_PROFILE_BYTES`].
pub(crate) fn webp_profile(bytes: &[u8]) -> Option<&[u8]> {
    webp_chunk(bytes, b"ICCP").filter(|p| !p.is_empty() && p.len() <= MAX_PROFILE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 4]);
        out
    }

    fn png_with(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
        for c in chunks {
            out.extend_from_slice(c);
        }
        out.extend(chunk(b"IDAT", &[]));
        out.extend(chunk(b"IEND", &[]));
        out
    }

    /// A zlib stream of `data` (stored blocks: no compressor needed in the test).
    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = data.chunks(65535).collect();
        for (i, b) in blocks.iter().enumerate() {
            out.push(u8::from(i + 1 == blocks.len()));
            let n = b.len() as u16;
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&(!n).to_le_bytes());
            out.extend_from_slice(b);
        }
        if blocks.is_empty() {
            out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        out.extend_from_slice(&((b << 16) | a).to_be_bytes());
        out
    }

    #[test]
    fn png_profile_is_inflated_and_returned() {
        let mut iccp = b"icc\0\0".to_vec();
        iccp.extend(zlib(b"profile bytes"));
        let png = png_with(&[chunk(b"iCCP", &iccp)]);
        assert_eq!(png_check(&png), Ok(Some(b"profile bytes".to_vec())));
    }

    #[test]
    fn png_profile_over_the_bound_is_refused_without_inflating_it_all() {
        let mut iccp = b"icc\0\0".to_vec();
        iccp.extend(zlib(&vec![0u8; MAX_PROFILE_BYTES + 1]));
        let png = png_with(&[chunk(b"iCCP", &iccp)]);
        assert!(matches!(
            png_check(&png),
            Err(PipelineError::MetadataTooLarge { .. })
        ));
    }

    #[test]
    fn png_chunks_never_run_past_the_bytes() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&u32::MAX.to_be_bytes());
        png.extend_from_slice(b"iCCP");
        png.extend_from_slice(&[1, 2, 3]);
        assert_eq!(png_chunks(&png).count(), 0);
        assert!(png_check(&png).is_err(), "no image data reached");
        // A broken profile is ignored, not an error.
        let png = png_with(&[chunk(b"iCCP", b"icc\0\0not zlib")]);
        assert_eq!(png_check(&png), Ok(None));
    }

    #[test]
    fn png_profile_behind_more_chunks_than_the_walk_reads_is_refused() {
        // 65 536 empty chunks, then an iCCP bomb: the walk must not stop quietly and let a
        // decoder inflate the profile.
        let mut chunks = vec![chunk(b"tEXt", &[]); MAX_CHUNKS];
        let mut iccp = b"icc\0\0".to_vec();
        iccp.extend(zlib(&vec![0u8; MAX_PROFILE_BYTES + 1]));
        chunks.push(chunk(b"iCCP", &iccp));
        let png = png_with(&chunks);
        assert!(png_check(&png).is_err());
    }

    fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (kind, data) in chunks {
            body.extend_from_slice(*kind);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend(body);
        out
    }

    fn vp8x(w: u32, h: u32) -> Vec<u8> {
        let mut d = vec![0u8; 4];
        d.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        d.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        d
    }

    fn vp8l(w: u32, h: u32) -> Vec<u8> {
        let bits = (w - 1) | (h - 1) << 14;
        let mut d = vec![0x2f];
        d.extend_from_slice(&bits.to_le_bytes());
        d
    }

    #[test]
    fn webp_bitstream_larger_than_its_canvas_is_refused() {
        let ok = riff(&[(b"VP8X", vp8x(16, 8)), (b"VP8L", vp8l(16, 8))]);
        assert_eq!(webp_check(&ok), Ok(()));
        let bomb = riff(&[(b"VP8X", vp8x(1, 1)), (b"VP8L", vp8l(16383, 16383))]);
        assert!(webp_check(&bomb).is_err());
        // A simple file (no VP8X) has the bitstream's size as its canvas.
        assert_eq!(webp_check(&riff(&[(b"VP8L", vp8l(100, 100))])), Ok(()));
    }

    #[test]
    fn webp_animation_frames_must_fit_their_frame_and_the_canvas() {
        let anmf = |x: u32, w: u32, h: u32, bw: u32, bh: u32| {
            let mut d = Vec::new();
            for v in [x, 0, w - 1, h - 1, 100] {
                d.extend_from_slice(&v.to_le_bytes()[..3]);
            }
            d.push(0);
            d.extend_from_slice(b"VP8L");
            let bits = vp8l(bw, bh);
            d.extend_from_slice(&(bits.len() as u32).to_le_bytes());
            d.extend(bits);
            d.push(0);
            d
        };
        let file = |frame: Vec<u8>| riff(&[(b"VP8X", vp8x(32, 32)), (b"ANMF", frame)]);
        assert_eq!(webp_check(&file(anmf(0, 32, 32, 32, 32))), Ok(()));
        assert!(webp_check(&file(anmf(0, 32, 32, 4000, 4000))).is_err());
        assert!(
            webp_check(&file(anmf(8, 32, 32, 32, 32))).is_err(),
            "x = 16 + 32 > 32"
        );
    }

    #[test]
    fn webp_chunks_are_found_and_bounded_by_the_bytes() {
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        webp.extend_from_slice(&10u32.to_le_bytes());
        webp.extend_from_slice(&[0; 10]);
        webp.extend_from_slice(b"ICCP");
        webp.extend_from_slice(&3u32.to_le_bytes());
        webp.extend_from_slice(b"abc\0");
        webp.extend_from_slice(b"EXIF");
        webp.extend_from_slice(&u32::MAX.to_le_bytes());
        webp.extend_from_slice(b"MM");
        assert_eq!(webp_profile(&webp), Some(&b"abc"[..]));
        assert_eq!(webp_exif(&webp), None);
    }
}
