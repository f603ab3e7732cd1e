//! `GET|HEAD /img/<options>/<source>`, one linear handler:
//!
//! 1. check the signature segment when signing keys are configured (403), then split the
//!    path into the options segment and the source;
//! 2. parse the options (400 on a bad token);
//! 3. parse the source against the configured base (400/403) and apply the source policy, so
//!    a rendition of a source that config no longer allows is not served from cache either;
//! 4. key = hash(source, canonical options, AVIF/WebP acceptance when `f_auto`); memory tier,
//!    then disk tier;
//! 5. on a miss, one flight per key: be admitted by the pool (503 when its queue is full), get
//!    the original (cached, or one coalesced fetch per source: 403/404/413/502/504), render on
//!    the pool (413/415/422), store in both tiers unless the origin said `no-store`/`private`
//!    (with `output.avif_background`, an uncached `f_auto` AVIF is made in the background and
//!    this request gets the non-AVIF variant with a short max-age);
//! 6. build the response: stored ETag and 304 on `If-None-Match`, `Cache-Control` from config,
//!    `Vary: Accept` only when the format was negotiated, `X-Cache`, `Age`, `Surrogate-Key`,
//!    and `Server-Timing` for the work done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::error::AppError;
use super::reply::{self, Body};
use super::{hints, meta, urls, AppState};
use crate::cache::{key, Entry, Key, Role, Tier};
use crate::compat::{self, Dialect};
use crate::config::AutoFormat;
use crate::format::Format;
use crate::metrics::{Lookup, Stage};
use crate::options::{self, FormatChoice, Transform};
use crate::pipeline::{self, Accept, Timings};
use crate::pool::PoolError;
use crate::signature;
use crate::source::{self, Source, SourceError};

/// Content type recorded for cached originals (they are re-sniffed on use, never served).
const ORIGINAL: &str = "application/octet-stream";

/// What a request under `/img/` or `/meta/` answers: the image, or JSON about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Image,
    Meta,
}

impl Mode {
    /// The route prefix, for redirect locations.
    fn prefix(self) -> &'static str {
        match self {
            Mode::Image => "/img",
            Mode::Meta => "/meta",
        }
    }
}

/// The request's path with the canonical options (no signature), for the access log; put in
/// the response's extensions.
#[derive(Debug, Clone)]
pub struct LogPath(pub String);

