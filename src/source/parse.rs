//! `source::parse`: the source part of an `/img/<options>/<source>` URL into a [`Source`].
//!
//! Pure: no I/O, no DNS, no settings beyond the base. It normalises the accepted spellings
//! (plain, slash-collapsed, percent-encoded, `b64/`), refuses schemes other than http(s) and the
//! bucket schemes (`s3`, `gs`, `az`; their grammar is `bucket.rs`) and userinfo, and confines
//! relative sources to the base. It does not apply the host allow-list or the
//! address policy; `Fetcher` does that on every fetch and redirect hop.
//!
//! Rules worth knowing:
//! - A source whose first segment looks like `scheme:` (also once percent-decoded) is taken as
//!   an absolute URL; only `http`, `https`, `s3`, `gs` and `az` are accepted. A local file named `a:b.jpg` must
//!   be written `./a:b.jpg`.
//! - For `b64/<payload>` the request query is ignored: the encoded URL is the whole source.
//!   The payload must decode to an absolute http(s) or bucket URL.
//! - Relative sources are percent-decoded once and split on `/` (so `%2F` separates segments);
//!   `.` and empty segments are dropped; `..`, `\` and NUL are refused as traversal attempts.
//! - With a URL base, the base query and fragment are dropped and the request query is used.
//! - Fragments are always dropped.

use std::path::PathBuf;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use percent_encoding::percent_decode_str;
use url::Url;

use super::{bucket, Base, Source, SourceError};

pub(crate) fn parse(rest: &str, query: Option<&str>, base: &Base) -> Result<Source, SourceError> {
    let query = query.filter(|q| !q.is_empty());
    if let Some(payload) = rest.strip_prefix("b64/") {
        return absolute(&decode_b64(payload)?, None);
    }
    match scheme_of(rest) {
        Some(_) => absolute(rest, query),
        None => {
            let decoded = decode_utf8(rest)?;
            if scheme_of(&decoded).is_some() {
                absolute(&decoded, query)
            } else {
                relative(&decoded, query, base)
            }
        }
    }
}

/// The scheme of `s` if it starts with one (`[A-Za-z][A-Za-z0-9+.-]*:`).
fn scheme_of(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    (first_ok && rest_ok).then_some(scheme)
}

fn decode_utf8(s: &str) -> Result<String, SourceError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| bad("not UTF-8"))
}

fn decode_b64(payload: &str) -> Result<String, SourceError> {
    // `=` may arrive percent-encoded; the base64 alphabets contain no `%`.
    let payload = decode_utf8(payload)?;
    let trimmed = payload.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .map_err(|_| bad("invalid base64"))?;
    String::from_utf8(bytes).map_err(|_| bad("not UTF-8"))
}

/// An absolute URL (`s` starts with a scheme); the request query is appended to its own.
fn absolute(s: &str, query: Option<&str>) -> Result<Source, SourceError> {
    match scheme_of(s) {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {}
        Some(scheme) if bucket::is_bucket_scheme(scheme) => {
            return bucket::parse(s, query).map(Source::Bucket)
        }
        _ => return Err(bad("only http, https, s3, gs and az URLs are accepted")),
    }
    // WHATWG parsing also repairs `https:/a.com` (slashes collapsed by a proxy) and normalises
    // numeric IPv4 spellings (`2130706433`, `0177.0.0.1`) to dotted form.
    let mut url = Url::parse(s).map_err(|_| bad("invalid URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SourceError::Forbidden("credentials in URL".to_owned()));
    }
    match url.host_str() {
        Some(h) if !h.is_empty() => {}
        _ => return Err(bad("URL has no host")),
    }
    url.set_fragment(None);
    if let Some(q) = query {
        let combined = match url.query() {
            Some(own) if !own.is_empty() => format!("{own}&{q}"),
            _ => q.to_owned(),
        };
        url.set_query(Some(&combined));
    }
    Ok(Source::Remote(url))
}

/// A relative source, already percent-decoded once.
fn relative(decoded: &str, query: Option<&str>, base: &Base) -> Result<Source, SourceError> {
    let segments = segments(decoded)?;
    match base {
        Base::Dir(_) => Ok(Source::Local(segments.iter().collect::<PathBuf>())),
        Base::Url(base) => {
            let mut url = base.clone();
            url.set_fragment(None);
            url.set_query(None);
            {
                let mut path = url
                    .path_segments_mut()
                    .map_err(|_| bad("the base URL cannot take a path"))?;
                // The base is a directory: `http://o/imgs` and `http://o/imgs/` both mean `imgs/`.
                path.pop_if_empty();
                path.extend(&segments);
            }
            url.set_query(query);
            Ok(Source::Remote(url))
        }
    }
}

/// Split a decoded relative path into clean segments.
fn segments(decoded: &str) -> Result<Vec<&str>, SourceError> {
    if decoded.contains(['\\', '\0']) {
        return Err(SourceError::Forbidden("path escapes the base".to_owned()));
    }
    if decoded.chars().any(|c| c.is_control()) {
        return Err(bad("control characters in path"));
    }
    let mut out = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(SourceError::Forbidden("path escapes the base".to_owned())),
            s => out.push(s),
        }
    }
    if out.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(out)
}

