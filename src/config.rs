//! Configuration: built-in defaults < `config/default.toml` (or `--config FILE`) < environment
//! `IMGCDN_<SECTION>__<KEY>` < CLI flags, merged by figment into [`Config`] and validated once
//! into [`Settings`].
//!
//! [`Config`] is the raw, serialisable shape (every key, with its default); unknown keys and bad
//! values stop start-up with a message naming the key. [`Settings`] holds the parsed forms the
//! rest of the program uses (CIDRs, durations, the source base). Nothing here does network I/O.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format as _, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use crate::cache;
use crate::format::{Format, FormatSet};
use crate::pipeline::Limits;
use crate::pipeline::{AvifSettings, Codecs, JpegDecoder};
use crate::presets::Presets;

const MIB: u64 = 1024 * 1024;
use crate::source::{self, Base};

/// The file read when `--config` is not given, if it exists (relative to the working directory).
pub const DEFAULT_FILE: &str = "config/default.toml";
/// Prefix of environment overrides; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "IMGCDN_";

/// Every configuration key, with its built-in default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub source: SourceConfig,
    pub limits: LimitsConfig,
    pub output: OutputConfig,
    pub pipeline: PipelineConfig,
    pub cache: CacheConfig,
    pub store: StoreConfig,
    pub admin: AdminConfig,
    pub security: SecurityConfig,
    pub compat: crate::compat::CompatConfig,
    pub error: ErrorConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    /// Named option sets: `thumb = "w_150,h_150,c_fill"` makes `p_thumb` available.
    pub presets: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Longest accepted request target (path + query) in bytes; longer answers 414.
    pub max_url_bytes: usize,
    /// Largest request head (request line + headers) in bytes, at least 8192; larger answers 431.
    pub max_header_bytes: usize,
    /// A client must send its whole request head within this many milliseconds (counted from
    /// the connection's start for its first request); a connection that sends nothing is
    /// closed then.
    pub header_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed (HTTP/1.1 keep-alive,
    /// idle HTTP/2).
    pub idle_timeout_ms: u64,
    /// A client that takes none of the bytes it is sent for this long is dropped.
    pub write_timeout_ms: u64,
    /// Most client connections open at once; more wait in the accept queue.
    pub max_connections: usize,
    /// After SIGTERM/SIGINT, requests in flight get this long to finish before exit.
    pub shutdown_grace_ms: u64,
    /// PEM certificate chain; with `tls_key`, the server speaks TLS (ALPN h2, http/1.1).
    pub tls_cert: String,
    /// PEM private key for `tls_cert`.
    pub tls_key: String,
    /// Serve the playground page at `/`.
    pub playground: bool,
    /// Let the playground sign URLs (`/playground/sign`): only where the page is private.
    pub playground_sign: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            max_url_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            write_timeout_ms: 30_000,
            max_connections: 4096,
            shutdown_grace_ms: 10_000,
            tls_cert: String::new(),
            tls_key: String::new(),
            playground: true,
            playground_sign: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// Folder or http(s) base URL that relative sources are resolved against.
    pub base: String,
    /// Hosts an absolute source URL may name (`example.com`, `*.example.com`); empty = any.
    pub allow_hosts: Vec<String>,
    /// Hosts refused even when `allow_hosts` admits them (same patterns).
    pub deny_hosts: Vec<String>,
    /// Allow plain `http://` origins (https always is).
    pub allow_http: bool,
    /// CIDRs an origin may resolve to although they are private, loopback or link-local.
    pub allow_networks: Vec<String>,
    /// Ports a remote source URL may use (explicit or the scheme's default); empty = any.
    pub allow_ports: Vec<u16>,
    /// Watch a folder `base` for changes (inotify, Linux) so cache hits need no `stat`.
    pub watch_folder: bool,
    /// Input formats served byte for byte (with their own type) when the URL asks for no
    /// change of size or format: names as in `f_` (`svg`, `heic`, `gif`, `tiff`, ...).
    pub passthrough: Vec<String>,
    /// Largest source body in bytes.
    pub max_bytes: u64,
    /// Deadline for a whole fetch, redirects included, in milliseconds.
    pub timeout_ms: u64,
    /// Most redirects followed for one fetch.
    pub max_redirects: u32,
    /// Deadline for connecting to an origin (TCP + TLS), in milliseconds.
    pub connect_timeout_ms: u64,
    /// Origin fetches in flight at once, over all hosts; more wait (within `timeout_ms`).
    pub max_concurrent_fetches: usize,
    /// Origin fetches in flight at once to one host; more wait (within `timeout_ms`).
    pub max_per_host: usize,
    /// Request headers sent to particular origins (`[[source.origins]]`): secrets.
    pub origins: Vec<OriginConfig>,
    /// Buckets a source may name: `s3://name`, `gs://name`, `az://name` or a bare name (S3);
    /// empty = bucket sources are refused.
    pub buckets: Vec<String>,
    /// S3-compatible server URL for `s3://` sources; empty = AWS.
    pub bucket_endpoint: String,
    /// S3 region; empty = `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub bucket_region: String,
    /// Allow a plain-http `bucket_endpoint`.
    pub bucket_allow_http: bool,
    /// Static S3 credentials; both empty = the standard credentials chain.
    pub bucket_access_key_id: String,
    pub bucket_secret_access_key: String,
}

