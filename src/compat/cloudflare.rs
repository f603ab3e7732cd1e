//! Cloudflare Image Resizing's URL form (`/cdn-cgi/image/<k=v,…>/<source>`), as unpic and
//! Nuxt Image write it: comma-separated `key=value`, full or short names (`width`/`w`,
//! `height`/`h`, `quality`/`q`, `format`/`f`, `gravity`/`g`); the source is a path under
//! `source.base` or an absolute URL, read like a native source.
//!
//! `fit` as Cloudflare documents it: `scale-down` (the default) → `c_fit`; `contain` →
//! `c_fit,up_1`; `cover` → `c_fill,up_1`; `crop` → `c_fill` (never enlarged); `pad` →
//! `c_pad,up_1`; `squeeze` → `c_scale,up_1`. `gravity=auto|left|right|top|bottom|<x>x<y>`
//! (`g_auto`, sides, a relative focal point); `dpr` 1..=4; `background=#rrggbb` (`%23`
//! encoded, or 3 digits); `blur` is a radius 1..=250, applied as a sigma of half of it (at
//! most 100); `sharpen` 0..=10 as the unsharp sigma (0 = off); `rotate=90|180|270`
//! (clockwise, before resizing); `flip=h|v|hv` (before the turn, as Cloudflare does); `pad`
//! centres, whatever `gravity` says; `trim=border` → `trim_10`; `anim=false` →
//! `page_1`; `metadata=none` (what imgcdn always does); `format=auto|avif|webp|jpeg|
//! baseline-jpeg|png|gif`.
//!
//! Known difference: `fit=crop` on a source smaller than the box crops it to the box's aspect
//! (Cloudflare returns it as it is).
//!
//! Refused with a 400 naming them: `width=auto`, `gravity=face`, `fit=aspect-crop`, named
//! qualities, trims by pixel amounts, `metadata=keep|copyright`, `format=json`,
//! `onerror`, `compression`, `slow-connection-quality`, CSS colour names and functions.

use super::{
    apply_dpr, bad, decimal, finish, hex_color, pixels, quality, request, sigma, Error, Request,
};
use crate::format::Format;
use crate::options::{Fit, Flip, FormatChoice, Gravity, Rotation, Sigma, Transform};

