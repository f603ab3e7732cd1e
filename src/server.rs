//! The HTTP service: accepts connections, routes requests, and turns results and errors into
//! responses. A request for an image reads top to bottom in [`image::handle`].
//!
//! Routes: `GET /health` → `OK` (the original demo's contract); `GET /ready`;
//! `GET|HEAD /img/<options>/<source>` and `/meta/<options>/<source>`; `POST /admin/purge`;
//! the `[compat]` dialects' routes (IPX, imgproxy, thumbor, Next.js, Cloudflare) last.
//! Every response carries `X-Request-Id` (the client's, or a new one) and makes one access-log
//! line: method, canonical path, status, bytes, cache tier, ms, request id.
//! [`run`] takes a bound listener and a shutdown future, so tests bind `127.0.0.1:0` and each
//! gets its own [`AppState`]: nothing here is process-global.

mod admin;
mod conn;
mod error;
mod hints;
mod image;
mod meta;
mod playground;
mod reply;
mod tls;
mod urls;

use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::TcpListener;

pub use self::error::AppError;
use self::reply::Body;
pub use self::tls::config as tls_config;
use crate::cache::{Cache, Flights, Key};
use crate::config::Settings;
use crate::metrics::{Levels, Metrics, Route};
use crate::pool::Pool;
use crate::source::{Fetcher, SourceError};

/// Concurrent HTTP/2 streams per connection.
const H2_MAX_STREAMS: u32 = 64;
/// How often an HTTP/2 connection pings its peer.
const H2_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(20);
/// How long an idle connection being closed may take to say goodbye (HTTP/2 GOAWAY).
const IDLE_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything a request needs, built once from [`Settings`].
pub struct AppState {
    pub settings: Settings,
    pub fetcher: Fetcher,
    pub pool: Pool,
    pub cache: Cache,
    /// Renditions being made, one flight per variant key.
    variants: Flights<Key, Result<image::Made, AppError>>,
    /// Originals being fetched, one flight per source key.
    sources: Flights<Key, Result<image::Original, AppError>>,
    /// Deterministic failures by variant or source key, for `cache.negative_ttl_s`.
    failures: moka::future::Cache<Key, AppError>,
    pub metrics: Metrics,
    /// Set when shutdown begins: `/ready` fails so load balancers stop sending requests.
    draining: AtomicBool,
    /// Seeds request ids this process makes up.
    request_ids: RequestIds,
}

impl AppState {
    /// Build the state. Call inside a tokio runtime: the disk cache starts its sweeper.
    pub fn new(settings: Settings) -> Result<Self, SourceError> {
        let fetcher = Fetcher::new(settings.source.clone())?;
        let pool = Pool::new(
            settings.workers,
            settings.fetch_ahead,
            settings.queue,
            settings.memory_budget,
        );
        let cache = Cache::new(settings.cache.clone());
        let failures = moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(
                settings
                    .negative_ttl
                    .max(std::time::Duration::from_millis(1)),
            )
            .build();
        Ok(AppState {
            settings,
            fetcher,
            pool,
            cache,
            variants: Flights::default(),
            sources: Flights::default(),
            failures,
            metrics: Metrics::default(),
            draining: AtomicBool::new(false),
            request_ids: RequestIds::default(),
        })
    }
}

impl AppState {
    /// Drop every remembered failure (`cache.negative_ttl_s`), after a purge.
    pub fn forget_failures(&self) {
        self.failures.invalidate_all();
    }

    /// No rendition is being made and no original fetched (tests and shutdown use it).
    pub fn flights_idle(&self) -> bool {
        self.variants.is_empty() && self.sources.is_empty()
    }
}