/// One `[[source.origins]]` entry: headers sent on every request to `host` (and only to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    /// Exact host name or IP literal, optionally `:port`; without a port, the scheme's
    /// default port only.
    pub host: String,
    /// Header name → value, e.g. `Authorization = "Bearer …"`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            base: "./images".into(),
            allow_hosts: Vec::new(),
            deny_hosts: Vec::new(),
            allow_http: true,
            allow_networks: Vec::new(),
            allow_ports: vec![80, 443],
            watch_folder: true,
            passthrough: Vec::new(),
            max_bytes: 25 * 1024 * 1024,
            timeout_ms: 10_000,
            max_redirects: 5,
            connect_timeout_ms: 3_000,
            max_concurrent_fetches: 16,
            max_per_host: 8,
            origins: Vec::new(),
            buckets: Vec::new(),
            bucket_endpoint: String::new(),
            bucket_region: String::new(),
            bucket_allow_http: false,
            bucket_access_key_id: String::new(),
            bucket_secret_access_key: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest source width x height, read from the header before decoding.
    pub max_source_pixels: u64,
    /// Largest output width x height.
    pub max_output_pixels: u64,
    /// Largest buffer one decode may allocate, in bytes.
    pub max_decode_bytes: u64,
    /// Most animation frames a GIF/WebP source may have (counted before decoding); more → 413.
    pub max_frames: u32,
    /// Largest frames x canvas pixels of an animated GIF/WebP source (read before decoding);
    /// more → 413.
    pub max_animation_pixels: u64,
    /// Largest enlargement factor (`up_1`): output size over source size, per axis; more → 413.
    pub max_upscale: u32,
    /// Largest output width x height encoded as AVIF when the URL asks for `f_avif` (AVIF
    /// encoding costs 0.4-1.2 s of CPU per megapixel); more → 413.
    pub max_avif_pixels: u64,
    /// Wall-clock budget of one image job on its worker, in milliseconds: checked between
    /// stages (decode, resize, encode, each animation frame); past it the job stops, frees its
    /// memory claim and answers 503.
    pub job_timeout_ms: u64,
    /// Image worker threads (decode/resize/encode); 0 = number of cores.
    pub workers: usize,
    /// Jobs that may fetch their original ahead of a free worker; unset = as many as
    /// `workers`. Only running and fetched-ahead jobs hold an original in memory.
    pub fetch_ahead: Option<usize>,
    /// Jobs that may wait (holding nothing) to be admitted; beyond that the answer is 503.
    pub queue: usize,
    /// Memory the image jobs running at once may hold together, in MiB, as estimated from
    /// each source's header; a job larger than the whole budget is refused with 413.
    pub memory_budget_mb: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_source_pixels: 50_000_000,
            max_output_pixels: 25_000_000,
            max_decode_bytes: 512 * 1024 * 1024,
            max_frames: 1000,
            max_animation_pixels: 100_000_000,
            max_upscale: 4,
            max_avif_pixels: 2_100_000,
            job_timeout_ms: 10_000,
            workers: 0,
            fetch_ahead: None,
            queue: 64,
            memory_budget_mb: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Quality for lossy output when the URL has no `q_`.
    pub default_quality: u8,
    /// `Cache-Control` of successful image responses.
    pub cache_control: String,
    /// AVIF quality when the URL has no `q_`.
    pub avif_quality: u8,
    /// AVIF speed 1..=10 (10 fastest): libaom cpu-used; rav1e (alpha) one step faster.
    pub avif_speed: u8,
    /// `f_auto` picks AVIF only for outputs up to this many pixels, WebP beyond.
    pub avif_max_pixels: u64,
    /// libwebp's method for still WebP output, 0 (fastest) to 6 (smallest); 4 = libwebp's.
    pub webp_effort: u8,
    /// `f_auto`: answer an uncached AVIF at once with the WebP/JPEG/PNG rendition (short
    /// max-age) and encode the AVIF in the background for the next request.
    pub avif_background: bool,
    /// `Cache-Control` max-age, in seconds, of those stand-in answers.
    pub avif_background_max_age: u64,
    /// Widths a CDN should see: another `w_` is redirected (308) to the next one up.
    pub width_buckets: Vec<u32>,
    /// Qualities a CDN should see: another `q_` is redirected (308) to the next one up.
    pub qualities: Vec<u8>,
    /// Redirect (308) an options segment not spelled canonically to its canonical spelling.
    pub canonical_redirect: bool,
    /// `f_auto`: `vary` answers with `Vary: Accept`; `redirect` answers 302 to the URL with
    /// the chosen explicit format, for CDNs that ignore `Vary`.
    pub auto_format: AutoFormat,
    /// Honour `DPR`/`Sec-CH-DPR`, `Sec-CH-Width`/`Width` and `Save-Data`; send `Accept-CH`.
    pub client_hints: bool,
    /// Quality used instead of the default when the client sends `Save-Data: on`.
    pub save_data_quality: u8,
    /// Keep the source's EXIF `Artist` and `Copyright` in the output (all other metadata is
    /// always stripped).
    pub keep_copyright: bool,
    /// Serve an SVG source sanitised, as SVG, when the URL asks for no change of size or
    /// format (otherwise SVG is always rasterised).
    pub svg_passthrough: bool,
}

/// How `f_auto` tells caches that the answer depends on `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoFormat {
    #[default]
    Vary,
    Redirect,
}