/// Parse what follows the route's prefix: `/<options>/<source>`.
pub fn parse(rest: &str, query: Option<&str>) -> Result<Request, Error> {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (options, source) = rest.split_once('/').ok_or(Error::MissingSource)?;
    let mut t = Transform::default();
    let (mut fit, mut dpr) = ((Fit::Fit, false), None);
    let mut seen: Vec<&str> = Vec::new();
    for token in options.split(',') {
        let (key, raw) = token
            .split_once('=')
            .ok_or_else(|| bad(token, "an option is key=value"))?;
        let value = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        let value = value.as_ref();
        let name = match key {
            "w" => "width",
            "h" => "height",
            "q" => "quality",
            "f" => "format",
            "g" => "gravity",
            "scq" => "slow-connection-quality",
            other => other,
        };
        if seen.contains(&name) {
            return Err(bad(token, "option given more than once"));
        }
        seen.push(name);
        let bad = |reason: &str| bad(token, reason);
        match name {
            "width" => t.width = Some(size(value).ok_or_else(|| bad(SIZE))?),
            "height" => t.height = Some(size(value).ok_or_else(|| bad(SIZE))?),
            "quality" => {
                t.quality = Some(quality(value).ok_or_else(|| bad("quality is 1 to 100"))?);
            }
            "format" => {
                t.format = Some(match value {
                    "auto" => FormatChoice::Auto,
                    "avif" => FormatChoice::Fixed(Format::Avif),
                    "webp" => FormatChoice::Fixed(Format::Webp),
                    "jpeg" | "baseline-jpeg" => FormatChoice::Fixed(Format::Jpeg),
                    "png" => FormatChoice::Fixed(Format::Png),
                    "gif" => FormatChoice::Fixed(Format::Gif),
                    _ => {
                        return Err(bad(
                            "format must be auto, avif, webp, jpeg, baseline-jpeg, png or gif",
                        ))
                    }
                });
            }
            "fit" => {
                fit = match value {
                    "scale-down" => (Fit::Fit, false),
                    "contain" => (Fit::Fit, true),
                    "cover" => (Fit::Fill, true),
                    "crop" => (Fit::Fill, false),
                    "pad" => (Fit::Pad, true),
                    "squeeze" => (Fit::Scale, true),
                    _ => {
                        return Err(bad(
                            "fit must be scale-down, contain, cover, crop, pad or squeeze",
                        ))
                    }
                };
            }
            "gravity" => {
                t.gravity = match value {
                    "auto" => Gravity::Auto,
                    "left" => Gravity::West,
                    "right" => Gravity::East,
                    "top" => Gravity::North,
                    "bottom" => Gravity::South,
                    "center" => Gravity::Center,
                    _ => focal(value).ok_or_else(|| {
                        bad("gravity must be auto, left, right, top, bottom or <x>x<y> (0 to 1)")
                    })?,
                };
            }
            "dpr" => dpr = Some(decimal(value).ok_or_else(|| bad("dpr is a number"))?),
            "background" => {
                t.background = hex_color(value)
                    .filter(|_| value.starts_with('#'))
                    .ok_or_else(|| bad("background must be #rgb or #rrggbb (with # as %23)"))?;
            }
            "blur" => {
                let radius = decimal(value)
                    .filter(|r| (1.0..=250.0).contains(r))
                    .ok_or_else(|| bad("blur is a radius from 1 to 250"))?;
                t.blur = sigma((radius / 2.0).min(100.0), 100.0);
            }
            "sharpen" => {
                let amount = decimal(value)
                    .filter(|v| *v <= 10.0)
                    .ok_or_else(|| bad("sharpen is 0 to 10"))?;
                t.sharpen = if amount == 0.0 {
                    None
                } else {
                    Some(sigma(amount, 10.0).unwrap_or(Sigma(1)))
                };
            }
            "rotate" => {
                t.rotation = Rotation(match value {
                    "0" => 0,
                    "90" => 1,
                    "180" => 2,
                    "270" => 3,
                    _ => return Err(bad("rotate must be 90, 180 or 270")),
                });
            }
            "flip" => {
                t.flip = match value {
                    "h" => Flip { h: true, v: false },
                    "v" => Flip { h: false, v: true },
                    "hv" | "vh" => Flip { h: true, v: true },
                    _ => return Err(bad("flip must be h, v or hv")),
                };
            }
            "trim" => {
                if value != "border" {
                    return Err(bad("imgcdn trims only by border colour (trim=border)"));
                }
                t.trim = Some(10);
            }
            "anim" => {
                t.page = match value {
                    "true" => None,
                    "false" => Some(1),
                    _ => return Err(bad("anim is true or false")),
                };
            }
            "metadata" => {
                if value != "none" {
                    return Err(bad("imgcdn always strips metadata (metadata=none)"));
                }
            }
            "onerror"
            | "compression"
            | "slow-connection-quality"
            | "border"
            | "brightness"
            | "contrast"
            | "gamma"
            | "saturation"
            | "zoom"
            | "segment"
            | "draw" => {
                return Err(bad("imgcdn has no equivalent for this Cloudflare option"));
            }
            _ => return Err(bad("unknown Cloudflare option")),
        }
    }
    (t.fit, t.enlarge) = fit;
    // Cloudflare mirrors before it turns, and `pad` always centres.
    super::mirror_before_turn(&mut t);
    if t.fit == Fit::Pad {
        t.gravity = Gravity::Center;
    }
    if let Some(ratio) = dpr {
        apply_dpr(&mut t, ratio).ok_or_else(|| bad("dpr", "dpr must be from 1 to 4"))?;
    }
    if t.gravity == Gravity::Auto && t.fit != Fit::Fill {
        t.gravity = Gravity::Center;
    }
    let t = finish(t);
    request(t, source.trim_start_matches('/'), query)
}

const SIZE: &str = "a size is an integer from 1 to 65536 (not auto)";

fn size(s: &str) -> Option<u32> {
    pixels(s).filter(|v| *v >= 1)
}

