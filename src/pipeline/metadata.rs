//! Output metadata: none by default; with `output.keep_copyright`, the source's EXIF `Artist`
//! and `Copyright` tags (and nothing else: no GPS, camera, thumbnails) are written into a fresh
//! minimal EXIF block of the output — JPEG `APP1`, PNG `eXIf`, WebP `EXIF` (the file becomes
//! the extended `VP8X` form), AVIF through the encoder. GIF has no EXIF and gets none.

use crate::format::Format;

/// Longest tag value copied (bytes); longer ones are cut, so a hostile source cannot make
/// every output large.
const MAX_TAG_BYTES: usize = 1024;

/// A minimal little-endian TIFF/EXIF block holding the source's `Artist` and `Copyright`, or
/// `None` when it has neither (or no readable EXIF).
pub(crate) fn copyright_exif(block: &[u8]) -> Option<Vec<u8>> {
    // Copyright may hold "photographer\0editor"; the parts stay NUL-separated.
    let text = |tag: u16| -> Option<Vec<u8>> {
        let v = super::tiff::ascii(block, tag)?;
        let v = &v[..v.len().min(MAX_TAG_BYTES)];
        (!v.iter().all(|b| *b == 0 || *b == b' ')).then(|| v.to_vec())
    };
    // IFD entries must be sorted by tag number: Artist, then Copyright.
    let tags: Vec<(u16, Vec<u8>)> = [0x013B, 0x8298]
        .into_iter()
        .filter_map(|id| text(id).map(|v| (id, v)))
        .collect();
    (!tags.is_empty()).then(|| tiff(&tags))
}

/// A little-endian TIFF block with one IFD of ASCII entries.
fn tiff(tags: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let count = tags.len() as u16;
    let ifd_len = 2 + 12 * tags.len() + 4;
    let mut out = b"II*\0".to_vec();
    out.extend(8u32.to_le_bytes());
    out.extend(count.to_le_bytes());
    let mut data: Vec<u8> = Vec::new();
    let data_start = 8 + ifd_len;
    for (id, value) in tags {
        let mut value = value.clone();
        value.push(0); // ASCII values end in NUL, counted
        out.extend(id.to_le_bytes());
        out.extend(2u16.to_le_bytes()); // ASCII
        out.extend((value.len() as u32).to_le_bytes());
        if value.len() <= 4 {
            value.resize(4, 0);
            out.extend(&value);
        } else {
            out.extend(((data_start + data.len()) as u32).to_le_bytes());
            data.extend(&value);
            if data.len() % 2 == 1 {
                data.push(0); // word alignment
            }
        }
    }
    out.extend(0u32.to_le_bytes()); // no next IFD
    out.extend(data);
    out
}

/// `encoded` (a finished JPEG, PNG or WebP file) with the EXIF block `tiff` added. Other
/// formats, and files not shaped as expected, come back unchanged.
pub(crate) fn embed(encoded: Vec<u8>, format: Format, tiff: &[u8]) -> Vec<u8> {
    match format {
        Format::Jpeg => jpeg(encoded, tiff),
        Format::Png => png(encoded, tiff),
        Format::Webp => webp(encoded, tiff),
        _ => encoded,
    }
}

fn jpeg(encoded: Vec<u8>, tiff: &[u8]) -> Vec<u8> {
    let Ok(len) = u16::try_from(2 + 6 + tiff.len()) else {
        return encoded;
    };
    if !encoded.starts_with(&[0xFF, 0xD8]) {
        return encoded;
    }
    let mut out = Vec::with_capacity(encoded.len() + tiff.len() + 10);
    out.extend(&encoded[..2]);
    out.extend([0xFF, 0xE1]);
    out.extend(len.to_be_bytes());
    out.extend(b"Exif\0\0");
    out.extend(tiff);
    out.extend(&encoded[2..]);
    out
}

fn png(encoded: Vec<u8>, tiff: &[u8]) -> Vec<u8> {
    // Signature (8) + IHDR (4 length, 4 type, 13 data, 4 CRC): eXIf goes right after it.
    const AFTER_IHDR: usize = 8 + 25;
    if encoded.get(12..16) != Some(b"IHDR") || encoded.len() < AFTER_IHDR {
        return encoded;
    }
    let Ok(len) = u32::try_from(tiff.len()) else {
        return encoded;
    };
    let mut chunk = Vec::with_capacity(tiff.len() + 12);
    chunk.extend(len.to_be_bytes());
    chunk.extend(b"eXIf");
    chunk.extend(tiff);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&chunk[4..]);
    chunk.extend(crc.finalize().to_be_bytes());
    let mut out = encoded;
    out.splice(AFTER_IHDR..AFTER_IHDR, chunk);
    out
}

