//! Cache keys: blake3 hashes of canonical descriptions, domain-separated so a source key can
//! never equal a variant key.
//!
//! A variant key covers everything the output bytes depend on: [`KEY_VERSION`], the canonical
//! source, the canonical options (defaults and `dpr` applied, fixed order — see
//! `options::Transform`'s `Display`), the output profile (the configuration the bytes depend
//! on: default and AVIF qualities, AVIF speed and size limit, decoders), and, only for `f_auto`,
//! which of AVIF and WebP the client accepts (the one request header the output depends on).
//! Pure: no I/O.

use std::fmt;

use crate::options::{FormatChoice, Transform};
use crate::pipeline::Accept;
use crate::source::Source;

/// Bump whenever the output bytes for the same request would change (encoder settings,
/// resampling, a fixed bug), so stale renditions are never served after an upgrade.
pub const KEY_VERSION: u32 = 3;

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
    versioned_source(source, "")
}

/// [`source`] for a source whose identity is known: for a local file its folder, size,
/// modification time and inode ([`crate::source::Fetcher::identity`]), so a file edited in
/// place, or another folder under the same name, is a new key.
pub fn versioned_source(source: &Source, identity: &str) -> Key {
    let kind: &[u8] = match source {
        Source::Remote(_) => b"remote",
        Source::Local(_) => b"local",
        Source::Bucket(_) => b"bucket",
    };
    if identity.is_empty() {
        hash("imgcdn source", &[kind, source.to_string().as_bytes()])
    } else {
        hash(
            "imgcdn source",
            &[kind, source.to_string().as_bytes(), identity.as_bytes()],
        )
    }
}

/// `key` for work started under purge `generation` of its source (the flight key): requests
/// that arrive after a purge never join work that started before it.
pub fn in_generation(key: &Key, generation: u64) -> Key {
    if generation == 0 {
        *key
    } else {
        hash("imgcdn generation", &[&key.0, &generation.to_le_bytes()])
    }
}

/// The key of the cached original bytes of a source.
pub fn original(source: &Key) -> Key {
    hash("imgcdn original", &[&source.0])
}

/// The key of one rendition of a source. `profile` is the configuration the output bytes
/// depend on ([`crate::config::Settings::output_profile`]): changing it makes new keys, so a
/// new `output.default_quality` never serves renditions made with the old one.
pub fn variant(source: &Key, transform: &Transform, accept: Accept, profile: &str) -> Key {
    let negotiated: &[u8] = match (transform.format, accept.avif, accept.webp) {
        (Some(FormatChoice::Auto), false, true) => b"auto:webp",
        (Some(FormatChoice::Auto), false, false) => b"auto:no-webp",
        (Some(FormatChoice::Auto), true, true) => b"auto:avif+webp",
        (Some(FormatChoice::Auto), true, false) => b"auto:avif",
        (Some(FormatChoice::Fixed(_) | FormatChoice::Lqip) | None, _, _) => b"",
    };
    hash(
        "imgcdn variant",
        &[
            &source.0,
            transform.to_string().as_bytes(),
            negotiated,
            profile.as_bytes(),
        ],
    )
}

/// The key of the `/meta` JSON about one rendition.
pub fn meta(variant: &Key) -> Key {
    hash("imgcdn meta", &[&variant.0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::parse;

    fn src(s: &str) -> Key {
        source(&Source::Remote(url::Url::parse(s).expect("url")))
    }

    fn v(opts: &str, webp: bool) -> Key {
        va(opts, Accept { webp, avif: false })
    }

    fn va(opts: &str, accept: Accept) -> Key {
        variant(
            &src("https://a.example/x.jpg"),
            &parse(opts).expect("options"),
            accept,
            "q=80",
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
        let all = [(false, false), (true, false), (false, true), (true, true)]
            .map(|(webp, avif)| va("w_300,f_auto", Accept { webp, avif }));
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let fixed = Accept {
            webp: true,
            avif: true,
        };
        assert_eq!(va("w_300,f_avif", fixed), v("w_300,f_avif", false));
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