pub async fn handle(
    state: &Arc<AppState>,
    mode: Mode,
    rest: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, AppError> {
    let mut log_path = None;
    let mut response = answer(state, mode, rest, query, headers, &mut log_path).await?;
    if let Some(path) = log_path {
        response.extensions_mut().insert(LogPath(path));
    }
    Ok(response)
}

async fn answer(
    state: &Arc<AppState>,
    mode: Mode,
    rest: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    log_path: &mut Option<String>,
) -> Result<Response<Body>, AppError> {
    let settings = &state.settings;
    // 1. `rest` is everything after `/img/`.
    let rest = check_signature(&settings.signing_keys, rest, query)?;
    let (segment, raw_source) = rest.split_once('/').ok_or(AppError::MissingSource)?;
    if raw_source.is_empty() {
        return Err(AppError::MissingSource);
    }

    // 2. Some clients percent-encode the commas of the options segment.
    let segment = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    let mut transform = settings.presets.parse(&segment)?;
    // CDN-friendly spellings (not where only presets are allowed: the respelling would be
    // refused; a preset name is kept as it is).
    if !settings.presets.only_presets() {
        let snapped = urls::snap(&transform, &settings.urls);
        let canonical = snapped.to_string();
        let respell = settings.urls.canonical_redirect
            && canonical != segment
            && !options::mentions(&segment, "p");
        if snapped != transform || respell {
            let to = urls::location(
                mode.prefix(),
                &canonical,
                raw_source,
                query,
                &settings.signing_keys,
            );
            return Ok(urls::redirect(
                StatusCode::PERMANENT_REDIRECT,
                &to,
                REDIRECT_CACHE_CONTROL,
            ));
        }
    }
    // Under `only_presets` the URL fixes everything: hints must not add variants.
    let hinted = if settings.client_hints && !settings.presets.only_presets() {
        hints::apply(
            &mut transform,
            &settings.presets.expand(&segment),
            headers,
            settings.save_data_quality,
            &settings.urls,
        )
    } else {
        hints::Consulted::default()
    };
    *log_path = Some(format!("{}/{transform}/{raw_source}", mode.prefix()));
    serve(state, mode, transform, hinted, raw_source, query, headers).await
}

/// A request in another server's URL dialect (`[compat]`): its parser makes the
/// `Transform` and source a native URL would, and from there it is answered as one (width
/// buckets applied in place rather than by redirect; no client hints: the URL says it all).
pub async fn handle_compat(
    state: &Arc<AppState>,
    dialect: Dialect,
    rest: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, AppError> {
    let compat = &state.settings.compat;
    let request = match dialect {
        Dialect::Ipx => compat::ipx::parse(rest, query),
        Dialect::Imgproxy => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            compat::imgproxy::parse(rest, query, &compat.imgproxy, &compat.imgproxy_presets, now)
        }
        Dialect::Thumbor => compat::thumbor::parse(rest, query, compat.thumbor_key.as_deref()),
        Dialect::Nextjs => compat::nextjs::parse(rest, query),
        Dialect::Cloudflare => compat::cloudflare::parse(rest, query),
    }?;
    let transform = urls::snap(&request.transform, &state.settings.urls);
    let log_path = format!("/img/{transform}/{}", request.source);
    let mut response = serve(
        state,
        Mode::Image,
        transform,
        hints::Consulted::default(),
        &request.source,
        request.query.as_deref(),
        headers,
    )
    .await?;
    response.extensions_mut().insert(LogPath(log_path));
    Ok(response)
}

/// Steps 3 to 6 for a parsed request, native or dialect.
async fn serve(
    state: &Arc<AppState>,
    mode: Mode,
    transform: Transform,
    hinted: hints::Consulted,
    raw_source: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, AppError> {
    let settings = &state.settings;
    // 3.
    let source = source::parse(raw_source, query, &settings.source.base)?;
    state.fetcher.authorize(&source)?;

    // 4.
    let negotiated = transform.format == Some(FormatChoice::Auto);
    let accept = Accept {
        webp: reply::accepts(headers, "image/webp"),
        avif: reply::accepts(headers, "image/avif"),
    };
    let vary = Vary {
        accept: negotiated,
        hints: hinted,
    };
    let identity = state.fetcher.identity(&source).await;
    let source_key = key::versioned_source(&source, &identity);
    let variant = key::variant(&source_key, &transform, accept, &settings.output_profile);
    let (variant, image) = match mode {
        Mode::Image => (variant, true),
        Mode::Meta => (key::meta(&variant), false),
    };
    let redirect_auto = image && negotiated && settings.urls.auto_format == AutoFormat::Redirect;
    let job = Job {
        state: state.clone(),
        source,
        source_key,
        variant,
        transform,
        accept,
        mode,
    };
    let hit = state.cache.get(&source_key, &variant).await;
    state.metrics.lookup(match &hit {
        Some((_, Tier::Memory)) => Lookup::MemoryHit,
        Some((_, Tier::Disk)) => Lookup::DiskHit,
        Some((_, Tier::Store)) => Lookup::StoreHit,
        None => Lookup::Miss,
    });
    if let Some((entry, tier)) = hit {
        if redirect_auto {
            return Ok(job
                .redirect_to_format(&entry, raw_source, query, false, vary)
                .await);
        }
        return Ok(respond(
            state,
            headers,
            &entry,
            Status::Hit(tier),
            vary,
            &source_key,
        ));
    }

    // 5.
    let mut cache_control = settings.cache_control.as_str();
    let made = if image && negotiated && accept.avif && settings.avif_background && !redirect_auto {
        // The AVIF is encoded for the next request; this one gets what a client without AVIF
        // would, from the cache when it is there, with a short max-age.
        let stand_in = Accept {
            avif: false,
            ..accept
        };
        let stand_in = Job {
            variant: key::variant(
                &source_key,
                &job.transform,
                stand_in,
                &settings.output_profile,
            ),
            accept: stand_in,
            ..job.clone()
        };
        cache_control = &settings.avif_background_cache_control;
        if let Some((entry, tier)) = state.cache.get(&source_key, &stand_in.variant).await {
            job.clone().background();
            let mut r = respond(state, headers, &entry, Status::Hit(tier), vary, &source_key);
            stand_in_headers(&mut r, cache_control);
            return Ok(r);
        }
        let made = stand_in.run().await;
        // An AVIF that could not be kept (the origin said no-store/private) or of a source
        // that fails is not made in the background: it would be made again on every request.
        if made.as_ref().is_ok_and(|m| m.stored) {
            job.clone().background();
        }
        made
    } else {
        job.clone().run().await
    };
    let made = match made {
        Ok(made) => made,
        Err(AppError::Source(SourceError::NotFound)) if image && settings.fallback.is_some() => {
            return fallback(&job, vary).await;
        }
        Err(e) => return Err(e),
    };
    if redirect_auto {
        return Ok(job
            .redirect_to_format(&made.entry, raw_source, query, made.stored, vary)
            .await);
    }

    // 6.
    let mut response = respond(
        state,
        headers,
        &made.entry,
        made.status(),
        vary,
        &source_key,
    );
    if cache_control != settings.cache_control {
        stand_in_headers(&mut response, cache_control);
    }
    if !made.stored {
        // The origin forbade keeping it: nobody downstream may keep it either.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(NOT_STORED_CACHE_CONTROL),
        );
    }
    Ok(response)
}

/// `Cache-Control` of an answer made from an origin response marked `no-store`/`private`.
const NOT_STORED_CACHE_CONTROL: &str = "private, no-store";

/// `Cache-Control` of the 308s that steer to bucketed or canonical URLs: they depend on the
/// URL and the configuration only, so shared caches may keep them, for a day (not forever:
/// the configuration may change).
const REDIRECT_CACHE_CONTROL: &str = "public, max-age=86400";

/// `error.fallback_image` for an origin 404: the fallback rendered to the requested box (and
/// cached as the fallback's own rendition, never under the missing source's key), answered
/// with status 404, a short max-age and `X-Fallback`. If the fallback fails too, the 404.
async fn fallback(job: &Job, vary: Vary) -> Result<Response<Body>, AppError> {
    let state = &job.state;
    let not_found = AppError::Source(SourceError::NotFound);
    let Some(fallback) = &state.settings.fallback else {
        return Err(not_found);
    };
    let Ok(source) = source::parse(&fallback.source, None, &state.settings.source.base) else {
        return Err(not_found);
    };
    let identity = state.fetcher.identity(&source).await;
    let source_key = key::versioned_source(&source, &identity);
    let variant = key::variant(
        &source_key,
        &job.transform,
        job.accept,
        &state.settings.output_profile,
    );
    let (entry, status) = match state.cache.get(&source_key, &variant).await {
        Some((entry, tier)) => (entry, Status::Hit(tier)),
        None => {
            let made = Job {
                state: state.clone(),
                source,
                source_key,
                variant,
                transform: job.transform.clone(),
                accept: job.accept,
                mode: Mode::Image,
            }
            .run()
            .await
            .map_err(|e| {
                tracing::warn!("error.fallback_image failed: {e}");
                not_found.clone()
            })?;
            let status = made.status();
            (made.entry, status)
        }
    };
    // Preconditions do not apply to what is a 404 (RFC 9110 §13.2.1): never a 304 here.
    let unconditional = HeaderMap::new();
    let mut response = respond(state, &unconditional, &entry, status, vary, &job.source_key);
    *response.status_mut() = StatusCode::NOT_FOUND;
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&fallback.cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.remove(header::AGE);
    h.insert("x-fallback", HeaderValue::from_static("origin-404"));
    Ok(response)
}

/// Mark a stand-in answer (`output.avif_background`): short-lived, and saying so.
fn stand_in_headers(response: &mut Response<Body>, cache_control: &str) {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    // A short max-age counts from now: the entry's age would make it stale on arrival.
    h.remove(header::AGE);
    h.insert("x-avif", HeaderValue::from_static("pending"));
}

/// Verify and strip the `s_<SIG>` segment. The signed message is exactly the raw path after
/// that segment plus `?query`, as received. Without keys a signature segment is ignored, so
/// signed URLs keep working when signing is turned off.
fn check_signature<'a>(
    keys: &[String],
    rest: &'a str,
    query: Option<&str>,
) -> Result<&'a str, AppError> {
    let split = rest
        .split_once('/')
        .filter(|(first, _)| first.starts_with(signature::PREFIX));
    if keys.is_empty() {
        return Ok(split.map_or(rest, |(_, after)| after));
    }
    let (first, after) = split.ok_or(AppError::Signature("this URL must be signed"))?;
    let sig = &first[signature::PREFIX.len()..];
    let message = match query {
        Some(q) => format!("/{after}?{q}"),
        None => format!("/{after}"),
    };
    if signature::verify(keys, sig, &message) {
        Ok(after)
    } else {
        Err(AppError::Signature("wrong signature"))
    }
}