fn bad(why: &str) -> SourceError {
    SourceError::BadSource(why.to_owned())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn dir() -> Base {
        Base::Dir(PathBuf::from("/srv/img"))
    }

    fn url_base(s: &str) -> Base {
        Base::Url(Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[track_caller]
    fn remote(rest: &str, query: Option<&str>, base: &Base, expected: &str) {
        match parse(rest, query, base) {
            Ok(Source::Remote(u)) => assert_eq!(u.as_str(), expected, "{rest:?}"),
            other => panic!("{rest:?}: expected Remote({expected}), got {other:?}"),
        }
    }

    #[track_caller]
    fn local(rest: &str, expected: &str) {
        match parse(rest, Some("v=1"), &dir()) {
            Ok(Source::Local(p)) => assert_eq!(p, PathBuf::from(expected), "{rest:?}"),
            other => panic!("{rest:?}: expected Local({expected}), got {other:?}"),
        }
    }

    #[track_caller]
    fn err(rest: &str, base: &Base) -> SourceError {
        match parse(rest, None, base) {
            Err(e) => e,
            Ok(s) => panic!("{rest:?}: expected an error, got {s:?}"),
        }
    }

    #[test]
    fn parse_plain_url_with_query_remote() {
        remote(
            "https://a.com/x.jpg",
            Some("v=2"),
            &dir(),
            "https://a.com/x.jpg?v=2",
        );
        remote("http://a.com/x.jpg", None, &dir(), "http://a.com/x.jpg");
        remote("http://a.com/x.jpg", Some(""), &dir(), "http://a.com/x.jpg");
        remote("HTTPS://A.COM/X.JPG", None, &dir(), "https://a.com/X.JPG");
        remote(
            "https://a.com:8443/my%20cat.jpg",
            None,
            &dir(),
            "https://a.com:8443/my%20cat.jpg",
        );
    }

    #[test]
    fn parse_slash_collapsed_url_repaired() {
        remote(
            "https:/a.com/x.jpg",
            Some("v=2"),
            &dir(),
            "https://a.com/x.jpg?v=2",
        );
        remote("http:/a.com/x.jpg", None, &dir(), "http://a.com/x.jpg");
    }

    #[test]
    fn parse_percent_encoded_url_decoded() {
        remote(
            "https%3A%2F%2Fa.com%2Fx.jpg",
            Some("v=2"),
            &dir(),
            "https://a.com/x.jpg?v=2",
        );
        remote(
            "http%3a%2f%2fa.com%2fx.jpg",
            None,
            &dir(),
            "http://a.com/x.jpg",
        );
        remote(
            "https%3A%2F%2Fa.com%2Fx.jpg%3Fs%3D1",
            Some("v=2"),
            &dir(),
            "https://a.com/x.jpg?s=1&v=2",
        );
    }

    #[test]
    fn parse_b64_with_and_without_padding_query_ignored() {
        let u = "https://a.com/x.jpg?s=1";
        let padded = base64::engine::general_purpose::URL_SAFE.encode(u);
        let unpadded = URL_SAFE_NO_PAD.encode(u);
        assert!(padded.ends_with('='));
        remote(&format!("b64/{padded}"), Some("v=2"), &dir(), u);
        remote(&format!("b64/{unpadded}"), Some("v=2"), &dir(), u);
        remote(
            &format!("b64/{}", padded.replace('=', "%3D")),
            None,
            &dir(),
            u,
        );
        // `>`/`?` give `+`/`/` in the standard alphabet and `-`/`_` in the URL-safe one.
        let odd = "https://a.com/??>>";
        let std = base64::engine::general_purpose::STANDARD.encode(odd);
        assert!(std.contains('/') || std.contains('+'));
        remote(
            &format!("b64/{std}"),
            None,
            &dir(),
            "https://a.com/??%3E%3E",
        );
        remote(
            &format!("b64/{}", URL_SAFE_NO_PAD.encode(odd)),
            None,
            &dir(),
            "https://a.com/??%3E%3E",
        );
    }

    #[test]
    fn parse_b64_malformed_bad_source() {
        assert!(matches!(err("b64/!!!", &dir()), SourceError::BadSource(_)));
        let not_utf8 = URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00]);
        assert!(matches!(
            err(&format!("b64/{not_utf8}"), &dir()),
            SourceError::BadSource(_)
        ));
        let relative = URL_SAFE_NO_PAD.encode("cat.jpg");
        assert!(matches!(
            err(&format!("b64/{relative}"), &dir()),
            SourceError::BadSource(_)
        ));
        let ftp = URL_SAFE_NO_PAD.encode("ftp://a.com/x");
        assert!(matches!(
            err(&format!("b64/{ftp}"), &dir()),
            SourceError::BadSource(_)
        ));
    }

    #[test]
    fn parse_numeric_ipv4_forms_normalised() {
        for rest in [
            "http://2130706433/x",
            "http://0177.0.0.1/x",
            "http://0x7f.1/x",
            "http://127.1/x",
        ] {
            match parse(rest, None, &dir()) {
                Ok(Source::Remote(u)) => {
                    assert_eq!(
                        u.host(),
                        Some(url::Host::Ipv4(Ipv4Addr::new(127, 0, 0, 1))),
                        "{rest}"
                    )
                }
                other => panic!("{rest}: {other:?}"),
            }
        }
    }

    #[test]
    fn parse_bad_schemes_bad_source() {
        for rest in [
            "ftp://a.com/x",
            "file:///etc/passwd",
            "file:/etc/passwd",
            "gopher://127.0.0.1:6379/_x",
            "data:image/png;base64,AAAA",
            "javascript:alert(1)",
            "ftp%3A%2F%2Fa.com%2Fx",
            "javascript%3Aalert(1)",
            "http://",
            "https:///",
            "http://[fe80::1%25eth0]/",
        ] {
            assert!(
                matches!(err(rest, &dir()), SourceError::BadSource(_)),
                "{rest}"
            );
        }
    }

    #[test]
    fn parse_userinfo_forbidden() {
        for rest in [
            "http://a.com@127.0.0.1/",
            "https://u:p@a.com/x",
            "http%3A%2F%2Fa.com%40127.0.0.1%2F",
        ] {
            assert!(
                matches!(err(rest, &dir()), SourceError::Forbidden(_)),
                "{rest}"
            );
        }
    }

    #[test]
    fn parse_relative_dir_base_local() {
        local("cat.jpg", "cat.jpg");
        local("a/b/cat.jpg", "a/b/cat.jpg");
        local("/a//./b/cat.jpg", "a/b/cat.jpg");
        local("my%20cat.jpg", "my cat.jpg");
        local("a%2Fb.jpg", "a/b.jpg");
        local("./a:b.jpg", "a:b.jpg");
        local("...", "...");
    }

    #[test]
    fn parse_relative_traversal_forbidden() {
        for rest in [
            "..",
            "../etc/passwd",
            "a/../../b",
            "%2e%2e/x",
            "a/%2E%2E/b",
            "..%2Fx",
            "a%5Cb",
            "a\\..\\b",
            "a%00b",
        ] {
            assert!(
                matches!(err(rest, &dir()), SourceError::Forbidden(_)),
                "{rest}"
            );
            assert!(
                matches!(
                    err(rest, &url_base("http://o/imgs")),
                    SourceError::Forbidden(_)
                ),
                "{rest}"
            );
        }
    }

    #[test]
    fn parse_relative_empty_bad_source() {
        for rest in ["", "/", ".", "./", "%2F%2F", "a%0Ab"] {
            assert!(
                matches!(err(rest, &dir()), SourceError::BadSource(_)),
                "{rest:?}"
            );
        }
        assert!(matches!(err("%ff.jpg", &dir()), SourceError::BadSource(_)));
    }

    #[test]
    fn parse_relative_url_base_joined_under_directory() {
        let b = url_base("http://o/imgs");
        remote("cat.jpg", None, &b, "http://o/imgs/cat.jpg");
        remote("cat.jpg", Some("v=2"), &b, "http://o/imgs/cat.jpg?v=2");
        remote("a/./b%20c.jpg", None, &b, "http://o/imgs/a/b%20c.jpg");
        remote(
            "cat.jpg",
            None,
            &url_base("http://o/imgs/?k=1#f"),
            "http://o/imgs/cat.jpg",
        );
        remote("cat.jpg", None, &url_base("http://o"), "http://o/cat.jpg");
        // A scheme-relative spelling stays under the base instead of switching host.
        remote(
            "//evil.test/a.png",
            None,
            &b,
            "http://o/imgs/evil.test/a.png",
        );
        remote("a%3Fb%23c.jpg", None, &b, "http://o/imgs/a%3Fb%23c.jpg");
    }

    #[test]
    fn parse_display_canonical() {
        let s = parse("a//b/./c.jpg", None, &dir()).map(|s| s.to_string());
        assert_eq!(s, Ok("a/b/c.jpg".to_owned()));
        let s = parse("https:/a.com/x.jpg", Some("v=2"), &dir()).map(|s| s.to_string());
        assert_eq!(s, Ok("https://a.com/x.jpg?v=2".to_owned()));
    }

    #[track_caller]
    fn object(rest: &str, query: Option<&str>, expected: &str) {
        match parse(rest, query, &dir()) {
            Ok(Source::Bucket(o)) => assert_eq!(o.to_string(), expected, "{rest:?}"),
            other => panic!("{rest:?}: expected Bucket({expected}), got {other:?}"),
        }
    }

    #[test]
    fn parse_bucket_forms_canonical() {
        object("s3://photos/a/cat.jpg", None, "s3://photos/a/cat.jpg");
        object("S3://photos/cat.jpg", None, "s3://photos/cat.jpg");
        object("gs://my_photos/cat.jpg", None, "gs://my_photos/cat.jpg");
        object("az://photos/cat.jpg", None, "az://photos/cat.jpg");
        // The key is decoded once; the canonical text escapes what would read differently.
        object("s3://photos/my%20cat.jpg", None, "s3://photos/my%20cat.jpg");
        object("s3://photos/100%25.jpg", None, "s3://photos/100%25.jpg");
        object("s3://photos/a%3Fb.jpg", None, "s3://photos/a%3Fb.jpg");
        object(
            "s3://photos/caf%C3%A9.jpg",
            None,
            "s3://photos/caf%C3%A9.jpg",
        );
        object(
            "s3%3A%2F%2Fphotos%2Fmy%2520cat.jpg",
            None,
            "s3://photos/my%20cat.jpg",
        );
        object(
            &format!(
                "b64/{}",
                URL_SAFE_NO_PAD.encode("s3://photos/x.jpg?versionId=v1")
            ),
            Some("ignored=1"),
            "s3://photos/x.jpg?versionId=v1",
        );
        object("s3://photos/x.jpg#frag", None, "s3://photos/x.jpg");
    }

    #[test]
    fn parse_bucket_slash_collapsed_repaired() {
        object("s3:/photos/a/cat.jpg", None, "s3://photos/a/cat.jpg");
        object("gs:/photos/cat.jpg", None, "gs://photos/cat.jpg");
        object("s3%3A%2Fphotos%2Fcat.jpg", None, "s3://photos/cat.jpg");
    }

    #[test]
    fn parse_bucket_version_in_canonical_form() {
        object(
            "s3://photos/x.jpg",
            Some("versionId=3HL4kqtJlcpXroDTDmJ"),
            "s3://photos/x.jpg?versionId=3HL4kqtJlcpXroDTDmJ",
        );
        object(
            "s3://photos/x.jpg?versionId=a%26b",
            None,
            "s3://photos/x.jpg?versionId=a%26b",
        );
        let plain = parse("s3://photos/x.jpg", None, &dir());
        let versioned = parse("s3://photos/x.jpg", Some("versionId=1"), &dir());
        assert_ne!(plain, versioned);
        let (Ok(plain), Ok(versioned)) = (plain, versioned) else {
            panic!("both parse");
        };
        assert_ne!(
            crate::cache::key::source(&plain),
            crate::cache::key::source(&versioned)
        );
    }

    #[test]
    fn parse_bucket_malformed_bad_source() {
        for (rest, query) in [
            ("s3://Photos/x.jpg", None),
            ("s3://ab/x.jpg", None),
            ("s3://my_photos/x.jpg", None),
            ("s3://photos", None),
            ("s3://photos/", None),
            ("s3:///x.jpg", None),
            ("s3:photos/x.jpg", None),
            ("s3://photos/a//b.jpg", None),
            ("s3://photos/a/../b.jpg", None),
            ("s3://photos/%2E%2E/b.jpg", None),
            ("s3://photos/a%0Ab.jpg", None),
            ("s3://photos/%ff.jpg", None),
            ("s3://photos/x.jpg", Some("v=2")),
            ("s3://photos/x.jpg", Some("versionId=")),
            ("s3://photos/x.jpg?versionId=1", Some("versionId=2")),
            ("gs://photos/x.jpg", Some("versionId=1")),
            ("s3://user@photos/x.jpg", None),
        ] {
            match parse(rest, query, &dir()) {
                Err(SourceError::BadSource(_)) => {}
                other => panic!("{rest:?} {query:?}: {other:?}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_arbitrary_input_never_panics(
            rest in ".{0,64}",
            query in proptest::option::of(".{0,16}"),
        ) {
            for base in [dir(), url_base("http://o/imgs")] {
                let _ = parse(&rest, query.as_deref(), &base);
                let _ = parse(&format!("b64/{rest}"), None, &base);
            }
        }

        #[test]
        fn parse_bucket_canonical_text_reads_back(
            key in r"[a-z0-9 %?#&+=./_-]{1,24}",
            version in proptest::option::of(r"[A-Za-z0-9 %?#&+=./_-]{1,12}"),
        ) {
            let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
            let query = version
                .as_ref()
                .map(|v| format!("versionId={}", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()));
            if let Ok(Source::Bucket(o)) = parse(&format!("s3://photos/{encoded}"), query.as_deref(), &dir()) {
                proptest::prop_assert_eq!(&o.version, &version);
                let again = parse(&o.to_string(), None, &dir());
                proptest::prop_assert_eq!(again, Ok(Source::Bucket(o)));
            }
        }

        #[test]
        fn parse_local_never_escapes_or_empties(rest in r"[a-z./%25eE\\]{0,24}") {
            if let Ok(Source::Local(p)) = parse(&rest, None, &dir()) {
                let plain = p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
                proptest::prop_assert!(plain);
                proptest::prop_assert!(!p.as_os_str().is_empty());
            }
        }
    }
}
