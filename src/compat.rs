//! URL dialects of other image servers, so their clients work unchanged: each route is off by
//! default and mounted at a configured prefix (`[compat]`), and each dialect is one small pure
//! parser from its URL to the same [`Request`] a native `/img/` URL makes: a [`Transform`] and
//! the source text `source::parse` reads. Everything after that (source policy, keys, caches,
//! limits, `f_auto`, errors) is the native path's, so an equivalent URL in two dialects hits
//! the same cache entry.
//!
//! | dialect | module | grammar |
//! |---|---|---|
//! | IPX (Nuxt Image, unpic) | [`ipx`] | `/_ipx/<k_v[,&]…>/<source>` |
//! | imgproxy (SDKs, Nuxt) | [`imgproxy`] | `/<sig>/<k:v/…>/plain/<url>[@ext]` or `/<base64>[.ext]` |
//! | thumbor, imagor | [`thumbor`] | `/<sig>/[trim/][AxB:CxD/][fit-in/][-]WxH/[h/][v/][smart/][filters:…/]<src>` |
//! | Next.js `<Image>` | [`nextjs`] | `/_next/image?url=&w=&q=` |
//! | Cloudflare | [`cloudflare`] | `/cdn-cgi/image/<k=v,…>/<source>` |
//!
//! Rules every dialect follows: an option imgcdn cannot honour is a 400 naming it, never
//! silently dropped; a size given on one axis only is planned as `fit` (what every fit mode
//! does with one axis), so `300x0` in thumbor and `w_300` natively are one entry; the dialects
//! with signatures (imgproxy, thumbor) verify them exactly as their servers do, with their own
//! keys. What the three unsigned dialects mean for a signing deployment is decided at start-up
//! ([`Settings::from_config`]). Pure: no I/O.

pub mod cloudflare;
pub mod imgproxy;
pub mod ipx;
pub mod nextjs;
pub mod thumbor;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::options::{Fit, Gravity, OptionsError, Rgb, Sigma, Transform};

/// `[compat]`: each route's prefix (empty = off) and the dialects' own secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CompatConfig {
    /// IPX route, e.g. `/_ipx`.
    pub ipx: String,
    /// imgproxy route, e.g. `/imgproxy`; `/` serves it at the root, behind every other route.
    pub imgproxy: String,
    /// imgproxy's `IMGPROXY_KEY` (hex). Empty: any first segment is taken as the signature.
    pub imgproxy_key: String,
    /// imgproxy's `IMGPROXY_SALT` (hex).
    pub imgproxy_salt: String,
    /// imgproxy presets (`pr:name`), in imgproxy's grammar: `thumb = "rs:fill:300:300/q:80"`.
    pub imgproxy_presets: BTreeMap<String, String>,
    /// thumbor route, e.g. `/thumbor`.
    pub thumbor: String,
    /// thumbor's `SECURITY_KEY`. Empty: only `unsafe/` URLs are served.
    pub thumbor_key: String,
    /// Next.js image optimizer route, e.g. `/_next/image`.
    pub nextjs: String,
    /// Cloudflare Image Resizing route, e.g. `/cdn-cgi/image`.
    pub cloudflare: String,
}

/// A dialect's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Ipx,
    Imgproxy,
    Thumbor,
    Nextjs,
    Cloudflare,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Ipx => "ipx",
            Dialect::Imgproxy => "imgproxy",
            Dialect::Thumbor => "thumbor",
            Dialect::Nextjs => "nextjs",
            Dialect::Cloudflare => "cloudflare",
        }
    }

    fn signed(self) -> bool {
        matches!(self, Dialect::Imgproxy | Dialect::Thumbor)
    }
}

/// Validated `[compat]`. Its `Debug` leaves the secrets out.
#[derive(Clone, Default)]
pub struct Settings {
    /// Mounted routes, longest prefix first (a root imgproxy route comes last).
    routes: Vec<(String, Dialect)>,
    pub imgproxy: imgproxy::Keys,
    pub imgproxy_presets: BTreeMap<String, String>,
    pub thumbor_key: Option<Vec<u8>>,
}

/// Paths no dialect may be mounted over.
const NATIVE: &[&str] = &[
    "/img",
    "/meta",
    "/health",
    "/ready",
    "/metrics",
    "/admin",
    "/playground",
];

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("routes", &self.routes)
            .field("imgproxy_signed", &self.imgproxy.is_set())
            .field("imgproxy_presets", &self.imgproxy_presets.keys())
            .field("thumbor_signed", &self.thumbor_key.is_some())
            .finish()
    }
}