/// A finished rendition, shared by every request that waited for it.
#[derive(Clone)]
pub struct Made {
    entry: Arc<Entry>,
    timings: Stages,
    /// Stored in the cache (the origin allowed it).
    stored: bool,
    /// Read from the shared store, not made here.
    shared: bool,
}

impl Made {
    fn status(&self) -> Status {
        if self.shared {
            Status::Hit(Tier::Store)
        } else {
            Status::Miss(self.timings)
        }
    }
}

/// An original, from the cache or the origin.
#[derive(Clone)]
pub struct Original {
    bytes: Bytes,
    storable: bool,
    fetch: Duration,
    /// When the bytes were fetched (Unix seconds): a rendition made from them is as old as
    /// they are, so it expires with them (`cache.ttl_s`) and its `Age` counts from then.
    created: u64,
}

#[derive(Clone, Copy, Default)]
struct Stages {
    fetch: Duration,
    pipeline: Timings,
}

#[derive(Clone)]
struct Job {
    state: Arc<AppState>,
    source: Source,
    source_key: Key,
    variant: Key,
    transform: Transform,
    accept: Accept,
    mode: Mode,
}

impl Job {
    /// One flight per variant: requests for the same key in flight share this one's result.
    /// A deterministic failure of this variant or its source seen within
    /// `cache.negative_ttl_s` is answered again without any work.
    async fn run(self) -> Result<Made, AppError> {
        let state = self.state.clone();
        let negative = !state.settings.negative_ttl.is_zero();
        if negative {
            for key in [&self.variant, &self.source_key] {
                if let Some(e) = state.failures.get(key).await {
                    return Err(e);
                }
            }
        }
        let variant = self.variant;
        let generation = state.cache.generation(&self.source_key);
        let flight = key::in_generation(&variant, generation);
        let (made, role) = state.variants.run(flight, self.make(generation)).await;
        if role == Role::Follower {
            state.metrics.coalesced();
        }
        let made = made.ok_or(AppError::Pool(PoolError::Panicked))?;
        if let Err(e) = &made {
            if negative && e.is_deterministic() && role == Role::Leader {
                state.failures.insert(variant, e.clone()).await;
            }
        }
        made
    }

