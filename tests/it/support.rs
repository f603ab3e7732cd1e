//! Test harness: a programmable in-process origin, an imgcdn server on `127.0.0.1:0`, fixtures
//! and image generators. Both servers stop when their handle is dropped.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use imgcdn::config::{Config, Settings};
use imgcdn::server::{self, AppState};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

pub fn fixture(name: &str) -> Bytes {
    let path = fixtures_dir().join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// What the origin answers on one path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this content type and body.
    Body(&'static str, Bytes),
    /// This status, empty body.
    Status(u16),
    /// 302 to this location.
    Redirect(String),
    /// Wait this long, then 200 with an empty body.
    Sleep(Duration),
    /// 200 only when the query string equals the first value; else 404.
    WithQuery(String, Bytes),
    /// 200 with this body and one extra response header.
    WithHeader(&'static str, &'static str, Bytes),
    /// Wait, then 200 with this body (so concurrent requests overlap).
    SlowBody(Duration, Bytes),
    /// Answer 500 (after a wait) while the counter is above zero, counting down; then 200.
    FailFirst(Arc<AtomicUsize>, Duration, Bytes),
}

pub struct Origin {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    /// Requests being answered now, and the most ever at once.
    busy: Arc<(AtomicUsize, AtomicUsize)>,
    _stop: oneshot::Sender<()>,
}

impl Origin {
    /// Every file in `tests/fixtures` under `/f/<name>`, plus `routes`.
    pub async fn start(routes: Vec<(&str, Reply)>) -> Origin {
        Self::start_on("127.0.0.1:0", routes).await
    }

    pub async fn start_on(bind: &str, routes: Vec<(&str, Reply)>) -> Origin {
        let mut table: HashMap<String, Reply> = HashMap::new();
        for entry in std::fs::read_dir(fixtures_dir())
            .expect("fixtures dir")
            .flatten()
        {
            if !entry.path().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let body = Bytes::from(std::fs::read(entry.path()).expect("fixture"));
            table.insert(
                format!("/f/{name}"),
                Reply::Body("application/octet-stream", body),
            );
        }
        for (path, reply) in routes {
            table.insert(path.to_string(), reply);
        }
        let table = Arc::new(table);
        let listener = TcpListener::bind(bind).await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let busy = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let counter = hits.clone();
        let busy_counter = busy.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    s = listener.accept() => match s { Ok((s, _)) => s, Err(_) => continue },
                    _ = &mut stopped => break,
                };
                let table = table.clone();
                let counter = counter.clone();
                let busy = busy_counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let now = busy.0.fetch_add(1, Ordering::SeqCst) + 1;
                        busy.1.fetch_max(now, Ordering::SeqCst);
                        let reply = table.get(req.uri().path()).cloned();
                        let query = req.uri().query().unwrap_or("").to_string();
                        let busy = busy.clone();
                        async move {
                            let answered = answer(reply, &query).await;
                            busy.0.fetch_sub(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(answered)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Origin {
            addr,
            hits,
            busy,
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The most requests this origin was ever answering at once.
    pub fn peak_concurrency(&self) -> usize {
        self.busy.1.load(Ordering::SeqCst)
    }
}

async fn answer(reply: Option<Reply>, query: &str) -> Response<Full<Bytes>> {
    let mut builder = Response::builder();
    let body = match reply {
        None => {
            builder = builder.status(404);
            Bytes::from_static(b"not found")
        }
        Some(Reply::Body(ct, body)) => {
            builder = builder.header("content-type", ct);
            body
        }
        Some(Reply::Status(code)) => {
            builder = builder.status(code);
            Bytes::new()
        }
        Some(Reply::Redirect(to)) => {
            builder = builder.status(302).header("location", to);
            Bytes::new()
        }
        Some(Reply::Sleep(d)) => {
            tokio::time::sleep(d).await;
            Bytes::new()
        }
        Some(Reply::WithHeader(name, value, body)) => {
            builder = builder.header(name, value);
            body
        }
        Some(Reply::SlowBody(d, body)) => {
            tokio::time::sleep(d).await;
            body
        }
        Some(Reply::FailFirst(left, d, body)) => {
            tokio::time::sleep(d).await;
            let failing = left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                builder = builder.status(500);
                Bytes::new()
            } else {
                body
            }
        }
        Some(Reply::WithQuery(want, body)) => {
            if query != want {
                builder = builder.status(404);
                Bytes::new()
            } else {
                body
            }
        }
    };
    builder.body(Full::new(body)).expect("response")
}

/// A running imgcdn.
pub struct Proxy {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
    /// The disk cache directory, deleted on drop unless the test chose its own.
    _cache: Option<tempfile::TempDir>,
}

/// Start imgcdn with test defaults (sources from `tests/fixtures`, loopback origins allowed),
/// adjusted by `adjust`.
pub async fn proxy(adjust: impl FnOnce(&mut Config)) -> Proxy {
    let cache = tempfile::tempdir().expect("cache dir");
    let dir = cache.path().to_string_lossy().into_owned();
    let mut p = proxy_with(move |c| {
        c.cache.dir = dir;
        adjust(c);
    })
    .await;
    p._cache = Some(cache);
    p
}

/// [`proxy`] without a private cache directory: `adjust` must set `cache.dir` (or turn the disk
/// tier off), e.g. to restart on the same directory.
pub async fn proxy_with(adjust: impl FnOnce(&mut Config)) -> Proxy {
    let mut config = Config::default();
    config.source.base = fixtures_dir().to_string_lossy().into_owned();
    config.source.allow_networks = vec!["127.0.0.0/8".into()];
    // Test origins listen on ephemeral ports.
    config.source.allow_ports = Vec::new();
    config.limits.workers = 2;
    adjust(&mut config);
    let settings = Settings::try_from(config).expect("valid test config");
    let state = Arc::new(AppState::new(settings).expect("state"));
    let server_state = state.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::run(listener, server_state, async move {
        let _ = stopped.await;
    }));
    // Redirects are answers under test here: never followed.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Proxy {
        addr,
        state,
        client,
        _stop: stop,
        _cache: None,
    }
}

impl Proxy {
    /// No render or fetch is in flight.
    pub fn state_flights_idle(&self) -> bool {
        self.state.flights_idle()
    }

    /// A plain HTTP client for requests the helpers below don't cover.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The value of the sample `name` (the whole name before the value, labels included) in
    /// `/metrics`; panics when it is not there.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").await.text();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }

    pub async fn get(&self, path: &str) -> Reply2 {
        self.request(reqwest::Method::GET, path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply2 {
        self.request(reqwest::Method::GET, path, headers).await
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Reply2 {
        let mut req = self.client.request(method, self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request to imgcdn");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("body");
        Reply2 {
            status,
            headers,
            body,
        }
    }
}

/// A response from imgcdn, fully read.
#[derive(Debug)]
pub struct Reply2 {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl Reply2 {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Decode the body; panics with the status and text when it is not an image.
    pub fn image(&self) -> image::DynamicImage {
        if image::guess_format(&self.body).ok() == Some(image::ImageFormat::Avif) {
            return decode_avif(&self.body);
        }
        image::load_from_memory(&self.body)
            .unwrap_or_else(|e| panic!("status {} body {:?}: {e}", self.status, self.text()))
    }

    pub fn format(&self) -> image::ImageFormat {
        image::guess_format(&self.body).unwrap_or_else(|e| panic!("status {}: {e}", self.status))
    }

    pub fn dims(&self) -> (u32, u32) {
        let img = self.image();
        (img.width(), img.height())
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, 200, "body: {}", self.text());
        self
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        // Deterministic failures are kept for `cache.negative_ttl_s` (30 s by default); every
        // other error is never kept.
        let cc = self.header("cache-control");
        let deterministic = [404, 413, 415, 422].contains(&status)
            && !["no-route", "url-too-long"].contains(&needle);
        if deterministic {
            assert!(cc == "public, max-age=30" || cc == "no-store", "{cc}");
        } else {
            assert_eq!(cc, "no-store");
        }
        assert!(self.header("content-type").starts_with("text/plain"));
        assert!(
            self.text().contains(needle),
            "body {:?} lacks {needle:?}",
            self.text()
        );
    }
}

/// Encode an image in memory.
pub fn encode(img: &image::DynamicImage, format: image::ImageFormat) -> Bytes {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    Bytes::from(out.into_inner())
}

/// A 400x200 RGBA PNG: left half opaque red, right half fully transparent.
pub fn alpha_png() -> Bytes {
    let img = image::RgbaImage::from_fn(400, 200, |x, _| {
        if x < 200 {
            image::Rgba([255, 0, 0, 255])
        } else {
            image::Rgba([0, 255, 0, 0])
        }
    });
    encode(
        &image::DynamicImage::ImageRgba8(img),
        image::ImageFormat::Png,
    )
}

/// A 320x200 16-bit RGB PNG gradient.
pub fn png16() -> Bytes {
    let img = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(320, 200, |x, y| {
        image::Rgb([(x * 200) as u16, (y * 300) as u16, 40000])
    });
    encode(
        &image::DynamicImage::ImageRgb16(img),
        image::ImageFormat::Png,
    )
}

/// A solid-colour JPEG.
pub fn jpeg(w: u32, h: u32) -> Bytes {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    encode(
        &image::DynamicImage::ImageRgb8(img),
        image::ImageFormat::Jpeg,
    )
}

/// A PNG whose header claims `w` x `h` (with a valid CRC) and no pixel data.
pub fn png_header_only(w: u32, h: u32) -> Bytes {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&w.to_be_bytes());
    chunk.extend_from_slice(&h.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    Bytes::from(out)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Mean RGB of a decoded image.
pub fn mean_rgb(img: &image::DynamicImage) -> [f64; 3] {
    let rgb = img.to_rgb8();
    let n = f64::from(rgb.width() * rgb.height());
    let mut sum = [0f64; 3];
    for p in rgb.pixels() {
        for (s, v) in sum.iter_mut().zip(p.0) {
            *s += f64::from(v);
        }
    }
    sum.map(|s| s / n)
}

impl Proxy {
    /// Send `GET <target>` byte for byte (HTTP clients normalise `..` and `%2e%2e` away, which
    /// would hide exactly what a traversal test needs to send) and return the status and body.
    pub async fn raw_get(&self, target: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// How a raw TCP origin misbehaves after reading a request head.
#[derive(Clone)]
pub enum Raw {
    /// Close the connection without answering.
    Reset,
    /// Announce `Content-Length: announce`, send `body`, close.
    Lying { announce: usize, body: Bytes },
    /// Announce `len` bytes, then send one byte every `every`.
    Trickle { len: usize, every: Duration },
}

/// A TCP origin that speaks just enough HTTP to misbehave; answers every connection the same.
pub async fn raw_origin(behaviour: Raw) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind raw origin");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                match behaviour {
                    Raw::Reset => drop(stream),
                    Raw::Lying { announce, body } => {
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {announce}\r\nConnection: close\r\n\r\n");
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(&body).await;
                    }
                    Raw::Trickle { len, every } => {
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
                        let _ = stream.write_all(head.as_bytes()).await;
                        for _ in 0..len {
                            tokio::time::sleep(every).await;
                            if stream.write_all(b"x").await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Decode an AVIF with libavif's `avifdec` (Debian `libavif-bin`, which `.ci/run` installs):
/// no memory-safe AV1 decoder exists to put in the dev-dependencies.
pub fn decode_avif(bytes: &[u8]) -> image::DynamicImage {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("in.avif"), dir.path().join("out.png"));
    std::fs::write(&input, bytes).expect("write avif");
    let run = std::process::Command::new("avifdec")
        .args(["--depth", "8"])
        .arg(&input)
        .arg(&output)
        .output()
        .expect("avifdec runs (apt install libavif-bin)");
    assert!(
        run.status.success(),
        "avifdec: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    image::open(&output).expect("avifdec output decodes")
}