impl Default for OutputConfig {
    fn default() -> Self {
        let avif = AvifSettings::default();
        OutputConfig {
            default_quality: 80,
            cache_control: "public, max-age=31536000, immutable".into(),
            avif_quality: avif.quality,
            avif_speed: avif.speed,
            avif_max_pixels: avif.max_pixels,
            webp_effort: Codecs::default().webp_effort,
            avif_background: false,
            avif_background_max_age: 60,
            width_buckets: Vec::new(),
            qualities: Vec::new(),
            canonical_redirect: false,
            auto_format: AutoFormat::Vary,
            client_hints: false,
            save_data_quality: 50,
            keep_copyright: false,
            svg_passthrough: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// `turbo` (libjpeg-turbo, C) or `rust` (zune-jpeg, memory-safe, slower).
    pub jpeg_decoder: JpegDecoder,
    /// Thumbnails (≤ 1/8) of JPEGs from their DC coefficients only (pure Rust, libjpeg's
    /// 1/8 result); `progressive_dc`, its name before baseline files were covered, still reads.
    #[serde(alias = "progressive_dc")]
    pub dc_only: bool,
    /// Baseline 4:4:4 and grayscale JPEGs shrunk by 4 decoded from each block's four
    /// lowest-frequency coefficients (pure Rust, close to libjpeg's 1/4 result, not equal);
    /// false = libjpeg-turbo's 1/4 decode.
    pub jpeg_quarter: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        let c = Codecs::default();
        PipelineConfig {
            jpeg_decoder: c.jpeg_decoder,
            dc_only: c.dc_only,
            jpeg_quarter: c.jpeg_quarter,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Memory tier size in MiB, for renditions (and originals when the disk tier is off).
    pub memory_mb: u64,
    /// Disk tier directory.
    pub dir: String,
    /// Disk tier cap in MiB; 0 turns the disk tier off.
    pub disk_mb: u64,
    /// Free space the disk tier leaves on its filesystem: the smaller of this many MiB and
    /// `disk_min_free_percent` of the filesystem (0 in either: not watched). Below it writes
    /// are skipped and least-recently-used entries evicted until a quarter more is free.
    pub disk_min_free_mb: u64,
    /// See `disk_min_free_mb`; at most 50.
    pub disk_min_free_percent: u64,
    /// Keep fetched originals (on disk; in memory without a disk tier), so other sizes need no
    /// new origin fetch.
    pub keep_sources: bool,
    /// Keep an original on the use that reaches this count within an hour (1: on its first
    /// fetch). Until then it is held in memory for a minute, within a quarter of `memory_mb`,
    /// so the sizes of a `srcset` asked for together still need one fetch; a one-size source
    /// costs no disk write.
    pub keep_sources_min_uses: u32,
    /// Entries older than this many seconds are fetched and made again.
    pub ttl_s: u64,
    /// Deterministic failures (origin 404/410, 413, 415, 422) are remembered in memory for this
    /// many seconds and answered with the same `max-age`; 0 turns it off. 5xx and timeouts are
    /// never remembered.
    pub negative_ttl_s: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory_mb: 256,
            dir: "./cache".into(),
            disk_mb: 10240,
            disk_min_free_mb: 1024,
            disk_min_free_percent: 5,
            keep_sources: true,
            keep_sources_min_uses: 2,
            ttl_s: 30 * 24 * 3600,
            negative_ttl_s: 30,
        }
    }
}

/// `[store]`: the shared result store on object storage (off while `url` is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `s3://<bucket>/<prefix>`, `gs://<bucket>/<prefix>` or `az://<container>/<prefix>`;
    /// empty turns the store off.
    pub url: String,
    /// S3-compatible server (R2, MinIO, Ceph): `https://…`; empty = AWS.
    pub endpoint: String,
    /// S3 region; empty = `AWS_REGION`, else `us-east-1`.
    pub region: String,
    /// Allow a plain-http endpoint.
    pub allow_http: bool,
    /// Static S3 credentials; empty = the standard provider chain (env, web identity, ECS,
    /// instance role).
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Write with `If-None-Match: *` (first writer wins); false for servers that answer 501.
    pub conditional_put: bool,
    /// Budget of one rendition read, a retry included; slower means a miss (render).
    pub read_timeout_ms: u64,
    /// Budget of one original read (`keep_sources`).
    pub original_read_timeout_ms: u64,
    /// Budget of one upload (in the background, after the response).
    pub write_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Uploads waiting at most (entries and MiB); more are dropped and counted.
    pub write_queue_entries: usize,
    pub write_queue_mb: u64,
    /// Uploads running at once.
    pub write_concurrency: usize,
    /// Also keep fetched originals in the store (one origin fetch per fleet for a srcset).
    pub keep_sources: bool,
    /// Consecutive failures that open the breaker (reads become misses, writes are dropped).
    pub breaker_failures: u32,
    /// Seconds the breaker stays open before one probe; doubles (to 60) while probes fail.
    pub breaker_open_s: u64,
    /// Seconds between reads of the fleet's purge log.
    pub purge_poll_s: f64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: String::new(),
            endpoint: String::new(),
            region: String::new(),
            allow_http: false,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            conditional_put: true,
            read_timeout_ms: 300,
            original_read_timeout_ms: 2000,
            write_timeout_ms: 10000,
            connect_timeout_ms: 1000,
            write_queue_entries: 256,
            write_queue_mb: 64,
            write_concurrency: 8,
            keep_sources: false,
            breaker_failures: 5,
            breaker_open_s: 10,
            purge_poll_s: 10.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token for `/admin/*` (purge); empty turns the admin endpoints off.
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// HMAC keys; when non-empty every /img/ URL must be signed. The first signs, all verify.
    pub signing_keys: Vec<String>,
    /// Refuse every option that is not a preset (`p_<name>`).
    pub only_presets: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// When set, `/metrics` needs `Authorization: Bearer <token>`.
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (one human-readable line per event) or `json` (one JSON object per line).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorConfig {
    /// An image (a path or URL, like a source) served, resized to the requested box, when the
    /// origin answers 404; empty turns it off.
    pub fallback_image: String,
    /// `Cache-Control: max-age` of a fallback answer, in seconds.
    pub fallback_max_age: u64,
}

impl Default for ErrorConfig {
    fn default() -> Self {
        ErrorConfig {
            fallback_image: String::new(),
            fallback_max_age: 60,
        }
    }
}

/// How URLs are steered towards few cacheable spellings (`output.width_buckets`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Ascending, without duplicates.
    pub width_buckets: Vec<u32>,
    /// Ascending, without duplicates.
    pub qualities: Vec<u8>,
    pub canonical_redirect: bool,
    pub auto_format: AutoFormat,
}

/// `error.fallback_image`, checked at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// As written in the config: parsed like the source part of an image URL.
    pub source: String,
    pub cache_control: String,
}

/// Start-up failed because of the configuration; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration error: `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// Values given on the command line; they override every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Merge defaults < file < environment < CLI. `file` is `--config`; without it
    /// [`DEFAULT_FILE`] is read when it exists.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let env = std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX));
        Self::load_from(file, env, overrides)
    }

    /// [`Config::load`] with the environment given explicitly (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_FILE))
            }
            None => {}
        }
        let mut vars: Vec<(String, String)> = env.into_iter().collect();
        vars.sort();
        for (name, value) in vars {
            figment = figment.merge(EnvVar::new(name, value));
        }
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("server.listen", listen));
        }
        figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))
    }
}

