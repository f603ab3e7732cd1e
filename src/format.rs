//! Image formats imgcdn reads and writes, and the facts the HTTP layer needs about them.
//!
//! This module only names formats; detecting a format from bytes lives in `pipeline`.

use std::fmt;

/// A raster format. Inputs are `Jpeg`, `Png`, `Webp` and `Gif`; outputs are `Jpeg`, `Png`,
/// `Webp` and `Avif` (a GIF source is written as PNG unless another format is asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Avif,
}

impl Format {
    /// The format whose [`Format::mime`] is `mime`.
    pub fn from_mime(mime: &str) -> Option<Format> {
        [
            Format::Jpeg,
            Format::Png,
            Format::Webp,
            Format::Gif,
            Format::Avif,
        ]
        .into_iter()
        .find(|f| f.mime() == mime)
    }

    /// The `Content-Type` for this format.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
            Format::Avif => "image/avif",
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
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
