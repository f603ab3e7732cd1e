//! Where source bytes come from: the source part of an `/img/` URL parsed into a [`Source`], and
//! a [`Fetcher`] that reads it from a local folder, through an SSRF-safe HTTP client, or from an
//! allowed object-store bucket (`s3://`, `gs://`, `az://`).
//!
//! The fetcher knows nothing of options or pixels; it returns raw bytes, capped in size. It does
//! not cache, decode, sniff formats or look at origin headers beyond status, `Location`,
//! `Content-Length` and `Cache-Control`.
//!
//! Layout: `parse` (URL grammar, pure), `bucket` (bucket-source grammar, pure), `policy`
//! (per-URL checks, pure), `ip` (address classifier, pure), `resolve` (the filtering DNS
//! resolver), `origins` (configured per-origin request headers), `fetch` (the client and remote
//! reads), `objects` (bucket clients and object reads), `local` (folder reads).
//!
//! **Invariant:** the origin client connects only to addresses `policy::address_allowed` admits: names
//! through the filtering resolver, IP literals through `policy::check_url`, on the first URL and
//! on every redirect hop; system proxies are off, so nothing resolves elsewhere.
//!
//! Bucket reads are the one exception: they go to the operator's configured endpoint (or the
//! provider's), which is not user input and so not subject to the address policy. A user can
//! only name a bucket on `source.buckets`, never an endpoint.

mod bucket;
mod fetch;
pub mod ip;
mod local;
mod objects;
#[cfg(test)]
mod origin_tests;
mod origins;
mod parse;
mod policy;
mod resolve;
#[cfg(target_os = "linux")]
mod watch;

pub use self::bucket::{BucketName, BucketObject, BucketScheme};
pub use self::origins::OriginHeaders;
pub use self::policy::AllowedNetwork;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

/// Where relative sources are resolved (`source.base`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// A folder; nothing outside it may be read (`..` and symlinks out included).
    Dir(PathBuf),
    /// An http(s) base URL; relative sources are joined onto it.
    Url(Url),
}

/// A resolved source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// An absolute http(s) URL (query included).
    Remote(Url),
    /// A path relative to the `Base::Dir` folder, normalised, with no `..` components.
    Local(PathBuf),
    /// An object in a bucket (`s3://bucket/key`, `gs://…`, `az://…`).
    Bucket(BucketObject),
}

/// The source policy and client settings (`[source]` in config, validated).
#[derive(Debug, Clone)]
pub struct Settings {
    pub base: Base,
    /// Empty = any public host; entries `example.com` or `*.example.com`.
    pub allow_hosts: Vec<String>,
    /// Hosts refused even when `allow_hosts` admits them (same patterns).
    pub deny_hosts: Vec<String>,
    /// Plain `http://` origins are allowed (https always is).
    pub allow_http: bool,
    /// Networks an origin may resolve to although they are private/loopback/etc., each
    /// optionally scoped to a host pattern and a port.
    pub allow_networks: Vec<AllowedNetwork>,
    /// Ports remote URLs may use; empty = any.
    pub allow_ports: Vec<u16>,
    pub max_bytes: u64,
    /// Total deadline for one fetch, redirects included.
    pub timeout: Duration,
    pub max_redirects: u32,
    /// Deadline for connecting (TCP + TLS) to one origin.
    pub connect_timeout: Duration,
    /// Remote fetches in flight at once, and to one host.
    pub max_concurrent_fetches: usize,
    pub max_per_host: usize,
    /// Headers sent to particular origins (credentials of private origins); secrets.
    pub origins: Vec<OriginHeaders>,
    /// Buckets a source may name; empty = bucket sources are refused.
    pub buckets: Vec<BucketName>,
    /// Where and how bucket clients connect (`source.bucket_*`).
    pub bucket_endpoint: crate::bucket::Endpoint,
    /// Watch a `Base::Dir` folder (inotify, Linux) so that identities need no `stat` per
    /// request (`source.watch_folder`).
    pub watch_folder: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source part of the URL is malformed. HTTP 400.
    #[error("bad source: {0}")]
    BadSource(String),
    /// Refused by policy: blocked address, host not allowed, path outside the folder. HTTP 403.
    #[error("source refused: {0}")]
    Forbidden(String),
    /// Origin answered 404/410, or the local file does not exist. HTTP 404.
    #[error("source not found")]
    NotFound,
    /// Body over `max_bytes`. HTTP 413.
    #[error("source is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// Origin error, unreachable, too many redirects, broken body. HTTP 502.
    #[error("origin error: {0}")]
    Origin(String),
    /// The fetch deadline passed. HTTP 504.
    #[error("origin timed out")]
    Timeout,
}

