//! Small HTTP helpers: building text and image responses, strong ETags, `If-None-Match`
//! (RFC 9110 §13.1.2) and reading `Accept` for format negotiation. No routing, no I/O.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

use super::error::AppError;

pub type Body = Full<Bytes>;

/// A strong ETag for a response body: the first 128 bits of its blake3 hash, hex.
pub fn etag(body: &[u8]) -> HeaderValue {
    let hash = blake3::hash(body);
    let hex = hash.to_hex();
    let short = hex.as_str().get(..32).unwrap_or(hex.as_str());
    // Hex digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{short}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// True when `If-None-Match` matches `etag` (weak comparison, as RFC 9110 §13.1.2 requires).
pub fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    request.get_all(header::IF_NONE_MATCH).iter().any(|value| {
        value.as_bytes().split(|&b| b == b',').any(|tag| {
            let tag = tag.trim_ascii();
            tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours
        })
    })
}

/// True when the client's `Accept` lists `mime` with a non-zero q (wildcards don't count:
/// browsers that cannot show WebP still send `*/*`).
pub fn accepts(request: &HeaderMap, mime: &str) -> bool {
    request
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let listed = parts.next().is_some_and(|m| m.eq_ignore_ascii_case(mime));
                let zero = parts
                    .any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
                listed && !zero
            })
        })
}

/// A short `text/plain` response that caches must never keep.
pub fn text(status: StatusCode, body: &str, cacheable: bool) -> Response<Body> {
    let body = Bytes::from(format!("{body}\n"));
    let length = body.len();
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, length.into());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if !cacheable {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The response for a failed request: status from [`AppError::status`], body
/// `<code>: <message>`, `Cache-Control: no-store` (a CDN must not keep an error), except that a
/// deterministic failure ([`AppError::is_deterministic`]) may be kept for `negative_ttl`.
pub fn error(e: &AppError, negative_ttl: Duration) -> Response<Body> {
    let status = e.status();
    let keep = e.is_deterministic() && !negative_ttl.is_zero();
    let mut response = text(status, &format!("{}: {e}", e.code()), keep);
    let h = response.headers_mut();
    if keep {
        let value = format!("public, max-age={}", negative_ttl.as_secs());
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CACHE_CONTROL, v);
        }
    }
    match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        StatusCode::UNAUTHORIZED => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    if let AppError::Method { allow } = e {
        h.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn if_none_match_matches_strong_weak_list_and_star() {
        let tag = etag(b"abc");
        let s = tag.to_str().unwrap().to_string();
        assert!(not_modified(&headers(header::IF_NONE_MATCH, &s), &tag));
        assert!(not_modified(
            &headers(header::IF_NONE_MATCH, &format!("W/{s}")),
            &tag
        ));
        assert!(not_modified(
            &headers(header::IF_NONE_MATCH, &format!("\"x\", {s}")),
            &tag
        ));
        assert!(not_modified(&headers(header::IF_NONE_MATCH, "*"), &tag));
        assert!(!not_modified(
            &headers(header::IF_NONE_MATCH, "\"other\""),
            &tag
        ));
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }

    #[test]
    fn etag_is_quoted_hex_and_content_derived() {
        let a = etag(b"abc");
        assert_eq!(a.len(), 34);
        assert_ne!(a, etag(b"abd"));
        assert_eq!(a, etag(b"abc"));
    }

    #[test]
    fn accept_webp_needs_explicit_listing() {
        assert!(accepts(
            &headers(header::ACCEPT, "image/avif,image/webp,*/*"),
            "image/webp"
        ));
        assert!(accepts(
            &headers(header::ACCEPT, "image/webp;q=0.8"),
            "image/webp"
        ));
        assert!(!accepts(
            &headers(header::ACCEPT, "image/webp;q=0"),
            "image/webp"
        ));
        assert!(!accepts(&headers(header::ACCEPT, "*/*"), "image/webp"));
        assert!(!accepts(&HeaderMap::new(), "image/webp"));
    }
}