/// Serve connections from `listener` until `shutdown` completes; then stop accepting, answer
/// `/ready` with 503, and let the requests in flight finish within `server.shutdown_grace_ms`
/// (connections still busy after that are dropped).
///
/// Each connection lives under [`conn::watchdog`]: closed when it sends no request head in
/// time, idles past `server.idle_timeout_ms`, or stops reading what it is sent.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let s = &state.settings;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Headers over the limit are answered 431 by hyper itself; a client that trickles its
    // headers is cut off after the timeout instead of holding a connection.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(s.header_timeout)
        .max_buf_size(s.max_header_bytes);
    // HTTP/2 pings find peers that vanished while a long answer is being made; an unanswered
    // ping closes the connection.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(u32::try_from(s.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(H2_PING_INTERVAL))
        .keep_alive_timeout(s.header_timeout);
    let timeouts = conn::Timeouts {
        header: s.header_timeout,
        idle: s.idle_timeout,
        write: s.write_timeout,
    };
    // At most `max_connections` at once; more wait in the kernel's accept queue. Shutdown
    // waits for every permit to come back (validated to fit a u32 at start-up).
    let max_connections = u32::try_from(s.max_connections).unwrap_or(u32::MAX);
    let connections = Arc::new(tokio::sync::Semaphore::new(max_connections as usize));
    let tls = match &s.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(
            tls::config(cert, key).map_err(std::io::Error::other)?,
        )),
        None => None,
    };
    // Flips to true when shutdown begins: every connection finishes its requests and closes.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        conn::keepalive(&stream);
        let activity = conn::Activity::new();
        let stream = conn::Watched::new(stream, activity.clone());
        let service = {
            let (state, activity) = (state.clone(), activity.clone());
            service_fn(move |req| {
                let (state, in_flight) = (state.clone(), activity.request());
                async move {
                    let response = route(&state, req).await;
                    drop(in_flight);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let (builder, tls, stopping) = (builder.clone(), tls.clone(), stopping.clone());
        tokio::spawn(async move {
            let watchdog = conn::watchdog(activity.clone(), timeouts);
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    serve(conn.into_owned(), watchdog, stopping).await;
                }
                Some(acceptor) => {
                    // The handshake counts against the head deadline like the sniff does.
                    tokio::pin!(watchdog);
                    let stream = tokio::select! {
                        accepted = acceptor.accept(stream) => match accepted {
                            Ok(stream) => stream,
                            Err(e) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                        },
                        _ = &mut watchdog => return,
                    };
                    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        activity.set_h2();
                    }
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    serve(conn.into_owned(), watchdog, stopping).await;
                }
            }
            drop(permit);
        });
    }
    state.draining.store(true, Ordering::Relaxed);
    drop(listener);
    let _ = stop.send(true);
    let grace = state.settings.shutdown_grace;
    if tokio::time::timeout(grace, connections.acquire_many(max_connections))
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "requests still in flight after the shutdown grace period; exiting anyway"
        );
    }
    // Uploads to the shared store queued by the last requests: within what is left of the
    // grace period (they are a cache: what does not make it is made again elsewhere).
    if !state.cache.flush(grace / 2).await {
        tracing::warn!("shared store uploads dropped at shutdown");
    }
    Ok(())
}

/// Drive one connection until it ends, its watchdog says it must, or shutdown begins (then
/// it finishes what is in flight and closes; the caller bounds how long that may take).
async fn serve<C>(
    conn: C,
    watchdog: impl Future<Output = conn::Verdict>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(conn, watchdog);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            verdict = &mut watchdog, if !closing => match verdict {
                conn::Verdict::Idle => {
                    // Let HTTP/2 say GOAWAY; a peer that does not let it finish is dropped.
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(IDLE_CLOSE_GRACE, conn.as_mut()).await;
                    return;
                }
                verdict => {
                    tracing::debug!(?verdict, "connection closed");
                    return;
                }
            },
            changed = stopping.changed(), if !closing => {
                if changed.is_err() || *stopping.borrow() {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

async fn route(state: &Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let id = request_id(state, req.headers());
    let route_name = match Route::of(req.uri().path()) {
        Route::Other if state.settings.compat.route(req.uri().path()).is_some() => Route::Compat,
        route => route,
    };
    let result = dispatch(state, req).await;
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(code = e.code(), error = %e, request_id = %id, "request failed");
            }
            reply::error(&e, state.settings.negative_ttl)
        }
    };
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    // Error bodies echo parts of the URL: no response may be sniffed into something else.
    response.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    let response = if method == Method::HEAD {
        strip_body(response)
    } else {
        response
    };
    let took = started.elapsed();
    state
        .metrics
        .request(route_name, response.status().as_u16(), took);
    let h = response.headers();
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let path = response
        .extensions()
        .get::<image::LogPath>()
        .map_or_else(|| truncate(&target, 200), |p| truncate(&p.0, 200));
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        bytes = header("content-length"),
        cache = header("x-cache"),
        ms = took.as_secs_f64() * 1e3,
        request_id = %id,
        "request"
    );
    response
}