/// `<x>x<y>`, fractions 0..=1.
fn focal(s: &str) -> Option<Gravity> {
    let (x, y) = s.split_once('x')?;
    let f = |v: &str| {
        let v = decimal(v)?;
        (0.0..=1.0)
            .contains(&v)
            .then(|| (v * 1000.0).round() as u16)
    };
    Some(Gravity::Focal { x: f(x)?, y: f(y)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options;

    #[track_caller]
    fn same(cf: &str, native: &str) {
        let r = parse(&format!("/{cf}/photo.jpg"), None).unwrap_or_else(|e| panic!("{cf}: {e}"));
        assert_eq!(r.transform, options::parse(native).unwrap(), "{cf}");
        assert_eq!(r.source, "photo.jpg");
    }

    #[track_caller]
    fn refused(cf: &str, token: &str) {
        match parse(&format!("/{cf}/photo.jpg"), None) {
            Err(Error::Option(e)) => assert_eq!(e.token, token, "{cf}: {e}"),
            other => panic!("{cf}: {other:?}"),
        }
    }

    #[test]
    fn every_option_maps_to_its_native_option() {
        let rows = [
            ("width=300", "w_300"),
            ("w=300,h=200", "w_300,h_200"),
            (
                "width=300,quality=80,f=webp,fit=cover",
                "w_300,up_1,q_80,f_webp",
            ),
            ("w=300,h=200,fit=scale-down", "w_300,h_200"),
            ("w=300,h=200,fit=contain", "w_300,h_200,up_1"),
            ("w=300,h=200,fit=cover", "w_300,h_200,c_fill,up_1"),
            ("w=300,h=200,fit=crop", "w_300,h_200,c_fill"),
            (
                "w=300,h=200,fit=pad,background=%23ff0000",
                "w_300,h_200,c_pad,up_1,bg_ff0000",
            ),
            ("w=300,h=200,fit=squeeze", "w_300,h_200,c_scale,up_1"),
            (
                "w=300,h=200,fit=cover,gravity=left",
                "w_300,h_200,c_fill,g_w,up_1",
            ),
            ("w=300,h=200,fit=crop,g=auto", "w_300,h_200,c_fill,g_auto"),
            (
                "w=300,h=200,fit=crop,g=0.25x0.5",
                "w_300,h_200,c_fill,g_fp_0.25_0.5",
            ),
            ("w=300,h=200,g=top", "w_300,h_200"),
            ("w=300,dpr=2", "w_600"),
            ("format=auto", "f_auto"),
            ("f=baseline-jpeg", "f_jpeg"),
            ("blur=20", "blur_10"),
            ("blur=250", "blur_100"),
            ("sharpen=1", "sharpen_1"),
            ("sharpen=0", "_"),
            ("rotate=90", "r_90"),
            ("flip=hv", "flip_hv"),
            ("flip=h,rotate=270", "r_270,flip_v"),
            ("w=300,h=200,fit=pad,gravity=left", "w_300,h_200,c_pad,up_1"),
            ("trim=border", "trim_10"),
            ("anim=false", "page_1"),
            ("anim=true,metadata=none", "_"),
            ("background=%23fff", "_"),
        ];
        for (cf, native) in rows {
            same(cf, native);
        }
    }

    #[test]
    fn every_error_names_its_option() {
        let rows = [
            ("width=auto", "width=auto"),
            ("w=0", "w=0"),
            ("w=300,width=400", "width=400"),
            ("quality=high", "quality=high"),
            ("format=json", "format=json"),
            ("fit=aspect-crop", "fit=aspect-crop"),
            ("gravity=face", "gravity=face"),
            ("gravity=2x0", "gravity=2x0"),
            ("w=300,dpr=5", "dpr"),
            ("background=red", "background=red"),
            ("background=ff0000", "background=ff0000"),
            ("blur=0", "blur=0"),
            ("blur=300", "blur=300"),
            ("sharpen=11", "sharpen=11"),
            ("rotate=45", "rotate=45"),
            ("flip=x", "flip=x"),
            ("trim=1;2;3;4", "trim=1;2;3;4"),
            ("anim=no", "anim=no"),
            ("metadata=keep", "metadata=keep"),
            ("onerror=redirect", "onerror=redirect"),
            ("compression=fast", "compression=fast"),
            ("scq=30", "scq=30"),
            ("bogus=1", "bogus=1"),
            ("width", "width"),
        ];
        for (cf, token) in rows {
            refused(cf, token);
        }
        assert_eq!(parse("/w=300", None), Err(Error::MissingSource));
        assert_eq!(parse("/w=300/", None), Err(Error::MissingSource));
    }

    #[test]
    fn sources_are_paths_or_urls_as_written() {
        let r = parse("/w=1/https://o.example/a%3Fb.jpg", Some("v=2")).unwrap();
        assert_eq!(r.source, "https://o.example/a%3Fb.jpg");
        assert_eq!(r.query.as_deref(), Some("v=2"));
        let r = parse("/w=1//uploads/a.jpg", None).unwrap();
        assert_eq!(r.source, "uploads/a.jpg");
    }
}
