//! Operating the server: `/ready`, request ids, graceful shutdown with a grace period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgcdn::config::{Config, Settings};
use imgcdn::server::{self, AppState};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::support::*;

const PHOTO: &str = "photo-2560x1600.jpg";

#[tokio::test]
async fn ready_answers_ready_even_when_the_disk_cache_cannot_be_written() {
    let p = proxy(|_| {}).await;
    let r = p.get("/ready").await;
    assert_eq!((r.status, r.text().trim()), (200, "ready"));
    assert_eq!(r.header("cache-control"), "no-store");
    assert_eq!(p.metric("imgcdn_disk_degraded").await, 0.0);
    // A cache directory under a regular file can never be created (even as root).
    let blocker = tempfile::NamedTempFile::new().expect("file");
    let dir = blocker.path().join("cache").to_string_lossy().into_owned();
    let broken = proxy_with(move |c| c.cache.dir = dir).await;
    // Readiness does not depend on the disk tier (a full volume would take the whole fleet
    // out); images are served from memory, /health stays OK, and the metric tells.
    let r = broken.get("/ready").await;
    assert_eq!((r.status, r.text().trim()), (200, "ready"));
    broken.get(&format!("/img/w_50/{PHOTO}")).await.assert_ok();
    let again = broken.get(&format!("/img/w_50/{PHOTO}")).await;
    assert_eq!(again.header("x-cache"), "HIT memory");
    assert_eq!(broken.get("/health").await.text(), "OK");
    assert_eq!(broken.metric("imgcdn_disk_degraded").await, 1.0);
    assert!(broken.metric("imgcdn_disk_write_failures_total").await >= 1.0);
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_made_up_otherwise() {
    let p = proxy(|_| {}).await;
    let given = p
        .get_with("/health", &[("x-request-id", "req-42.a:b")])
        .await;
    assert_eq!(given.header("x-request-id"), "req-42.a:b");
    for bad in ["has space", "", &"x".repeat(129)] {
        let r = p.get_with("/health", &[("x-request-id", bad)]).await;
        let id = r.header("x-request-id");
        assert_ne!(id, bad);
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
    let a = p.get("/nope").await;
    let b = p.get("/nope").await;
    assert_eq!(a.status, 404);
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
}

/// Start a server whose shutdown the test triggers; returns its address, the trigger and the
/// task running it.
async fn server(
    adjust: impl FnOnce(&mut Config),
) -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let mut config = Config::default();
    config.source.allow_networks = vec!["127.0.0.0/8".into()];
    config.source.allow_ports = Vec::new();
    config.cache.disk_mb = 0;
    adjust(&mut config);
    let state =
        Arc::new(AppState::new(Settings::try_from(config).expect("config")).expect("state"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::run(listener, state, async move {
        let _ = stopped.await;
    }));
    (base, stop, task)
}

#[tokio::test]
async fn shutdown_lets_a_slow_request_in_flight_finish() {
    let origin = Origin::start(vec![(
        "/slow.jpg",
        Reply::SlowBody(Duration::from_millis(700), fixture(PHOTO)),
    )])
    .await;
    let (base, stop, task) = server(|_| {}).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("{base}/img/w_64/{}", origin.url("/slow.jpg"));
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop.send(());
    let r = in_flight
        .await
        .expect("join")
        .expect("the request in flight is answered");
    assert_eq!(r.status(), 200);
    assert!(!r.bytes().await.expect("body").is_empty());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("server stops")
        .expect("join")
        .expect("run ok");
    assert!(
        client.get(format!("{base}/health")).send().await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_after_the_grace_period() {
    let origin = Origin::start(vec![("/stuck.jpg", Reply::Sleep(Duration::from_secs(60)))]).await;
    let (base, stop, task) = server(|c| {
        c.server.shutdown_grace_ms = 200;
        c.source.timeout_ms = 120_000;
    })
    .await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("{base}/img/w_64/{}", origin.url("/stuck.jpg"));
    let _stuck = tokio::spawn(async move { client.get(url).send().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("server stops long before the 60 s origin")
        .expect("join")
        .expect("run ok");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn metrics_count_requests_stages_cache_and_origin_errors() {
    let origin = Origin::start(vec![("/gone.jpg", Reply::Status(500))]).await;
    let p = proxy(|_| {}).await;
    let path = format!("/img/w_64/{PHOTO}");
    p.get(&path).await.assert_ok();
    p.get(&path).await.assert_ok();
    p.get(&format!("/img/w_64/{}", origin.url("/gone.jpg")))
        .await;
    let r = p.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .starts_with("application/openmetrics-text"));
    let text = r.text();
    for needle in [
        "imgcdn_http_requests_total{route=\"img\",status=\"200\"} 2",
        "imgcdn_http_requests_total{route=\"img\",status=\"502\"} 1",
        "imgcdn_cache_lookups_total{result=\"memory_hit\"} 1",
        "imgcdn_cache_lookups_total{result=\"miss\"} 2",
        "imgcdn_stage_duration_seconds_count{stage=\"decode\"} 1",
        "imgcdn_stage_duration_seconds_count{stage=\"fetch\"} 1",
        "imgcdn_origin_errors_total{class=\"origin-error\"} 1",
        "imgcdn_cache_entries{tier=\"memory\"} 1",
        // The rendition: the original is held in memory until its second use.
        "imgcdn_cache_entries{tier=\"disk\"} 1",
        "imgcdn_workers_busy 0",
        "imgcdn_queue_depth 0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let resident = text
        .lines()
        .find_map(|l| l.strip_prefix("imgcdn_process_resident_memory_bytes "))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("resident memory");
    assert!(resident > 1_000_000, "{resident}");
}

#[tokio::test]
async fn metrics_token_is_required_when_set() {
    let p = proxy(|c| c.metrics.token = "s3cret-metrics".into()).await;
    p.get("/metrics").await.assert_error(401, "unauthorized");
    let ok = p
        .get_with("/metrics", &[("authorization", "Bearer s3cret-metrics")])
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn http2_cleartext_with_prior_knowledge() {
    let p = proxy(|_| {}).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let r = client.get(p.url("/health")).send().await.expect("h2c");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.expect("body"), "OK");
}

#[tokio::test]
async fn tls_with_alpn_h2_when_a_certificate_is_configured() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    let (c, k) = (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    let p = proxy(move |cfg| {
        cfg.server.tls_cert = c;
        cfg.server.tls_key = k;
    })
    .await;
    let addr: std::net::SocketAddr = p
        .url("")
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(
            reqwest::Certificate::from_pem(made.cert.pem().as_bytes()).expect("pem"),
        )
        .resolve("localhost", addr)
        .build()
        .expect("client");
    let url = format!("https://localhost:{}", addr.port());
    let r = client
        .get(format!("{url}/health"))
        .send()
        .await
        .expect("https");
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN h2");
    assert_eq!(r.text().await.expect("body"), "OK");
    let img = client
        .get(format!("{url}/img/w_40/{PHOTO}"))
        .send()
        .await
        .expect("image over TLS");
    assert_eq!(img.status(), 200);
    // Plain HTTP to the TLS port gets no answer.
    assert!(reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(p.url("/health"))
        .send()
        .await
        .is_err());
    // A key without its certificate stops start-up, naming the key.
    let mut bad = Config::default();
    bad.server.tls_key = key.to_string_lossy().into_owned();
    let err = Settings::try_from(bad).expect_err("half a TLS config");
    assert!(err.to_string().contains("server.tls_cert"), "{err}");
}
