//! `GET|HEAD /img/<options>/<source>`, one linear handler:
//!
//! 1. split the path into the options segment and the source;
//! 2. parse the options (400 on a bad token);
//! 3. parse the source against the configured base (400/403);
//! 4. fetch the source bytes through the policy-checked fetcher (403/404/413/502/504);
//! 5. render on the bounded worker pool (503 when full; 413/415/422 from the pipeline);
//! 6. build the response: ETag from the output bytes, 304 on `If-None-Match`, `Cache-Control`
//!    from config, `Vary: Accept` only when the format was negotiated, `Server-Timing`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::error::AppError;
use super::reply::{self, Body};
use super::AppState;
use crate::options::{self, FormatChoice};
use crate::pipeline::{self, Accept, Rendered};
use crate::source;

pub async fn handle(
    state: &AppState,
    rest: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, AppError> {
    // 1. `rest` is everything after `/img/`.
    let (segment, source) = rest.split_once('/').ok_or(AppError::MissingSource)?;
    if source.is_empty() {
        return Err(AppError::MissingSource);
    }

    // 2, 3. Some clients percent-encode the commas of the options segment.
    let segment = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    let transform = options::parse(&segment)?;
    let source = source::parse(source, query, &state.settings.source.base)?;

    // 4.
    let started = Instant::now();
    let bytes: Bytes = state.fetcher.fetch(&source).await?;
    let fetch_time = started.elapsed();

    // 5.
    let negotiated = transform.format == Some(FormatChoice::Auto);
    let accept = Accept {
        webp: reply::accepts(headers, "image/webp"),
    };
    let limits = state.settings.limits;
    let default_quality = state.settings.default_quality;
    let job_transform = transform.clone();
    let rendered = state
        .pool
        .run(move || {
            let request = pipeline::Request {
                transform: &job_transform,
                accept,
                default_quality,
            };
            pipeline::render(&bytes, &request, &limits)
        })
        .await??;

    // 6.
    Ok(respond(state, headers, rendered, negotiated, fetch_time))
}

fn respond(
    state: &AppState,
    request: &HeaderMap,
    rendered: Rendered,
    negotiated: bool,
    fetch_time: Duration,
) -> Response<Body> {
    let etag = reply::etag(&rendered.bytes);
    let fresh = reply::not_modified(request, &etag);
    let length = rendered.bytes.len();
    let mut response = if fresh {
        let mut r = Response::new(Body::default());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(rendered.bytes))
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    if let Ok(v) = HeaderValue::from_str(&state.settings.cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if negotiated {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    if !fresh {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(rendered.format.mime()),
        );
        h.insert(header::CONTENT_LENGTH, length.into());
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // The body is an image we encoded; nothing in it may run as a document.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        );
    }
    let t = rendered.timings;
    let timing = format!(
        "fetch;dur={:.1}, decode;dur={:.1}, resize;dur={:.1}, encode;dur={:.1}",
        ms(fetch_time),
        ms(t.decode),
        ms(t.resize),
        ms(t.encode)
    );
    if let Ok(v) = HeaderValue::from_str(&timing) {
        h.insert("server-timing", v);
    }
    response
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
