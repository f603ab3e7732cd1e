//! Remote-fetch tests against a small programmable origin: an in-process hyper 1 server bound
//! to a loopback address on port 0, with a hit counter so that tests can assert that a refused
//! target was never contacted.
//!
//! Test-only. It never touches any network beyond loopback and never spawns external servers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::AllowedNetwork;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use url::Url;

use super::{Base, Fetcher, Settings, Source, SourceError};

const CAP: u64 = 1024;
const IMAGE: &[u8] = b"\x89PNG\r\n\x1a\n fake image bytes";

type Body = BoxBody<Bytes, Infallible>;

/// A running origin; stops when dropped.
struct Origin {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Origin {
    async fn start(ip: &str) -> Origin {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        route(req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Origin { addr, hits, task }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn status(code: u16) -> Response<Body> {
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = StatusCode::from_u16(code).unwrap();
    res
}

fn redirect(code: u16, location: &str) -> Response<Body> {
    let mut res = status(code);
    res.headers_mut()
        .insert("location", location.parse().unwrap());
    res
}

/// A body that announces 100 bytes and ends after 10.
struct ShortBody {
    sent: bool,
}

impl hyper::body::Body for ShortBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent {
            return Poll::Ready(None);
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&[1; 10])))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(100)
    }
}

async fn route(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let res = match path.as_str() {
        "/img" => Response::new(full(IMAGE)),
        "/404" => status(404),
        "/410" => status(410),
        "/500" => status(500),
        "/loop" => redirect(302, "/loop"),
        "/nolocation" => status(302),
        "/redirect" => redirect(302, &query),
        "/big-cl" => Response::new(full(vec![0u8; CAP as usize + 1])),
        "/exact-cap" => Response::new(full(vec![0u8; CAP as usize])),
        "/big-chunked" => {
            let chunks =
                (0..10).map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![0u8; 300]))));
            Response::new(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        }
        "/short" => Response::new(ShortBody { sent: false }.boxed()),
        "/sleep" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Response::new(full(IMAGE))
        }
        "/echo" => {
            let h = req.headers();
            let get = |name: &str| {
                h.get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
            let text = format!(
                "{}|{}|{}|{}",
                get("user-agent"),
                get("accept"),
                get("accept-encoding"),
                names.join(",")
            );
            Response::new(full(text))
        }
        other => match other
            .strip_prefix("/code/")
            .and_then(|c| c.parse::<u16>().ok())
        {
            Some(code) => redirect(code, "/img"),
            None => match other
                .strip_prefix("/chain/")
                .and_then(|n| n.parse::<u32>().ok())
            {
                Some(0) => redirect(302, "/img"),
                Some(n) => redirect(302, &format!("/chain/{}", n - 1)),
                None => status(404),
            },
        },
    };
    Ok(res)
}

fn settings(allow_networks: &[&str]) -> Settings {
    Settings {
        base: Base::Dir(PathBuf::from("/nonexistent")),
        allow_hosts: Vec::new(),
        deny_hosts: Vec::new(),
        allow_http: true,
        allow_networks: allow_networks
            .iter()
            .map(|n| n.parse::<AllowedNetwork>().unwrap())
            .collect(),
        allow_ports: Vec::new(),
        max_bytes: CAP,
        timeout: Duration::from_secs(5),
        max_redirects: 3,
        connect_timeout: Duration::from_secs(3),
        max_concurrent_fetches: 64,
        max_per_host: 8,
        origins: Vec::new(),
        buckets: Vec::new(),
        bucket_endpoint: crate::bucket::Endpoint::default(),
        watch_folder: true,
    }
}

fn fetcher(settings: Settings) -> Fetcher {
    Fetcher::new(settings).unwrap()
}

async fn get(f: &Fetcher, url: Url) -> Result<Bytes, SourceError> {
    f.fetch(&Source::Remote(url)).await.map(|f| f.bytes)
}

fn forbidden(r: &Result<Bytes, SourceError>) -> bool {
    matches!(r, Err(SourceError::Forbidden(_)))
}

#[tokio::test]
async fn remote_ok_body_returned() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    assert_eq!(get(&f, o.url("/img")).await, Ok(Bytes::from_static(IMAGE)));
    assert_eq!(
        get(&f, o.url("/exact-cap")).await.map(|b| b.len()),
        Ok(CAP as usize)
    );
}

#[tokio::test]
async fn remote_404_and_410_not_found() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    assert_eq!(get(&f, o.url("/404")).await, Err(SourceError::NotFound));
    assert_eq!(get(&f, o.url("/410")).await, Err(SourceError::NotFound));
}