    /// Run this job on its own task; its result goes to the cache only. Identical jobs in
    /// flight share one render (the variant flight), and a remembered failure ends it at once.
    fn background(self) {
        tokio::spawn(async move {
            let variant = self.variant;
            if let Err(e) = self.run().await {
                tracing::debug!(variant = %variant.hex(), "background render failed: {e}");
            }
        });
    }

    /// `output.auto_format = "redirect"`: answer 302 to this URL with the format `entry` was
    /// made in spelled out, and store `entry` under that URL's key too so the redirected
    /// request is a hit. Private to the client: the answer depends on its `Accept`.
    async fn redirect_to_format(
        &self,
        entry: &Arc<Entry>,
        raw_source: &str,
        query: Option<&str>,
        store: bool,
        vary: Vary,
    ) -> Response<Body> {
        let settings = &self.state.settings;
        let format = Format::from_mime(&entry.content_type);
        let mut explicit = self.transform.clone();
        explicit.format = format.map(FormatChoice::Fixed);
        if store && format.is_some() {
            let variant = key::variant(
                &self.source_key,
                &explicit,
                self.accept,
                &settings.output_profile,
            );
            self.state
                .cache
                .put(
                    &self.source_key,
                    &variant,
                    entry.clone(),
                    self.state.cache.generation(&self.source_key),
                )
                .await;
        }
        let to = urls::location(
            Mode::Image.prefix(),
            &explicit.to_string(),
            raw_source,
            query,
            &settings.signing_keys,
        );
        let mut r = urls::redirect(StatusCode::FOUND, &to, "private, max-age=86400");
        if let Some(v) = vary.header() {
            r.headers_mut().insert(header::VARY, v);
        }
        r
    }

