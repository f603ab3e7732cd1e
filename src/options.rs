//! The options grammar: the path segment after `/img/` (`w_300,h_200,c_fill`) parsed into a
//! typed [`Transform`], and printed back in canonical form for cache keys and logs.
//!
//! Pure: no I/O, no HTTP types. `dpr` is applied at parse time (it multiplies `w` and `h`), so
//! `w_300,dpr_2` and `w_600` are the same `Transform`.
//!
//! Grammar: comma-separated `name_value` tokens (split at the first `_`), each name at most once,
//! names lowercase; `_` alone means no options. Options: `w_`/`h_` (1..=65536 px), `dpr_` (1..=4,
//! up to 3 decimals), `c_fit|fill|pad|scale`, `g_center|n|s|e|w|ne|nw|se|sw|auto`, `up_0|1`,
//! `q_1..100`, `f_jpeg|jpg|png|webp|avif|gif|auto|lqip`, `bg_rrggbb`, `r_90|180|270` (clockwise), `flip_h|v|hv`,
//! `crop_<x>_<y>_<w>_<h>` (source pixels) or `crop_<w>x<h>[_<gravity>]` (a window placed by
//! gravity; sides in pixels, 0 = whole, or fractions like `0.5`), `trim_<0..=255>`, `blur_<sigma>` (0.1..=100), `sharpen_<sigma>`
//! (0.1..=10), sigmas with at most one decimal, `page_<n>` (1-based animation frame, 1..=65536:
//! flattens an animation to that frame), `gray_0|1` (grayscale output), `c_outside` (cover the
//! box without cropping), `g_fp_<x>_<y>` (a focal point, fractions 0..=1 of the image with at
//! most 3 decimals) and `g_px_<x>_<y>` (a focal point in pixels), `ar_<a>:<b>` (an aspect
//! ratio: with exactly one of `w`/`h` it sets the other, and implies `c_fill` when `c_` is not
//! given; resolved here, so `w_300,ar_2:1` *is* `w_300,h_150,c_fill`).
//!
//! Geometry: every option sees the source as displayed (EXIF orientation applied), then turned
//! by `r_`, then mirrored by `flip_`; `crop_` cuts a rectangle of that image, and `w`/`h`/`c`/`g`
//! fit what is left. `blur_` and `sharpen_` apply to the resized image.
//!
//! Deliberately not done here: the output-pixel limit (the pipeline enforces it; `w`/`h` may be
//! up to 65536 so that the canonical form of any `dpr`-multiplied size re-parses), content
//! negotiation for `f_auto`, and anything about the source URL.

use std::fmt;

use crate::format::Format;

/// How the source is fitted into the `w` x `h` box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fit {
    /// Fit inside the box, keep the aspect ratio (default).
    #[default]
    Fit,
    /// Cover the box, keep the aspect ratio, crop the overflow by gravity.
    Fill,
    /// Fit, then pad to exactly the box with the background colour.
    Pad,
    /// Stretch to exactly the box.
    Scale,
    /// Cover the box, keep the aspect ratio, crop nothing: the result is at least the box in
    /// both dimensions (sharp's `outside`).
    Outside,
}

/// Which part of the image to keep when cropping (`fill`) or where to place it (`pad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gravity {
    #[default]
    Center,
    North,
    South,
    East,
    West,
    NorthEast,
    NorthWest,
    SouthEast,
    SouthWest,
    /// `g_auto`: for `fill`, the most interesting region (edges, saturation, skin tones); the
    /// centre for `pad`.
    Auto,
    /// `g_fp_<x>_<y>`: a focal point as fractions of the image's width and height, in
    /// thousandths (0..=1000). `fill` centres the crop on it as far as the image allows; `pad`
    /// places the image that far along the free space.
    Focal {
        x: u16,
        y: u16,
    },
    /// `g_px_<x>_<y>`: a focal point in pixels of the image being fitted (after `crop_`),
    /// clamped to it; otherwise as [`Gravity::Focal`].
    Point {
        x: u32,
        y: u32,
    },
}

/// The output format asked for with `f_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatChoice {
    /// Best the client's `Accept` allows.
    Auto,
    /// This exact format.
    Fixed(Format),
    /// `f_lqip`: a tiny blurred WebP placeholder (at most 32 px, at most 1 KB) of the result.
    Lqip,
}

/// A clockwise turn by `r_`, in quarter turns (0..=3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rotation(pub u8);

/// Mirroring by `flip_`: `h` mirrors left-right, `v` top-bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flip {
    pub h: bool,
    pub v: bool,
}

/// A rectangle of source pixels (`crop_<x>_<y>_<w>_<h>`), in the displayed, turned and mirrored
/// source; `width` and `height` are at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CropRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// `crop_<w>x<h>[_<gravity>]`: a window of that size placed by gravity (imgproxy's `c:`), in
/// the displayed, turned and mirrored source, resolved against its size by the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CropWindow {
    pub width: Span,
    pub height: Span,
    /// Any gravity but `auto` (which the grammar refuses here).
    pub gravity: Gravity,
}

/// One side of a [`CropWindow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    /// Pixels, capped at the image's side; 0 = the whole side.
    Pixels(u32),
    /// A fraction of the side in thousandths, 1..=999 (written `0.5`).
    Part(u16),
}

impl Span {
    /// The span on a side of `side` pixels: at least 1, at most `side`.
    pub fn of(self, side: u32) -> u32 {
        let v = match self {
            Span::Pixels(0) => side,
            Span::Pixels(px) => px,
            Span::Part(t) => ((u64::from(side) * u64::from(t) + 500) / 1000) as u32,
        };
        v.clamp(1, side.max(1))
    }

    fn parse(s: &str) -> Option<Span> {
        if s.contains('.') {
            parse_fraction(s)
                .filter(|t| (1..=999).contains(t))
                .map(Span::Part)
        } else {
            parse_uint(s)
                .filter(|v| *v <= MAX_DIMENSION)
                .map(Span::Pixels)
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::Pixels(px) => write!(f, "{px}"),
            Span::Part(t) => write!(f, "{}", Thousandths(*t)),
        }
    }
}

/// A Gaussian sigma in tenths of a pixel (so `Transform` stays `Eq` and `Hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sigma(pub u16);

impl Sigma {
    pub fn get(self) -> f32 {
        f32::from(self.0) / 10.0
    }
}

impl fmt::Display for Sigma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 % 10 {
            0 => write!(f, "{}", self.0 / 10),
            d => write!(f, "{}.{d}", self.0 / 10),
        }
    }
}

/// An sRGB colour (`bg_rrggbb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub [u8; 3]);

impl Default for Rgb {
    fn default() -> Self {
        Rgb([255, 255, 255])
    }
}

