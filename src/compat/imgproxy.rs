//! imgproxy (`/<signature>/<option>/…/<source>`), as its SDKs and Nuxt's provider write it.
//!
//! - Signature: the unpadded base64url of HMAC-SHA256(key, salt ‖ path), `path` being
//!   everything after the signature segment as sent, from its `/`, without the query; key
//!   and salt are hex (`compat.imgproxy_key`/`_salt`, comma-separated lists pair up, every
//!   pair is tried). With no key, any first segment is accepted (`insecure`, `unsafe`, `_`), as
//!   imgproxy does.
//! - Options: `name:arg:arg` segments in any order, full or short names, a later one
//!   overriding an earlier one; `pr:name` expands `compat.imgproxy_presets` in place (a
//!   preset named `default` applies first). The first segment without `:` starts the source.
//! - Source: `plain/<url>[@ext]` (percent-decoded once), or base64 of the URL (url-safe or
//!   standard, padded or not, split by `/` anywhere) with an optional `.ext`; `local:///path`
//!   is a path under `source.base`.
//!
//! Known difference: on a source smaller than the box (no `el`), `rt:fill` crops to the box's
//! aspect like `fill-down` (imgproxy's `fill` keeps the scale and crops only the overflow).
//!
//! Meanings: `rt:fit` (default) → `c_fit`, `fill`/`fill-down` → `c_fill`, `force` →
//! `c_scale`, `ex:1` with `fit` → `c_pad` (placed by its own gravity, centre by default);
//! `w`/`h` of 0 mean unset; `q:0` is the default quality; `dpr` and `z` multiply the sizes (their
//! product 1..=4); `g:sm` → `g_auto`, `g:fp:x:y` → `g_fp_x_y`; `bl`/`sh` are sigmas (0 = off);
//! `t:n` → `trim_n`; `c:w:h[:g]` → `crop_<w>x<h>_<g>` (pixels, fractions below 1, 0 = whole
//! side; the gravity defaults to `g:`'s); `rot` in quarter turns clockwise; `fl:h:v`; `bg:r:g:b` or hex;
//! `exp:<unix time>` in the past → 404; `cb` changes only the URL. Refused with a 400
//! naming them: `rt:auto`, gravity offsets, extend with fill/force, a `c:` crop placed by
//! `sm`, `ar:0`/`sm:0` (imgcdn always orients and strips), booleans other than imgproxy's
//! spellings, and every option imgcdn has no equivalent for (padding, watermarks, `mb`, `fn`,
//! `raw`, `min-width`, …).

use std::collections::BTreeMap;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{apply_dpr, bad, decimal, finish, hex_color, pixels, request, sigma, Error, Request};
use crate::options::{
    parse_fraction, CropWindow, Fit, FormatChoice, Gravity, Rgb, Span, Transform,
};

/// `compat.imgproxy_key`/`_salt`, decoded: key and salt pairs. `Debug` shows only how many.
#[derive(Clone, Default)]
pub struct Keys(Vec<(Vec<u8>, Vec<u8>)>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} pairs)", self.0.len())
    }
}

