//! `Fetcher` internals: building the one origin client, the policy gate, and the remote fetch
//! loop (manual redirects, status mapping, capped streaming body) under one deadline.
//!
//! It deliberately does not forward any client header, decompress, retry, cache, or look at the
//! origin's `Content-Type`; format sniffing belongs to the pipeline. The only headers added are
//! the operator's `[[source.origins]]` ones, decided per hop. Local reads are in `local.rs`,
//! bucket reads in `objects.rs` (under the same deadline and gates).

use std::error::Error as StdError;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH, LOCATION};
use reqwest::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use super::local;
use super::objects::Objects;
use super::policy::{self, address_allowed, Policy};
use super::resolve::{BlockedAddress, PolicyResolver};
use super::{Base, Fetched, Fetcher, Settings, Source, SourceError};

/// Sent on every origin request; no client header is ever forwarded.
const USER_AGENT: &str = concat!("imgcdn/", env!("CARGO_PKG_VERSION"));
const ACCEPT_VALUE: &str = "image/*,*/*;q=0.8";
/// Upper bound on the buffer reserved up front from a (checked) `Content-Length`.
const MAX_PREALLOC: u64 = 1 << 20;

pub(super) fn new(settings: Settings) -> Result<Fetcher, SourceError> {
    let resolver = PolicyResolver::new(&settings.allow_networks);
    with_resolver(settings, resolver)
}

/// [`new`] with a given resolver (tests script DNS answers through it).
pub(super) fn with_resolver(
    settings: Settings,
    resolver: PolicyResolver,
) -> Result<Fetcher, SourceError> {
    let policy = Policy::new(&settings).map_err(|entry| {
        SourceError::BadSource(format!("host list entry {entry:?} is not a host pattern"))
    })?;

    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_VALUE));
    // No decompression features are compiled in; say so, so origins send the bytes as stored.
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));

    let client = reqwest::Client::builder()
        // Redirects are followed by `remote` so that every hop passes the policy.
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve names itself and bypass the filtering resolver.
        .no_proxy()
        .dns_resolver(resolver)
        .user_agent(USER_AGENT)
        .default_headers(headers)
        .referer(false)
        .connect_timeout(settings.connect_timeout.min(settings.timeout))
        .build()
        .map_err(|_| SourceError::Origin("cannot build the HTTP client".to_owned()))?;

    let gates = Gates::new(settings.max_concurrent_fetches, settings.max_per_host);
    let objects = Objects::new(&settings);
    #[cfg(target_os = "linux")]
    let watch = match &settings.base {
        super::Base::Dir(dir) if settings.watch_folder => super::watch::Watch::start(dir),
        _ => None,
    };
    Ok(Fetcher {
        #[cfg(target_os = "linux")]
        watch,
        settings: Arc::new(settings),
        client,
        policy: Arc::new(policy),
        gates: Arc::new(gates),
        objects: Arc::new(objects),
    })
}

/// Bounds on remote fetches in flight: one over all hosts, and one per host. Hosts share
/// [`HOST_STRIPES`] semaphores by hash, so the memory is fixed whatever the number of hosts
/// (two hosts in one stripe share a cap: stricter, never looser).
pub(super) struct Gates {
    all: Arc<Semaphore>,
    hosts: Vec<Arc<Semaphore>>,
    hasher: std::hash::RandomState,
}

const HOST_STRIPES: usize = 256;