/// A parsed, validated options segment. `width`/`height` already include `dpr`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Transform {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub gravity: Gravity,
    /// `up_1`: allow the output to be larger than the source.
    pub enlarge: bool,
    /// `q_`: 1..=100; `None` means the configured default.
    pub quality: Option<u8>,
    /// `f_`: `None` means the source's own format (GIF becomes PNG).
    pub format: Option<FormatChoice>,
    pub background: Rgb,
    pub rotation: Rotation,
    pub flip: Flip,
    pub crop: Option<CropRect>,
    /// `crop_<w>x<h>[_<gravity>]` (never set together with `crop`: they are one option).
    pub window: Option<CropWindow>,
    pub blur: Option<Sigma>,
    pub sharpen: Option<Sigma>,
    /// `trim_`: cut borders within this colour distance of the top-left pixel (0..=255).
    pub trim: Option<u8>,
    /// `page_`: the 1-based animation frame to flatten to; `None` keeps the animation.
    pub page: Option<u32>,
    /// `gray_1`: the output in shades of grey (alpha kept).
    pub grayscale: bool,
}

/// A rejected option token; the message names the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad option `{token}`: {reason}")]
pub struct OptionsError {
    pub token: String,
    pub reason: String,
}

/// Largest accepted `w`/`h`, after `dpr` too (16384 x the maximum `dpr` of 4), so that every
/// canonical string re-parses. The output-pixel limit is enforced by the pipeline, not here.
pub const MAX_DIMENSION: u32 = 65_536;

/// Largest accepted `page_` (the pipeline refuses pages beyond the source's frames).
pub const MAX_PAGE: u32 = 65_536;

/// `dpr` is held in thousandths so that scaling is exact integer arithmetic.
const DPR_SCALE: u64 = 1000;
const DPR_MIN: u64 = DPR_SCALE;
const DPR_MAX: u64 = 4 * DPR_SCALE;
const DPR_MAX_DECIMALS: usize = 3;

impl Transform {
    /// Whether the transform keeps the source's pixels as they are: no size, crop, trim,
    /// rotation, flip, filter or frame option (`fit`, gravity and background change nothing
    /// without a size; quality and format only the encoding). For `source.passthrough`.
    pub fn keeps_pixels(&self) -> bool {
        self.width.is_none()
            && self.height.is_none()
            && self.rotation == Rotation::default()
            && self.flip == Flip::default()
            && self.crop.is_none()
            && self.window.is_none()
            && self.trim.is_none()
            && self.blur.is_none()
            && self.sharpen.is_none()
            && self.page.is_none()
            && !self.grayscale
    }

    /// The asked-for quality, or `default` when `q_` was not given.
    pub fn quality_or(&self, default: u8) -> u8 {
        self.quality.unwrap_or(default)
    }
}

impl Fit {
    fn name(self) -> &'static str {
        match self {
            Fit::Fit => "fit",
            Fit::Fill => "fill",
            Fit::Pad => "pad",
            Fit::Scale => "scale",
            Fit::Outside => "outside",
        }
    }

    /// Whether gravity changes the result in this mode.
    fn uses_gravity(self) -> bool {
        matches!(self, Fit::Fill | Fit::Pad)
    }
}

impl fmt::Display for Gravity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Gravity::Center => "center",
            Gravity::North => "n",
            Gravity::South => "s",
            Gravity::East => "e",
            Gravity::West => "w",
            Gravity::NorthEast => "ne",
            Gravity::NorthWest => "nw",
            Gravity::SouthEast => "se",
            Gravity::SouthWest => "sw",
            Gravity::Auto => "auto",
            Gravity::Focal { x, y } => {
                return write!(f, "fp_{}_{}", Thousandths(*x), Thousandths(*y));
            }
            Gravity::Point { x, y } => return write!(f, "px_{x}_{y}"),
        };
        f.write_str(name)
    }
}

impl Gravity {
    /// The compass gravity named `name` in the grammar (`center`, `n`, …, `sw`).
    fn compass(name: &str) -> Option<Gravity> {
        Some(match name {
            "center" => Gravity::Center,
            "n" => Gravity::North,
            "s" => Gravity::South,
            "e" => Gravity::East,
            "w" => Gravity::West,
            "ne" => Gravity::NorthEast,
            "nw" => Gravity::NorthWest,
            "se" => Gravity::SouthEast,
            "sw" => Gravity::SouthWest,
            _ => return None,
        })
    }

    /// A focal point on a corner, a side's middle or the centre is that compass gravity (they
    /// place identically), so both spellings make one cache entry.
    pub fn normalized(self) -> Gravity {
        let Gravity::Focal { x, y } = self else {
            return self;
        };
        match (x, y) {
            (500, 500) => Gravity::Center,
            (500, 0) => Gravity::North,
            (500, 1000) => Gravity::South,
            (1000, 500) => Gravity::East,
            (0, 500) => Gravity::West,
            (1000, 0) => Gravity::NorthEast,
            (0, 0) => Gravity::NorthWest,
            (1000, 1000) => Gravity::SouthEast,
            (0, 1000) => Gravity::SouthWest,
            _ => self,
        }
    }
}

/// A fraction 0..=1 held in thousandths, printed with as few decimals as it needs.
struct Thousandths(u16);

impl fmt::Display for Thousandths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, mut frac, mut digits) = (self.0 / 1000, self.0 % 1000, 3);
        if frac == 0 {
            return write!(f, "{int}");
        }
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        write!(f, "{int}.{frac:0digits$}")
    }
}