impl Keys {
    /// Hex keys and salts, comma-separated lists of equal length; both empty = unsigned.
    pub fn new(keys: &str, salts: &str) -> Result<Keys, String> {
        if keys.is_empty() && salts.is_empty() {
            return Ok(Keys::default());
        }
        let decode = |s: &str| hex::decode(s.trim()).map_err(|_| format!("`{s}` is not hex"));
        let keys: Vec<_> = keys.split(',').map(decode).collect::<Result<_, _>>()?;
        let salts: Vec<_> = salts.split(',').map(decode).collect::<Result<_, _>>()?;
        if keys.len() != salts.len() || keys.iter().chain(&salts).any(Vec::is_empty) {
            return Err(
                "imgproxy_key and imgproxy_salt must be non-empty lists of the same length".into(),
            );
        }
        Ok(Keys(keys.into_iter().zip(salts).collect()))
    }

    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    /// The signature imgproxy's SDKs put before `path` (which starts with `/`), with the first
    /// pair.
    pub fn sign(&self, path: &str) -> Option<String> {
        let (key, salt) = self.0.first()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
        mac.update(salt);
        mac.update(path.as_bytes());
        Some(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Whether `signature` signs `path` under any pair (every pair is tried).
    fn verify(&self, signature: &str, path: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut ok = false;
        for (key, salt) in &self.0 {
            if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) {
                mac.update(salt);
                mac.update(path.as_bytes());
                ok |= mac.verify_slice(&given).is_ok();
            }
        }
        ok
    }
}

/// Check a preset's text at start-up: options only, no presets inside.
pub fn check_preset(name: &str, text: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
    {
        return Err("a preset name is letters, digits, `_` and `-`".into());
    }
    let mut state = State::default();
    for segment in text.split('/').filter(|s| !s.is_empty()) {
        let (option, _) = segment
            .split_once(':')
            .ok_or("each part is an option `name:args`")?;
        if matches!(option, "pr" | "preset") {
            return Err("presets cannot name presets".into());
        }
        state.apply(segment, 0).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Parse what follows the route's prefix: `/<signature>/<options…>/<source>`. `now` is the
/// Unix time, for `exp:`.
pub fn parse(
    rest: &str,
    query: Option<&str>,
    keys: &Keys,
    presets: &BTreeMap<String, String>,
    now: u64,
) -> Result<Request, Error> {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (signature, path) = rest.split_once('/').ok_or(Error::MissingSource)?;
    if signature.is_empty() {
        return Err(Error::Signature("missing signature segment"));
    }
    if keys.is_set() && !keys.verify(signature, &format!("/{path}")) {
        return Err(Error::Signature("invalid signature"));
    }
    let mut state = State::default();
    if let Some(default) = presets.get("default") {
        state.apply_all(default, now)?;
    }
    let mut segments = path.split('/').peekable();
    while let Some(segment) = segments.next_if(|s| s.contains(':')) {
        let (option, args) = segment.split_once(':').unwrap_or((segment, ""));
        if matches!(option, "pr" | "preset") {
            for name in args.split(':') {
                let text = presets
                    .get(name)
                    .ok_or_else(|| bad(segment, format!("no preset `{name}`")))?;
                state.apply_all(text, now)?;
            }
        } else {
            state.apply(segment, now)?;
        }
    }
    let source: Vec<&str> = segments.collect();
    let (url, ext) = match source.split_first() {
        None => return Err(Error::MissingSource),
        Some((&"plain", rest)) => {
            let joined = rest.join("/");
            let mut parts = joined.split('@');
            let url = parts.next().unwrap_or_default();
            let ext = parts.next();
            if parts.next().is_some() {
                return Err(bad(&joined, "more than one `@` in a plain source"));
            }
            let url = percent_encoding::percent_decode_str(url)
                .decode_utf8()
                .map_err(|_| bad(url, "the source is not UTF-8"))?;
            (url.into_owned(), ext.map(str::to_owned))
        }
        Some(_) => base64_source(&source)?,
    };
    if let Some(ext) = ext {
        state.format = Some(format(&ext).ok_or_else(|| bad(&ext, "unknown extension"))?);
    }
    // A local path stays a path even when it reads like a URL (`local:///s3://…`).
    let url = match url.strip_prefix("local:///") {
        Some(path) => format!("./{path}"),
        None => url,
    };
    // imgproxy cuts the query before anything: it is neither signed nor part of the source.
    let _ = query;
    request(state.finish()?, &url, None)
}

/// The base64 source: segments joined (imgproxy splits it anywhere), an optional `.ext`; url-
/// safe or standard alphabet, padding optional. A standard encoding's `/` reads as a segment
/// break, so joining with `/` is tried when joining without fails.
fn base64_source(segments: &[&str]) -> Result<(String, Option<String>), Error> {
    let last = segments.last().copied().unwrap_or_default();
    let (last, ext) = match last.rsplit_once('.') {
        Some((data, ext)) => (data, Some(ext)),
        None => (last, None),
    };
    let head = &segments[..segments.len().saturating_sub(1)];
    let decode = |sep: &str| -> Option<String> {
        let mut data: String = head.join(sep);
        if !head.is_empty() {
            data.push_str(sep);
        }
        data.push_str(last);
        let data = data.replace("%3D", "=").replace("%3d", "=");
        let data = data.trim_end_matches('=');
        let bytes = URL_SAFE_NO_PAD
            .decode(data)
            .or_else(|_| STANDARD_NO_PAD.decode(data))
            .ok()?;
        String::from_utf8(bytes).ok().filter(|s| s.contains(':'))
    };
    let url = decode("")
        .or_else(|| decode("/"))
        .ok_or_else(|| bad(&segments.join("/"), "not a plain/ or base64 source"))?;
    Ok((url, ext.map(str::to_owned)))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ResizeType {
    Fit,
    Fill,
    Force,
}

/// Options as read so far; a later option overrides.
#[derive(Default)]
struct State {
    t: Transform,
    resize: Option<ResizeType>,
    /// `ex:1`, and the gravity it places the image by.
    extend: Option<Gravity>,
    dpr: Option<f64>,
    zoom: Option<f64>,
    format: Option<FormatChoice>,
    /// `c:`: the window's sides, its own gravity (else `g`'s), and the segment for errors.
    crop: Option<(Span, Span, Option<Gravity>, String)>,
}

impl State {
    fn apply_all(&mut self, text: &str, now: u64) -> Result<(), Error> {
        for segment in text.split('/').filter(|s| !s.is_empty()) {
            self.apply(segment, now)?;
        }
        Ok(())
    }

    fn apply(&mut self, segment: &str, now: u64) -> Result<(), Error> {
        let (name, args) = segment.split_once(':').unwrap_or((segment, ""));
        let args: Vec<&str> = args.split(':').collect();
        let bad = |reason: &str| bad(segment, reason);
        let arity = |n: usize| {
            if args.len() > n {
                Err(bad("too many arguments"))
            } else {
                Ok(())
            }
        };
        let arg = |i: usize| args.get(i).copied().unwrap_or_default();
        match name {
            "resize" | "rs" => {
                arity(8)?;
                if !arg(0).is_empty() {
                    self.resize = Some(resize_type(arg(0)).ok_or_else(|| bad(RESIZE_TYPES))?);
                }
                self.size(&args[1.min(args.len())..], segment)?;
            }
            "size" | "s" => {
                arity(7)?;
                self.size(&args, segment)?;
            }
            "resizing_type" | "rt" => {
                arity(1)?;
                self.resize = Some(resize_type(arg(0)).ok_or_else(|| bad(RESIZE_TYPES))?);
            }
            "width" | "w" => {
                arity(1)?;
                self.t.width = dimension(arg(0)).ok_or_else(|| bad(DIMENSION))?;
            }
            "height" | "h" => {
                arity(1)?;
                self.t.height = dimension(arg(0)).ok_or_else(|| bad(DIMENSION))?;
            }
            "dpr" => {
                arity(1)?;
                self.dpr = Some(decimal(arg(0)).ok_or_else(|| bad("dpr is a number"))?);
            }
            "zoom" | "z" => {
                arity(2)?;
                let x = decimal(arg(0)).ok_or_else(|| bad("zoom is a number"))?;
                if args.len() == 2 && decimal(arg(1)) != Some(x) {
                    return Err(bad("zoom must be the same on both axes"));
                }
                self.zoom = Some(x);
            }
            "enlarge" | "el" => {
                arity(1)?;
                self.t.enlarge = boolean(arg(0)).ok_or_else(|| bad(BOOLEAN))?;
            }
            "extend" | "ex" => {
                arity(4)?;
                self.extend(&args, segment)?;
            }
            "gravity" | "g" => {
                arity(3)?;
                self.t.gravity = gravity(&args).ok_or_else(|| bad(GRAVITY))?;
            }
            "quality" | "q" => {
                arity(1)?;
                self.t.quality = match pixels(arg(0)) {
                    Some(0) => None,
                    Some(q) if q <= 100 => u8::try_from(q).ok(),
                    _ => return Err(bad("quality is an integer from 0 (default) to 100")),
                };
            }
            "format" | "f" | "ext" => {
                arity(1)?;
                self.format = Some(format(arg(0)).ok_or_else(|| bad(FORMATS))?);
            }
            "background" | "bg" => {
                arity(3)?;
                self.t.background = match args[..] {
                    [""] => Rgb::default(),
                    [hex] => hex_color(hex)
                        .filter(|_| !hex.starts_with('#'))
                        .ok_or_else(|| bad("background is r:g:b or 3 or 6 hex digits"))?,
                    [r, g, b] => {
                        let c = |s: &str| pixels(s).and_then(|v| u8::try_from(v).ok());
                        match (c(r), c(g), c(b)) {
                            (Some(r), Some(g), Some(b)) => Rgb([r, g, b]),
                            _ => return Err(bad("background is r:g:b (0 to 255 each) or hex")),
                        }
                    }
                    _ => return Err(bad("background is r:g:b or 3 or 6 hex digits")),
                };
            }
            "blur" | "bl" => {
                arity(1)?;
                self.t.blur = match decimal(arg(0)) {
                    Some(0.0) => None,
                    Some(v) => {
                        Some(sigma(v, 100.0).ok_or_else(|| bad("blur is a sigma up to 100"))?)
                    }
                    None => return Err(bad("blur is a sigma up to 100")),
                };
            }
            "sharpen" | "sh" => {
                arity(1)?;
                self.t.sharpen = match decimal(arg(0)) {
                    Some(0.0) => None,
                    Some(v) => {
                        Some(sigma(v, 10.0).ok_or_else(|| bad("sharpen is a sigma up to 10"))?)
                    }
                    None => return Err(bad("sharpen is a sigma up to 10")),
                };
            }
            "trim" | "t" => {
                if args.len() > 1 {
                    return Err(bad(
                        "trim takes only a threshold here (no colour or equal_*)",
                    ));
                }
                let threshold = decimal(arg(0))
                    .filter(|v| *v <= 255.0)
                    .ok_or_else(|| bad("trim is a threshold from 0 to 255"))?;
                self.t.trim = Some(threshold.round() as u8);
            }
            "rotate" | "rot" => {
                arity(1)?;
                self.t.rotation = super::ipx::quarter_turns(arg(0))
                    .ok_or_else(|| bad("rotate must be a multiple of 90"))?;
            }
            "flip" | "fl" => {
                arity(2)?;
                self.t.flip.h = boolean(arg(0)).ok_or_else(|| bad(BOOLEAN))?;
                self.t.flip.v = match args.get(1) {
                    Some(v) => boolean(v).ok_or_else(|| bad(BOOLEAN))?,
                    None => false,
                };
            }
            "expires" | "exp" => {
                arity(1)?;
                let at: u64 = arg(0)
                    .parse()
                    .map_err(|_| bad("expires is a Unix timestamp"))?;
                if at > 0 && at < now {
                    return Err(Error::Expired);
                }
            }
            // Only the URL changes, and with it the CDN's key; imgcdn's key is the same.
            "cachebuster" | "cb" => {}
            "auto_rotate" | "ar" | "strip_metadata" | "sm" | "strip_color_profile" | "scp" => {
                arity(1)?;
                match boolean(arg(0)) {
                    Some(true) => {}
                    Some(false) => {
                        return Err(bad(
                            "imgcdn always orients and strips metadata; it cannot be turned off",
                        ))
                    }
                    None => return Err(bad(BOOLEAN)),
                }
            }
            "crop" | "c" => {
                arity(5)?;
                let span = |s: &str| -> Option<Span> {
                    let v = decimal(s)?;
                    Some(if v == 0.0 {
                        Span::Pixels(0)
                    } else if v < 1.0 {
                        Span::Part(((v * 1000.0).round() as u16).clamp(1, 999))
                    } else {
                        Span::Pixels(pixels(&format!("{}", v.round()))?)
                    })
                };
                let (width, height) = match (span(arg(0)), args.get(1).map_or(Some(Span::Pixels(0)), |h| span(h))) {
                    (Some(w), Some(h)) => (w, h),
                    _ => return Err(bad("crop is c:<width>[:<height>[:<gravity>]], pixels, fractions below 1 or 0 for the whole side")),
                };
                let gravity = match &args[2.min(args.len())..] {
                    [] => None,
                    g => Some(gravity(g).filter(|g| *g != Gravity::Auto).ok_or_else(|| {
                        bad("imgcdn places a crop by compass or fp gravity (not sm, no offsets)")
                    })?),
                };
                self.crop = Some((width, height, gravity, segment.to_owned()));
            }
            "preset" | "pr" => return Err(bad("presets cannot name presets")),
            _ if UNSUPPORTED.contains(&name) => {
                return Err(bad("imgcdn has no equivalent for this imgproxy option"))
            }
            _ => return Err(bad("unknown imgproxy option")),
        }
        Ok(())
    }

    /// `w:h:enlarge:extend[:gravity…]` (`s:` and the tail of `rs:`); empty arguments unset.
    fn size(&mut self, args: &[&str], segment: &str) -> Result<(), Error> {
        let bad = |reason: &str| bad(segment, reason);
        let arg = |i: usize| args.get(i).copied().unwrap_or_default();
        if !arg(0).is_empty() {
            self.t.width = dimension(arg(0)).ok_or_else(|| bad(DIMENSION))?;
        }
        if !arg(1).is_empty() {
            self.t.height = dimension(arg(1)).ok_or_else(|| bad(DIMENSION))?;
        }
        if !arg(2).is_empty() {
            self.t.enlarge = boolean(arg(2)).ok_or_else(|| bad(BOOLEAN))?;
        }
        if args.len() > 3 && !arg(3).is_empty() {
            self.extend(&args[3..], segment)?;
        }
        Ok(())
    }

    /// `extend:bool[:gravity[:x:y]]`.
    fn extend(&mut self, args: &[&str], segment: &str) -> Result<(), Error> {
        let on = boolean(args.first().copied().unwrap_or_default())
            .ok_or_else(|| bad(segment, BOOLEAN))?;
        self.extend = if on {
            Some(match &args[1..] {
                [] | [""] => Gravity::Center,
                g => match gravity(g) {
                    Some(Gravity::Auto) | None => return Err(bad(segment, GRAVITY)),
                    Some(g) => g,
                },
            })
        } else {
            None
        };
        Ok(())
    }

    fn finish(mut self) -> Result<Transform, Error> {
        let t = &mut self.t;
        t.format = self.format;
        if let Some((width, height, gravity, segment)) = self.crop.take() {
            let gravity = gravity.unwrap_or(t.gravity);
            if gravity == Gravity::Auto {
                return Err(bad(
                    &segment,
                    "imgcdn cannot place a crop by smart gravity (g:sm)",
                ));
            }
            t.window = Some(CropWindow {
                width,
                height,
                gravity,
            });
        }
        t.fit = match (self.resize.unwrap_or(ResizeType::Fit), self.extend) {
            (ResizeType::Fit, None) => Fit::Fit,
            (ResizeType::Fit, Some(g)) => {
                if matches!(g, Gravity::Focal { .. }) {
                    // imgproxy centres the image on the point; imgcdn's pad places it that
                    // far along the free space.
                    return Err(bad("ex:1:fp", "imgcdn cannot extend by a focal point"));
                }
                t.gravity = g;
                Fit::Pad
            }
            (ResizeType::Fill, None) => Fit::Fill,
            (ResizeType::Force, None) => Fit::Scale,
            (_, Some(_)) => {
                return Err(bad(
                    "ex:1",
                    "imgcdn extends only with rt:fit (it pads the fitted image)",
                ))
            }
        };
        if t.fit == Fit::Pad && t.gravity == Gravity::Auto {
            t.gravity = Gravity::Center;
        }
        let ratio = self.dpr.unwrap_or(1.0) * self.zoom.unwrap_or(1.0);
        if ratio != 1.0 {
            apply_dpr(t, ratio).ok_or_else(|| {
                bad(
                    "dpr",
                    "dpr times zoom must be from 1 to 4 and keep sizes ≤ 65536",
                )
            })?;
        }
        Ok(finish(self.t))
    }
}

const RESIZE_TYPES: &str =
    "resizing type must be fit, fill, fill-down or force (auto is not supported)";
const DIMENSION: &str = "a size is an integer from 0 (unset) to 65536";
const BOOLEAN: &str = "a boolean is 1, t, true or 0, f, false";
const GRAVITY: &str =
    "gravity is no, so, ea, we, noea, nowe, soea, sowe, ce (no offsets), sm or fp:x:y";
const FORMATS: &str = "format must be jpg, jpeg, png, webp, avif or gif";

/// imgproxy options imgcdn has no equivalent for (a 400 that says so).
const UNSUPPORTED: &[&str] = &[
    "padding",
    "pd",
    "min-width",
    "mw",
    "min-height",
    "mh",
    "extend_aspect_ratio",
    "exar",
    "extend_ar",
    "watermark",
    "wm",
    "watermark_url",
    "wmu",
    "watermark_text",
    "wmt",
    "watermark_size",
    "wms",
    "watermark_shadow",
    "wmsh",
    "watermark_rotate",
    "wm_rot",
    "max_bytes",
    "mb",
    "filename",
    "fn",
    "return_attachment",
    "att",
    "raw",
    "skip_processing",
    "skp",
    "format_quality",
    "fq",
    "autoquality",
    "aq",
    "pixelate",
    "pix",
    "unsharp_masking",
    "ush",
    "brightness",
    "br",
    "contrast",
    "co",
    "saturation",
    "sa",
    "adjust",
    "a",
    "style",
    "st",
    "strip_metadata_except",
    "keep_copyright",
    "kcr",
    "enforce_thumbnail",
    "eth",
    "jpeg_options",
    "jpgo",
    "png_options",
    "pngo",
    "webp_options",
    "webpo",
    "avif_options",
    "avifo",
    "video_thumbnail_second",
    "vts",
    "page",
    "pg",
    "pages",
    "pgs",
    "disable_animation",
    "da",
    "fallback_image_url",
    "fiu",
    "objects_position",
    "obj_pos",
    "op",
    "crop_aspect_ratio",
    "crop_ar",
    "car",
    "hashsum",
    "hs",
    "colorize",
    "col",
    "gradient",
    "gr",
    "dpi",
    "draw_detections",
    "dd",
    "blur_detections",
    "bd",
    "duotone",
    "dt",
    "monochrome",
    "mc",
    "background_alpha",
    "bga",
    "max_src_resolution",
    "msr",
    "max_src_file_size",
    "msfs",
    "max_animation_frames",
    "maf",
    "max_animation_frame_resolution",
    "mafr",
    "max_result_dimension",
    "mrd",
];

fn resize_type(s: &str) -> Option<ResizeType> {
    Some(match s {
        "fit" => ResizeType::Fit,
        "fill" | "fill-down" => ResizeType::Fill,
        "force" => ResizeType::Force,
        _ => return None,
    })
}

/// A size: 0 is unset.
fn dimension(s: &str) -> Option<Option<u32>> {
    pixels(s).map(|v| (v > 0).then_some(v))
}

/// Go's `strconv.ParseBool`, which imgproxy uses.
fn boolean(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn gravity(args: &[&str]) -> Option<Gravity> {
    let compass = |g: Gravity, offsets: &[&str]| {
        offsets
            .iter()
            .all(|o| o.is_empty() || decimal(o) == Some(0.0))
            .then_some(g)
    };
    match args {
        ["fp", x, y] => Some(Gravity::Focal {
            x: fraction(x)?,
            y: fraction(y)?,
        }),
        ["sm"] => Some(Gravity::Auto),
        [name, offsets @ ..] if offsets.len() <= 2 => compass(
            match *name {
                "ce" => Gravity::Center,
                "no" => Gravity::North,
                "so" => Gravity::South,
                "ea" => Gravity::East,
                "we" => Gravity::West,
                "noea" => Gravity::NorthEast,
                "nowe" => Gravity::NorthWest,
                "soea" => Gravity::SouthEast,
                "sowe" => Gravity::SouthWest,
                _ => return None,
            },
            offsets,
        ),
        _ => None,
    }
}

/// A focal coordinate 0..=1; more than three decimals are rounded.
fn fraction(s: &str) -> Option<u16> {
    parse_fraction(s).or_else(|| {
        let v = decimal(s)?;
        (0.0..=1.0)
            .contains(&v)
            .then(|| (v * 1000.0).round() as u16)
    })
}

fn format(s: &str) -> Option<FormatChoice> {
    super::output_format(s).map(FormatChoice::Fixed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options;

    const SOURCE: &str = "aHR0cDovLzEyNy4wLjAuMTo5OTk5L3Bob3RvLmpwZw"; // http://127.0.0.1:9999/photo.jpg

    fn presets() -> BTreeMap<String, String> {
        BTreeMap::from([("thumb".to_owned(), "rs:fill:150:150/q:70".to_owned())])
    }

    #[track_caller]
    fn same(options: &str, native: &str) {
        let r = parse(
            &format!("/_/{options}/{SOURCE}"),
            None,
            &Keys::default(),
            &presets(),
            100,
        )
        .unwrap_or_else(|e| panic!("{options}: {e}"));
        assert_eq!(r.transform, options::parse(native).unwrap(), "{options}");
        assert_eq!(r.source, "http://127.0.0.1:9999/photo.jpg");
    }

    #[track_caller]
    fn refused(options: &str, token: &str) {
        match parse(
            &format!("/_/{options}/{SOURCE}"),
            None,
            &Keys::default(),
            &presets(),
            100,
        ) {
            Err(Error::Option(e)) => assert_eq!(e.token, token, "{options}: {e}"),
            other => panic!("{options}: {other:?}"),
        }
    }

    #[test]
    fn every_option_maps_to_its_native_option() {
        let rows = [
            ("w:300", "w_300"),
            ("width:300/height:200", "w_300,h_200"),
            ("w:300/h:0", "w_300"),
            ("rs:fill:300:200", "w_300,h_200,c_fill"),
            ("resize:fit:300:200:1", "w_300,h_200,up_1"),
            ("rs:force:300:200", "w_300,h_200,c_scale"),
            ("rs:fill-down:300:200", "w_300,h_200,c_fill"),
            ("rs:fit:300:200:0:1", "w_300,h_200,c_pad"),
            ("rs:fit:300:200:0:1:no", "w_300,h_200,c_pad,g_n"),
            ("s:300:200", "w_300,h_200"),
            ("size:300::t", "w_300,up_1"),
            ("rt:fill/w:300/h:200", "w_300,h_200,c_fill"),
            ("h:200/rt:fill/w:300/g:no", "w_300,h_200,c_fill,g_n"),
            ("rt:fill/w:300/h:200/g:soea:0:0", "w_300,h_200,c_fill,g_se"),
            ("rt:fill/w:300/h:200/g:sm", "w_300,h_200,c_fill,g_auto"),
            (
                "g:fp:0.3:0.7/rs:fill:300:200",
                "w_300,h_200,c_fill,g_fp_0.3_0.7",
            ),
            (
                "g:fp:0.33333:1/rs:fill:300:200",
                "w_300,h_200,c_fill,g_fp_0.333_1",
            ),
            ("rt:fit/w:300/h:200/g:no", "w_300,h_200"),
            ("w:300/ex:1:sowe", "w_300"),
            ("w:300/h:200/ex:1:sowe", "w_300,h_200,c_pad,g_sw"),
            ("w:300/h:200/extend:true", "w_300,h_200,c_pad"),
            ("w:300/el:1", "w_300,up_1"),
            ("w:300/enlarge:false", "w_300"),
            ("w:300/dpr:2", "w_600"),
            ("w:300/z:1.5", "w_450"),
            ("w:300/zoom:2:2/dpr:1.5", "w_900"),
            ("q:80", "q_80"),
            ("q:0", "_"),
            ("quality:80/q:70", "q_70"),
            ("f:webp", "f_webp"),
            ("format:jpg", "f_jpeg"),
            ("ext:avif", "f_avif"),
            ("bg:255:0:0", "bg_ff0000"),
            ("bg:00ff00", "bg_00ff00"),
            ("bg:fff", "_"),
            ("background:", "_"),
            ("bl:2", "blur_2"),
            ("blur:0", "_"),
            ("sh:0.5", "sharpen_0.5"),
            ("t:10", "trim_10"),
            ("trim:0", "trim_0"),
            ("rot:90", "r_90"),
            ("rotate:270", "r_270"),
            ("fl:1", "flip_h"),
            ("flip:0:1", "flip_v"),
            ("fl:t:t", "flip_hv"),
            ("exp:0", "_"),
            ("exp:200", "_"),
            ("cb:abc", "_"),
            ("ar:1/sm:true", "_"),
            ("c:800:600", "crop_800x600"),
            ("crop:800", "crop_800x0"),
            ("c:0.5:0.25:soea", "crop_0.5x0.25_se"),
            (
                "g:nowe/c:800:600/rs:fill:300:200",
                "w_300,h_200,c_fill,g_nw,crop_800x600_nw",
            ),
            ("c:100:100:fp:0.5:0.1", "crop_100x100_fp_0.5_0.1"),
            ("pr:thumb", "w_150,h_150,c_fill,q_70"),
            ("pr:thumb/q:90", "w_150,h_150,c_fill,q_90"),
            ("q:90/preset:thumb", "w_150,h_150,c_fill,q_70"),
        ];
        for (options, native) in rows {
            same(options, native);
        }
    }

    #[test]
    fn every_error_names_its_option() {
        let rows = [
            ("w:abc", "w:abc"),
            ("w:300:400", "w:300:400"),
            ("rt:auto", "rt:auto"),
            ("rs:crop:300:200", "rs:crop:300:200"),
            ("g:no:10:0", "g:no:10:0"),
            ("g:fp:0.5", "g:fp:0.5"),
            ("g:fp:1.5:0", "g:fp:1.5:0"),
            ("g:middle", "g:middle"),
            ("q:101", "q:101"),
            ("f:tiff", "f:tiff"),
            ("bg:#fff", "bg:#fff"),
            ("bg:300:0:0", "bg:300:0:0"),
            ("bl:200", "bl:200"),
            ("sh:11", "sh:11"),
            ("t:10:fff", "t:10:fff"),
            ("rot:45", "rot:45"),
            ("fl:yes", "fl:yes"),
            ("el:yes", "el:yes"),
            ("z:1:2", "z:1:2"),
            ("c:abc", "c:abc"),
            ("c:100:100:sm", "c:100:100:sm"),
            ("g:sm/c:100:100", "c:100:100"),
            ("c:100:100:no:5:5", "c:100:100:no:5:5"),
            ("ar:0", "ar:0"),
            ("sm:false", "sm:false"),
            ("pd:10", "pd:10"),
            ("wm:0.5", "wm:0.5"),
            ("mb:1000", "mb:1000"),
            ("fn:cat", "fn:cat"),
            ("raw:1", "raw:1"),
            ("bogus:1", "bogus:1"),
            ("pr:nope", "pr:nope"),
            ("rt:fill/w:300/h:300/ex:1", "ex:1"),
            ("w:300/h:300/ex:1:fp:0.1:0.2", "ex:1:fp"),
            ("w:300/dpr:0.5", "dpr"),
            ("w:300/dpr:5", "dpr"),
        ];
        for (options, token) in rows {
            refused(options, token);
        }
        let keys = Keys::default();
        let none = BTreeMap::new();
        assert_eq!(
            parse("/_/w:300/exp:50/x", None, &keys, &none, 100),
            Err(Error::Expired)
        );
        assert_eq!(
            parse("/_/w:300", None, &keys, &none, 100),
            Err(Error::MissingSource)
        );
        assert!(matches!(
            parse("//w:300/plain/x", None, &keys, &none, 100),
            Err(Error::Signature(_))
        ));
        assert!(matches!(
            parse("/_/w:300/!!!", None, &keys, &none, 100),
            Err(Error::Option(_))
        ));
    }

    #[test]
    fn sources_plain_base64_and_local() {
        let keys = Keys::default();
        let none = BTreeMap::new();
        let p = |path: &str, query: Option<&str>| parse(path, query, &keys, &none, 0).unwrap();
        let r = p(
            "/insecure/w:300/plain/http://o.example/a%20b.jpg%3Fv%3D1@webp",
            Some("x=2"),
        );
        assert_eq!(r.source, "http://o.example/a b.jpg");
        assert_eq!(r.query.as_deref(), Some("v=1"));
        assert_eq!(r.transform, options::parse("w_300,f_webp").unwrap());
        // url-safe and standard, padded or not, split anywhere, with an extension.
        let url = "https://origin.example.com/cat.jpg?a=~~~";
        let safe = URL_SAFE_NO_PAD.encode(url);
        let standard = base64::engine::general_purpose::STANDARD.encode(url);
        assert!(
            standard.contains('/') || standard.contains('+'),
            "{standard}"
        );
        for encoded in [
            safe.clone(),
            format!("{safe}=="),
            standard.clone(),
            format!("{}/{}", &safe[..10], &safe[10..]),
        ] {
            let r = p(&format!("/unsafe/f:png/{encoded}.jpg"), None);
            assert_eq!(r.source, "https://origin.example.com/cat.jpg", "{encoded}");
            assert_eq!(r.query.as_deref(), Some("a=~~~"));
            assert_eq!(r.transform, options::parse("f_jpeg").unwrap());
        }
        let r = p("/_/plain/local:///photos/cat.jpg", None);
        assert_eq!(r.source, "./photos/cat.jpg");
        let r = p("/_/plain/s3://bucket/key.jpg", None);
        assert_eq!(r.source, "s3://bucket/key.jpg");
    }

    #[test]
    fn signatures_verify_as_imgproxy_computes_them() {
        // From @imgproxy/imgproxy-node 1.1.0 (tests/compat/urls.mjs) with these secrets.
        let keys = Keys::new(
            "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881",
            "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5",
        )
        .unwrap();
        let path = format!("/f:webp/q:80/w:300/{SOURCE}");
        let sig = "GT5OeiRy9Uik3TlfjGdlYSdMiwVQkCShjbHf4wghwX8";
        assert_eq!(keys.sign(&path).as_deref(), Some(sig));
        let none = BTreeMap::new();
        let r = parse(&format!("/{sig}{path}"), None, &keys, &none, 0).unwrap();
        assert_eq!(r.transform, options::parse("w_300,q_80,f_webp").unwrap());
        for wrong in [
            "insecure".to_owned(),
            "unsafe".to_owned(),
            format!("{sig}="),
            sig.replace('G', "H"),
        ] {
            assert_eq!(
                parse(&format!("/{wrong}{path}"), None, &keys, &none, 0),
                Err(Error::Signature("invalid signature")),
                "{wrong}"
            );
        }
        // The query is not signed (imgproxy cuts it first) and never reaches the source.
        let r = parse(&format!("/{sig}{path}"), Some("v=1"), &keys, &none, 0).unwrap();
        assert_eq!(r.query, None);
        // Any other path fails.
        let other = format!("/{sig}/f:webp/q:81/w:300/{SOURCE}");
        assert!(parse(&other, None, &keys, &none, 0).is_err());
        // Pairs rotate: a second pair verifies too.
        let two = Keys::new(
            "0a0b,943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881",
            "0c,520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5",
        )
        .unwrap();
        assert!(parse(&format!("/{sig}{path}"), None, &two, &none, 0).is_ok());
        assert!(Keys::new("0a", "").is_err());
        assert!(Keys::new("zz", "00").is_err());
    }

    #[test]
    fn presets_are_checked_at_start_up() {
        assert!(check_preset("thumb", "rs:fill:150:150/q:70").is_ok());
        assert!(check_preset("thumb", "pr:other").is_err());
        assert!(check_preset("thumb", "w:abc").is_err());
        assert!(check_preset("a b", "w:1").is_err());
        assert!(check_preset("thumb", "plain").is_err());
    }
}