    /// Make the rendition; it is stored only if its source has not been purged since
    /// `generation`.
    async fn make(self, generation: u64) -> Result<Made, AppError> {
        // Another instance may have made it: the shared store, within its read budget, inside
        // this flight (so concurrent requests here make one store read).
        if let Some(entry) = self
            .state
            .cache
            .get_shared(&self.source_key, &self.variant)
            .await
        {
            self.state.metrics.lookup(Lookup::StoreHit);
            return Ok(Made {
                entry,
                timings: Stages::default(),
                stored: true,
                shared: true,
            });
        }
        // The original first, outside render admission: fetches have bounds of their own
        // (`source.max_concurrent_fetches`, `max_per_host`), so a slow origin holds a fetch
        // place, never a render place, and local files and hits never wait for it.
        let original = self.original(generation).await?;
        let admission = self.state.pool.admit().await?;
        let settings = &self.state.settings;
        let limits = settings.limits;
        let default_quality = settings.default_quality;
        let codecs = settings.codecs;
        let job_timeout = settings.job_timeout;
        let accept = self.accept;
        let transform = Arc::new(self.transform);
        let bytes = original.bytes.clone();
        // The estimate reads the header (and for PNG inflates its profile, bounded): input-
        // dependent work, so off the reactor.
        let peak = {
            let (bytes, transform) = (bytes.clone(), transform.clone());
            tokio::task::spawn_blocking(move || {
                pipeline::peak_memory(
                    &bytes,
                    &pipeline::Request {
                        transform: &transform,
                        accept,
                        default_quality,
                        codecs,
                    },
                    &limits,
                )
            })
            .await
            .map_err(|_| AppError::Pool(PoolError::Panicked))?
        };
        let mode = self.mode;
        let (body, content_type, timings, etag) = admission
            .run(peak, move || {
                let request = pipeline::Request {
                    transform: &transform,
                    accept,
                    default_quality,
                    codecs,
                };
                // The job's clock starts on its worker, not in the queue.
                let limits = pipeline::Limits {
                    deadline: Some(Instant::now() + job_timeout),
                    ..limits
                };
                let made = match mode {
                    Mode::Image => pipeline::render(&bytes, &request, &limits)
                        .map(|r| (r.bytes, r.format.mime(), r.timings)),
                    Mode::Meta => pipeline::render_with_summary(&bytes, &request, &limits)
                        .map(|(r, s)| (meta::json(&r, &s), meta::CONTENT_TYPE, r.timings)),
                };
                // Hashing a large body is work too: here, not on the reactor.
                made.map(|(body, content_type, timings)| {
                    let etag = reply::etag(&body);
                    (body, content_type, timings, etag)
                })
            })
            .await??;
        let metrics = &self.state.metrics;
        metrics.stage(Stage::Decode, timings.decode);
        metrics.stage(Stage::Resize, timings.resize);
        metrics.stage(Stage::Encode, timings.encode);
        let body = Bytes::from(body);
        let mut entry = Entry::new(body, content_type, etag.to_str().unwrap_or(""));
        entry.created = original.created.min(entry.created);
        let entry = Arc::new(entry);
        if original.storable {
            self.state
                .cache
                .put(&self.source_key, &self.variant, entry.clone(), generation)
                .await;
        }
        Ok(Made {
            entry,
            timings: Stages {
                fetch: original.fetch,
                pipeline: timings,
            },
            stored: original.storable,
            shared: false,
        })
    }