/// One `IMGCDN_SECTION__KEY=value` variable as a figment provider, named after the variable so
/// that an error points at it. Values parse like figment's `Env` (`["a", "b"]` is an array).
/// We take variables as a list instead of using `figment::providers::Env`, which reads the
/// process environment itself, so tests can pass their own without touching global state.
struct EnvVar {
    name: String,
    key: String,
    value: String,
}

impl EnvVar {
    fn new(name: String, value: String) -> Self {
        let key = name
            .get(ENV_PREFIX.len()..)
            .unwrap_or_default()
            .to_ascii_lowercase()
            .replace("__", ".");
        EnvVar { name, key, value }
    }
}

impl Provider for EnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let value: Value = self
            .value
            .parse()
            .unwrap_or_else(|_| Value::from(self.value.clone()));
        match figment::util::nest(&self.key, value).into_dict() {
            Some(dict) => Ok(Profile::Default.collect(dict)),
            None => Err(figment::Error::from(format!("{}: empty key", self.name))),
        }
    }
}

/// `[store]` validated: `None` when `store.url` is empty. The client is built once here too
/// (no I/O), so a URL object_store cannot use stops start-up.
fn store_settings(c: &Config) -> Result<Option<cache::store::Settings>, (&'static str, String)> {
    let s = &c.store;
    if s.url.is_empty() {
        return Ok(None);
    }
    let positive = [
        ("store.read_timeout_ms", s.read_timeout_ms),
        ("store.original_read_timeout_ms", s.original_read_timeout_ms),
        ("store.write_timeout_ms", s.write_timeout_ms),
        ("store.connect_timeout_ms", s.connect_timeout_ms),
        ("store.write_queue_entries", s.write_queue_entries as u64),
        ("store.write_queue_mb", s.write_queue_mb),
        ("store.write_concurrency", s.write_concurrency as u64),
        ("store.breaker_failures", u64::from(s.breaker_failures)),
    ];
    if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
        return Err((key, "must be at least 1".into()));
    }
    if !(s.purge_poll_s.is_finite() && (0.05..=3600.0).contains(&s.purge_poll_s)) {
        return Err(("store.purge_poll_s", "must be between 0.05 and 3600".into()));
    }
    if s.access_key_id.is_empty() != s.secret_access_key.is_empty() {
        return Err((
            "store.access_key_id",
            "set both access_key_id and secret_access_key, or neither".into(),
        ));
    }
    let endpoint = crate::bucket::Endpoint {
        endpoint: s.endpoint.clone(),
        region: s.region.clone(),
        allow_http: s.allow_http,
        access_key_id: s.access_key_id.clone(),
        secret_access_key: s.secret_access_key.clone(),
        conditional_put: s.conditional_put,
    };
    let ms = Duration::from_millis;
    let settings = cache::store::Settings {
        url: s.url.clone(),
        endpoint,
        connect_timeout: ms(s.connect_timeout_ms),
        read_timeout: ms(s.read_timeout_ms),
        original_read_timeout: ms(s.original_read_timeout_ms),
        write_timeout: ms(s.write_timeout_ms),
        queue_entries: s.write_queue_entries,
        queue_bytes: s.write_queue_mb.saturating_mul(MIB),
        write_concurrency: s.write_concurrency,
        keep_sources: s.keep_sources,
        breaker_failures: s.breaker_failures,
        breaker_open: Duration::from_secs(s.breaker_open_s.max(1)),
        purge_poll: Duration::from_secs_f64(s.purge_poll_s),
        settle: ms(c.limits.job_timeout_ms.saturating_add(c.source.timeout_ms)),
    };
    let budget = crate::bucket::Budget {
        connect: settings.connect_timeout,
        request: settings.write_timeout,
        retries: 1,
    };
    crate::bucket::open(&s.url, &settings.endpoint, budget).map_err(|e| ("store.url", e))?;
    Ok(Some(settings))
}

/// Validated configuration, built once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub max_url_bytes: usize,
    pub max_header_bytes: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    pub playground: bool,
    pub playground_sign: bool,
    /// Certificate and key paths when TLS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub source: source::Settings,
    pub limits: Limits,
    /// `limits.job_timeout_ms`: a job's budget on its worker.
    pub job_timeout: Duration,
    pub workers: usize,
    pub fetch_ahead: usize,
    pub queue: usize,
    pub memory_budget: u64,
    pub default_quality: u8,
    pub codecs: Codecs,
    pub cache_control: String,
    pub avif_background: bool,
    pub urls: UrlPolicy,
    pub client_hints: bool,
    pub save_data_quality: u8,
    /// `None` when `error.fallback_image` is empty.
    pub fallback: Option<Fallback>,
    /// The settings output bytes depend on, in a canonical spelling: part of every variant
    /// cache key, so a changed setting never serves renditions made under the old one.
    pub output_profile: String,
    /// `Cache-Control` of a stand-in answered while the AVIF is encoded in the background.
    pub avif_background_cache_control: String,
    pub cache: cache::Settings,
    /// `cache.negative_ttl_s` (zero: off).
    pub negative_ttl: Duration,
    /// `None` when the admin endpoints are off.
    pub admin_token: Option<String>,
    /// `None` when `/metrics` is open.
    pub metrics_token: Option<String>,
    /// Empty = URLs need no signature.
    pub signing_keys: Vec<String>,
    pub presets: Presets,
    /// `[compat]`: the other servers' URL dialects that are mounted.
    pub compat: crate::compat::Settings,
}

impl TryFrom<Config> for Settings {
    type Error = ConfigError;