fn webp(encoded: Vec<u8>, tiff: &[u8]) -> Vec<u8> {
    if encoded.get(..4) != Some(b"RIFF") || encoded.get(8..12) != Some(b"WEBP") {
        return encoded;
    }
    let Ok(exif_len) = u32::try_from(tiff.len()) else {
        return encoded;
    };
    let mut out = match encoded.get(12..16) {
        Some(b"VP8X") => encoded,
        Some(b"VP8 ") | Some(b"VP8L") => match to_vp8x(&encoded) {
            Some(v) => v,
            None => return encoded,
        },
        _ => return encoded,
    };
    // VP8X flags: bit 3 = EXIF present.
    if let Some(flags) = out.get_mut(20) {
        *flags |= 0x08;
    }
    out.extend(b"EXIF");
    out.extend(exif_len.to_le_bytes());
    out.extend(tiff);
    if tiff.len() % 2 == 1 {
        out.push(0);
    }
    let Ok(riff_len) = u32::try_from(out.len() - 8) else {
        return out;
    };
    out[4..8].copy_from_slice(&riff_len.to_le_bytes());
    out
}

/// A simple (`VP8 `/`VP8L`) WebP rewritten with a `VP8X` header in front of its image chunk.
fn to_vp8x(simple: &[u8]) -> Option<Vec<u8>> {
    let (width, height, alpha) = match simple.get(12..16)? {
        b"VP8 " => {
            // Frame tag (3) + start code (3), then 14-bit width and height.
            let d = simple.get(20..30)?;
            if d[3..6] != [0x9D, 0x01, 0x2A] {
                return None;
            }
            let w = u32::from(u16::from_le_bytes([d[6], d[7]]) & 0x3FFF);
            let h = u32::from(u16::from_le_bytes([d[8], d[9]]) & 0x3FFF);
            (w, h, false)
        }
        b"VP8L" => {
            let d = simple.get(20..25)?;
            if d[0] != 0x2F {
                return None;
            }
            let bits = u32::from_le_bytes([d[1], d[2], d[3], d[4]]);
            let w = (bits & 0x3FFF) + 1;
            let h = ((bits >> 14) & 0x3FFF) + 1;
            (w, h, (bits >> 28) & 1 == 1)
        }
        _ => return None,
    };
    if width == 0 || height == 0 {
        return None;
    }
    let mut out = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
    out.extend(10u32.to_le_bytes());
    out.push(if alpha { 0x10 } else { 0 });
    out.extend([0, 0, 0]);
    out.extend(&(width - 1).to_le_bytes()[..3]);
    out.extend(&(height - 1).to_le_bytes()[..3]);
    out.extend(simple.get(12..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags_of(tiff: Vec<u8>) -> Vec<(exif::Tag, String)> {
        let exif = exif::Reader::new().read_raw(tiff).expect("valid exif");
        exif.fields()
            .map(|f| (f.tag, f.display_value().to_string()))
            .collect()
    }

    #[test]
    fn tiff_block_reads_back_with_both_tags() {
        let block = tiff(&[
            (0x013B, b"Ann".to_vec()),
            (0x8298, b"(c) 2026 Ann Example".to_vec()),
        ]);
        let tags = tags_of(block);
        assert_eq!(tags.len(), 2, "{tags:?}");
        assert_eq!(tags[0].0, exif::Tag::Artist);
        assert!(tags[0].1.contains("Ann"));
        assert_eq!(tags[1].0, exif::Tag::Copyright);
        assert!(tags[1].1.contains("2026 Ann Example"));
    }

    #[test]
    fn embedding_into_non_files_changes_nothing() {
        let block = tiff(&[(0x013B, b"A".to_vec())]);
        for f in [Format::Jpeg, Format::Png, Format::Webp, Format::Gif] {
            assert_eq!(embed(b"nonsense".to_vec(), f, &block), b"nonsense");
            assert_eq!(embed(Vec::new(), f, &block), b"");
        }
    }
}
