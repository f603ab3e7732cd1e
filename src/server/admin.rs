//! `POST /admin/purge` with `{"source": "<url or path>"}`: removes every variant of that source,
//! and its cached original, from both cache tiers, so the next request fetches the origin.
//!
//! Off unless `admin.token` is set (then the route does not exist: 404); requires
//! `Authorization: Bearer <token>`, compared in constant time (401 otherwise). The body is read
//! up to a small limit. The source is written as it would be in an `/img/` URL.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::error::AppError;
use super::reply::{self, Body};
use super::AppState;
use crate::cache::key;
use crate::source;

/// Largest purge request body.
const MAX_BODY: usize = 64 * 1024;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Purge {
    source: String,
}

/// `Authorization: Bearer <token>` or 401. Comparing the hashes keeps the comparison
/// constant-time whatever the lengths (`blake3::Hash` equality is constant-time).
pub fn check_bearer(headers: &http::HeaderMap, token: &str) -> Result<(), AppError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if blake3::hash(given.as_bytes()) == blake3::hash(token.as_bytes()) {
        Ok(())
    } else {
        Err(AppError::Unauthorized)
    }
}

pub async fn purge(
    state: &Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, AppError> {
    let Some(token) = state.settings.admin_token.as_deref() else {
        return Err(AppError::NoRoute);
    };
    if req.method() != Method::POST {
        return Err(AppError::Method { allow: "POST" });
    }
    check_bearer(req.headers(), token)?;
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| AppError::BadRequest(format!("body missing or over {MAX_BODY} bytes")))?
        .to_bytes();
    let purge: Purge = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("expected {{\"source\": \"...\"}}: {e}")))?;
    // Split off the query as the request path would; `b64/` sources carry none.
    let (rest, query) = match purge.source.split_once('?') {
        Some((rest, query)) if !purge.source.starts_with("b64/") => (rest, Some(query)),
        _ => (purge.source.as_str(), None),
    };
    let source = source::parse(rest, query, &state.settings.source.base)?;
    let identity = state.fetcher.identity(&source).await;
    let source_key = key::versioned_source(&source, &identity);
    // Deterministic failures of the source are forgotten too.
    state.forget_failures();
    if let Err(e) = state.cache.purge(&source_key).await {
        tracing::warn!(%source, key = %source_key, "purge incomplete: {e}");
        return Ok(reply::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("purge-failed: {e}"),
            false,
        ));
    }
    tracing::info!(%source, key = %source_key, "purged");
    let mut response = reply::text(StatusCode::OK, &format!("purged {source_key}"), false);
    if let Ok(v) = HeaderValue::from_str(&source_key.hex()) {
        response.headers_mut().insert("surrogate-key", v);
    }
    Ok(response)
}