impl Gates {
    fn new(all: usize, per_host: usize) -> Self {
        let cap = |n: usize| n.clamp(1, Semaphore::MAX_PERMITS);
        Gates {
            all: Arc::new(Semaphore::new(cap(all))),
            hosts: (0..HOST_STRIPES)
                .map(|_| Arc::new(Semaphore::new(cap(per_host))))
                .collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Wait for a place for a fetch from `host` (the caller bounds the wait).
    async fn enter(&self, host: &str) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        use std::hash::BuildHasher;
        let stripe = (self.hasher.hash_one(host) as usize) % HOST_STRIPES;
        let host = self.hosts.get(stripe)?.clone().acquire_owned().await.ok()?;
        let all = self.all.clone().acquire_owned().await.ok()?;
        Some((host, all))
    }
}

pub(super) fn authorize(fetcher: &Fetcher, source: &Source) -> Result<(), SourceError> {
    match source {
        Source::Remote(url) => policy::check_url(url, &fetcher.policy),
        Source::Bucket(object) => fetcher.objects.authorize(object),
        Source::Local(path) => match &fetcher.settings.base {
            Base::Dir(_) => local::check_shape(path),
            Base::Url(_) => Err(SourceError::Forbidden(
                "no local folder configured".to_owned(),
            )),
        },
    }
}

pub(super) async fn fetch(fetcher: &Fetcher, source: &Source) -> Result<Fetched, SourceError> {
    authorize(fetcher, source)?;
    let settings = &fetcher.settings;
    let work = async {
        match (source, &settings.base) {
            (Source::Remote(url), _) => {
                // Waiting for a place counts against the deadline: a slow host makes its own
                // requests wait (then 504), nobody else's.
                let _place = fetcher
                    .gates
                    .enter(url.host_str().unwrap_or(""))
                    .await
                    .ok_or_else(|| origin("fetch gates closed"))?;
                remote(fetcher, url).await
            }
            (Source::Bucket(object), _) => {
                // Buckets share the gates with hosts: `s3://photos` counts as one host.
                let _place = fetcher
                    .gates
                    .enter(&object.bucket.to_string())
                    .await
                    .ok_or_else(|| origin("fetch gates closed"))?;
                let bytes = fetcher.objects.read(object, settings.max_bytes).await?;
                Ok(Fetched {
                    bytes,
                    storable: true,
                })
            }
            (Source::Local(path), Base::Dir(dir)) => local::read(dir, path, settings.max_bytes)
                .await
                .map(|bytes| Fetched {
                    bytes,
                    storable: true,
                }),
            (Source::Local(_), Base::Url(_)) => Err(SourceError::Forbidden(
                "no local folder configured".to_owned(),
            )),
        }
    };
    tokio::time::timeout(settings.timeout, work)
        .await
        .unwrap_or(Err(SourceError::Timeout))
}

/// The redirect loop. The caller has checked `first` and holds the deadline.
async fn remote(fetcher: &Fetcher, first: &Url) -> Result<Fetched, SourceError> {
    let settings = &fetcher.settings;
    let mut url = first.clone();
    let mut redirects = 0u32;
    // A redirect that says no-store/private (an expiring signed URL) taints what it leads to.
    let mut hops_storable = true;
    loop {
        let mut request = fetcher.client.get(url.clone());
        // Decided per hop: a redirect to another host or port never carries them.
        if let Some(entry) = settings.origins.iter().find(|o| o.matches(&url)) {
            request = request.headers(entry.headers().clone());
        }
        let response = request.send().await.map_err(send_error)?;
        // Defence in depth: the peer actually connected to must pass the policy too.
        if let Some(peer) = response.remote_addr() {
            let (host, port) = (url.host(), url.port_or_known_default());
            if !address_allowed(peer.ip(), &settings.allow_networks, host.as_ref(), port) {
                return Err(SourceError::Forbidden("address not allowed".to_owned()));
            }
        }
        match response.status() {
            StatusCode::OK => {
                let storable = hops_storable && storable(response.headers());
                let bytes = body(response, settings.max_bytes).await?;
                return Ok(Fetched { bytes, storable });
            }
            StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT => {
                if redirects >= settings.max_redirects {
                    return Err(origin("too many redirects"));
                }
                redirects += 1;
                hops_storable &= storable(response.headers());
                url = next_hop(&url, response.headers().get(LOCATION))?;
                policy::check_url(&url, &fetcher.policy)?;
            }
            StatusCode::NOT_FOUND | StatusCode::GONE => return Err(SourceError::NotFound),
            status => {
                return Err(SourceError::Origin(format!(
                    "origin answered {}",
                    status.as_u16()
                )))
            }
        }
    }
}

/// False when the origin's `Cache-Control` says `no-store` or `private` (RFC 9111 §5.2.2.5,
/// §5.2.2.7): we are a shared cache, so we must not keep such a response or anything derived
/// from it.
fn storable(headers: &HeaderMap) -> bool {
    !headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.split('=').next().unwrap_or("").trim())
        .any(|d| d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("private"))
}

/// Resolve a `Location` against the current URL (RFC 9110 §10.2.2 allows relative references).
fn next_hop(current: &Url, location: Option<&HeaderValue>) -> Result<Url, SourceError> {
    let location = location.ok_or_else(|| origin("redirect without a location"))?;
    let location = location
        .to_str()
        .map_err(|_| origin("invalid redirect location"))?;
    let mut next = current
        .join(location)
        .map_err(|_| origin("invalid redirect location"))?;
    next.set_fragment(None);
    Ok(next)
}

/// Read a 200 body, refusing more than `limit` bytes and bodies shorter than announced.
async fn body(mut response: reqwest::Response, limit: u64) -> Result<Bytes, SourceError> {
    let too_large = SourceError::TooLarge { limit };
    let announced = match response.headers().get(CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| origin("invalid content length"))?,
        ),
        None => None,
    };
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large);
    }
    let reserve = announced.unwrap_or(0).min(MAX_PREALLOC);
    let mut buf = BytesMut::with_capacity(usize::try_from(reserve).unwrap_or(0));
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(SourceError::Timeout),
            Err(_) => return Err(origin("broken response body")),
        };
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large);
        }
        buf.extend_from_slice(&chunk);
    }
    if announced.is_some_and(|n| n != buf.len() as u64) {
        return Err(origin("incomplete response body"));
    }
    Ok(buf.freeze())
}

/// Map a client error: a blocked address anywhere in the cause chain is `Forbidden`; everything
/// else is a short generic text that carries no address or resolver output.
fn send_error(err: reqwest::Error) -> SourceError {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(&err);
    while let Some(e) = cause {
        if e.is::<BlockedAddress>() {
            return SourceError::Forbidden("address not allowed".to_owned());
        }
        cause = e.source();
    }
    if err.is_timeout() {
        SourceError::Timeout
    } else {
        origin("origin unreachable")
    }
}

fn origin(why: &str) -> SourceError {
    SourceError::Origin(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                reqwest::header::CACHE_CONTROL,
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn storable_honours_no_store_and_private() {
        assert!(storable(&cc(&[])));
        assert!(storable(&cc(&["public, max-age=60"])));
        assert!(!storable(&cc(&["no-store"])));
        assert!(!storable(&cc(&["max-age=0, No-Store"])));
        assert!(!storable(&cc(&["public", "private=\"set-cookie\""])));
        assert!(storable(&cc(&["no-cache"])));
    }
}
