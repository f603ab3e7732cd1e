//! CDN-friendly URLs: steer clients to few spellings of each rendition, so a CDN in front holds
//! few variants.
//!
//! - `output.width_buckets`: a `w_` that is not a bucket becomes the next bucket up (the
//!   largest when it is above them all), `h_` scaled by the same factor so the box keeps its
//!   shape;
//! - `output.qualities`: a `q_` that is not listed becomes the next listed one up;
//! - `output.canonical_redirect`: an options segment not spelled as `Transform`'s canonical
//!   `Display` (order, defaults, aliases, `dpr_` folded in) is respelled;
//! - `output.auto_format = "redirect"`: `f_auto` becomes the explicit format chosen.
//!
//! Each answers a redirect to the same path with the new options segment (signed again when
//! URLs are signed: it names the same source, and a bucket is a size the operator chose).
//! Pure: no I/O.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::reply::{self, Body};
use crate::config::UrlPolicy;
use crate::options::{Transform, MAX_DIMENSION};
use crate::signature;

/// `t` with its width snapped to a bucket and its quality to a listed one (unchanged when the
/// lists are empty or it already conforms).
pub fn snap(t: &Transform, policy: &UrlPolicy) -> Transform {
    let mut out = t.clone();
    if let (Some(w), Some(&largest)) = (t.width, policy.width_buckets.last()) {
        let bucket = policy
            .width_buckets
            .iter()
            .copied()
            .find(|&b| b >= w)
            .unwrap_or(largest);
        if bucket != w {
            out.width = Some(bucket);
            out.height = t.height.map(|h| {
                let scaled = (u64::from(h) * u64::from(bucket) + u64::from(w) / 2) / u64::from(w);
                scaled.clamp(1, u64::from(MAX_DIMENSION)) as u32
            });
        }
    }
    if let (Some(q), Some(&highest)) = (t.quality, policy.qualities.last()) {
        out.quality = Some(
            policy
                .qualities
                .iter()
                .copied()
                .find(|&l| l >= q)
                .unwrap_or(highest),
        );
    }
    out
}

/// The path of the same request with `options` as its options segment: `prefix` (`/img`)
/// + `/[s_SIG/]` + `options/source` + `?query`, signed with the first key when there are keys.
pub fn location(
    prefix: &str,
    options: &str,
    source: &str,
    query: Option<&str>,
    keys: &[String],
) -> String {
    let message = match query {
        Some(q) => format!("/{options}/{source}?{q}"),
        None => format!("/{options}/{source}"),
    };
    match keys.first() {
        Some(key) => format!(
            "{prefix}/{}{}{message}",
            signature::PREFIX,
            signature::sign(key, &message)
        ),
        None => format!("{prefix}{message}"),
    }
}

/// A redirect to `location`, cacheable like the images themselves (`cache_control`) when the
/// answer depends on the URL alone (308), never shared when it depends on request headers.
pub fn redirect(status: StatusCode, location: &str, cache_control: &str) -> Response<Body> {
    let mut response = reply::text(status, &format!("see {location}"), true);
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::parse;

    fn policy(buckets: &[u32], qualities: &[u8]) -> UrlPolicy {
        UrlPolicy {
            width_buckets: buckets.to_vec(),
            qualities: qualities.to_vec(),
            ..UrlPolicy::default()
        }
    }

    #[track_caller]
    fn t(opts: &str, p: &UrlPolicy, want: &str) {
        let got = snap(&parse(opts).expect("options"), p);
        assert_eq!(got.to_string(), want, "{opts}");
    }

    #[test]
    fn snap_width_to_next_bucket_and_scale_height() {
        let p = policy(&[64, 128, 256, 512, 1024], &[]);
        t("w_100", &p, "w_128");
        t("w_128", &p, "w_128");
        t("w_1", &p, "w_64");
        t("w_3000", &p, "w_1024");
        t("w_200,h_100,c_fill", &p, "w_256,h_128,c_fill");
        t("w_300,h_1", &p, "w_512,h_2");
        t("h_300", &p, "h_300");
        t("_", &p, "_");
        t("w_300,dpr_2", &p, "w_1024");
    }

    #[test]
    fn snap_quality_to_next_listed() {
        let p = policy(&[], &[50, 80, 90]);
        t("q_10", &p, "q_50");
        t("q_80", &p, "q_80");
        t("q_81", &p, "q_90");
        t("q_100", &p, "q_90");
        t("w_10", &p, "w_10");
    }

    #[test]
    fn empty_policy_changes_nothing() {
        let p = UrlPolicy::default();
        for o in ["w_123,q_77", "h_5", "_"] {
            let tr = parse(o).expect("options");
            assert_eq!(snap(&tr, &p), tr);
        }
    }

    #[test]
    fn location_keeps_source_and_query_and_signs() {
        assert_eq!(
            location("/img", "w_128", "https://a.example/x.jpg", Some("v=1"), &[]),
            "/img/w_128/https://a.example/x.jpg?v=1"
        );
        let keys = vec!["0123456789abcdef".to_string()];
        let signed = location("/img", "w_128", "x.jpg", None, &keys);
        let sig = signature::sign(&keys[0], "/w_128/x.jpg");
        assert_eq!(signed, format!("/img/s_{sig}/w_128/x.jpg"));
    }
}