/// Parse the source part of the path (everything after the options segment, as it appeared in
/// the request, possibly percent-encoded) plus the request's query string.
///
/// Accepted spellings: `https://a.com/x.jpg`, `https:/a.com/x.jpg` (slashes collapsed by a
/// proxy), `https%3A%2F%2Fa.com%2Fx.jpg`, `b64/<base64url of the URL>` (the request query is
/// ignored for this form), the same for `s3://bucket/key` (`gs://`, `az://`), and paths
/// relative to `base`. See `source/parse.rs` for the rules.
/// Pure: the host allow-list and address policy are applied by [`Fetcher`].
pub fn parse(rest: &str, query: Option<&str>, base: &Base) -> Result<Source, SourceError> {
    parse::parse(rest, query, base)
}

/// The canonical text of a source, for logs and cache keys: the URL, the relative path with
/// `/` separators, or `s3://bucket/key[?versionId=…]`.
impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Remote(url) => f.write_str(url.as_str()),
            Source::Bucket(object) => std::fmt::Display::fmt(object, f),
            Source::Local(path) => {
                let mut first = true;
                for component in path.components() {
                    if !first {
                        f.write_str("/")?;
                    }
                    first = false;
                    write!(f, "{}", component.as_os_str().to_string_lossy())?;
                }
                Ok(())
            }
        }
    }
}

/// True when `entry` is a valid `allow_hosts`/`deny_hosts` entry (`example.com` or
/// `*.example.com`); config validation uses the same parser the fetcher does.
pub fn is_host_pattern(entry: &str) -> bool {
    policy::HostPattern::parse(entry).is_some()
}

/// Reads sources; cheap to clone (shares one connection pool).
#[derive(Clone)]
pub struct Fetcher {
    settings: std::sync::Arc<Settings>,
    /// The one origin client: no redirects, no proxy, filtering resolver, no decompression.
    client: reqwest::Client,
    /// The host lists and address policy, parsed once.
    policy: std::sync::Arc<policy::Policy>,
    /// Bounds on remote fetches in flight (bucket reads included).
    gates: std::sync::Arc<fetch::Gates>,
    /// The bucket allow-list and one lazily built client per bucket.
    objects: std::sync::Arc<objects::Objects>,
    /// Remembered identities of local files (`Base::Dir` with `watch_folder`).
    #[cfg(target_os = "linux")]
    watch: Option<std::sync::Arc<watch::Watch>>,
}

impl Fetcher {
    /// Build the fetcher and its HTTP client. Fails with `BadSource` naming the entry when an
    /// `allow_hosts` entry is not a host name or `*.` + host name, and with `Origin` when the
    /// TLS client cannot be built.
    pub fn new(settings: Settings) -> Result<Self, SourceError> {
        fetch::new(settings)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Apply the source policy without any I/O: for a remote source scheme, userinfo, host
    /// allow-list and literal-IP address check; for a local source the path shape and a folder
    /// base; for a bucket source the `buckets` allow-list. `fetch` runs this itself (and again on every redirect hop); the server may call it
    /// early, e.g. before serving a cached rendition.
    pub fn authorize(&self, source: &Source) -> Result<(), SourceError> {
        fetch::authorize(self, source)
    }

    /// What makes the bytes of `source` what they are, beyond its name: for a local file the
    /// configured folder, its size, modification time and inode; empty for remote and bucket
    /// sources and for files that cannot be read (the fetch reports those).
    ///
    /// A local file's identity is remembered while the folder's watch sees no change in it
    /// (`source/watch.rs`); otherwise it costs one `stat` on the blocking pool.
    pub async fn identity(&self, source: &Source) -> String {
        let (Source::Local(rel), Base::Dir(dir)) = (source, &self.settings.base) else {
            return String::new();
        };
        if local::check_shape(rel).is_err() {
            return String::new();
        }
        #[cfg(target_os = "linux")]
        let generation = match self.watch.as_ref().map(|w| w.lookup(rel)) {
            Some(watch::Lookup::Known(identity)) => return identity,
            Some(watch::Lookup::Unknown(generation)) => Some(generation),
            Some(watch::Lookup::Off) | None => None,
        };
        let identity = local::identity(dir, rel).await;
        #[cfg(target_os = "linux")]
        if let (Some(watch), Some(generation)) = (&self.watch, generation) {
            if !identity.is_empty() {
                watch.remember(rel, generation, &identity);
            }
        }
        identity
    }

    /// Fetch the source bytes, enforcing the whole policy, under one deadline
    /// (`settings.timeout`) covering every redirect hop, headers and body.
    pub async fn fetch(&self, source: &Source) -> Result<Fetched, SourceError> {
        fetch::fetch(self, source).await
    }
}

/// Fetched source bytes and whether the origin lets us keep them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Bytes,
    /// False when the origin answered `Cache-Control: no-store` or `private`: the bytes may be
    /// used for this response but neither they nor anything made from them may be stored.
    pub storable: bool,
}
