//! Cache keys: blake3 hashes of canonical descriptions, domain-separated so a source key can
//! never equal a variant key.
//!
//! A variant key covers everything the output bytes depend on: [`KEY_VERSION`], the canonical
//! source, the canonical options (defaults and `dpr` applied, fixed order — see
//! `options::Transform`'s `Display`), and, only for `f_auto`, whether the client accepts WebP
//! (the one request header the output depends on). Pure: no I/O.

use std::fmt;

use crate::options::{FormatChoice, Transform};
use crate::source::Source;

/// Bump whenever the output bytes for the same request would change (encoder settings,
/// resampling, a fixed bug), so stale renditions are never served after an upgrade.
pub const KEY_VERSION: u32 = 1;

/// A 256-bit cache key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub [u8; 32]);

impl Key {
    pub fn hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.hex())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

fn hash(domain: &str, parts: &[&[u8]]) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(domain.as_bytes());
    h.update(&KEY_VERSION.to_le_bytes());
    for part in parts {
        // Length-prefix each part so no two different lists hash the same bytes.
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    Key(*h.finalize().as_bytes())
}

/// The key of a source: every variant of it lives under this hash (disk directory,
/// `Surrogate-Key`).
pub fn source(source: &Source) -> Key {
    let kind: &[u8] = match source {
        Source::Remote(_) => b"remote",
        Source::Local(_) => b"local",
    };
    hash("imgcdn source", &[kind, source.to_string().as_bytes()])
}

/// The key of the cached original bytes of a source.
pub fn original(source: &Key) -> Key {
    hash("imgcdn original", &[&source.0])
}

/// The key of one rendition of a source.
pub fn variant(source: &Key, transform: &Transform, accepts_webp: bool) -> Key {
    let negotiated: &[u8] = match transform.format {
        Some(FormatChoice::Auto) if accepts_webp => b"auto:webp",
        Some(FormatChoice::Auto) => b"auto:no-webp",
        Some(FormatChoice::Fixed(_)) | None => b"",
    };
    hash(
        "imgcdn variant",
        &[&source.0, transform.to_string().as_bytes(), negotiated],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::parse;

    fn src(s: &str) -> Key {
        source(&Source::Remote(url::Url::parse(s).expect("url")))
    }

    fn v(opts: &str, webp: bool) -> Key {
        variant(
            &src("https://a.example/x.jpg"),
            &parse(opts).expect("options"),
            webp,
        )
    }

    #[test]
    fn key_option_order_and_dpr_share_an_entry() {
        assert_eq!(v("w_300,h_200", false), v("h_200,w_300", false));
        assert_eq!(v("w_300,dpr_2", false), v("w_600", false));
        assert_eq!(v("w_300,c_fit,g_center", false), v("w_300", false));
        assert_ne!(v("w_300", false), v("w_301", false));
    }

    #[test]
    fn key_accept_matters_only_for_auto() {
        assert_eq!(v("w_300", true), v("w_300", false));
        assert_eq!(v("w_300,f_webp", true), v("w_300,f_webp", false));
        assert_ne!(v("w_300,f_auto", true), v("w_300,f_auto", false));
        assert_ne!(v("w_300,f_auto", false), v("w_300", false));
    }

    #[test]
    fn key_sources_and_kinds_are_separated() {
        assert_ne!(
            src("https://a.example/x.jpg"),
            src("https://a.example/y.jpg")
        );
        let local = source(&Source::Local("x.jpg".into()));
        let base = src("https://a.example/x.jpg");
        assert_ne!(local, base);
        assert_ne!(original(&base), base);
        assert_eq!(base.hex().len(), 64);
    }
}
