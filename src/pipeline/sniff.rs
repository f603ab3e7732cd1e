//! Format detection from magic bytes only.
//!
//! It deliberately never trusts a `Content-Type`, a file extension or anything past the first
//! 12 bytes, and it does not validate the rest of the file (the probe does that).

use crate::format::Format;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// The format whose signature starts `bytes`, or `None` for anything we do not read.
pub(crate) fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(&PNG_SIGNATURE) {
        Some(Format::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some(Format::Webp)
    } else if bytes.get(4..12) == Some(b"ftypavif") || bytes.get(4..12) == Some(b"ftypavis") {
        Some(Format::Avif)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_magic_bytes_detect_each_format() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(sniff(&PNG_SIGNATURE), Some(Format::Png));
        assert_eq!(sniff(b"GIF87a..."), Some(Format::Gif));
        assert_eq!(sniff(b"GIF89a"), Some(Format::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(sniff(b"\0\0\0\x1cftypavif"), Some(Format::Avif));
    }

    #[test]
    fn sniff_other_bytes_are_none() {
        for bytes in [
            &b""[..],
            b"<!doctype html><html></html>",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"II*\0\x08\0\0\0",
            b"MM\0*",
            b"BM\x36\0\0\0",
            b"RIFF\x10\0\0\0WAVEfmt ",
            b"RIFF",
            b"GIF88a",
            &[0xFF, 0xD8],
            &PNG_SIGNATURE[..7],
        ] {
            assert_eq!(sniff(bytes), None, "{bytes:?}");
        }
    }
}