impl Settings {
    /// Validate `[compat]`. `signing` is whether native URLs must be signed: then a route
    /// without signatures (IPX, Next.js, Cloudflare) would be a way around it, so it is
    /// refused, and imgproxy and thumbor must have their keys. Under `only_presets` no
    /// dialect is allowed (they all take free options).
    pub fn from_config(
        c: &CompatConfig,
        signing: bool,
        only_presets: bool,
    ) -> Result<Settings, (&'static str, String)> {
        let mut routes = Vec::new();
        for (key, prefix, dialect) in [
            ("compat.ipx", &c.ipx, Dialect::Ipx),
            ("compat.imgproxy", &c.imgproxy, Dialect::Imgproxy),
            ("compat.thumbor", &c.thumbor, Dialect::Thumbor),
            ("compat.nextjs", &c.nextjs, Dialect::Nextjs),
            ("compat.cloudflare", &c.cloudflare, Dialect::Cloudflare),
        ] {
            if prefix.is_empty() {
                continue;
            }
            let root = prefix == "/" && dialect == Dialect::Imgproxy;
            let shape_ok = root
                || (prefix.starts_with('/')
                    && !prefix.ends_with('/')
                    && prefix.len() > 1
                    && !prefix.contains(['?', '#', '%', ' ']));
            if !shape_ok {
                return Err((
                    key,
                    format!("`{prefix}` must be a path like `/_ipx` (only imgproxy may be `/`)"),
                ));
            }
            if !root
                && NATIVE.iter().any(|n| {
                    let (a, b) = (prefix.as_str(), *n);
                    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
                })
            {
                return Err((key, format!("`{prefix}` overlaps a native route")));
            }
            if let Some((other, _)) = routes.iter().find(|(p, _): &&(String, Dialect)| {
                p == prefix
                    || p.starts_with(&format!("{prefix}/"))
                    || prefix.starts_with(&format!("{p}/"))
            }) {
                return Err((key, format!("`{prefix}` overlaps `{other}`")));
            }
            if only_presets {
                return Err((
                    key,
                    "cannot be on with security.only_presets: dialects take free options".into(),
                ));
            }
            if signing && !dialect.signed() {
                return Err((
                    key,
                    "cannot be on while security.signing_keys is set: this dialect has no signatures, so it would serve what unsigned /img/ URLs may not".into(),
                ));
            }
            routes.push((prefix.clone(), dialect));
        }
        let imgproxy = imgproxy::Keys::new(&c.imgproxy_key, &c.imgproxy_salt)
            .map_err(|reason| ("compat.imgproxy_key", reason))?;
        let thumbor_key = (!c.thumbor_key.is_empty()).then(|| c.thumbor_key.as_bytes().to_vec());
        let on = |d: Dialect| routes.iter().any(|(_, r)| *r == d);
        if signing && on(Dialect::Imgproxy) && !imgproxy.is_set() {
            return Err((
                "compat.imgproxy_key",
                "must be set while security.signing_keys is set".into(),
            ));
        }
        if signing && on(Dialect::Thumbor) && thumbor_key.is_none() {
            return Err((
                "compat.thumbor_key",
                "must be set while security.signing_keys is set".into(),
            ));
        }
        for (name, text) in &c.imgproxy_presets {
            imgproxy::check_preset(name, text)
                .map_err(|reason| ("compat.imgproxy_presets", format!("`{name}`: {reason}")))?;
        }
        // Longest first, so `/a/b` wins over `/a`; the root route matches last.
        routes.sort_by_key(|(p, _)| std::cmp::Reverse(if p == "/" { 0 } else { p.len() }));
        Ok(Settings {
            routes,
            imgproxy,
            imgproxy_presets: c.imgproxy_presets.clone(),
            thumbor_key,
        })
    }

    /// Whether any route is on.
    pub fn any(&self) -> bool {
        !self.routes.is_empty()
    }

    /// The dialect mounted at `path` and the rest after its prefix (starting with `/`, or
    /// empty for Next.js's exact path).
    pub fn route<'p>(&self, path: &'p str) -> Option<(Dialect, &'p str)> {
        self.routes.iter().find_map(|(prefix, dialect)| {
            if prefix == "/" {
                return Some((*dialect, path));
            }
            let rest = path.strip_prefix(prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((*dialect, rest))
        })
    }
}

/// What a dialect URL asks for, in native terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub transform: Transform,
    /// The source as `/img/<options>/<source>` would spell it (an absolute URL, a bucket URL
    /// or a path under `source.base`).
    pub source: String,
    /// The query `source::parse` appends to it.
    pub query: Option<String>,
}