/// The canonical options string (cache keys, logs): fixed order
/// `w,h,c,g,up,q,f,bg,r,flip,crop,trim,blur,sharpen,page,gray`, defaults
/// omitted, hex lowercase, `_` when nothing is set. Gravity is printed only for `fill`/`pad`,
/// where it has an effect. For any `t` returned by [`parse`], `parse(&t.to_string()) == Ok(t)`.
impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut put = |f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>| {
            let r = write!(f, "{sep}{args}");
            sep = ",";
            r
        };
        if let Some(w) = self.width {
            put(f, format_args!("w_{w}"))?;
        }
        if let Some(h) = self.height {
            put(f, format_args!("h_{h}"))?;
        }
        if self.fit != Fit::Fit {
            put(f, format_args!("c_{}", self.fit.name()))?;
        }
        if self.fit.uses_gravity() && self.gravity != Gravity::Center {
            put(f, format_args!("g_{}", self.gravity))?;
        }
        if self.enlarge {
            put(f, format_args!("up_1"))?;
        }
        if let Some(q) = self.quality {
            put(f, format_args!("q_{q}"))?;
        }
        match self.format {
            None => {}
            Some(FormatChoice::Auto) => put(f, format_args!("f_auto"))?,
            Some(FormatChoice::Lqip) => put(f, format_args!("f_lqip"))?,
            Some(FormatChoice::Fixed(format)) => put(f, format_args!("f_{}", format.name()))?,
        }
        if self.background != Rgb::default() {
            let [r, g, b] = self.background.0;
            put(f, format_args!("bg_{r:02x}{g:02x}{b:02x}"))?;
        }
        if self.rotation.0 != 0 {
            put(f, format_args!("r_{}", u16::from(self.rotation.0) * 90))?;
        }
        match (self.flip.h, self.flip.v) {
            (false, false) => {}
            (true, false) => put(f, format_args!("flip_h"))?,
            (false, true) => put(f, format_args!("flip_v"))?,
            (true, true) => put(f, format_args!("flip_hv"))?,
        }
        if let Some(c) = self.crop {
            put(
                f,
                format_args!("crop_{}_{}_{}_{}", c.x, c.y, c.width, c.height),
            )?;
        }
        if let Some(w) = self.window {
            match w.gravity {
                Gravity::Center => put(f, format_args!("crop_{}x{}", w.width, w.height))?,
                g => put(f, format_args!("crop_{}x{}_{g}", w.width, w.height))?,
            }
        }
        if let Some(tolerance) = self.trim {
            put(f, format_args!("trim_{tolerance}"))?;
        }
        if let Some(sigma) = self.blur {
            put(f, format_args!("blur_{sigma}"))?;
        }
        if let Some(sigma) = self.sharpen {
            put(f, format_args!("sharpen_{sigma}"))?;
        }
        if let Some(page) = self.page {
            put(f, format_args!("page_{page}"))?;
        }
        if self.grayscale {
            put(f, format_args!("gray_1"))?;
        }
        if sep.is_empty() {
            f.write_str("_")?;
        }
        Ok(())
    }
}

/// Multiply `w`/`h` by a device pixel ratio given as text (a `DPR` client hint), clamped to
/// the `dpr_` range 1..=4 and rounded to 3 decimals; `false` (and `t` unchanged) when the text
/// is not a number or a size would pass [`MAX_DIMENSION`].
pub fn apply_dpr(t: &mut Transform, dpr: &str) -> bool {
    let Ok(value) = dpr.trim().parse::<f64>() else {
        return false;
    };
    if !value.is_finite() {
        return false;
    }
    let milli = ((value.clamp(1.0, 4.0) * DPR_SCALE as f64).round() as u64).clamp(DPR_MIN, DPR_MAX);
    apply_dpr_milli(t, milli)
}

/// Multiply `w`/`h` by a device pixel ratio in thousandths (1000..=4000); `false` (and `t`
/// unchanged) when a size would pass [`MAX_DIMENSION`].
pub(crate) fn apply_dpr_milli(t: &mut Transform, milli: u64) -> bool {
    match (scale_by_dpr(t.width, milli), scale_by_dpr(t.height, milli)) {
        (Some(width), Some(height)) => {
            t.width = width;
            t.height = height;
            true
        }
        _ => false,
    }
}

/// True when the options segment spells the option `name` (`dpr`, `w`, `q`, …) itself.
pub fn mentions(segment: &str, name: &str) -> bool {
    segment
        .split(',')
        .any(|token| token.split_once('_').is_some_and(|(n, _)| n == name))
}

