//! HEIF input: HEIC (HEVC images, iPhone photos) and AVIF (AV1 images), decoded by libheif
//! (vendored 1.23, C++) with Debian's libde265 (HEVC) and dav1d (AV1).
//!
//! What it does: sniff both from the `ftyp` brands; probe the primary image's size through
//! libheif without decoding; decode the primary image (a still, or the primary item of an
//! animated `avis`) to 8-bit RGB(A) with libheif applying `irot`/`imir`/`clap` itself, so
//! [`Header`] carries the transformed size and orientation 1; hand out the EXIF block and the
//! colour profile (an embedded ICC profile, or one built from a wide-gamut `nclx`).
//!
//! What it does not: decode any item coded with something other than HEVC or AV1 (libheif also
//! has a JPEG decoder in this build, since Debian's libjpeg-dev is on the machine: our own
//! walk of the item table refuses such files before libheif decodes anything), apply EXIF
//! orientation (HEIF makes `irot`/`imir` authoritative; the EXIF tag is informational), tone
//! map PQ/HLG HDR images (their pixels are passed on as they are), read sequences' frames past
//! the primary image, or decode at a reduced scale (`DecodeAt` is ignored).
//!
//! Limits: our walk bounds items and grid tiles; libheif's own security limits are set from
//! [`Limits`] before it reads a byte; the primary image's size is checked against
//! `max_source_pixels` in `probe`, and the bytes a decode needs against `max_decode_bytes`
//! before decoding.

use std::sync::OnceLock;

use libheif_rs::{
    ColorSpace, DecodingOptions, HeifContext, HeifError, HeifErrorSubCode, ImageHandle, LibHeif,
    RgbChroma, SecurityLimits,
};
use moxcms::{CicpColorPrimaries, CicpProfile, ColorProfile, MatrixCoefficients};

use super::super::container::{MAX_EXIF_BYTES, MAX_PROFILE_BYTES};
use super::super::{alloc_zeroed, Limits, PipelineError, Pixels};
use super::{Codec, DecodeAt, Header, Metadata};
use crate::format::Format;

/// HEIF with AV1 images.
pub(crate) const AVIF: Codec = Codec {
    format: Format::Avif,
    sniff: sniff_avif,
    probe,
    decode,
    metadata,
    vector: false,
    // YCbCr planes (up to 16-bit 4:4:4 with alpha) and the RGB(A) image libheif converts to,
    // then our 8-bit copy.
    decode_bytes_per_pixel: 16,
};

/// HEIF with HEVC images (iPhone photos).
pub(crate) const HEIC: Codec = Codec {
    format: Format::Heic,
    sniff: sniff_heic,
    ..AVIF
};

/// Most items (images, tiles, metadata) a file may declare; an iPhone 48 MP photo has ~200.
const MAX_ITEMS: usize = 4096;
/// Most tiles a grid image may have; each is a separate HEVC/AV1 decode.
const MAX_TILES: usize = 1024;
/// Most boxes read at one level of our own container walk (an `iinf` holds one per item).
const MAX_BOXES: usize = MAX_ITEMS + 64;

/// Item types we let libheif see: HEVC and AV1 coded images, the derivations built from them
/// (grid, identity, overlay, tone-map), and metadata. Anything else (JPEG, JPEG 2000,
/// uncompressed, AVC, VVC, masks) is refused before libheif reads the file.
/// Overlays (`iovl`) are refused: their canvas size says nothing about what they decode.
const ITEM_TYPES: [&[u8; 4]; 9] = [
    b"hvc1", b"av01", b"grid", b"iden", b"tmap", b"Exif", b"mime", b"uri ", b"rgan",
];

/// True when the bytes start with an HEIF `ftyp` we read (HEIC or AVIF).
#[cfg(test)]
fn sniff(bytes: &[u8]) -> bool {
    kind(bytes).is_some()
}

/// True for an HEIF file whose images are AV1 (`avif`/`avis` brands, or `mif1` with an AV1
/// primary item).
pub(crate) fn sniff_avif(bytes: &[u8]) -> bool {
    kind(bytes) == Some(Kind::Avif)
}

/// True for an HEIF file whose images are HEVC (`heic`-family brands, or `mif1`/`msf1` without
/// an AV1 primary item).
pub(crate) fn sniff_heic(bytes: &[u8]) -> bool {
    kind(bytes) == Some(Kind::Heic)
}

