//! Every source form: local folder, absolute URL (plain, slash-collapsed, percent-encoded),
//! `b64/`, base URL, query strings, and the SSRF policy.

use base64::Engine as _;

use crate::support::*;

const JPG: &str = "/f/photo-2560x1600.jpg";

#[tokio::test]
async fn source_plain_absolute_url() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|_| {}).await;
    let r = p.get(&format!("/img/w_100/{}", origin.url(JPG))).await;
    assert_eq!(r.dims(), (100, 63));
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn source_slash_collapsed_url() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|_| {}).await;
    let r = p
        .get(&format!("/img/w_100/http:/{}{JPG}", origin.addr))
        .await;
    assert_eq!(r.dims(), (100, 63));
}

#[tokio::test]
async fn source_percent_encoded_url() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|_| {}).await;
    let encoded = format!("http%3A%2F%2F{}%2Ff%2Fphoto-2560x1600.jpg", origin.addr);
    assert_eq!(
        p.get(&format!("/img/w_100/{encoded}")).await.dims(),
        (100, 63)
    );
}

#[tokio::test]
async fn source_b64_url() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|_| {}).await;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(origin.url(JPG));
    assert_eq!(
        p.get(&format!("/img/w_100/b64/{b64}")).await.dims(),
        (100, 63)
    );
}

#[tokio::test]
async fn source_query_string_belongs_to_the_source() {
    let origin = Origin::start(vec![(
        "/v.jpg",
        Reply::WithQuery("v=2".into(), jpeg(64, 32)),
    )])
    .await;
    let p = proxy(|_| {}).await;
    let r = p
        .get(&format!("/img/w_32/{}?v=2", origin.url("/v.jpg")))
        .await;
    assert_eq!(r.dims(), (32, 16));
    let r = p
        .get(&format!("/img/w_32/{}?v=3", origin.url("/v.jpg")))
        .await;
    r.assert_error(404, "source-not-found");
}

#[tokio::test]
async fn source_relative_to_base_url() {
    let origin = Origin::start(vec![]).await;
    let base = origin.url("/f/");
    let p = proxy(move |c| c.source.base = base).await;
    assert_eq!(
        p.get("/img/w_100/photo-2560x1600.jpg").await.dims(),
        (100, 63)
    );
}

#[tokio::test]
async fn source_redirect_is_followed() {
    let origin = Origin::start(vec![("/moved", Reply::Redirect(JPG.into()))]).await;
    let p = proxy(|_| {}).await;
    assert_eq!(
        p.get(&format!("/img/w_100/{}", origin.url("/moved")))
            .await
            .dims(),
        (100, 63)
    );
}

#[tokio::test]
async fn source_loopback_refused_without_allow_networks() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|c| c.source.allow_networks.clear()).await;
    let port = origin.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}{JPG}"),
        format!("http://localhost:{port}{JPG}"),
        format!("http://[::ffff:127.0.0.1]:{port}{JPG}"),
        format!("http://2130706433:{port}{JPG}"),
        format!("http://0177.0.0.1:{port}{JPG}"),
        format!("http://0.0.0.0:{port}{JPG}"),
        format!("http://[::1]:{port}{JPG}"),
        format!("http://169.254.169.254{JPG}"),
        format!("http://10.0.0.1{JPG}"),
    ] {
        p.get(&format!("/img/w_100/{url}"))
            .await
            .assert_error(403, "source-forbidden");
    }
    assert_eq!(origin.hits(), 0, "nothing reached the origin");
}

#[tokio::test]
async fn source_redirect_to_loopback_is_refused() {
    let target = Origin::start(vec![]).await;
    let to = target.url(JPG);
    let allowed = Origin::start_on("127.0.0.2:0", vec![("/r", Reply::Redirect(to))]).await;
    let p = proxy(|c| c.source.allow_networks = vec!["127.0.0.2/32".into()]).await;
    let r = p.get(&format!("/img/w_100/{}", allowed.url("/r"))).await;
    r.assert_error(403, "source-forbidden");
    assert_eq!(allowed.hits(), 1);
    assert_eq!(target.hits(), 0);
}

#[tokio::test]
async fn source_allow_hosts_refuses_other_hosts() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|c| c.source.allow_hosts = vec!["*.example.com".into()]).await;
    p.get(&format!("/img/w_100/{}", origin.url(JPG)))
        .await
        .assert_error(403, "source-forbidden");
    assert_eq!(origin.hits(), 0);
}

#[tokio::test]
async fn source_local_traversal_is_refused() {
    let p = proxy(|_| {}).await;
    for target in [
        "/img/w_100/..%2FCargo.toml",
        "/img/w_100/../Cargo.toml",
        "/img/w_100/a/%2e%2e/%2e%2e/Cargo.toml",
        "/img/w_100/a/../../Cargo.toml",
        "/img/w_100/%2e%2e%2f%2e%2e%2fCargo.toml",
    ] {
        let (status, body) = p.raw_get(target).await;
        assert_eq!(status, 403, "{target}: {body}");
        assert!(body.contains("source-forbidden"), "{target}: {body}");
    }
}