/// Parse the options segment (`_` alone means no options).
pub fn parse(segment: &str) -> Result<Transform, OptionsError> {
    if segment.is_empty() {
        return Err(error(
            "",
            "the options segment is empty; use `_` for no options",
        ));
    }
    if segment == "_" {
        return Ok(Transform::default());
    }

    let mut t = Transform::default();
    let mut seen = Seen::default();
    // The dpr token and its value in thousandths, applied once all tokens are read.
    let mut dpr: Option<(&str, u64)> = None;
    // The ar token and the ratio (numerator, denominator), applied before dpr.
    let mut ratio: Option<(&str, (u64, u64))> = None;

    for token in segment.split(',') {
        let (name, value) = split_token(token)?;
        let option = Opt::from_name(name).ok_or_else(|| error(token, "unknown option"))?;
        if !seen.insert(option) {
            return Err(error(token, "option given more than once"));
        }
        let bad = |reason: &str| error(token, reason);
        match option {
            Opt::Width => {
                t.width = Some(parse_dimension(value).ok_or_else(|| bad(WIDTH_RANGE))?);
            }
            Opt::Height => {
                t.height = Some(parse_dimension(value).ok_or_else(|| bad(HEIGHT_RANGE))?);
            }
            Opt::Dpr => {
                let milli = parse_dpr(value).ok_or_else(|| {
                    bad("dpr must be a number from 1 to 4 with at most 3 decimals")
                })?;
                dpr = Some((token, milli));
            }
            Opt::Crop => {
                t.fit = match value {
                    "fit" => Fit::Fit,
                    "fill" => Fit::Fill,
                    "pad" => Fit::Pad,
                    "scale" => Fit::Scale,
                    "outside" => Fit::Outside,
                    _ => return Err(bad("crop mode must be fit, fill, pad, scale or outside")),
                };
            }
            Opt::Gravity => {
                t.gravity = match value {
                    _ if value.starts_with("fp_") || value.starts_with("px_") => {
                        parse_focal(value).map(Gravity::normalized).ok_or_else(|| {
                            bad("a focal point is g_fp_<x>_<y> (fractions 0 to 1, 3 decimals at most) or g_px_<x>_<y> (pixels)")
                        })?
                    }
                    "auto" => Gravity::Auto,
                    _ => Gravity::compass(value).ok_or_else(|| {
                        bad("gravity must be center, n, s, e, w, ne, nw, se, sw, auto, fp_<x>_<y> or px_<x>_<y>")
                    })?,
                };
            }
            Opt::Enlarge => {
                t.enlarge = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad("up must be 0 or 1")),
                };
            }
            Opt::Quality => {
                let q = parse_uint(value)
                    .filter(|q| (1..=100).contains(q))
                    .and_then(|q| u8::try_from(q).ok())
                    .ok_or_else(|| bad("quality must be an integer from 1 to 100"))?;
                t.quality = Some(q);
            }
            Opt::Format => {
                t.format = Some(match value {
                    "jpeg" | "jpg" => FormatChoice::Fixed(Format::Jpeg),
                    "png" => FormatChoice::Fixed(Format::Png),
                    "webp" => FormatChoice::Fixed(Format::Webp),
                    "avif" => FormatChoice::Fixed(Format::Avif),
                    "gif" => FormatChoice::Fixed(Format::Gif),
                    "auto" => FormatChoice::Auto,
                    "lqip" => FormatChoice::Lqip,
                    _ => {
                        return Err(bad(
                            "format must be jpeg, jpg, png, webp, avif, gif, auto or lqip",
                        ))
                    }
                });
            }
            Opt::Background => {
                t.background = parse_hex_rgb(value)
                    .ok_or_else(|| bad("background must be 6 hex digits (rrggbb)"))?;
            }
            Opt::Rotate => {
                t.rotation = Rotation(match value {
                    "0" => 0,
                    "90" => 1,
                    "180" => 2,
                    "270" => 3,
                    _ => return Err(bad("rotation must be 0, 90, 180 or 270 (clockwise)")),
                });
            }
            Opt::Flip => {
                let (h, v) = match value {
                    "h" => (true, false),
                    "v" => (false, true),
                    "hv" | "vh" => (true, true),
                    _ => return Err(bad("flip must be h, v or hv")),
                };
                t.flip = Flip { h, v };
            }
            Opt::CropRect if value.split('_').next().is_some_and(|v| v.contains('x')) => {
                t.window = Some(parse_window(value).ok_or_else(|| {
                    bad("a crop window is crop_<w>x<h>[_<gravity>]: pixels (0 = whole side) or fractions like 0.5, and a gravity as in g_")
                })?);
            }
            Opt::CropRect => {
                let mut parts = value.split('_').map(parse_uint);
                let mut next = || parts.next().flatten();
                let (x, y, width, height) = (next(), next(), next(), next());
                let rect = match (x, y, width, height, next()) {
                    (Some(x), Some(y), Some(width), Some(height), None)
                        if width > 0 && height > 0 =>
                    {
                        CropRect {
                            x,
                            y,
                            width,
                            height,
                        }
                    }
                    _ => {
                        return Err(bad(
                            "crop is crop_<x>_<y>_<width>_<height> in source pixels, width and height at least 1",
                        ))
                    }
                };
                t.crop = Some(rect);
            }
            Opt::Blur => {
                t.blur = Some(parse_sigma(value, 1000).ok_or_else(|| {
                    bad("blur must be a sigma from 0.1 to 100, one decimal at most")
                })?);
            }
            Opt::Sharpen => {
                t.sharpen = Some(parse_sigma(value, 100).ok_or_else(|| {
                    bad("sharpen must be a sigma from 0.1 to 10, one decimal at most")
                })?);
            }
            Opt::Trim => {
                t.trim = Some(
                    parse_uint(value)
                        .and_then(|v| u8::try_from(v).ok())
                        .ok_or_else(|| bad("trim must be a tolerance from 0 to 255"))?,
                );
            }
            Opt::Gray => {
                t.grayscale = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad("gray must be 0 or 1")),
                };
            }
            Opt::Ratio => {
                let r = parse_ratio(value).ok_or_else(|| {
                    bad("an aspect ratio is ar_<a>:<b> with whole numbers from 1 to 65536, or a decimal like ar_1.5")
                })?;
                ratio = Some((token, r));
            }
            Opt::Page => {
                t.page = Some(
                    parse_uint(value)
                        .filter(|p| (1..=MAX_PAGE).contains(p))
                        .ok_or_else(|| bad("page must be an integer from 1 to 65536"))?,
                );
            }
        }
    }

    if let Some((token, (num, den))) = ratio {
        // `other = size * den / num` (or the inverse), rounded half up, at least 1.
        let derive = |size: u32, num: u64, den: u64| {
            let v = (u64::from(size) * den * 2 + num) / (num * 2);
            u32::try_from(v.max(1)).ok().filter(|v| *v <= MAX_DIMENSION)
        };
        let derived = match (t.width, t.height) {
            (Some(w), None) => derive(w, num, den).map(|h| t.height = Some(h)),
            (None, Some(h)) => derive(h, den, num).map(|w| t.width = Some(w)),
            _ => return Err(error(token, "ar needs exactly one of w or h")),
        };
        derived.ok_or_else(|| error(token, "ar makes a dimension larger than 65536"))?;
        if !seen.contains(Opt::Crop) {
            t.fit = Fit::Fill;
        }
    }
    if let Some((token, milli)) = dpr {
        t.width = scale_by_dpr(t.width, milli)
            .ok_or_else(|| error(token, "dpr makes the width larger than 65536"))?;
        t.height = scale_by_dpr(t.height, milli)
            .ok_or_else(|| error(token, "dpr makes the height larger than 65536"))?;
    }
    if !t.fit.uses_gravity() {
        t.gravity = Gravity::Center;
    }
    Ok(t)
}

const WIDTH_RANGE: &str = "width must be an integer from 1 to 65536";
const HEIGHT_RANGE: &str = "height must be an integer from 1 to 65536";