/// The primary image's size as displayed (after `irot`/`imir`/`clap`), without decoding.
pub(crate) fn probe(bytes: &[u8], limits: &Limits) -> Result<Header, PipelineError> {
    let ctx = open(bytes, limits)?;
    let handle = primary(&ctx)?;
    let (width, height) = (handle.width(), handle.height());
    let ispe = (
        u32::try_from(handle.ispe_width()).unwrap_or(0),
        u32::try_from(handle.ispe_height()).unwrap_or(0),
    );
    for (w, h) in [(width, height), ispe] {
        if u64::from(w) * u64::from(h) > limits.max_source_pixels {
            return Err(PipelineError::SourceTooLarge {
                width: w,
                height: h,
                limit: limits.max_source_pixels,
            });
        }
    }
    if width == 0 || height == 0 {
        return Err(PipelineError::Corrupt("HEIF image of zero size".into()));
    }
    Ok(Header {
        width,
        height,
        orientation: 1,
        frames: 1,
        // A `clap` crop shows less than is decoded: the coded size is what memory is held for.
        frame_pixels: u64::from(ispe.0) * u64::from(ispe.1),
        jpeg: None,
    })
}

/// The primary image as 8-bit RGB, or RGBA when it has an alpha plane, `header.width` x
/// `header.height`, transforms applied. `at` is ignored: libheif decodes at full size only.
pub(crate) fn decode(
    bytes: &[u8],
    header: &Header,
    _at: &DecodeAt,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    let ctx = open(bytes, limits)?;
    let handle = primary(&ctx)?;
    let (width, height) = (header.width, header.height);
    if (handle.width(), handle.height()) != (width, height) {
        return Err(PipelineError::Internal(
            "HEIF header does not match its file".into(),
        ));
    }
    let alpha = handle.has_alpha_channel();
    let channels: u64 = if alpha { 4 } else { 3 };
    let too_large = PipelineError::DecodeTooLarge {
        width,
        height,
        limit: limits.max_decode_bytes,
    };
    if decode_bytes(&handle, channels) > limits.max_decode_bytes {
        return Err(too_large);
    }
    limits.check_deadline()?;

    let mut options = DecodingOptions::new()
        .ok_or_else(|| PipelineError::Internal("libheif decoding options".into()))?;
    options.set_convert_hdr_to_8bit(true);
    // A grid with a missing or broken tile is an error, not an image with a hole.
    options.set_strict_decoding(true);
    // The worker pool is the parallelism: one thread per job.
    options.set_num_library_threads(1);
    options.set_num_codec_threads(1);
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let image = lib()
        .decode(&handle, ColorSpace::Rgb(chroma), Some(options))
        .map_err(|e| heif_error(e, &too_large))?;
    limits.check_deadline()?;

    let plane = image
        .planes()
        .interleaved
        .ok_or_else(|| PipelineError::Internal("libheif gave no interleaved plane".into()))?;
    if (plane.width, plane.height) != (width, height)
        || plane.storage_bits_per_pixel != 8 * channels as u8
    {
        return Err(PipelineError::Corrupt(format!(
            "HEIF decoded to {}x{} at {} bits, header said {width}x{height}",
            plane.width, plane.height, plane.storage_bits_per_pixel
        )));
    }
    let row = width as usize * channels as usize;
    if plane.stride < row {
        return Err(PipelineError::Internal(
            "libheif row stride shorter than a row".into(),
        ));
    }
    let mut buf = alloc_zeroed(row * height as usize).ok_or(too_large)?;
    for (dst, src) in buf
        .chunks_exact_mut(row)
        .zip(plane.data.chunks(plane.stride))
    {
        let src = src
            .get(..row)
            .ok_or_else(|| PipelineError::Internal("short libheif row".into()))?;
        dst.copy_from_slice(src);
    }
    Ok(Pixels {
        buf,
        width,
        height,
        alpha,
    })
}

/// The primary image's EXIF block (TIFF header first) and colour profile: the embedded ICC
/// profile, or for an `nclx` with other primaries or transfer than sRGB's, an ICC profile
/// built from it (moxcms), which the pipeline applies like any embedded one. Empty when the
/// file cannot be read.
pub(crate) fn metadata(bytes: &[u8]) -> Metadata {
    let limits = Limits {
        max_source_pixels: u64::MAX,
        max_output_pixels: u64::MAX,
        max_decode_bytes: 64 << 20,
        max_frames: 1,
        max_animation_pixels: u64::MAX,
        max_upscale: 1,
        max_avif_pixels: 0,
        deadline: None,
    };
    let Ok(ctx) = open(bytes, &limits) else {
        return Metadata::default();
    };
    let Ok(handle) = primary(&ctx) else {
        return Metadata::default();
    };
    Metadata {
        exif: exif(&handle),
        icc: icc(&handle),
    }
}