#[tokio::test]
async fn source_local_symlink_out_of_base_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("x.jpg"), jpeg(10, 10)).expect("write");
    std::os::unix::fs::symlink(outside.path().join("x.jpg"), dir.path().join("link.jpg"))
        .expect("symlink");
    std::fs::write(dir.path().join("in.jpg"), jpeg(10, 10)).expect("write");
    let base = dir.path().to_string_lossy().into_owned();
    let p = proxy(move |c| c.source.base = base).await;
    p.get("/img/_/in.jpg").await.assert_ok();
    p.get("/img/_/link.jpg")
        .await
        .assert_error(403, "source-forbidden");
}

#[tokio::test]
async fn source_non_http_scheme_is_a_bad_source() {
    let p = proxy(|_| {}).await;
    p.get("/img/w_100/ftp://example.com/a.jpg")
        .await
        .assert_error(400, "bad-source");
    p.get("/img/w_100/file:///etc/passwd")
        .await
        .assert_error(400, "bad-source");
}

/// An origin that records the `x-origin-key` header of every request, answering `/x.jpg` with
/// a JPEG and `/redirect?to=<url>` with a 302 to that URL.
/// (path, `x-origin-key`) of every request seen.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

struct Recorder {
    addr: std::net::SocketAddr,
    seen: Seen,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Recorder {
    async fn start() -> Recorder {
        use http_body_util::Full;
        use hyper::service::service_fn;
        use hyper_util::rt::{TokioExecutor, TokioIo};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind recorder");
        let addr = listener.local_addr().expect("recorder addr");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let log = seen.clone();
        let body = jpeg(16, 8);
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    s = listener.accept() => match s { Ok((s, _)) => s, Err(_) => continue },
                    _ = &mut stopped => break,
                };
                let log = log.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let key = req
                            .headers()
                            .get("x-origin-key")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let path = req.uri().path().to_owned();
                        log.lock().expect("log").push((path.clone(), key));
                        let to =
                            url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                                .find(|(k, _)| k == "to")
                                .map(|(_, v)| v.into_owned());
                        let response = match (path.as_str(), to) {
                            ("/x.jpg", _) => hyper::Response::new(Full::new(body.clone())),
                            ("/redirect", Some(to)) => hyper::Response::builder()
                                .status(302)
                                .header("location", to)
                                .body(Full::new(bytes::Bytes::new()))
                                .expect("redirect"),
                            _ => hyper::Response::builder()
                                .status(404)
                                .body(Full::new(bytes::Bytes::new()))
                                .expect("404"),
                        };
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Recorder {
            addr,
            seen,
            _stop: stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far: path and the `x-origin-key` it carried.
    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().expect("log").clone()
    }
}

const ORIGIN_KEY: &str = "s3cret-origin-key";

/// A proxy that sends `x-origin-key` to `host` only.
async fn proxy_with_origin_key(host: String) -> Proxy {
    proxy(move |c| {
        c.source.origins = vec![imgcdn::config::OriginConfig {
            host,
            headers: [("X-Origin-Key".to_owned(), ORIGIN_KEY.to_owned())].into(),
        }]
    })
    .await
}

fn redirect_to(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

#[tokio::test]
async fn source_origin_headers_reach_only_the_configured_host_and_port() {
    let private = Recorder::start().await;
    let other = Recorder::start().await;
    let p = proxy_with_origin_key(private.addr.to_string()).await;
    p.get(&format!("/img/w_8/{}", private.url("/x.jpg")))
        .await
        .assert_ok();
    p.get(&format!("/img/w_8/{}", other.url("/x.jpg")))
        .await
        .assert_ok();
    assert_eq!(
        private.seen(),
        vec![("/x.jpg".to_owned(), Some(ORIGIN_KEY.to_owned()))]
    );
    // Same address, another port: another origin.
    assert_eq!(other.seen(), vec![("/x.jpg".to_owned(), None)]);
}

#[tokio::test]
async fn source_origin_headers_without_port_mean_the_default_port_only() {
    let private = Recorder::start().await;
    let p = proxy_with_origin_key("127.0.0.1".to_owned()).await;
    p.get(&format!("/img/w_8/{}", private.url("/x.jpg")))
        .await
        .assert_ok();
    assert_eq!(private.seen(), vec![("/x.jpg".to_owned(), None)]);
}

#[tokio::test]
async fn source_origin_headers_not_sent_after_redirect_to_another_host() {
    let private = Recorder::start().await;
    let other = Recorder::start().await;
    let p = proxy_with_origin_key(private.addr.to_string()).await;
    let away = redirect_to(&other.url("/x.jpg"));
    p.get(&format!("/img/w_8/{}?to={away}", private.url("/redirect")))
        .await
        .assert_ok();
    assert_eq!(
        private.seen(),
        vec![("/redirect".to_owned(), Some(ORIGIN_KEY.to_owned()))]
    );
    assert_eq!(other.seen(), vec![("/x.jpg".to_owned(), None)]);
}

#[tokio::test]
async fn source_origin_headers_kept_on_redirect_within_the_host() {
    let private = Recorder::start().await;
    let p = proxy_with_origin_key(private.addr.to_string()).await;
    let within = redirect_to(&private.url("/x.jpg"));
    p.get(&format!(
        "/img/w_8/{}?to={within}",
        private.url("/redirect")
    ))
    .await
    .assert_ok();
    let key = Some(ORIGIN_KEY.to_owned());
    assert_eq!(
        private.seen(),
        vec![
            ("/redirect".to_owned(), key.clone()),
            ("/x.jpg".to_owned(), key)
        ]
    );
}
