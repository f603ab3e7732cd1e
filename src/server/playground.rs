//! `GET /` (with `server.playground = true`, the default): one static page, embedded in the
//! binary, to try imgcdn in a browser: pick a sample from the local source folder or type a
//! URL, set size/fit/format/quality, and see the original and the result side by side with
//! their bytes, dimensions, format, `Server-Timing` and cache status, and copy the URL.
//!
//! `GET /playground/sign?path=/img/...` signs a path for the page when
//! `server.playground_sign = true` and keys are set: anyone who can load the page can then
//! have any URL signed, so turn it on only where the page is private.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::reply::{self, Body};
use super::{AppError, AppState};
use crate::signature;
use crate::source::Base;

const PAGE: &str = include_str!("playground/index.html");
const CONFIG_START: &str = "/*CONFIG*/";
const CONFIG_END: &str = "/*END*/";
/// Samples listed at most (the page is for trying things, not browsing).
const MAX_SAMPLES: usize = 100;

#[derive(serde::Serialize)]
struct PageConfig {
    samples: Vec<String>,
    sign: bool,
}

/// The page, with the sample list and whether it can sign filled in.
pub async fn page(state: &AppState) -> Response<Body> {
    let samples = match &state.settings.source.base {
        Base::Dir(dir) => samples(dir.clone()).await,
        Base::Url(_) => Vec::new(),
    };
    let config = PageConfig {
        samples,
        sign: can_sign(state),
    };
    // `</` cannot appear in the JSON inside the script: file names are escaped by serde_json
    // except `/`, so escape that too.
    let json = serde_json::to_string(&config)
        .unwrap_or_else(|_| "{\"samples\":[],\"sign\":false}".into())
        .replace('/', "\\/");
    let html = match (PAGE.find(CONFIG_START), PAGE.find(CONFIG_END)) {
        (Some(a), Some(b)) if a < b => format!("{}{CONFIG_START}{json}{}", &PAGE[..a], &PAGE[b..]),
        _ => PAGE.to_owned(),
    };
    let mut response = reply::text(StatusCode::OK, "", false);
    let length = html.len();
    *response.body_mut() = Body::from(html);
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, length.into());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn can_sign(state: &AppState) -> bool {
    state.settings.playground_sign && !state.settings.signing_keys.is_empty()
}

/// `GET /playground/sign?path=...`: the path signed with the first key, as `imgcdn sign`.
pub fn sign(state: &AppState, query: Option<&str>) -> Result<Response<Body>, AppError> {
    if !can_sign(state) {
        return Err(AppError::NoRoute);
    }
    let path = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("path="))
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|p| p.starts_with("/img/") || p.starts_with("/meta/"))
        .ok_or_else(|| AppError::BadRequest("expected ?path=/img/...".into()))?;
    let key = state
        .settings
        .signing_keys
        .first()
        .ok_or(AppError::NoRoute)?;
    let signed = match path.strip_prefix("/meta") {
        Some(rest) => format!("/meta{}", &signature::sign_path(key, rest)["/img".len()..]),
        None => signature::sign_path(key, &path),
    };
    Ok(reply::text(StatusCode::OK, &signed, false))
}

/// Directory entries the sample list looks at.
const MAX_SCANNED: usize = 10_000;

/// Image files at the top of the source folder, sorted, at most [`MAX_SAMPLES`] of the first
/// [`MAX_SCANNED`] entries.
async fn samples(dir: std::path::PathBuf) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            // A folder of a million files costs one bounded scan per page load, not a million.
            .take(MAX_SCANNED)
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                let lower = n.to_ascii_lowercase();
                [".jpg", ".jpeg", ".png", ".webp", ".gif"]
                    .iter()
                    .any(|ext| lower.ends_with(ext))
            })
            .collect();
        names.sort();
        names.truncate(MAX_SAMPLES);
        names
    })
    .await
    .unwrap_or_default()
}
