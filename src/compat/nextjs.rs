//! Next.js's image optimizer (`/_next/image?url=<source>&w=<width>&q=<quality>`), as the
//! `<Image>` default loader and unpic write it: `w` is the width (never enlarged), `q` the
//! quality (optional here; the configured default without it), and the format comes from
//! `Accept` exactly as `f_auto` does (so responses say `Vary: Accept`). `url` is either a path
//! starting with `/` (read under `source.base`, as Next reads its own public files) or an
//! absolute URL; its own query goes to the origin.
//!
//! Differences from Next: any width is accepted (with `urls.width_buckets` set the width is
//! snapped to a bucket instead of refused), and a `q` outside Next's `images.qualities` is
//! served. A parameter other than `url`, `w` and `q` is a 400, as is any of them twice.

use super::{bad, pixels, quality, request, Error, Request};
use crate::options::{FormatChoice, Transform};

/// Parse the query of a request to the route.
pub fn parse(rest: &str, query: Option<&str>) -> Result<Request, Error> {
    if !rest.is_empty() && rest != "/" {
        return Err(bad(rest, "the Next.js route takes everything in its query"));
    }
    let (mut url, mut width, mut q) = (None, None, None);
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let slot = match name.as_ref() {
            "url" => &mut url,
            "w" => &mut width,
            "q" => &mut q,
            _ => return Err(bad(&name, "Next.js images take only url, w and q")),
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(bad(&name, "given more than once"));
        }
    }
    let url = url.ok_or_else(|| bad("url", "missing url"))?;
    let width = width.ok_or_else(|| bad("w", "missing w"))?;
    let t = Transform {
        width: Some(
            pixels(&width)
                .filter(|w| *w >= 1)
                .ok_or_else(|| bad(&format!("w={width}"), "w is an integer from 1 to 65536"))?,
        ),
        quality: match q {
            Some(q) => Some(
                quality(&q)
                    .ok_or_else(|| bad(&format!("q={q}"), "q is an integer from 1 to 100"))?,
            ),
            None => None,
        },
        format: Some(FormatChoice::Auto),
        ..Transform::default()
    };
    let source = if let Some(path) = url.strip_prefix('/') {
        if path.starts_with('/') {
            return Err(bad(&url, "a protocol-relative url is not accepted"));
        }
        // Next requests the path internally, so it is percent-decoded once more (which
        // `source::parse` does); `./` keeps a path that reads like a URL (`/s3://…`) a path.
        format!("./{path}")
    } else if url.starts_with("http://") || url.starts_with("https://") {
        url
    } else {
        return Err(bad(&url, "url is a path starting with / or an http(s) URL"));
    };
    request(t, &source, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options;

    #[test]
    fn width_quality_and_auto_format() {
        let r = parse("", Some("url=%2Fphoto.jpg&w=300&q=80")).unwrap();
        assert_eq!(r.transform, options::parse("w_300,q_80,f_auto").unwrap());
        assert_eq!(r.source, "./photo.jpg");
        let r = parse(
            "",
            Some("w=640&q=75&url=http%3A%2F%2Fo.example%2Fa.jpg%3Fv%3D1"),
        )
        .unwrap();
        assert_eq!(r.transform, options::parse("w_640,q_75,f_auto").unwrap());
        assert_eq!(r.source, "http://o.example/a.jpg");
        assert_eq!(r.query.as_deref(), Some("v=1"));
        let r = parse("", Some("url=/a%2520b.jpg&w=10")).unwrap();
        assert_eq!(r.transform, options::parse("w_10,f_auto").unwrap());
        assert_eq!(r.source, "./a%20b.jpg");
    }

    #[test]
    fn every_error_names_its_parameter() {
        for (query, token) in [
            ("w=300", "url"),
            ("url=/a.jpg", "w"),
            ("url=/a.jpg&w=0", "w=0"),
            ("url=/a.jpg&w=abc", "w=abc"),
            ("url=/a.jpg&w=300&q=0", "q=0"),
            ("url=/a.jpg&w=300&q=101", "q=101"),
            ("url=/a.jpg&w=300&w=400", "w"),
            ("url=/a.jpg&w=300&fit=cover", "fit"),
            ("url=//evil.example/a.jpg&w=300", "//evil.example/a.jpg"),
            ("url=ftp://o/a.jpg&w=300", "ftp://o/a.jpg"),
            ("url=a.jpg&w=300", "a.jpg"),
        ] {
            match parse("", Some(query)) {
                Err(Error::Option(e)) => assert_eq!(e.token, token, "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
        assert!(parse("/x", Some("url=/a.jpg&w=1")).is_err());
    }
}