/// Why a dialect URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An option that is malformed, unknown or that imgcdn cannot honour (400).
    #[error(transparent)]
    Option(#[from] OptionsError),
    /// A missing or wrong signature (403).
    #[error("{0}")]
    Signature(&'static str),
    /// imgproxy's `exp:` is in the past (404, as imgproxy answers).
    #[error("URL expired")]
    Expired,
    /// No source after the options (400).
    #[error("missing source")]
    MissingSource,
}

/// A refused option: the token as written and why.
pub(crate) fn bad(token: &str, reason: impl Into<String>) -> Error {
    Error::Option(OptionsError {
        token: token.to_owned(),
        reason: reason.into(),
    })
}

/// The last step of every dialect: a size on one axis only is `fit` whatever the mode (each
/// mode plans it so), gravity only counts where the mode uses it, and enlarging only with a
/// size; so equivalent URLs make equal transforms.
pub(crate) fn finish(mut t: Transform) -> Transform {
    if t.width.is_none() || t.height.is_none() {
        t.fit = Fit::Fit;
    }
    if !matches!(t.fit, Fit::Fill | Fit::Pad) {
        t.gravity = Gravity::Center;
    }
    if t.width.is_none() && t.height.is_none() {
        // Nothing to enlarge to.
        t.enlarge = false;
    }
    t.gravity = t.gravity.normalized();
    if let Some(window) = &mut t.window {
        window.gravity = window.gravity.normalized();
    }
    t
}

/// A mirror applied *before* a turn (sharp, Cloudflare, thumbor) as imgcdn's mirror after the
/// turn: an odd number of quarter turns swaps its axes.
pub(crate) fn mirror_before_turn(t: &mut Transform) {
    if t.rotation.0 % 2 == 1 {
        t.flip = crate::options::Flip {
            h: t.flip.v,
            v: t.flip.h,
        };
    }
}

/// A non-negative decimal (`12`, `0.5`, `1.25`) as f64; no sign, exponent, `inf` or `nan`.
pub(crate) fn decimal(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|b| *b == b'.').count() <= 1
        && s.bytes().any(|b| b.is_ascii_digit());
    ok.then(|| s.parse().ok()).flatten()
}