#[tokio::test]
async fn remote_500_origin_error() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    assert_eq!(
        get(&f, o.url("/500")).await,
        Err(SourceError::Origin("origin answered 500".into()))
    );
}

#[tokio::test]
async fn remote_redirects_followed_for_every_code() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    for code in [301, 302, 303, 307, 308] {
        let got = get(&f, o.url(&format!("/code/{code}"))).await;
        assert_eq!(got, Ok(Bytes::from_static(IMAGE)), "{code}");
    }
    // A 300 is not a redirect we follow.
    assert_eq!(
        get(&f, o.url("/code/300")).await,
        Err(SourceError::Origin("origin answered 300".into()))
    );
}

#[tokio::test]
async fn remote_redirect_chain_limited() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    // /chain/2 → /chain/1 → /chain/0 → /img: three redirects, the limit.
    assert_eq!(
        get(&f, o.url("/chain/2")).await,
        Ok(Bytes::from_static(IMAGE))
    );
    let too_many = Err(SourceError::Origin("too many redirects".into()));
    assert_eq!(get(&f, o.url("/chain/3")).await, too_many);
    let before = o.hits();
    assert_eq!(get(&f, o.url("/loop")).await, too_many);
    assert_eq!(o.hits() - before, 4);
}

#[tokio::test]
async fn remote_redirect_without_location_origin_error() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    assert!(matches!(
        get(&f, o.url("/nolocation")).await,
        Err(SourceError::Origin(_))
    ));
}

#[tokio::test]
async fn remote_content_length_over_cap_too_large() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    assert_eq!(
        get(&f, o.url("/big-cl")).await,
        Err(SourceError::TooLarge { limit: CAP })
    );
}

#[tokio::test]
async fn remote_chunked_over_cap_too_large() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    assert_eq!(
        get(&f, o.url("/big-chunked")).await,
        Err(SourceError::TooLarge { limit: CAP })
    );
}

#[tokio::test]
async fn remote_body_shorter_than_content_length_origin_error() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    assert!(matches!(
        get(&f, o.url("/short")).await,
        Err(SourceError::Origin(_))
    ));
}

#[tokio::test]
async fn remote_never_answering_timeout() {
    let o = Origin::start("127.0.0.1").await;
    let mut s = settings(&["127.0.0.0/8"]);
    s.timeout = Duration::from_millis(300);
    let f = fetcher(s);
    let started = std::time::Instant::now();
    assert_eq!(get(&f, o.url("/sleep")).await, Err(SourceError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn remote_connection_refused_origin_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let f = fetcher(settings(&["127.0.0.0/8"]));
    let got = get(&f, Url::parse(&format!("http://{addr}/img")).unwrap()).await;
    assert_eq!(got, Err(SourceError::Origin("origin unreachable".into())));
}

#[tokio::test]
async fn remote_request_headers_fixed_nothing_forwarded() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&["127.0.0.0/8"]));
    let body = get(&f, o.url("/echo")).await.unwrap();
    let text = String::from_utf8_lossy(&body);
    let mut parts = text.split('|');
    assert!(parts.next().unwrap().starts_with("imgcdn/"));
    assert_eq!(parts.next(), Some("image/*,*/*;q=0.8"));
    assert_eq!(parts.next(), Some("identity"));
    let names = parts.next().unwrap();
    for forbidden_header in ["cookie", "authorization", "referer", "x-forwarded-for"] {
        assert!(!names.contains(forbidden_header), "{names}");
    }
}

/// DNS rebinding end to end: the name passes the pre-check (`authorize` does no DNS), the only
/// resolution is the one the connector makes, and it is filtered: loopback is refused and the
/// origin never sees a request.
#[tokio::test]
async fn remote_name_resolving_to_loopback_at_connect_is_forbidden() {
    let o = Origin::start("127.0.0.1").await;
    let lookup: super::resolve::Lookup = Arc::new(|_host: String| {
        Box::pin(async { Ok(vec!["127.0.0.1:0".parse::<SocketAddr>().unwrap()]) })
    });
    let s = settings(&[]);
    let resolver = super::resolve::PolicyResolver::with_lookup(&s.allow_networks, lookup);
    let f = super::fetch::with_resolver(s, resolver).unwrap();
    let url = Url::parse(&format!("http://rebind.test:{}/img", o.addr.port())).unwrap();
    assert_eq!(f.authorize(&Source::Remote(url.clone())), Ok(()));
    let got = get(&f, url).await;
    assert!(forbidden(&got), "{got:?}");
    assert_eq!(o.hits(), 0);
}