/// libheif, initialised once for the process (each `LibHeif` drop would de-initialise it).
fn lib() -> &'static LibHeif {
    static LIB: OnceLock<LibHeif> = OnceLock::new();
    LIB.get_or_init(LibHeif::new)
}

/// A libheif context over `bytes` with its security limits set from `limits`, after our own
/// walk has refused item types we do not decode and grids over [`MAX_TILES`].
fn open<'a>(bytes: &'a [u8], limits: &Limits) -> Result<HeifContext<'a>, PipelineError> {
    let items = items(bytes)?;
    if let Some(t) = items.types.iter().find(|t| !ITEM_TYPES.contains(t)) {
        return Err(PipelineError::Unsupported(format!(
            "HEIF item of type '{}' (only HEVC and AV1 images are read)",
            String::from_utf8_lossy(t)
        )));
    }
    if items.tiles > MAX_TILES {
        return Err(PipelineError::Unsupported(format!(
            "HEIF grid of {} tiles (at most {MAX_TILES})",
            items.tiles
        )));
    }
    // libheif must be initialised before a context is made.
    let _ = lib();
    let mut ctx = HeifContext::new().map_err(|e| PipelineError::Internal(e.to_string()))?;
    let mut sec = SecurityLimits::new();
    sec.set_max_image_size_pixels(limits.max_source_pixels);
    sec.set_max_number_of_tiles(MAX_TILES as u64);
    sec.set_max_items(MAX_ITEMS as u32);
    sec.set_max_color_profile_size(MAX_PROFILE_BYTES as u32);
    sec.set_max_memory_block_size(limits.max_decode_bytes);
    sec.set_max_total_memory(limits.max_decode_bytes);
    ctx.set_security_limits(&sec)
        .map_err(|e| PipelineError::Internal(e.to_string()))?;
    ctx.read_bytes(bytes).map_err(|e| {
        heif_error(
            e,
            &PipelineError::MetadataTooLarge {
                what: "HEIF container",
                limit: limits.max_decode_bytes,
            },
        )
    })?;
    Ok(ctx)
}

fn primary(ctx: &HeifContext<'_>) -> Result<ImageHandle, PipelineError> {
    ctx.primary_image_handle()
        .map_err(|e| PipelineError::Corrupt(format!("HEIF primary image: {}", e.message)))
}

/// A libheif error as ours: `limit` when one of its security limits refused.
fn heif_error(e: HeifError, limit: &PipelineError) -> PipelineError {
    match e.sub_code {
        HeifErrorSubCode::SecurityLimitExceeded => limit.clone(),
        _ => PipelineError::Corrupt(format!("HEIF: {}", e.message)),
    }
}

/// Bytes a decode holds at its peak, estimated before decoding: the decoder's YCbCr planes
/// (4:4:4 assumed, two bytes a sample past 8 bits), the alpha plane, libheif's interleaved
/// RGB(A) image and our copy of it.
fn decode_bytes(handle: &ImageHandle, channels: u64) -> u64 {
    let pixels = u64::from(handle.width()) * u64::from(handle.height());
    let sample = if handle.luma_bits_per_pixel() > 8 {
        2
    } else {
        1
    };
    let planes = 3 + u64::from(handle.has_alpha_channel());
    pixels.saturating_mul(planes * sample + 2 * channels)
}

/// The primary image's EXIF block, its 4-byte offset prefix stripped (ISO/IEC 23008-12 A.2.1),
/// when it starts with a TIFF header and is at most [`MAX_EXIF_BYTES`].
fn exif(handle: &ImageHandle) -> Option<Vec<u8>> {
    let mut ids = [0; 4];
    let n = handle.metadata_block_ids(&mut ids, b"Exif");
    let id = *ids.get(..n)?.first()?;
    if handle.metadata_size(id) > MAX_EXIF_BYTES + 4 {
        return None;
    }
    let block = handle.metadata(id).ok()?;
    let (offset, rest) = block.split_first_chunk::<4>()?;
    let tiff = rest.get(usize::try_from(u32::from_be_bytes(*offset)).ok()?..)?;
    let tiff_header = tiff.starts_with(b"II*\0") || tiff.starts_with(b"MM\0*");
    (tiff_header && tiff.len() <= MAX_EXIF_BYTES).then(|| tiff.to_vec())
}

/// The ICC profile to convert the decoded pixels with, if any (see [`metadata`]).
fn icc(handle: &ImageHandle) -> Option<Vec<u8>> {
    if let Some(raw) = handle.color_profile_raw() {
        return (!raw.data.is_empty() && raw.data.len() <= MAX_PROFILE_BYTES).then_some(raw.data);
    }
    let nclx = handle.color_profile_nclx()?;
    let primaries = nclx.color_primaries() as u8;
    let transfer = nclx.transfer_characteristics() as u8;
    cicp_profile(primaries, transfer)
}