    /// The source bytes: the cached original, or one fetch shared by every variant in flight.
    async fn original(&self, generation: u64) -> Result<Original, AppError> {
        let state = &self.state;
        let keep = state.settings.cache.keep_sources;
        if keep {
            let cached = match state.cache.get_original(&self.source_key).await {
                Some((entry, _)) => Some(entry),
                None => state.cache.get_shared_original(&self.source_key).await,
            };
            if let Some(entry) = cached {
                return Ok(Original {
                    bytes: entry.body.clone(),
                    storable: true,
                    fetch: Duration::ZERO,
                    created: entry.created,
                });
            }
        }
        let (st, source, source_key) = (state.clone(), self.source.clone(), self.source_key);
        let fetch = async move {
            let started = Instant::now();
            // The data is as of the fetch's start: a purge after that point must win over it
            // (the shared store drops and refuses entries made from data older than a purge).
            let created = crate::cache::now_secs();
            let fetched = match st.fetcher.fetch(&source).await {
                Ok(fetched) => fetched,
                Err(e) => {
                    let e = AppError::Source(e);
                    st.metrics.origin_error(e.code());
                    // A missing source fails every variant of it alike.
                    if e.is_deterministic() && !st.settings.negative_ttl.is_zero() {
                        st.failures.insert(source_key, e.clone()).await;
                    }
                    return Err(e);
                }
            };
            st.metrics.stage(Stage::Fetch, started.elapsed());
            // Only what sniffs as an image we read is kept: a 415 HTML page or zip is not.
            if keep && fetched.storable && pipeline::sniff(&fetched.bytes).is_some() {
                let mut entry = Entry::new(fetched.bytes.clone(), ORIGINAL, "");
                entry.created = created;
                let entry = Arc::new(entry);
                st.cache.put_original(&source_key, entry, generation).await;
            }
            Ok(Original {
                bytes: fetched.bytes,
                storable: fetched.storable,
                fetch: started.elapsed(),
                created,
            })
        };
        let flight = key::in_generation(&self.source_key, generation);
        let (original, role) = state.sources.run(flight, fetch).await;
        if role == Role::Follower {
            state.metrics.coalesced();
        }
        original.ok_or(AppError::Pool(PoolError::Panicked))?
    }
}

/// The request headers a response depends on.
#[derive(Clone, Copy)]
struct Vary {
    /// `f_auto`: the format came from `Accept`.
    accept: bool,
    hints: hints::Consulted,
}

impl Vary {
    fn header(self) -> Option<HeaderValue> {
        let hints = self.hints.vary();
        let value = match (self.accept, hints.is_empty()) {
            (false, true) => return None,
            (true, true) => "Accept".to_owned(),
            (false, false) => hints,
            (true, false) => format!("Accept, {hints}"),
        };
        HeaderValue::from_str(&value).ok()
    }
}

enum Status {
    Hit(Tier),
    Miss(Stages),
}

fn respond(
    state: &AppState,
    request: &HeaderMap,
    entry: &Entry,
    status: Status,
    vary: Vary,
    source_key: &Key,
) -> Response<Body> {
    let etag = HeaderValue::from_str(&entry.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let fresh = reply::not_modified(request, &etag);
    let mut response = if fresh {
        let mut r = Response::new(Body::default());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(entry.body.clone()))
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    if let Ok(v) = HeaderValue::from_str(&state.settings.cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Some(v) = vary.header() {
        h.insert(header::VARY, v);
    }
    if state.settings.client_hints {
        h.insert("accept-ch", HeaderValue::from_static(hints::ACCEPT_CH));
    }
    // The source hash lets a CDN purge every variant of one source (Fastly, Cloudflare).
    if let Ok(tag) = HeaderValue::from_str(&source_key.hex()) {
        h.insert("surrogate-key", tag.clone());
        h.insert("cache-tag", tag);
    }
    match status {
        Status::Hit(tier) => {
            h.insert(
                "x-cache",
                HeaderValue::from_static(match tier {
                    Tier::Memory => "HIT memory",
                    Tier::Disk => "HIT disk",
                    Tier::Store => "HIT store",
                }),
            );
            h.insert(header::AGE, entry.age().into());
        }
        Status::Miss(stages) => {
            h.insert("x-cache", HeaderValue::from_static("MISS"));
            let t = stages.pipeline;
            let timing = format!(
                "fetch;dur={:.1}, decode;dur={:.1}, resize;dur={:.1}, encode;dur={:.1}",
                ms(stages.fetch),
                ms(t.decode),
                ms(t.resize),
                ms(t.encode)
            );
            if let Ok(v) = HeaderValue::from_str(&timing) {
                h.insert("server-timing", v);
            }
        }
    }
    if !fresh {
        if let Ok(v) = HeaderValue::from_str(&entry.content_type) {
            h.insert(header::CONTENT_TYPE, v);
        }
        h.insert(header::CONTENT_LENGTH, entry.body.len().into());
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
    response
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