fn error(token: &str, reason: &str) -> OptionsError {
    OptionsError {
        token: token.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Split `name_value` at the first `_`.
fn split_token(token: &str) -> Result<(&str, &str), OptionsError> {
    if token.is_empty() {
        return Err(error(
            token,
            "empty option (two commas in a row, or a trailing comma)",
        ));
    }
    if token == "_" {
        return Err(error(token, "`_` means no options and must stand alone"));
    }
    token
        .split_once('_')
        .ok_or_else(|| error(token, "an option is written name_value"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Width,
    Height,
    Dpr,
    Crop,
    Gravity,
    Enlarge,
    Quality,
    Format,
    Background,
    Rotate,
    Flip,
    CropRect,
    Blur,
    Sharpen,
    Trim,
    Page,
    Gray,
    Ratio,
}

impl Opt {
    fn from_name(name: &str) -> Option<Opt> {
        Some(match name {
            "w" => Opt::Width,
            "h" => Opt::Height,
            "dpr" => Opt::Dpr,
            "c" => Opt::Crop,
            "g" => Opt::Gravity,
            "up" => Opt::Enlarge,
            "q" => Opt::Quality,
            "f" => Opt::Format,
            "bg" => Opt::Background,
            "r" => Opt::Rotate,
            "flip" => Opt::Flip,
            "crop" => Opt::CropRect,
            "trim" => Opt::Trim,
            "blur" => Opt::Blur,
            "sharpen" => Opt::Sharpen,
            "page" => Opt::Page,
            "gray" => Opt::Gray,
            "ar" => Opt::Ratio,
            _ => return None,
        })
    }
}

/// The set of options already given (a bit per [`Opt`]).
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// Record `option`; false if it was already there.
    fn insert(&mut self, option: Opt) -> bool {
        let bit = 1u32 << (option as u32);
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh
    }

    fn contains(&self, option: Opt) -> bool {
        self.0 & (1u32 << (option as u32)) != 0
    }
}

/// A non-empty run of ASCII digits (no sign) that fits in `u32`.
fn parse_uint(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_dimension(s: &str) -> Option<u32> {
    parse_uint(s).filter(|v| (1..=MAX_DIMENSION).contains(v))
}

/// `digits[.digits]` with 1..=3 decimals, from 1 to 4; returned in thousandths.
fn parse_dpr(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int_ok = !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.len() <= DPR_MAX_DECIMALS && frac.bytes().all(|b| b.is_ascii_digit());
    if !int_ok || !frac_ok || (s.contains('.') && frac.is_empty()) {
        return None;
    }
    let int: u64 = int.parse().ok()?;
    let mut milli = int.checked_mul(DPR_SCALE)?;
    let mut place = DPR_SCALE;
    for digit in frac.bytes() {
        place /= 10;
        milli = milli.checked_add(u64::from(digit.checked_sub(b'0')?) * place)?;
    }
    (DPR_MIN..=DPR_MAX).contains(&milli).then_some(milli)
}

/// `round(size * dpr)`, halves rounding up; `None` if the result is over [`MAX_DIMENSION`].
/// An absent size stays absent.
fn scale_by_dpr(size: Option<u32>, milli: u64) -> Option<Option<u32>> {
    let Some(size) = size else {
        return Some(None);
    };
    let scaled = (u64::from(size) * milli + DPR_SCALE / 2) / DPR_SCALE;
    u32::try_from(scaled)
        .ok()
        .filter(|v| *v <= MAX_DIMENSION)
        .map(Some)
}

/// A fraction from 0 to 1 with at most 3 decimals (`0`, `1`, `0.5`, `.25` is refused), in
/// thousandths.
pub(crate) fn parse_fraction(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !matches!(int, "0" | "1") || frac.len() > 3 || (s.contains('.') && frac.is_empty()) {
        return None;
    }
    let mut milli: u16 = if int == "1" { 1000 } else { 0 };
    let mut place = 100;
    for digit in frac.bytes() {
        milli += u16::from(digit.checked_sub(b'0').filter(|d| *d <= 9)?) * place;
        place /= 10;
    }
    (milli <= 1000).then_some(milli)
}

/// `<w>x<h>[_<gravity>]`.
fn parse_window(value: &str) -> Option<CropWindow> {
    let (size, gravity) = match value.split_once('_') {
        Some((size, g)) => (size, Some(g)),
        None => (value, None),
    };
    let (w, h) = size.split_once('x')?;
    let gravity = match gravity {
        None => Gravity::Center,
        Some(g) if g.starts_with("fp_") || g.starts_with("px_") => parse_focal(g)?.normalized(),
        Some(g) => Gravity::compass(g)?,
    };
    Some(CropWindow {
        width: Span::parse(w)?,
        height: Span::parse(h)?,
        gravity,
    })
}

/// `fp_<x>_<y>` (fractions) or `px_<x>_<y>` (pixels, up to [`MAX_DIMENSION`]).
fn parse_focal(value: &str) -> Option<Gravity> {
    let (kind, rest) = value.split_at_checked(3)?;
    let (x, y) = rest.split_once('_')?;
    match kind {
        "fp_" => Some(Gravity::Focal {
            x: parse_fraction(x)?,
            y: parse_fraction(y)?,
        }),
        "px_" => Some(Gravity::Point {
            x: parse_uint(x).filter(|v| *v <= MAX_DIMENSION)?,
            y: parse_uint(y).filter(|v| *v <= MAX_DIMENSION)?,
        }),
        _ => None,
    }
}

/// `a:b` (whole numbers 1..=65536) or a decimal `r` (0.001..=65536, 3 decimals at most, as
/// `r*1000 : 1000`), as (numerator, denominator) of width over height.
pub(crate) fn parse_ratio(s: &str) -> Option<(u64, u64)> {
    let (num, den) = match s.split_once(':') {
        Some((a, b)) => (
            u64::from(parse_dimension(a)?),
            u64::from(parse_dimension(b)?),
        ),
        None => {
            let (int, frac) = s.split_once('.').unwrap_or((s, ""));
            let int = parse_uint(int).filter(|v| *v <= MAX_DIMENSION)?;
            if frac.len() > 3 || (s.contains('.') && frac.is_empty()) {
                return None;
            }
            let mut milli = u64::from(int) * 1000;
            let mut place = 100;
            for digit in frac.bytes() {
                milli += u64::from(digit.checked_sub(b'0').filter(|d| *d <= 9)?) * place;
                place /= 10;
            }
            (milli >= 1).then_some((milli, 1000))?
        }
    };
    Some((num, den))
}

/// `digits[.digit]` in tenths, from 0.1 to `max_tenths / 10`.
fn parse_sigma(s: &str, max_tenths: u16) -> Option<Sigma> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int = parse_uint(int)?;
    let frac = match frac.as_bytes() {
        [] if !s.contains('.') => 0,
        [d] if d.is_ascii_digit() => u32::from(d - b'0'),
        _ => return None,
    };
    let tenths = int.checked_mul(10)?.checked_add(frac)?;
    u16::try_from(tenths)
        .ok()
        .filter(|t| (1..=max_tenths).contains(t))
        .map(Sigma)
}

fn parse_hex_rgb(s: &str) -> Option<Rgb> {
    fn nibble(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    if bytes.len() != 6 {
        return None;
    }
    let mut rgb = [0u8; 3];
    for (out, pair) in rgb.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *out = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(Rgb(rgb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `input` parses, prints as `canonical`, and `canonical` parses back to the same value.
    #[track_caller]
    fn ok(input: &str, canonical: &str) -> Transform {
        let t = match parse(input) {
            Ok(t) => t,
            Err(e) => panic!("{input:?} should parse, got {e}"),
        };
        assert_eq!(t.to_string(), canonical, "canonical form of {input:?}");
        assert_eq!(parse(canonical), Ok(t.clone()), "re-parse of {canonical:?}");
        t
    }

    /// `input` is rejected, naming `token`.
    #[track_caller]
    fn bad(input: &str, token: &str) {
        match parse(input) {
            Ok(t) => panic!("{input:?} should fail, got {t:?}"),
            Err(e) => {
                assert_eq!(e.token, token, "offending token of {input:?} ({e})");
                assert!(!e.reason.is_empty(), "reason for {input:?}");
            }
        }
    }

    #[test]
    fn options_valid_table_prints_canonical() {
        let rows: &[(&str, &str)] = &[
            // no options
            ("_", "_"),
            // focal points, aspect ratios, grayscale, outside
            (
                "w_1,h_1,c_fill,g_fp_0.5_0.25",
                "w_1,h_1,c_fill,g_fp_0.5_0.25",
            ),
            (
                "w_1,h_1,c_fill,g_fp_0.500_0.250",
                "w_1,h_1,c_fill,g_fp_0.5_0.25",
            ),
            ("w_1,h_1,c_pad,g_fp_0_0.125", "w_1,h_1,c_pad,g_fp_0_0.125"),
            ("w_1,h_1,c_fill,g_fp_0.5_0.5", "w_1,h_1,c_fill"),
            ("w_1,h_1,c_fill,g_fp_1_0", "w_1,h_1,c_fill,g_ne"),
            ("crop_5x5_fp_0_1", "crop_5x5_sw"),
            ("w_1,h_1,g_fp_0.5_0.25", "w_1,h_1"),
            (
                "w_1,h_1,c_fill,g_px_10_65536",
                "w_1,h_1,c_fill,g_px_10_65536",
            ),
            ("w_300,ar_16:9", "w_300,h_169,c_fill"),
            ("h_90,ar_16:9", "w_160,h_90,c_fill"),
            ("w_300,ar_1.5", "w_300,h_200,c_fill"),
            ("w_300,ar_2:1,c_pad", "w_300,h_150,c_pad"),
            ("w_300,ar_2:1,dpr_2", "w_600,h_300,c_fill"),
            ("w_1,ar_1:65536", "w_1,h_65536,c_fill"),
            ("gray_1", "gray_1"),
            ("gray_0", "_"),
            ("w_10,gray_1,page_2", "w_10,page_2,gray_1"),
            ("w_300,h_300,c_outside", "w_300,h_300,c_outside"),
            ("crop_800x600", "crop_800x600"),
            ("crop_800x600_center", "crop_800x600"),
            ("crop_0.5x0_ne", "crop_0.5x0_ne"),
            ("crop_0.500x0_fp_0.2_0.25", "crop_0.5x0_fp_0.2_0.25"),
            ("crop_1x1_px_3_4,w_10", "w_10,crop_1x1_px_3_4"),
            // sizes
            ("w_300", "w_300"),
            ("h_200", "h_200"),
            ("w_1", "w_1"),
            ("w_16384", "w_16384"),
            ("w_65536", "w_65536"),
            ("h_65536", "h_65536"),
            ("w_0300", "w_300"),
            ("w_300,h_200", "w_300,h_200"),
            ("h_200,w_300", "w_300,h_200"),
            // dpr
            ("w_300,dpr_2", "w_600"),
            ("dpr_2,w_300", "w_600"),
            ("w_150,dpr_2,c_fit", "w_300"),
            ("w_100,h_50,dpr_1.5", "w_150,h_75"),
            ("w_333,dpr_1.5", "w_500"),
            ("w_1,dpr_1.5", "w_2"),
            ("w_3,dpr_1.1", "w_3"),
            ("w_100,dpr_2.25", "w_225"),
            ("w_1000,dpr_1.001", "w_1001"),
            ("w_300,dpr_1", "w_300"),
            ("w_300,dpr_4", "w_1200"),
            ("w_300,dpr_4.000", "w_1200"),
            ("w_16384,dpr_4", "w_65536"),
            ("dpr_2", "_"),
            ("h_10,dpr_3", "h_30"),
            // crop modes
            ("c_fit", "_"),
            ("c_fill", "c_fill"),
            ("c_pad", "c_pad"),
            ("c_scale", "c_scale"),
            // gravity, kept only where it has an effect
            ("c_fill,g_n", "c_fill,g_n"),
            ("c_fill,g_s", "c_fill,g_s"),
            ("c_fill,g_e", "c_fill,g_e"),
            ("c_fill,g_w", "c_fill,g_w"),
            ("c_pad,g_ne", "c_pad,g_ne"),
            ("c_pad,g_nw", "c_pad,g_nw"),
            ("g_se,c_pad", "c_pad,g_se"),
            ("g_sw,c_fill", "c_fill,g_sw"),
            ("g_auto,c_fill", "c_fill,g_auto"),
            ("c_fill,g_center", "c_fill"),
            ("g_n", "_"),
            ("c_fit,g_se", "_"),
            ("c_scale,g_w", "c_scale"),
            // enlarge
            ("up_1", "up_1"),
            ("up_0", "_"),
            // quality
            ("q_1", "q_1"),
            ("q_80", "q_80"),
            ("q_100", "q_100"),
            // format and aliases
            ("f_jpeg", "f_jpeg"),
            ("f_jpg", "f_jpeg"),
            ("f_png", "f_png"),
            ("f_webp", "f_webp"),
            ("f_avif", "f_avif"),
            ("f_gif", "f_gif"),
            ("f_auto", "f_auto"),
            ("f_lqip", "f_lqip"),
            // background
            ("bg_000000", "bg_000000"),
            ("bg_FFaa00", "bg_ffaa00"),
            ("bg_ffffff", "_"),
            ("bg_FFFFFF", "_"),
            // everything, in any order
            (
                "bg_102030,f_webp,q_75,up_1,g_sw,c_pad,h_200,w_300",
                "w_300,h_200,c_pad,g_sw,up_1,q_75,f_webp,bg_102030",
            ),
            (
                "dpr_2,f_jpg,c_fill,g_n,h_100,w_50",
                "w_100,h_200,c_fill,g_n,f_jpeg",
            ),
        ];
        for (input, canonical) in rows {
            ok(input, canonical);
        }
    }

    #[test]
    fn options_invalid_table_names_offending_token() {
        let rows: &[(&str, &str)] = &[
            // segment and token shape
            ("", ""),
            ("w_300,,h_2", ""),
            ("w_1,h_1,c_fill,g_fp_1.001_0", "g_fp_1.001_0"),
            ("w_1,h_1,c_fill,g_fp_0.5", "g_fp_0.5"),
            ("w_1,h_1,c_fill,g_fp_.5_0", "g_fp_.5_0"),
            ("w_1,h_1,c_fill,g_fp_0.1234_0", "g_fp_0.1234_0"),
            ("w_1,h_1,c_fill,g_fp_-0_0", "g_fp_-0_0"),
            ("w_1,h_1,c_fill,g_px_1_65537", "g_px_1_65537"),
            ("w_1,h_1,c_fill,g_px_1", "g_px_1"),
            ("w_1,ar_16:9,h_2", "ar_16:9"),
            ("ar_16:9", "ar_16:9"),
            ("w_1,ar_0:9", "ar_0:9"),
            ("w_1,ar_16:", "ar_16:"),
            ("w_1,ar_1.2345", "ar_1.2345"),
            ("w_1,ar_0", "ar_0"),
            ("w_65536,ar_1:2", "ar_1:2"),
            ("gray_2", "gray_2"),
            ("gray_1,gray_0", "gray_0"),
            ("c_inside", "c_inside"),
            ("crop_800x", "crop_800x"),
            ("crop_1.0x5", "crop_1.0x5"),
            ("crop_0x0.0001", "crop_0x0.0001"),
            ("crop_5x5_auto", "crop_5x5_auto"),
            ("crop_5x5_ne_x", "crop_5x5_ne_x"),
            ("crop_65537x5", "crop_65537x5"),
            ("crop_5x5,crop_1_1_1_1", "crop_1_1_1_1"),
            ("w_300,", ""),
            (",w_300", ""),
            ("_,w_1", "_"),
            ("w_1,_", "_"),
            ("__", "__"),
            ("w300", "w300"),
            ("x_1", "x_1"),
            ("W_300", "W_300"),
            ("Dpr_2", "Dpr_2"),
            ("_w_1", "_w_1"),
            ("w_300,foo", "foo"),
            // duplicates, including via aliases
            ("w_1,w_2", "w_2"),
            ("h_1,w_5,h_1", "h_1"),
            ("f_jpg,f_jpeg", "f_jpeg"),
            ("up_0,up_1", "up_1"),
            ("dpr_1,dpr_2", "dpr_2"),
            // sizes
            ("w_0", "w_0"),
            ("w_", "w_"),
            ("w_abc", "w_abc"),
            ("w_1e3", "w_1e3"),
            ("w_+300", "w_+300"),
            ("w_-300", "w_-300"),
            ("w_300.0", "w_300.0"),
            ("w_300.5", "w_300.5"),
            ("w_ 300", "w_ 300"),
            ("w_65537", "w_65537"),
            ("w_4294967296", "w_4294967296"),
            ("w_99999999999999999999999", "w_99999999999999999999999"),
            ("h_0", "h_0"),
            ("h_x", "h_x"),
            ("w_300,h_1_2", "h_1_2"),
            // dpr
            ("w_1,dpr_0.5", "dpr_0.5"),
            ("w_1,dpr_0", "dpr_0"),
            ("w_1,dpr_5", "dpr_5"),
            ("w_1,dpr_4.001", "dpr_4.001"),
            ("w_1,dpr_0.999", "dpr_0.999"),
            ("w_1,dpr_nan", "dpr_nan"),
            ("w_1,dpr_inf", "dpr_inf"),
            ("w_1,dpr_1e0", "dpr_1e0"),
            ("w_1,dpr_-1", "dpr_-1"),
            ("w_1,dpr_+2", "dpr_+2"),
            ("w_1,dpr_", "dpr_"),
            ("w_1,dpr_2.", "dpr_2."),
            ("w_1,dpr_.5", "dpr_.5"),
            ("w_1,dpr_1.2345", "dpr_1.2345"),
            ("w_1,dpr_1.5.1", "dpr_1.5.1"),
            ("w_1,dpr_18446744073709551615", "dpr_18446744073709551615"),
            ("w_20000,dpr_4", "dpr_4"),
            ("dpr_2,h_40000", "dpr_2"),
            // crop, gravity, enlarge
            ("c_crop", "c_crop"),
            ("c_", "c_"),
            ("c_FILL", "c_FILL"),
            ("c_fill,g_north", "g_north"),
            ("c_fill,g_c", "g_c"),
            ("g_", "g_"),
            ("up_2", "up_2"),
            ("up_true", "up_true"),
            ("up_", "up_"),
            // quality
            ("q_0", "q_0"),
            ("q_101", "q_101"),
            ("q_256", "q_256"),
            ("q_80.5", "q_80.5"),
            ("q_", "q_"),
            // format
            ("f_JPEG", "f_JPEG"),
            ("f_heic", "f_heic"),
            ("f_", "f_"),
            // background
            ("bg_fff", "bg_fff"),
            ("bg_fffffff", "bg_fffffff"),
            ("bg_gggggg", "bg_gggggg"),
            ("bg_#ffffff", "bg_#ffffff"),
            ("bg_+fffff", "bg_+fffff"),
            ("bg_", "bg_"),
            ("bg_ffé0f", "bg_ffé0f"),
        ];
        for (input, token) in rows {
            bad(input, token);
        }
    }

    #[test]
    fn parse_all_options_sets_typed_fields() {
        let t = ok(
            "w_300,h_200,c_pad,g_ne,up_1,q_75,f_jpg,bg_0A0b0C",
            "w_300,h_200,c_pad,g_ne,up_1,q_75,f_jpeg,bg_0a0b0c",
        );
        assert_eq!(
            t,
            Transform {
                width: Some(300),
                height: Some(200),
                fit: Fit::Pad,
                gravity: Gravity::NorthEast,
                enlarge: true,
                quality: Some(75),
                format: Some(FormatChoice::Fixed(Format::Jpeg)),
                background: Rgb([10, 11, 12]),
                ..Transform::default()
            }
        );
        assert_eq!(ok("f_auto", "f_auto").format, Some(FormatChoice::Auto));
        assert_eq!(
            ok("f_png", "f_png").format,
            Some(FormatChoice::Fixed(Format::Png))
        );
        assert_eq!(
            ok("f_webp", "f_webp").format,
            Some(FormatChoice::Fixed(Format::Webp))
        );
        assert_eq!(
            ok("f_avif", "f_avif").format,
            Some(FormatChoice::Fixed(Format::Avif))
        );
    }

    #[test]
    fn parse_geometry_and_filters() {
        let t = ok(
            "sharpen_0.5,blur_2.0,crop_10_20_300_200,flip_vh,r_90,w_100",
            "w_100,r_90,flip_hv,crop_10_20_300_200,blur_2,sharpen_0.5",
        );
        assert_eq!(t.rotation, Rotation(1));
        assert_eq!(t.flip, Flip { h: true, v: true });
        assert_eq!(
            t.crop,
            Some(CropRect {
                x: 10,
                y: 20,
                width: 300,
                height: 200
            })
        );
        assert_eq!(t.blur.map(Sigma::get), Some(2.0));
        assert_eq!(t.sharpen.map(Sigma::get), Some(0.5));
        ok("r_0", "_");
        ok("r_180,flip_h", "r_180,flip_h");
        ok("r_270,flip_v", "r_270,flip_v");
        ok("blur_100", "blur_100");
        ok("blur_0.1", "blur_0.1");
        ok("sharpen_10", "sharpen_10");
        ok("crop_0_0_1_1", "crop_0_0_1_1");
        ok("trim_0", "trim_0");
        ok("trim_255,w_10", "w_10,trim_255");
        assert_eq!(ok("trim_12", "trim_12").trim, Some(12));
        for input in [
            "trim_256",
            "trim_",
            "trim_-1",
            "trim_1.5",
            "r_45",
            "r_-90",
            "r_360",
            "flip_x",
            "flip_",
            "crop_1_2_3",
            "crop_1_2_3_4_5",
            "crop_0_0_0_5",
            "crop_0_0_5_0",
            "crop_a_0_1_1",
            "crop_-1_0_1_1",
            "blur_0",
            "blur_100.1",
            "blur_1.25",
            "blur_.5",
            "blur_5.",
            "sharpen_10.1",
            "sharpen_0.0",
            "blur_99999999999",
        ] {
            bad(input, input);
        }
    }

    #[test]
    fn parse_page_is_one_based_and_printed_last() {
        assert_eq!(ok("page_1", "page_1").page, Some(1));
        ok("page_2,w_10", "w_10,page_2");
        ok("page_65536", "page_65536");
        for input in [
            "page_0",
            "page_65537",
            "page_",
            "page_-1",
            "page_1.5",
            "page_x",
        ] {
            bad(input, input);
        }
        assert!(parse("page_1,page_2").is_err());
    }

    #[test]
    fn parse_underscore_alone_is_default() {
        assert_eq!(parse("_"), Ok(Transform::default()));
        assert_eq!(Transform::default().to_string(), "_");
    }

    #[test]
    fn dpr_applied_equals_premultiplied_size() {
        assert_eq!(parse("w_300,dpr_2"), parse("w_600"));
        assert_eq!(parse("dpr_2,w_300"), parse("w_600"));
        assert_eq!(parse("w_333,dpr_1.5").map(|t| t.width), Ok(Some(500)));
    }

    #[test]
    fn gravity_without_fill_or_pad_is_normalised_to_center() {
        assert_eq!(parse("c_scale,g_n"), parse("c_scale"));
        assert_eq!(parse("g_sw").map(|t| t.gravity), Ok(Gravity::Center));
        assert_eq!(
            parse("c_fill,g_sw").map(|t| t.gravity),
            Ok(Gravity::SouthWest)
        );
    }

    #[test]
    fn display_hand_built_gravity_without_effect_is_omitted() {
        let t = Transform {
            width: Some(10),
            gravity: Gravity::North,
            ..Transform::default()
        };
        assert_eq!(t.to_string(), "w_10");
    }

    #[test]
    fn error_display_names_token_and_reason() {
        let e = parse("w_0").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("bad option `w_0`: width must be an integer from 1 to 65536")
        );
    }

    #[test]
    fn quality_or_falls_back_only_when_unset() {
        assert_eq!(Transform::default().quality_or(82), 82);
        let t = Transform {
            quality: Some(40),
            ..Transform::default()
        };
        assert_eq!(t.quality_or(82), 40);
    }

    fn fit() -> impl Strategy<Value = Fit> {
        prop_oneof![
            Just(Fit::Fit),
            Just(Fit::Fill),
            Just(Fit::Pad),
            Just(Fit::Scale),
            Just(Fit::Outside)
        ]
    }

    fn gravity() -> impl Strategy<Value = Gravity> {
        prop_oneof![
            Just(Gravity::Center),
            Just(Gravity::North),
            Just(Gravity::South),
            Just(Gravity::East),
            Just(Gravity::West),
            Just(Gravity::NorthEast),
            Just(Gravity::NorthWest),
            Just(Gravity::SouthEast),
            Just(Gravity::SouthWest),
            Just(Gravity::Auto),
            (0u16..=1000, 0u16..=1000).prop_map(|(x, y)| Gravity::Focal { x, y }.normalized()),
            (0..=MAX_DIMENSION, 0..=MAX_DIMENSION).prop_map(|(x, y)| Gravity::Point { x, y }),
        ]
    }

    fn format_choice() -> impl Strategy<Value = FormatChoice> {
        prop_oneof![
            Just(FormatChoice::Auto),
            Just(FormatChoice::Lqip),
            Just(FormatChoice::Fixed(Format::Jpeg)),
            Just(FormatChoice::Fixed(Format::Png)),
            Just(FormatChoice::Fixed(Format::Webp)),
            Just(FormatChoice::Fixed(Format::Avif)),
            Just(FormatChoice::Fixed(Format::Gif)),
        ]
    }

    fn sigma(max_tenths: u16) -> impl Strategy<Value = Option<Sigma>> {
        proptest::option::of((1..=max_tenths).prop_map(Sigma))
    }

    /// Options beyond the size ones: rotation, flip, crop, blur, sharpen.
    fn extras() -> impl Strategy<
        Value = (
            Rotation,
            Flip,
            Option<CropRect>,
            Option<Sigma>,
            Option<Sigma>,
            Option<u8>,
        ),
    > {
        (
            (0u8..4).prop_map(Rotation),
            (any::<bool>(), any::<bool>()).prop_map(|(h, v)| Flip { h, v }),
            proptest::option::of(
                (any::<u32>(), any::<u32>(), 1..=u32::MAX, 1..=u32::MAX).prop_map(
                    |(x, y, width, height)| CropRect {
                        x,
                        y,
                        width,
                        height,
                    },
                ),
            ),
            sigma(1000),
            sigma(100),
            proptest::option::of(any::<u8>()),
        )
    }

    /// Any Transform `parse` can produce (gravity normalised, sizes within range).
    fn valid_transform() -> impl Strategy<Value = Transform> {
        (
            (
                proptest::option::of(1..=MAX_DIMENSION),
                proptest::option::of(1..=MAX_DIMENSION),
                fit(),
                gravity(),
                any::<bool>(),
                proptest::option::of(1u8..=100),
                proptest::option::of(format_choice()),
                any::<[u8; 3]>(),
            ),
            extras(),
        )
            .prop_map(
                |(
                    (width, height, fit, gravity, enlarge, quality, format, bg),
                    (rotation, flip, crop, blur, sharpen, trim),
                )| Transform {
                    width,
                    height,
                    fit,
                    gravity: if fit.uses_gravity() {
                        gravity
                    } else {
                        Gravity::Center
                    },
                    enlarge,
                    quality,
                    format,
                    background: Rgb(bg),
                    rotation,
                    flip,
                    crop,
                    blur,
                    sharpen,
                    trim,
                    ..Transform::default()
                },
            )
            .prop_flat_map(|t| {
                (proptest::option::of(1..=MAX_PAGE), any::<bool>()).prop_map(
                    move |(page, grayscale)| Transform {
                        page,
                        grayscale,
                        ..t.clone()
                    },
                )
            })
    }

    /// Strings near the grammar, so the value parsers get exercised, not just the name lookup.
    fn near_grammar() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("w"),
            Just("h"),
            Just("dpr"),
            Just("c"),
            Just("g"),
            Just("up"),
            Just("q"),
            Just("f"),
            Just("bg"),
            Just("r"),
            Just("flip"),
            Just("crop"),
            Just("blur"),
            Just("sharpen"),
            Just("trim"),
            Just("page"),
            Just("gray"),
            Just("ar"),
            Just("x"),
            Just(""),
        ];
        let token = (name, "[0-9a-fA-F._+\\-ehv]{0,12}").prop_map(|(n, v)| format!("{n}_{v}"));
        proptest::collection::vec(token, 0..6).prop_map(|ts| ts.join(","))
    }

    proptest! {
        #[test]
        fn canonical_form_any_valid_transform_round_trips(t in valid_transform()) {
            prop_assert_eq!(parse(&t.to_string()), Ok(t));
        }

        #[test]
        fn parse_arbitrary_string_never_panics(s in ".*") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_near_grammar_result_is_canonical_and_stable(s in near_grammar()) {
            match parse(&s) {
                Ok(t) => {
                    let canonical = t.to_string();
                    prop_assert_eq!(parse(&canonical), Ok(t));
                }
                Err(e) => prop_assert!(s.split(',').any(|tok| tok == e.token)),
            }
        }
    }
}