/// An ICC profile for CICP `primaries` and `transfer` (H.273 code points), or `None` when they
/// are sRGB's (or treated as such: unspecified, the BT.709 curve family) or cannot be
/// described by an ICC matrix/TRC profile (PQ and HLG HDR, reserved values).
fn cicp_profile(primaries: u8, transfer: u8) -> Option<Vec<u8>> {
    const SRGB_PRIMARIES: [u8; 2] = [1, 2];
    const SRGB_LIKE_TRANSFER: [u8; 6] = [1, 2, 6, 13, 14, 15];
    const HDR_TRANSFER: [u8; 2] = [16, 18];
    if (SRGB_PRIMARIES.contains(&primaries) && SRGB_LIKE_TRANSFER.contains(&transfer))
        || HDR_TRANSFER.contains(&transfer)
    {
        return None;
    }
    let primaries = if primaries == 2 { 1 } else { primaries };
    let transfer = if transfer == 2 { 13 } else { transfer };
    let cicp = CicpProfile {
        color_primaries: CicpColorPrimaries::try_from(primaries).ok()?,
        transfer_characteristics: moxcms::TransferCharacteristics::try_from(transfer).ok()?,
        matrix_coefficients: MatrixCoefficients::Bt709,
        full_range: true,
    };
    let mut profile = ColorProfile::new_srgb();
    profile.update_rgb_colorimetry_from_cicp(cicp);
    // `update_rgb_colorimetry_from_cicp` reports nothing useful: check that it took (it leaves
    // the sRGB profile alone for primaries or curves it cannot describe).
    let took = profile.cicp.is_some_and(|c| {
        c.color_primaries as u8 == primaries && c.transfer_characteristics as u8 == transfer
    });
    took.then(|| profile.encode().ok()).flatten()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Heic,
    Avif,
}

/// HEIC or AVIF from the `ftyp` box's major and compatible brands (ISO/IEC 23008-12 Annex B,
/// AV1-ISOBMFF §6); a bare `mif1`/`msf1` file by its primary item's type.
fn kind(bytes: &[u8]) -> Option<Kind> {
    const AVIF: [&[u8; 4]; 2] = [b"avif", b"avis"];
    const HEIC: [&[u8; 4]; 6] = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"];
    if bytes.get(4..8) != Some(b"ftyp") {
        return None;
    }
    let size = bytes.get(..4)?.try_into().map(u32::from_be_bytes).ok()?;
    let body = bytes.get(8..usize::try_from(size).ok()?.min(bytes.len()))?;
    let major = body.first_chunk::<4>()?;
    let compatible: Vec<&[u8; 4]> = body
        .get(8..)
        .unwrap_or_default()
        .chunks_exact(4)
        .filter_map(|c| c.try_into().ok())
        .collect();
    let has = |set: &[&[u8; 4]]| compatible.iter().any(|b| set.contains(b));
    if AVIF.contains(&major) {
        Some(Kind::Avif)
    } else if HEIC.contains(&major) {
        Some(Kind::Heic)
    } else if has(&AVIF) {
        Some(Kind::Avif)
    } else if has(&HEIC) {
        Some(Kind::Heic)
    } else if [b"mif1", b"msf1"].contains(&major) || has(&[b"mif1", b"msf1"]) {
        let av1 = items(bytes).is_ok_and(|i| i.primary_type == Some(*b"av01"));
        Some(if av1 { Kind::Avif } else { Kind::Heic })
    } else {
        None
    }
}

/// What our own walk of the `meta` box found.
#[derive(Debug, Default)]
struct Items {
    /// Every item's type (`infe`).
    types: Vec<[u8; 4]>,
    /// The primary item's type (`pitm`).
    primary_type: Option<[u8; 4]>,
    /// Items the primary image is derived from (`dimg` references): a grid's tiles.
    tiles: usize,
}