async fn dispatch(
    state: &Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, AppError> {
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > state.settings.max_url_bytes {
        return Err(AppError::UrlTooLong {
            limit: state.settings.max_url_bytes,
        });
    }
    let path = req.uri().path();
    if path == "/health" {
        require_get_or_head(req.method())?;
        return Ok(health());
    }
    if let Some(rest) = path.strip_prefix("/img/") {
        require_get_or_head(req.method())?;
        return image::handle(
            state,
            image::Mode::Image,
            rest,
            req.uri().query(),
            req.headers(),
        )
        .await;
    }
    if let Some(rest) = path.strip_prefix("/meta/") {
        require_get_or_head(req.method())?;
        return image::handle(
            state,
            image::Mode::Meta,
            rest,
            req.uri().query(),
            req.headers(),
        )
        .await;
    }
    if state.settings.playground {
        if path == "/" {
            require_get_or_head(req.method())?;
            return Ok(playground::page(state).await);
        }
        if path == "/playground/sign" {
            require_get_or_head(req.method())?;
            return playground::sign(state, req.uri().query());
        }
    }
    if path == "/metrics" {
        require_get_or_head(req.method())?;
        if let Some(token) = &state.settings.metrics_token {
            admin::check_bearer(req.headers(), token)?;
        }
        return Ok(metrics(state).await);
    }
    if path == "/ready" {
        require_get_or_head(req.method())?;
        return Ok(ready(state).await);
    }
    if path == "/admin/purge" {
        return admin::purge(state, req).await;
    }
    if let Some((dialect, rest)) = state.settings.compat.route(path) {
        require_get_or_head(req.method())?;
        return image::handle_compat(state, dialect, rest, req.uri().query(), req.headers()).await;
    }
    Err(AppError::NoRoute)
}

fn require_get_or_head(method: &Method) -> Result<(), AppError> {
    match *method {
        Method::GET | Method::HEAD => Ok(()),
        _ => Err(AppError::Method { allow: "GET, HEAD" }),
    }
}

/// `/health` answers exactly `OK` (no trailing newline), as the original service did.
fn health() -> Response<Body> {
    let mut response = reply::text(StatusCode::OK, "", false);
    *response.body_mut() = Body::from("OK");
    response
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, 2.into());
    response
}

/// Answer `path` (`/img/…` or `/meta/…`, with an optional `?query`) in-process, as a GET with
/// `Accept: accept` would be answered, storing what it makes in the caches: `imgcdn warm
/// --offline`. Returns the status, whether it came from a cache, and the body's length.
pub async fn answer_local(state: &Arc<AppState>, path: &str, accept: &str) -> (u16, bool, u64) {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(accept) {
        headers.insert(http::header::ACCEPT, v);
    }
    let result = if let Some(rest) = path.strip_prefix("/img/") {
        image::handle(state, image::Mode::Image, rest, query, &headers).await
    } else if let Some(rest) = path.strip_prefix("/meta/") {
        image::handle(state, image::Mode::Meta, rest, query, &headers).await
    } else {
        Err(AppError::NoRoute)
    };
    match result {
        Ok(r) => {
            let h = r.headers();
            let hit = h
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("HIT"));
            let bytes = h
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            (r.status().as_u16(), hit, bytes)
        }
        Err(e) => (e.status().as_u16(), false, 0),
    }
}

/// `/ready`: 200 `ready` while the server takes traffic; 503 while draining for shutdown. The
/// disk cache does not count: a full or read-only cache volume is the same on every replica,
/// so failing readiness for it would take the whole fleet out, while requests are served from
/// memory meanwhile. It shows as `imgcdn_disk_degraded` in `/metrics` instead.
async fn ready(state: &AppState) -> Response<Body> {
    if state.draining.load(Ordering::Relaxed) {
        return reply::text(StatusCode::SERVICE_UNAVAILABLE, "draining", false);
    }
    reply::text(StatusCode::OK, "ready", false)
}

/// `/metrics`: the Prometheus/OpenMetrics text exposition.
async fn metrics(state: &AppState) -> Response<Body> {
    let (memory_bytes, memory_entries, disk_bytes, disk_entries) = state.cache.levels().await;
    let text = state.metrics.render(Levels {
        memory_bytes,
        memory_entries,
        disk_bytes,
        disk_entries,
        queued: state.pool.waiting(),
        workers_busy: state.pool.busy(),
        disk: state.cache.disk_health(),
        store: state.cache.store_snapshot(),
    });
    let mut response = reply::text(StatusCode::OK, "", false);
    let length = text.len();
    *response.body_mut() = Body::from(text);
    let h = response.headers_mut();
    h.insert(http::header::CONTENT_LENGTH, length.into());
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}

/// Request ids made up for requests that bring none: a per-process random seed hashed with a
/// counter, as 16 hex digits.
#[derive(Default)]
struct RequestIds {
    seed: RandomState,
    next: AtomicU64,
}

impl RequestIds {
    fn make(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}", self.seed.hash_one(n))
    }
}

/// The client's `X-Request-Id` when it is a sane token (1-128 of `[A-Za-z0-9._:-]`), else a
/// new one.
fn request_id(state: &AppState, headers: &http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        })
        .map_or_else(|| state.request_ids.make(), str::to_owned)
}

/// A HEAD response keeps every header of the GET response (Content-Length included) and has
/// no body.
fn strip_body(response: Response<Body>) -> Response<Body> {
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, Body::default())
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