    fn try_from(c: Config) -> Result<Self, ConfigError> {
        let invalid = |key, reason: String| ConfigError::Invalid { key, reason };
        let base = parse_base(&c.source.base).map_err(|r| invalid("source.base", r))?;
        let allow_networks = c
            .source
            .allow_networks
            .iter()
            .map(|s| parse_network(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| invalid("source.allow_networks", r))?;
        for (key, list) in [
            ("source.allow_hosts", &c.source.allow_hosts),
            ("source.deny_hosts", &c.source.deny_hosts),
        ] {
            for host in list {
                if !source::is_host_pattern(host) {
                    return Err(invalid(
                        key,
                        format!("`{host}` is not a host name or `*.domain` pattern"),
                    ));
                }
            }
        }
        let (origins, buckets, bucket_endpoint) = source_extras(&c.source)?;
        // hyper's HTTP/1 buffer cannot be smaller than 8 KiB.
        if c.server.max_header_bytes < 8192 {
            return Err(invalid(
                "server.max_header_bytes",
                "must be at least 8192".into(),
            ));
        }
        if c.source.timeout_ms == 0 {
            return Err(invalid("source.timeout_ms", "must be at least 1".into()));
        }
        if c.source.max_bytes == 0 {
            return Err(invalid("source.max_bytes", "must be at least 1".into()));
        }
        if !(1..=100).contains(&c.output.default_quality) {
            return Err(invalid(
                "output.default_quality",
                "must be from 1 to 100".into(),
            ));
        }
        if !(1..=100).contains(&c.output.avif_quality) {
            return Err(invalid(
                "output.avif_quality",
                "must be from 1 to 100".into(),
            ));
        }
        if !(1..=10).contains(&c.output.avif_speed) {
            return Err(invalid("output.avif_speed", "must be from 1 to 10".into()));
        }
        if c.output.webp_effort > 6 {
            return Err(invalid("output.webp_effort", "must be from 0 to 6".into()));
        }
        if !(1..=100).contains(&c.output.save_data_quality) {
            return Err(invalid(
                "output.save_data_quality",
                "must be from 1 to 100".into(),
            ));
        }
        let mut width_buckets = c.output.width_buckets.clone();
        width_buckets.sort_unstable();
        width_buckets.dedup();
        if width_buckets
            .iter()
            .any(|&w| w == 0 || w > crate::options::MAX_DIMENSION)
        {
            return Err(invalid(
                "output.width_buckets",
                format!(
                    "each width must be from 1 to {}",
                    crate::options::MAX_DIMENSION
                ),
            ));
        }
        let mut qualities = c.output.qualities.clone();
        qualities.sort_unstable();
        qualities.dedup();
        if qualities.iter().any(|q| !(1..=100).contains(q)) {
            return Err(invalid(
                "output.qualities",
                "each quality must be from 1 to 100".into(),
            ));
        }
        if !qualities.is_empty() && !qualities.contains(&c.output.default_quality) {
            return Err(invalid(
                "output.qualities",
                "must contain output.default_quality".into(),
            ));
        }
        let tls = match (c.server.tls_cert.is_empty(), c.server.tls_key.is_empty()) {
            (true, true) => None,
            (false, false) => {
                let paths = (
                    PathBuf::from(&c.server.tls_cert),
                    PathBuf::from(&c.server.tls_key),
                );
                crate::server::tls_config(&paths.0, &paths.1)
                    .map_err(|r| invalid("server.tls_cert", r))?;
                Some(paths)
            }
            _ => {
                return Err(invalid(
                    "server.tls_cert",
                    "tls_cert and tls_key must be set together".into(),
                ))
            }
        };
        let fallback = (!c.error.fallback_image.is_empty()).then(|| Fallback {
            source: c.error.fallback_image.clone(),
            cache_control: format!("public, max-age={}", c.error.fallback_max_age),
        });
        if let Some(f) = &fallback {
            crate::source::parse(&f.source, None, &base)
                .map_err(|e| invalid("error.fallback_image", e.to_string()))?;
        }
        if http::HeaderValue::from_str(&c.output.cache_control).is_err() {
            return Err(invalid(
                "output.cache_control",
                "is not a valid header value".into(),
            ));
        }
        for (key, value) in [
            ("limits.max_source_pixels", c.limits.max_source_pixels),
            ("limits.max_output_pixels", c.limits.max_output_pixels),
            ("limits.max_decode_bytes", c.limits.max_decode_bytes),
            ("limits.max_frames", u64::from(c.limits.max_frames)),
            ("limits.max_animation_pixels", c.limits.max_animation_pixels),
            ("limits.max_upscale", u64::from(c.limits.max_upscale)),
            ("limits.max_avif_pixels", c.limits.max_avif_pixels),
            ("limits.job_timeout_ms", c.limits.job_timeout_ms),
            ("source.connect_timeout_ms", c.source.connect_timeout_ms),
            (
                "source.max_concurrent_fetches",
                c.source.max_concurrent_fetches as u64,
            ),
            ("source.max_per_host", c.source.max_per_host as u64),
            ("server.max_url_bytes", c.server.max_url_bytes as u64),
            ("server.header_timeout_ms", c.server.header_timeout_ms),
            ("server.idle_timeout_ms", c.server.idle_timeout_ms),
            ("server.write_timeout_ms", c.server.write_timeout_ms),
            ("server.max_connections", c.server.max_connections as u64),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if c.cache.ttl_s == 0 {
            return Err(invalid("cache.ttl_s", "must be at least 1".into()));
        }
        // Upper bounds: past these a value is a typo, and some would panic or overflow in a
        // library (moka refuses a TTL over 1000 years, `Instant + Duration` overflows).
        const DAY_MS: u64 = 86_400_000;
        for (key, value, max) in [
            (
                "server.header_timeout_ms",
                c.server.header_timeout_ms,
                DAY_MS,
            ),
            ("server.idle_timeout_ms", c.server.idle_timeout_ms, DAY_MS),
            ("server.write_timeout_ms", c.server.write_timeout_ms, DAY_MS),
            (
                "server.shutdown_grace_ms",
                c.server.shutdown_grace_ms,
                DAY_MS,
            ),
            (
                "server.max_connections",
                c.server.max_connections as u64,
                1_000_000,
            ),
            ("source.timeout_ms", c.source.timeout_ms, DAY_MS),
            (
                "source.connect_timeout_ms",
                c.source.connect_timeout_ms,
                DAY_MS,
            ),
            ("limits.job_timeout_ms", c.limits.job_timeout_ms, DAY_MS),
            // Ten years: longer than any cache keeps anything.
            ("cache.ttl_s", c.cache.ttl_s, 315_360_000),
            (
                "cache.negative_ttl_s",
                c.cache.negative_ttl_s,
                DAY_MS / 1000,
            ),
            (
                "output.avif_background_max_age",
                c.output.avif_background_max_age,
                315_360_000,
            ),
            (
                "error.fallback_max_age",
                c.error.fallback_max_age,
                315_360_000,
            ),
        ] {
            if value > max {
                return Err(invalid(key, format!("must be at most {max}")));
            }
        }
        if !(1..=100).contains(&c.cache.keep_sources_min_uses) {
            return Err(invalid(
                "cache.keep_sources_min_uses",
                "must be 1 to 100".into(),
            ));
        }
        if c.cache.disk_min_free_percent > 50 {
            return Err(invalid(
                "cache.disk_min_free_percent",
                "must be at most 50".into(),
            ));
        }
        if c.cache.disk_mb > 0 && c.cache.dir.is_empty() {
            return Err(invalid(
                "cache.dir",
                "must not be empty while disk_mb > 0".into(),
            ));
        }
        if c.security.signing_keys.iter().any(|k| k.len() < 16) {
            return Err(invalid(
                "security.signing_keys",
                "each key needs at least 16 characters".into(),
            ));
        }
        let store = store_settings(&c).map_err(|(key, reason)| invalid(key, reason))?;
        let compat = crate::compat::Settings::from_config(
            &c.compat,
            !c.security.signing_keys.is_empty(),
            c.security.only_presets,
        )
        .map_err(|(key, reason)| invalid(key, reason))?;
        let presets = Presets::new(c.presets.clone(), c.security.only_presets).map_err(
            |(name, reason)| ConfigError::Invalid {
                key: "presets",
                reason: format!("`{name}`: {reason}"),
            },
        )?;
        if c.security.only_presets && c.presets.is_empty() {
            return Err(invalid(
                "security.only_presets",
                "is on but no [presets] are defined".into(),
            ));
        }
        let mut passthrough = FormatSet::default();
        for name in &c.source.passthrough {
            let format = Format::from_name(name).ok_or_else(|| {
                invalid(
                    "source.passthrough",
                    format!("`{name}` is not a format name (jpeg, png, webp, gif, avif, heic, jxl, svg, tiff, bmp, ico, qoi, pnm, tga)"),
                )
            })?;
            passthrough.insert(format);
        }
        let workers = match c.limits.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let codecs = Codecs {
            jpeg_decoder: c.pipeline.jpeg_decoder,
            dc_only: c.pipeline.dc_only,
            jpeg_quarter: c.pipeline.jpeg_quarter,
            avif: AvifSettings {
                speed: c.output.avif_speed,
                quality: c.output.avif_quality,
                max_pixels: c.output.avif_max_pixels,
            },
            webp_effort: c.output.webp_effort,
            keep_copyright: c.output.keep_copyright,
            passthrough,
            svg_passthrough: c.output.svg_passthrough,
        };
        let output_profile = format!(
            "q={} avif=q{},s{},max{} jpeg={:?} dc={} copyright={} pass={} svgpass={}{}{}",
            c.output.default_quality,
            codecs.avif.quality,
            codecs.avif.speed,
            codecs.avif.max_pixels,
            codecs.jpeg_decoder,
            codecs.dc_only,
            codecs.keep_copyright,
            codecs.passthrough,
            codecs.svg_passthrough,
            // Only a changed effort changes the profile, so default keys stay as they were.
            match codecs.webp_effort {
                4 => String::new(),
                e => format!(" webp=e{e}"),
            },
            // Likewise libjpeg's exact 1/4 pixels: the quarter path's renditions are the same
            // picture within noise, so keys made before it stay valid.
            if codecs.jpeg_quarter {
                ""
            } else {
                " quarter=off"
            }
        );
        Ok(Settings {
            listen: c.server.listen,
            max_url_bytes: c.server.max_url_bytes,
            max_header_bytes: c.server.max_header_bytes,
            header_timeout: Duration::from_millis(c.server.header_timeout_ms),
            idle_timeout: Duration::from_millis(c.server.idle_timeout_ms),
            write_timeout: Duration::from_millis(c.server.write_timeout_ms),
            max_connections: c.server.max_connections,
            shutdown_grace: Duration::from_millis(c.server.shutdown_grace_ms),
            playground: c.server.playground,
            playground_sign: c.server.playground_sign,
            tls,
            source: source::Settings {
                base,
                // Patterns are normalised (case, IDNA, trailing dot) when the fetcher parses them.
                deny_hosts: c.source.deny_hosts,
                allow_http: c.source.allow_http,
                allow_hosts: c.source.allow_hosts,
                allow_networks,
                allow_ports: c.source.allow_ports,
                max_bytes: c.source.max_bytes,
                timeout: Duration::from_millis(c.source.timeout_ms),
                max_redirects: c.source.max_redirects,
                connect_timeout: Duration::from_millis(c.source.connect_timeout_ms),
                max_concurrent_fetches: c.source.max_concurrent_fetches,
                max_per_host: c.source.max_per_host,
                origins,
                buckets,
                bucket_endpoint,
                watch_folder: c.source.watch_folder,
            },
            limits: Limits {
                max_source_pixels: c.limits.max_source_pixels,
                max_output_pixels: c.limits.max_output_pixels,
                max_decode_bytes: c.limits.max_decode_bytes,
                max_frames: c.limits.max_frames,
                max_animation_pixels: c.limits.max_animation_pixels,
                max_upscale: c.limits.max_upscale,
                max_avif_pixels: c.limits.max_avif_pixels,
                deadline: None,
            },
            job_timeout: Duration::from_millis(c.limits.job_timeout_ms),
            workers,
            fetch_ahead: c.limits.fetch_ahead.unwrap_or(workers),
            queue: c.limits.queue,
            memory_budget: c.limits.memory_budget_mb.saturating_mul(MIB),
            default_quality: c.output.default_quality,
            codecs,
            output_profile,
            avif_background: c.output.avif_background,
            urls: UrlPolicy {
                width_buckets,
                qualities,
                canonical_redirect: c.output.canonical_redirect,
                auto_format: c.output.auto_format,
            },
            client_hints: c.output.client_hints,
            save_data_quality: c.output.save_data_quality,
            fallback,
            avif_background_cache_control: format!(
                "public, max-age={}",
                c.output.avif_background_max_age
            ),
            cache_control: c.output.cache_control,
            negative_ttl: Duration::from_secs(c.cache.negative_ttl_s),
            cache: cache::Settings {
                memory_bytes: c.cache.memory_mb.saturating_mul(MIB),
                dir: (c.cache.disk_mb > 0).then(|| PathBuf::from(&c.cache.dir)),
                disk_bytes: c.cache.disk_mb.saturating_mul(MIB),
                keep_sources: c.cache.keep_sources,
                keep_sources_min_uses: c.cache.keep_sources_min_uses,
                ttl: Duration::from_secs(c.cache.ttl_s),
                min_free_bytes: c.cache.disk_min_free_mb.saturating_mul(MIB),
                min_free_percent: c.cache.disk_min_free_percent,
                sweep_interval: Duration::from_secs(60),
                store,
            },
            admin_token: (!c.admin.token.is_empty()).then_some(c.admin.token),
            metrics_token: (!c.metrics.token.is_empty()).then_some(c.metrics.token),
            signing_keys: c.security.signing_keys,
            presets,
            compat,
        })
    }
}

fn parse_base(s: &str) -> Result<Base, String> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
        Ok(Base::Url(url))
    } else if lower.contains("://") {
        Err(format!("`{s}`: only http(s) URLs or folders are supported"))
    } else if s.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(Base::Dir(PathBuf::from(s)))
    }
}