/// The item table of the first top-level `meta` box (the one libheif reads), bounded by
/// [`MAX_ITEMS`]. Fails closed: a file whose `meta` or `iinf` we cannot find, or whose `iinf`
/// holds fewer entries than it declares, is refused rather than handed to libheif unchecked.
fn items(bytes: &[u8]) -> Result<Items, PipelineError> {
    let corrupt = |what: &str| PipelineError::Corrupt(format!("HEIF {what}"));
    let meta = first_box(bytes, b"meta")
        .and_then(|b| b.get(4..))
        .ok_or_else(|| corrupt("file without a readable meta box"))?;
    let iinf = first_box(meta, b"iinf").ok_or_else(|| corrupt("meta box without iinf"))?;
    let primary = first_box(meta, b"pitm")
        .and_then(|b| full_box_id(b, 4))
        .map(|(id, _)| id);

    let (count, entries) = match iinf.first() {
        Some(0) => (read_id(iinf, 4, 2), iinf.get(6..)),
        _ => (read_id(iinf, 4, 4), iinf.get(8..)),
    };
    let count = count.ok_or_else(|| corrupt("iinf box too short"))? as usize;
    if count > MAX_ITEMS {
        return Err(PipelineError::Unsupported(format!(
            "HEIF file with {count} items (at most {MAX_ITEMS})"
        )));
    }
    let mut infe: Vec<(u32, [u8; 4])> = Vec::new();
    for (_, entry) in boxes(entries.unwrap_or_default()).filter(|(t, _)| t == b"infe") {
        // Versions 2 and 3 carry an item type; older ones describe files, not images.
        let (id, at) = full_box_id(entry, 4).unwrap_or((0, 4));
        let typ = match entry.first() {
            Some(2 | 3) => entry.get(at + 2..at + 6).and_then(|t| t.try_into().ok()),
            _ => None,
        };
        infe.push((id, typ.unwrap_or(*b"????")));
    }
    if infe.len() < count {
        return Err(corrupt("iinf box with fewer entries than it declares"));
    }

    let mut tiles = 0usize;
    if let Some(iref) = first_box(meta, b"iref") {
        let id_len = if iref.first() == Some(&0) { 2 } else { 4 };
        for (_, r) in boxes(iref.get(4..).unwrap_or_default()).filter(|(t, _)| t == b"dimg") {
            if read_id(r, 0, id_len).is_some() && read_id(r, 0, id_len) == primary {
                tiles = tiles.saturating_add(read_id(r, id_len, 2).unwrap_or(0) as usize);
            }
        }
    }
    Ok(Items {
        types: infe.iter().map(|(_, t)| *t).collect(),
        primary_type: infe
            .iter()
            .find(|(id, _)| Some(*id) == primary)
            .map(|(_, t)| *t),
        tiles,
    })
}

/// The body of the first box of type `typ` in `data`.
fn first_box<'a>(data: &'a [u8], typ: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(t, _)| t == typ).map(|(_, b)| b)
}

/// A full box's item id after the version/flags word: 16 bits in version 0 (and version 2 of
/// `infe`), 32 bits otherwise; with the offset just past it.
fn full_box_id(body: &[u8], at: usize) -> Option<(u32, usize)> {
    let len = match body.first()? {
        0 | 2 => 2,
        _ => 4,
    };
    Some((read_id(body, at, len)?, at + len))
}

fn read_id(body: &[u8], at: usize, len: usize) -> Option<u32> {
    let b = body.get(at..at + len)?;
    Some(b.iter().fold(0u32, |acc, x| acc << 8 | u32::from(*x)))
}