/// A whole number of pixels, 0..=65536.
pub(crate) fn pixels(s: &str) -> Option<u32> {
    (!s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
        .filter(|v| *v <= crate::options::MAX_DIMENSION)
}

/// A Gaussian sigma rounded to the nearest tenth, within `0.1..=max`.
pub(crate) fn sigma(value: f64, max: f64) -> Option<Sigma> {
    let tenths = (value * 10.0).round();
    (value.is_finite() && tenths >= 1.0 && value <= max).then_some(Sigma(tenths as u16))
}

/// `rgb`, `rrggbb` hex, with or without a leading `#`.
pub(crate) fn hex_color(s: &str) -> Option<Rgb> {
    let s = s.strip_prefix('#').unwrap_or(s);
    let digits: Vec<u8> = s
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    match digits[..] {
        [r, g, b] => Some(Rgb([r * 17, g * 17, b * 17])),
        [r1, r2, g1, g2, b1, b2] => Some(Rgb([r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2])),
        _ => None,
    }
}

/// A quality 1..=100.
pub(crate) fn quality(s: &str) -> Option<u8> {
    pixels(s)
        .filter(|q| (1..=100).contains(q))
        .and_then(|q| u8::try_from(q).ok())
}

/// Multiply the set sizes by a device pixel ratio (1..=4, rounded to thousandths, as `dpr_`);
/// `None` when out of range or a size would pass the maximum.
pub(crate) fn apply_dpr(t: &mut Transform, value: f64) -> Option<()> {
    if !(1.0..=4.0).contains(&value) {
        return None;
    }
    crate::options::apply_dpr_milli(t, (value * 1000.0).round() as u64).then_some(())
}

/// An output format by its name (`jpeg`, `jpg`, `png`, `webp`, `avif`, `gif`).
pub(crate) fn output_format(name: &str) -> Option<crate::format::Format> {
    crate::format::Format::from_name(name).filter(|f| f.is_output())
}

/// The request for `transform` of `source` (whose own `?query`, if any, goes before the
/// request's query); a missing source is refused.
pub(crate) fn request(
    transform: Transform,
    source: &str,
    query: Option<&str>,
) -> Result<Request, Error> {
    let (path, own) = match source.split_once('?') {
        Some((path, own)) => (path, Some(own)),
        None => (source, None),
    };
    if path.is_empty() {
        return Err(Error::MissingSource);
    }
    let query = match (own, query) {
        (Some(a), Some(b)) => Some(format!("{a}&{b}")),
        (a, b) => a.or(b).map(str::to_owned),
    };
    Ok(Request {
        transform,
        source: path.to_owned(),
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(f: impl FnOnce(&mut CompatConfig)) -> CompatConfig {
        let mut c = CompatConfig::default();
        f(&mut c);
        c
    }

    #[test]
    fn routes_are_off_by_default_and_matched_by_prefix() {
        let s = Settings::from_config(&CompatConfig::default(), false, false).unwrap();
        assert!(!s.any());
        assert_eq!(s.route("/_ipx/w_1/a.jpg"), None);
        let s = Settings::from_config(
            &config(|c| {
                c.ipx = "/_ipx".into();
                c.nextjs = "/_next/image".into();
                c.imgproxy = "/".into();
            }),
            false,
            false,
        )
        .unwrap();
        assert_eq!(
            s.route("/_ipx/w_1/a.jpg"),
            Some((Dialect::Ipx, "/w_1/a.jpg"))
        );
        assert_eq!(s.route("/_next/image"), Some((Dialect::Nextjs, "")));
        // Not a prefix at a segment boundary: the root imgproxy route takes it.
        assert_eq!(
            s.route("/_ipxx/w_1/a.jpg"),
            Some((Dialect::Imgproxy, "/_ipxx/w_1/a.jpg"))
        );
    }

    #[test]
    fn config_refuses_bad_prefixes_overlaps_and_unsigned_routes_when_signing() {
        let err = |c: CompatConfig, signing: bool, presets: bool| {
            Settings::from_config(&c, signing, presets).unwrap_err().0
        };
        assert_eq!(
            err(config(|c| c.ipx = "_ipx".into()), false, false),
            "compat.ipx"
        );
        assert_eq!(
            err(config(|c| c.ipx = "/".into()), false, false),
            "compat.ipx"
        );
        assert_eq!(
            err(config(|c| c.ipx = "/img".into()), false, false),
            "compat.ipx"
        );
        assert_eq!(
            err(config(|c| c.thumbor = "/img/x".into()), false, false),
            "compat.thumbor"
        );
        assert_eq!(
            err(
                config(|c| {
                    c.ipx = "/a".into();
                    c.cloudflare = "/a/b".into();
                }),
                false,
                false
            ),
            "compat.cloudflare"
        );
        for f in [
            |c: &mut CompatConfig| c.ipx = "/_ipx".into(),
            |c: &mut CompatConfig| c.nextjs = "/_next/image".into(),
            |c: &mut CompatConfig| c.cloudflare = "/cdn-cgi/image".into(),
        ] {
            assert!(Settings::from_config(&config(f), true, false).is_err());
            assert!(Settings::from_config(&config(f), false, true).is_err());
            assert!(Settings::from_config(&config(f), false, false).is_ok());
        }
        assert_eq!(
            err(config(|c| c.thumbor = "/t".into()), true, false),
            "compat.thumbor_key"
        );
        assert_eq!(
            err(config(|c| c.imgproxy = "/i".into()), true, false),
            "compat.imgproxy_key"
        );
        let signed = config(|c| {
            c.thumbor = "/t".into();
            c.thumbor_key = "k".into();
            c.imgproxy = "/i".into();
            c.imgproxy_key = "0a0b".into();
            c.imgproxy_salt = "0c".into();
        });
        assert!(Settings::from_config(&signed, true, false).is_ok());
    }

    #[test]
    fn shared_value_parsers() {
        assert_eq!(decimal("0.5"), Some(0.5));
        for s in ["", ".", "-1", "1e3", "inf", "nan", "1.2.3", " 1"] {
            assert_eq!(decimal(s), None, "{s:?}");
        }
        assert_eq!(hex_color("fff"), Some(Rgb([255, 255, 255])));
        assert_eq!(hex_color("#0a0B0c"), Some(Rgb([10, 11, 12])));
        assert_eq!(hex_color("ffff"), None);
        assert_eq!(hex_color("red"), None);
        assert_eq!(sigma(0.3, 100.0), Some(Sigma(3)));
        assert_eq!(sigma(0.04, 100.0), None);
        assert_eq!(sigma(101.0, 100.0), None);
        assert_eq!(quality("0"), None);
        assert_eq!(quality("100"), Some(100));
        assert_eq!(pixels("65537"), None);
    }
}