/// `[[source.origins]]`, `source.buckets` and `source.bucket_*`, validated.
fn source_extras(
    c: &SourceConfig,
) -> Result<
    (
        Vec<source::OriginHeaders>,
        Vec<source::BucketName>,
        crate::bucket::Endpoint,
    ),
    ConfigError,
> {
    let invalid = |key, reason: String| ConfigError::Invalid { key, reason };
    let mut origins: Vec<source::OriginHeaders> = Vec::new();
    for o in &c.origins {
        let headers: Vec<(String, String)> = o
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let entry = source::OriginHeaders::new(&o.host, &headers)
            .map_err(|r| invalid("source.origins", r))?;
        if origins.iter().any(|e| e.origin() == entry.origin()) {
            return Err(invalid(
                "source.origins",
                format!("host `{}` is listed twice", o.host),
            ));
        }
        origins.push(entry);
    }
    let buckets = c
        .buckets
        .iter()
        .map(|b| b.parse::<source::BucketName>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|r| invalid("source.buckets", r))?;
    if !c.bucket_endpoint.is_empty() {
        let url = url::Url::parse(&c.bucket_endpoint)
            .map_err(|e| invalid("source.bucket_endpoint", format!("not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if c.bucket_allow_http => {}
            "http" => {
                return Err(invalid(
                    "source.bucket_endpoint",
                    "is plain http: set source.bucket_allow_http = true to allow it".into(),
                ))
            }
            _ => {
                return Err(invalid(
                    "source.bucket_endpoint",
                    "must be an http(s) URL".into(),
                ))
            }
        }
        if url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() {
            return Err(invalid(
                "source.bucket_endpoint",
                "must name a host and no credentials".into(),
            ));
        }
    }
    match (
        c.bucket_access_key_id.is_empty(),
        c.bucket_secret_access_key.is_empty(),
    ) {
        (true, false) => {
            return Err(invalid(
                "source.bucket_access_key_id",
                "is empty but bucket_secret_access_key is set".into(),
            ))
        }
        (false, true) => {
            return Err(invalid(
                "source.bucket_secret_access_key",
                "is empty but bucket_access_key_id is set".into(),
            ))
        }
        _ => {}
    }
    let endpoint = crate::bucket::Endpoint {
        endpoint: c.bucket_endpoint.clone(),
        region: c.bucket_region.clone(),
        allow_http: c.bucket_allow_http,
        access_key_id: c.bucket_access_key_id.clone(),
        secret_access_key: c.bucket_secret_access_key.clone(),
        conditional_put: false,
    };
    Ok((origins, buckets, endpoint))
}

/// A CIDR (`10.0.0.0/8`) or a single address (`127.0.0.2`, taken as /32 or /128).
fn parse_network(s: &str) -> Result<source::AllowedNetwork, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn shipped() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))
    }

    #[test]
    fn default_file_equals_builtin_defaults() {
        let loaded = Config::load_from(Some(&shipped()), env(&[]), &Overrides::default());
        assert_eq!(loaded.ok(), Some(Config::default()));
    }

    #[test]
    fn default_file_names_every_key() {
        let text = std::fs::read_to_string(shipped()).unwrap_or_default();
        let table: toml::Table = text.parse().unwrap_or_default();
        let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
        assert_eq!(
            table, defaults,
            "config/default.toml must list every key with its default"
        );
    }

    #[test]
    fn layers_env_overrides_file_and_cli_overrides_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:1111\"\n[output]\ndefault_quality = 70\n",
        )
        .unwrap();
        let c = Config::load_from(Some(&file), env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.server.listen.port(), 1111);
        assert_eq!(c.output.default_quality, 70);

        let e = env(&[("IMGCDN_SERVER__LISTEN", "127.0.0.1:2222")]);
        let c = Config::load_from(Some(&file), e.clone(), &Overrides::default()).unwrap();
        assert_eq!(c.server.listen.port(), 2222);
        assert_eq!(
            c.output.default_quality, 70,
            "the file still applies where env is silent"
        );

        let cli = Overrides {
            listen: Some("127.0.0.1:3333".parse().unwrap()),
        };
        let c = Config::load_from(Some(&file), e, &cli).unwrap();
        assert_eq!(c.server.listen.port(), 3333);
    }

    #[test]
    fn env_array_value_parses() {
        let e = env(&[(
            "IMGCDN_SOURCE__ALLOW_NETWORKS",
            r#"["127.0.0.0/8", "10.0.0.0/8"]"#,
        )]);
        let c = Config::load_from(None, e, &Overrides::default()).unwrap();
        assert_eq!(c.source.allow_networks, vec!["127.0.0.0/8", "10.0.0.0/8"]);
        let s = Settings::try_from(c).unwrap();
        assert_eq!(s.source.allow_networks.len(), 2);
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nlisten_port = 1\n").unwrap();
        let err = Config::load_from(Some(&file), env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn unknown_env_key_is_named() {
        let e = env(&[("IMGCDN_SERVER__LISTEN_PORT", "1")]);
        let err = Config::load_from(None, e, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = env(&[("IMGCDN_SERVER__LISTEN", "not-an-address")]);
        let err = Config::load_from(None, e, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");

        let mut c = Config::default();
        c.source.allow_networks = vec!["10.0.0.0/99".into()];
        let err = Settings::try_from(c).unwrap_err();
        assert!(err.to_string().contains("source.allow_networks"), "{err}");

        let mut c = Config::default();
        c.output.default_quality = 0;
        assert!(Settings::try_from(c)
            .unwrap_err()
            .to_string()
            .contains("default_quality"));
    }

    #[test]
    fn changed_decoders_change_the_output_profile_and_defaults_keep_it() {
        let profile = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            Settings::try_from(c).unwrap().output_profile
        };
        let default = profile(|_| {});
        assert!(!default.contains("quarter"), "{default}");
        let off = profile(|c| c.pipeline.jpeg_quarter = false);
        assert_ne!(off, default);
        assert_ne!(profile(|c| c.output.webp_effort = 2), default);
        assert_eq!(profile(|c| c.pipeline.jpeg_quarter = true), default);
    }

    #[test]
    fn config_out_of_range_values_are_named_not_panics() {
        type Set = fn(&mut Config);
        let cases: [(&str, Set); 8] = [
            ("cache.ttl_s", |c| c.cache.ttl_s = u64::MAX),
            ("cache.keep_sources_min_uses", |c| {
                c.cache.keep_sources_min_uses = 0
            }),
            ("cache.keep_sources_min_uses", |c| {
                c.cache.keep_sources_min_uses = 101
            }),
            ("output.webp_effort", |c| c.output.webp_effort = 7),
            ("server.max_connections", |c| {
                c.server.max_connections = usize::MAX
            }),
            ("server.header_timeout_ms", |c| {
                c.server.header_timeout_ms = u64::MAX
            }),
            ("server.idle_timeout_ms", |c| c.server.idle_timeout_ms = 0),
            ("limits.job_timeout_ms", |c| {
                c.limits.job_timeout_ms = u64::MAX
            }),
        ];
        for (key, set) in cases {
            let mut c = Config::default();
            set(&mut c);
            let err = Settings::try_from(c).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err = Config::load_from(
            Some(Path::new("/nonexistent/x.toml")),
            env(&[]),
            &Overrides::default(),
        );
        assert!(err.is_err());
    }

    #[test]
    fn source_bucket_and_origin_settings_validated() {
        type Set = fn(&mut Config);
        let cases: [(&str, Set); 8] = [
            ("source.buckets", |c| {
                c.source.buckets = vec!["Photos".into()]
            }),
            ("source.buckets", |c| {
                c.source.buckets = vec!["ftp://photos".into()]
            }),
            ("source.bucket_endpoint", |c| {
                c.source.bucket_endpoint = "http://127.0.0.1:9000".into()
            }),
            ("source.bucket_endpoint", |c| {
                c.source.bucket_endpoint = "not a url".into()
            }),
            ("source.bucket_secret_access_key", |c| {
                c.source.bucket_access_key_id = "AK".into()
            }),
            ("source.origins", |c| {
                c.source.origins = vec![OriginConfig {
                    host: "*.example.com".into(),
                    headers: BTreeMap::new(),
                }]
            }),
            ("source.origins", |c| {
                c.source.origins = vec![OriginConfig {
                    host: "a.example.com".into(),
                    headers: [("Host".to_owned(), "b".to_owned())].into(),
                }]
            }),
            ("source.origins", |c| {
                let o = OriginConfig {
                    host: "A.example.com".into(),
                    headers: BTreeMap::new(),
                };
                let mut twice = o.clone();
                twice.host = "a.example.com".into();
                c.source.origins = vec![o, twice];
            }),
        ];
        for (key, set) in cases {
            let mut c = Config::default();
            set(&mut c);
            let err = Settings::try_from(c).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
        let secret = "Bearer s3cr3t-value";
        let mut c = Config::default();
        c.source.buckets = vec!["photos".into(), "gs://other_b".into()];
        c.source.bucket_endpoint = "http://127.0.0.1:9000".into();
        c.source.bucket_allow_http = true;
        c.source.origins = vec![OriginConfig {
            host: "private.example.com:8443".into(),
            headers: [("Authorization".to_owned(), secret.to_owned())].into(),
        }];
        let s = Settings::try_from(c).unwrap();
        assert_eq!(s.source.buckets.len(), 2);
        assert_eq!(s.source.origins.len(), 1);
        assert!(!format!("{:?}", s.source).contains(secret));
    }

    #[test]
    fn source_origins_read_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[[source.origins]]\nhost = \"img.internal:8080\"\n\
             headers = { Authorization = \"Bearer t\", X-Tenant = \"a\" }\n",
        )
        .unwrap();
        let c = Config::load_from(Some(&file), env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.source.origins.len(), 1);
        assert_eq!(c.source.origins[0].headers.len(), 2);
        assert!(Settings::try_from(c).is_ok());
    }

    #[test]
    fn base_forms_parse() {
        assert_eq!(
            parse_base("./images"),
            Ok(Base::Dir(PathBuf::from("./images")))
        );
        assert!(matches!(
            parse_base("https://o.example/imgs/"),
            Ok(Base::Url(_))
        ));
        assert!(parse_base("ftp://x/").is_err());
        assert_eq!(
            parse_network("127.0.0.2").map(|n| n.to_string()),
            Ok("127.0.0.2/32".into())
        );
    }
}