/// ISO BMFF boxes `(type, body)` in `data`, at most [`MAX_BOXES`]; stops at the first box that
/// does not fit.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let size = u64::from(read_id(rest, 0, 4)?);
        let typ: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            0 => (8, rest.len() as u64),
            1 => (
                16,
                rest.get(8..16)?.try_into().map(u64::from_be_bytes).ok()?,
            ),
            n => (8, n),
        };
        let size = usize::try_from(size).ok().filter(|s| *s >= header)?;
        let body = rest.get(header..size)?;
        rest = rest.get(size..)?;
        Some((typ, body))
    })
    .take(MAX_BOXES)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_source_pixels: 1 << 24,
        max_output_pixels: 1 << 24,
        max_decode_bytes: 1 << 28,
        max_frames: 1,
        max_animation_pixels: 1 << 24,
        max_upscale: 1,
        max_avif_pixels: 1 << 20,
        deadline: None,
    };
    const AT: DecodeAt = DecodeAt {
        page: 1,
        shrink: 1,
        scale: 1.0,
        jpeg_decoder: crate::pipeline::JpegDecoder::Turbo,
        dc_only: false,
    };

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/formats/heif/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A reference PNG decoded by a Debian tool, as 8-bit RGB(A) (16-bit samples rounded).
    fn reference(name: &str) -> (Vec<u8>, u32, u32, bool) {
        let bytes = fixture(&format!("{name}.ref.png"));
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        if info.bit_depth == png::BitDepth::Sixteen {
            buf = buf
                .chunks_exact(2)
                .map(|s| ((f64::from(u16::from_be_bytes([s[0], s[1]])) / 257.0).round()) as u8)
                .collect();
        }
        let alpha = info.color_type == png::ColorType::Rgba;
        (buf, info.width, info.height, alpha)
    }

    fn decoded(name: &str) -> Pixels {
        let bytes = fixture(name);
        let header = probe(&bytes, &LIMITS).unwrap();
        assert_eq!(header.orientation, 1, "{name}");
        let px = decode(&bytes, &header, &AT, &LIMITS).unwrap();
        assert_eq!(
            (px.width, px.height),
            (header.width, header.height),
            "{name}"
        );
        px
    }

    /// Mean and largest absolute difference of two equal-length sample buffers.
    fn diff(a: &[u8], b: &[u8]) -> (f64, u8) {
        assert_eq!(a.len(), b.len());
        let max = a
            .iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0);
        let sum: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        (sum as f64 / a.len() as f64, max)
    }

    #[track_caller]
    fn assert_matches_reference(name: &str, alpha: bool) {
        let px = decoded(name);
        let (want, w, h, want_alpha) = reference(name);
        assert_eq!((px.width, px.height, px.alpha), (w, h, alpha), "{name}");
        assert_eq!(want_alpha, alpha, "{name}");
        let (mean, max) = diff(&px.buf, &want);
        assert!(mean <= 0.5 && max <= 2, "{name}: mean {mean:.2}, max {max}");
    }

    #[test]
    fn heif_sniff_tells_heic_from_avif_by_brands() {
        for name in ["photo-exif.heic", "alpha.heic", "icc-p3.heic"] {
            let b = fixture(name);
            assert!(sniff(&b) && sniff_heic(&b) && !sniff_avif(&b), "{name}");
        }
        for name in [
            "photo-exif.avif",
            "alpha.avif",
            "10bit.avif",
            "grid-2x2.avif",
            "anim.avif",
            "p3-nclx.avif",
        ] {
            let b = fixture(name);
            assert!(sniff(&b) && sniff_avif(&b) && !sniff_heic(&b), "{name}");
        }
        for bytes in [
            &b""[..],
            b"\0\0\0\x18ftypisom\0\0\0\0isomiso2",
            b"\x89PNG\r\n\x1a\n",
            b"\0\0\0\x0cftyp",
        ] {
            assert!(!sniff(bytes), "{bytes:?}");
        }
    }

    /// Every brand in the `ftyp` box replaced by `mif1`.
    fn only_mif1(mut bytes: Vec<u8>) -> Vec<u8> {
        let end = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        for at in (8..end).step_by(4) {
            if at != 12 {
                bytes[at..at + 4].copy_from_slice(b"mif1");
            }
        }
        bytes
    }

    #[test]
    fn heif_sniff_bare_mif1_decides_by_primary_item_type() {
        let avif = only_mif1(fixture("alpha.avif"));
        assert!(sniff_avif(&avif) && !sniff_heic(&avif));
        let heic = only_mif1(fixture("alpha.heic"));
        assert!(sniff_heic(&heic) && !sniff_avif(&heic));
    }

    #[test]
    fn heif_decode_matches_reference_decoders() {
        // HEIC references: Debian's heif-convert (libheif 1.15 + libde265); AVIF: avifdec
        // (libavif 0.11 + dav1d), or heif-convert where the image has irot/imir.
        assert_matches_reference("photo-exif.heic", false);
        assert_matches_reference("photo-exif.avif", false);
        assert_matches_reference("grid-2x2.avif", false);
        assert_matches_reference("icc-p3.avif", false);
        assert_matches_reference("icc-p3.heic", false);
    }

    #[test]
    fn heif_decode_alpha_is_rgba() {
        assert_matches_reference("alpha.heic", true);
        assert_matches_reference("alpha.avif", true);
    }

    #[test]
    fn heif_animated_avif_decodes_its_primary_image() {
        // libavif stores the first frame (opaque) as the primary item; the sequence has alpha
        // because a later frame does. avifdec's reference is that first frame.
        assert_matches_reference("anim.avif", true);
        assert!(decoded("anim.avif")
            .buf
            .chunks_exact(4)
            .all(|p| p[3] == 255));
    }

    #[test]
    fn heif_decode_10bit_avif_is_8bit() {
        assert_matches_reference("10bit.avif", false);
    }

    #[test]
    fn heif_irot_imir_are_applied_and_orientation_is_1() {
        // 64x48 stored, irot 1 (90 degrees anticlockwise) then imir 0 (top-to-bottom).
        let bytes = fixture("irot1-imir0.avif");
        let header = probe(&bytes, &LIMITS).unwrap();
        assert_eq!(
            (header.width, header.height, header.orientation),
            (48, 64, 1)
        );
        assert_matches_reference("irot1-imir0.avif", false);
    }

    #[test]
    fn heif_exif_is_returned_but_its_orientation_not_applied() {
        let tiff = fixture("exif.tiff");
        // The HEIC has EXIF orientation 6 and no irot: stored size, EXIF untouched.
        let heic = fixture("photo-exif.heic");
        let header = probe(&heic, &LIMITS).unwrap();
        assert_eq!(
            (header.width, header.height, header.orientation),
            (64, 48, 1)
        );
        assert_eq!(metadata(&heic).exif.as_deref(), Some(&tiff[..]));
        // avifenc turned the same EXIF's orientation 6 into irot 3, which libheif applies.
        let avif = fixture("photo-exif.avif");
        let header = probe(&avif, &LIMITS).unwrap();
        assert_eq!(
            (header.width, header.height, header.orientation),
            (48, 64, 1)
        );
        assert_eq!(metadata(&avif).exif.as_deref(), Some(&tiff[..]));
        assert_eq!(metadata(&fixture("alpha.avif")).exif, None);
    }

    #[test]
    fn heif_icc_profile_is_returned() {
        let icc = metadata(&fixture("icc-p3.avif")).icc.unwrap();
        let want = std::fs::read(format!(
            "{}/fuzz/seeds/icc/p3-srgb-para-v4.icc",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(icc, want);
        assert_eq!(metadata(&fixture("icc-p3.heic")).icc, Some(want));
        // sRGB nclx (1/13/6): nothing to convert.
        assert_eq!(metadata(&fixture("photo-exif.avif")).icc, None);
        assert_eq!(metadata(&fixture("photo-exif.heic")).icc, None);
    }

    /// sRGB 8-bit value of a Display P3 8-bit colour from the published matrices (independent
    /// of moxcms).
    fn p3_to_srgb(rgb: &[u8]) -> Vec<f64> {
        let lin: Vec<f64> = rgb
            .iter()
            .map(|v| {
                let x = f64::from(*v) / 255.0;
                if x <= 0.04045 {
                    x / 12.92
                } else {
                    ((x + 0.055) / 1.055).powf(2.4)
                }
            })
            .collect();
        let m = [
            [1.224_940_2, -0.224_940_2, 0.0],
            [-0.042_056_9, 1.042_056_9, 0.0],
            [-0.019_637_6, -0.078_636_0, 1.098_273_6],
        ];
        m.iter()
            .map(|row| {
                let v = (row[0] * lin[0] + row[1] * lin[1] + row[2] * lin[2]).clamp(0.0, 1.0);
                let e = if v <= 0.003_130_8 {
                    v * 12.92
                } else {
                    1.055 * v.powf(1.0 / 2.4) - 0.055
                };
                e * 255.0
            })
            .collect()
    }

    #[test]
    fn heif_nclx_display_p3_converts_to_srgb_through_its_profile() {
        let bytes = fixture("p3-nclx.avif");
        let icc = metadata(&bytes).icc.expect("a profile built from nclx P3");
        let mut px = decoded("p3-nclx.avif");
        super::super::super::color::rgb_to_srgb(&mut px, &icc).unwrap();
        let (p3, ..) = reference("p3-nclx.avif");
        let (mut worst, mut sum) = (0.0f64, 0.0);
        for (got, src) in px.buf.chunks_exact(3).zip(p3.chunks_exact(3)) {
            for (g, w) in got.iter().zip(p3_to_srgb(src)) {
                worst = worst.max((f64::from(*g) - w).abs());
                sum += (f64::from(*g) - w).abs();
            }
        }
        // Against the reference decoder's P3 pixels: its one-unit differences from ours, which
        // the steep dark end of the sRGB curve amplifies, plus moxcms's 8-bit lookup tables.
        let mean = sum / px.buf.len() as f64;
        assert!(
            mean <= 1.0 && worst <= 8.0,
            "mean {mean:.2}, worst {worst:.1}"
        );
        // And the conversion did something: a saturated red P3 pixel is not sRGB-identical.
        assert_ne!(px.buf, p3);
    }

    #[test]
    fn heif_cicp_profiles_only_for_non_srgb() {
        assert!(cicp_profile(1, 13).is_none());
        assert!(cicp_profile(2, 2).is_none());
        assert!(cicp_profile(1, 1).is_none());
        assert!(cicp_profile(9, 16).is_none(), "PQ is passed on as is");
        assert!(cicp_profile(12, 13).is_some(), "Display P3");
        assert!(cicp_profile(9, 1).is_some(), "BT.2020 SDR");
        assert!(cicp_profile(200, 13).is_none());
    }

    #[test]
    fn heif_limits_refuse_with_413_errors() {
        let bytes = fixture("grid-2x2.avif");
        let small = Limits {
            max_source_pixels: 128 * 128 - 1,
            ..LIMITS
        };
        assert!(matches!(
            probe(&bytes, &small),
            Err(PipelineError::SourceTooLarge {
                width: 128,
                height: 128,
                ..
            })
        ));
        let header = probe(&bytes, &LIMITS).unwrap();
        let tight = Limits {
            max_decode_bytes: 128 * 128 * 4,
            ..LIMITS
        };
        assert!(matches!(
            decode(&bytes, &header, &AT, &tight),
            Err(PipelineError::DecodeTooLarge { .. })
        ));
    }

    #[test]
    fn heif_refuses_items_coded_other_than_hevc_or_av1() {
        let mut bytes = fixture("photo-exif.avif");
        let iinf = bytes.windows(4).position(|w| w == b"iinf").unwrap();
        let at = iinf + bytes[iinf..].windows(4).position(|w| w == b"av01").unwrap();
        bytes[at..at + 4].copy_from_slice(b"jpeg");
        assert!(matches!(
            probe(&bytes, &LIMITS),
            Err(PipelineError::Unsupported(_))
        ));
    }

    #[test]
    fn heif_grid_with_too_many_tiles_is_refused_before_libheif() {
        let mut bytes = fixture("grid-2x2.avif");
        let dimg = bytes.windows(4).position(|w| w == b"dimg").unwrap();
        // iref version 0: dimg, from_item_ID (16 bits), reference_count (16 bits), to_item_IDs.
        let count = dimg + 6;
        assert_eq!(&bytes[count..count + 2], &[0, 4]);
        bytes[count..count + 2].copy_from_slice(&2000u16.to_be_bytes());
        let err = probe(&bytes, &LIMITS).unwrap_err();
        assert!(
            matches!(&err, PipelineError::Unsupported(m) if m.contains("2000 tiles")),
            "{err:?}"
        );
    }

    #[test]
    fn heif_item_table_that_cannot_be_walked_is_refused() {
        // An iinf declaring more entries than it holds: libheif might read further than we did.
        let mut bytes = fixture("alpha.avif");
        let iinf = bytes.windows(4).position(|w| w == b"iinf").unwrap();
        assert_eq!(bytes[iinf + 4], 0, "iinf version 0: 16-bit entry count");
        bytes[iinf + 8..iinf + 10].copy_from_slice(&9u16.to_be_bytes());
        assert!(matches!(
            probe(&bytes, &LIMITS),
            Err(PipelineError::Corrupt(_))
        ));
        // No meta box at all.
        let mut bytes = fixture("alpha.avif");
        let meta = bytes.windows(4).position(|w| w == b"meta").unwrap();
        bytes[meta..meta + 4].copy_from_slice(b"free");
        assert!(matches!(
            probe(&bytes, &LIMITS),
            Err(PipelineError::Corrupt(_))
        ));
        assert_eq!(metadata(&bytes).exif, None);
    }

    #[test]
    fn heif_truncated_inputs_are_errors() {
        for name in ["photo-exif.heic", "alpha.avif", "grid-2x2.avif"] {
            let bytes = fixture(name);
            for len in (0..bytes.len()).step_by(7) {
                let cut = &bytes[..len];
                if let Ok(header) = probe(cut, &LIMITS) {
                    // The header can be whole while the image data is not.
                    assert!(
                        decode(cut, &header, &AT, &LIMITS).is_err(),
                        "{name} at {len}"
                    );
                }
                let _ = metadata(cut);
            }
        }
    }

    #[test]
    fn heif_bit_flips_never_panic() {
        for name in [
            "photo-exif.heic",
            "alpha.avif",
            "grid-2x2.avif",
            "icc-p3.avif",
        ] {
            let bytes = fixture(name);
            for at in (0..bytes.len()).step_by(3) {
                let mut b = bytes.clone();
                b[at] ^= 1 << (at % 8);
                let _ = sniff(&b);
                if let Ok(header) = probe(&b, &LIMITS) {
                    let _ = decode(&b, &header, &AT, &LIMITS);
                }
                let _ = metadata(&b);
            }
        }
    }

    #[test]
    fn heif_build_has_the_hevc_and_av1_decoders() {
        use libheif_rs::CompressionFormat;
        for format in [CompressionFormat::Hevc, CompressionFormat::Av1] {
            assert!(
                !lib().decoder_descriptors(4, Some(format)).is_empty(),
                "{format:?}"
            );
        }
        for format in [
            CompressionFormat::Jpeg2000,
            CompressionFormat::Avc,
            CompressionFormat::Vvc,
        ] {
            assert!(
                lib().decoder_descriptors(4, Some(format)).is_empty(),
                "{format:?}"
            );
        }
    }
}