#[tokio::test]
async fn remote_loopback_without_allow_networks_forbidden() {
    let o = Origin::start("127.0.0.1").await;
    let f = fetcher(settings(&[]));
    let port = o.addr.port();
    for u in [
        format!("http://127.0.0.1:{port}/img"),
        format!("http://localhost:{port}/img"),
        format!("http://[::ffff:127.0.0.1]:{port}/img"),
        format!("http://2130706433:{port}/img"),
        format!("http://0177.0.0.1:{port}/img"),
        format!("http://127.1:{port}/img"),
    ] {
        let got = get(&f, Url::parse(&u).unwrap()).await;
        assert!(forbidden(&got), "{u}: {got:?}");
    }
    assert_eq!(o.hits(), 0);
}

#[tokio::test]
async fn remote_redirect_to_loopback_literal_forbidden() {
    let canary = Origin::start("127.0.0.1").await;
    let o = Origin::start("127.0.0.2").await;
    let f = fetcher(settings(&["127.0.0.2/32"]));
    let port = canary.addr.port();
    for target in [
        format!("http://127.0.0.1:{port}/img"),
        format!("http://localhost:{port}/img"),
        format!("http://[::ffff:7f00:1]:{port}/img"),
        format!("//127.0.0.1:{port}/img"),
        "file:///etc/passwd".to_owned(),
        format!("http://u:p@127.0.0.2:{}/img", o.addr.port()),
    ] {
        let mut url = o.url("/redirect");
        url.set_query(Some(&target));
        let got = get(&f, url).await;
        assert!(forbidden(&got), "{target}: {got:?}");
    }
    assert_eq!(canary.hits(), 0);
    // The same origin redirecting to itself is fine.
    let mut url = o.url("/redirect");
    url.set_query(Some("/img"));
    assert_eq!(get(&f, url).await, Ok(Bytes::from_static(IMAGE)));
}

#[tokio::test]
async fn remote_allow_hosts_applied_on_every_hop() {
    let o = Origin::start("127.0.0.1").await;
    let mut s = settings(&["127.0.0.0/8"]);
    s.allow_hosts = vec!["localhost".into()];
    let f = fetcher(s);
    let port = o.addr.port();
    let by_name = Url::parse(&format!("http://localhost:{port}/img")).unwrap();
    assert_eq!(get(&f, by_name).await, Ok(Bytes::from_static(IMAGE)));
    let by_ip = o.url("/img");
    assert_eq!(
        get(&f, by_ip).await,
        Err(SourceError::Forbidden("host not allowed".into()))
    );
    let hits = o.hits();
    let mut hop = Url::parse(&format!("http://localhost:{port}/redirect")).unwrap();
    hop.set_query(Some(&format!("http://127.0.0.1:{port}/img")));
    assert_eq!(
        get(&f, hop).await,
        Err(SourceError::Forbidden("host not allowed".into()))
    );
    assert_eq!(o.hits(), hits + 1);
}

#[tokio::test]
async fn fetcher_invalid_allow_hosts_entry_rejected() {
    let mut s = settings(&[]);
    s.allow_hosts = vec!["http://a.com/".into()];
    assert!(matches!(Fetcher::new(s), Err(SourceError::BadSource(_))));
}

#[tokio::test]
async fn fetcher_local_source_with_url_base_forbidden() {
    let mut s = settings(&[]);
    s.base = Base::Url(Url::parse("http://o/imgs").unwrap());
    let f = fetcher(s);
    let got = f.fetch(&Source::Local(PathBuf::from("cat.jpg"))).await;
    assert!(matches!(got, Err(SourceError::Forbidden(_))));
}

#[tokio::test]
async fn fetcher_local_source_through_fetch_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cat.jpg"), IMAGE).unwrap();
    let mut s = settings(&[]);
    s.base = Base::Dir(dir.path().to_path_buf());
    let f = fetcher(s);
    let src = super::parse("cat.jpg", Some("v=1"), &f.settings().base).unwrap();
    let got = f.fetch(&src).await.unwrap();
    assert_eq!(got.bytes, Bytes::from_static(IMAGE));
    assert!(got.storable);
    let missing = super::parse("dog.jpg", None, &f.settings().base).unwrap();
    assert_eq!(f.fetch(&missing).await, Err(SourceError::NotFound));
}
