//! Image formats imgcdn reads and writes, and the facts the HTTP layer needs about them.
//!
//! This module only names formats; detecting a format from bytes lives in `pipeline`.

use std::fmt;

/// An image format. Every variant is an input (see `pipeline::codec` for the decoders);
/// outputs are the [`Format::OUTPUTS`]: a source in another format is written as JPEG, or PNG
/// when it has alpha, unless another format is asked for (a still GIF becomes PNG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Avif,
    /// HEIF with HEVC images (iPhone photos).
    Heic,
    /// JPEG XL.
    Jxl,
    Svg,
    Tiff,
    Bmp,
    /// Windows icon or cursor.
    Ico,
    Qoi,
    /// Netpbm: PBM, PGM, PPM, PAM.
    Pnm,
    Tga,
}

impl Format {
    /// Every format, inputs and outputs.
    pub const ALL: [Format; 14] = [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Gif,
        Format::Avif,
        Format::Heic,
        Format::Jxl,
        Format::Svg,
        Format::Tiff,
        Format::Bmp,
        Format::Ico,
        Format::Qoi,
        Format::Pnm,
        Format::Tga,
    ];

    /// The formats imgcdn encodes.
    pub const OUTPUTS: [Format; 5] = [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Gif,
        Format::Avif,
    ];

    /// Whether imgcdn can encode this format.
    pub fn is_output(self) -> bool {
        Format::OUTPUTS.contains(&self)
    }

    /// The format whose [`Format::mime`] is `mime`.
    pub fn from_mime(mime: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.mime() == mime)
    }

    /// The format named `name` (as in [`Format::name`]; `jpg` for JPEG too).
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "jpg" => Some(Format::Jpeg),
            _ => Format::ALL.into_iter().find(|f| f.name() == name),
        }
    }

    /// The `Content-Type` for this format.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
            Format::Avif => "image/avif",
            Format::Heic => "image/heic",
            Format::Jxl => "image/jxl",
            Format::Svg => "image/svg+xml",
            Format::Tiff => "image/tiff",
            Format::Bmp => "image/bmp",
            Format::Ico => "image/x-icon",
            Format::Qoi => "image/qoi",
            Format::Pnm => "image/x-portable-anymap",
            Format::Tga => "image/x-tga",
        }
    }

    /// The name used in `f_<name>` and in canonical option strings.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Avif => "avif",
            Format::Heic => "heic",
            Format::Jxl => "jxl",
            Format::Svg => "svg",
            Format::Tiff => "tiff",
            Format::Bmp => "bmp",
            Format::Ico => "ico",
            Format::Qoi => "qoi",
            Format::Pnm => "pnm",
            Format::Tga => "tga",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of formats (`source.passthrough`), small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FormatSet(u32);

impl FormatSet {
    fn bit(format: Format) -> u32 {
        let i = Format::ALL.iter().position(|f| *f == format).unwrap_or(0);
        1 << i
    }

    pub fn insert(&mut self, format: Format) {
        self.0 |= FormatSet::bit(format);
    }

    pub fn contains(self, format: Format) -> bool {
        self.0 & FormatSet::bit(format) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for FormatSet {
    /// The names, comma-separated, in [`Format::ALL`] order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Format::ALL
            .into_iter()
            .filter(|x| self.contains(*x))
            .map(Format::name)
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_mimes_round_trip_and_sets_hold_what_was_inserted() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
            assert_eq!(Format::from_mime(f.mime()), Some(f));
        }
        assert_eq!(Format::from_name("jpg"), Some(Format::Jpeg));
        assert_eq!(Format::from_name("pdf"), None);
        let mut set = FormatSet::default();
        assert!(set.is_empty());
        set.insert(Format::Svg);
        set.insert(Format::Heic);
        assert!(set.contains(Format::Svg) && set.contains(Format::Heic));
        assert!(!set.contains(Format::Jpeg));
        assert_eq!(set.to_string(), "heic,svg");
    }
}
