//! Abusive clients and origins: oversized and slow request heads, origins that reset, lie about
//! their length or trickle bytes. Each gets the right status in time, and the worker is freed.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn client_headers_over_the_limit_are_431() {
    let p = proxy(|_| {}).await;
    let mut stream = tokio::net::TcpStream::connect(p.addr)
        .await
        .expect("connect");
    let big = "a".repeat(20 * 1024);
    let request = format!("GET /health HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    // Under the limit is fine.
    let (status, _) = p.raw_get("/health").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn client_sending_headers_slowly_is_cut_off() {
    let p = proxy(|c| c.server.header_timeout_ms = 300).await;
    let mut stream = tokio::net::TcpStream::connect(p.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server must close the connection");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
}

/// One worker, nothing fetched ahead, no queue: if any failure below leaked the admission or
/// the worker, the last request would be 503.
async fn one_worker() -> Proxy {
    proxy(|c| {
        c.limits.workers = 1;
        c.limits.fetch_ahead = Some(0);
        c.limits.queue = 0;
        c.source.timeout_ms = 600;
    })
    .await
}

#[tokio::test]
async fn origin_reset_is_502() {
    let addr = raw_origin(Raw::Reset).await;
    let p = one_worker().await;
    p.get(&format!("/img/w_10/http://{addr}/x.jpg"))
        .await
        .assert_error(502, "origin-error");
    p.get("/img/w_10/photo-2560x1600.jpg").await.assert_ok();
}

#[tokio::test]
async fn origin_shorter_than_its_content_length_is_502() {
    let addr = raw_origin(Raw::Lying {
        announce: 100_000,
        body: jpeg(32, 32),
    })
    .await;
    let p = one_worker().await;
    p.get(&format!("/img/w_10/http://{addr}/x.jpg"))
        .await
        .assert_error(502, "origin-error");
    p.get("/img/w_10/photo-2560x1600.jpg").await.assert_ok();
}

#[tokio::test]
async fn origin_longer_than_its_content_length_is_cut_at_it() {
    // Only the announced bytes are read: here a truncated JPEG, so 422, and nothing cached.
    let body = fixture("photo-2560x1600.jpg");
    let addr = raw_origin(Raw::Lying {
        announce: 5000,
        body,
    })
    .await;
    let p = one_worker().await;
    p.get(&format!("/img/w_10/http://{addr}/x.jpg"))
        .await
        .assert_error(422, "corrupt-image");
    p.get("/img/w_10/photo-2560x1600.jpg").await.assert_ok();
}

#[tokio::test]
async fn origin_trickling_bytes_times_out_at_the_deadline() {
    let addr = raw_origin(Raw::Trickle {
        len: 10_000,
        every: Duration::from_millis(50),
    })
    .await;
    let p = one_worker().await;
    let started = Instant::now();
    p.get(&format!("/img/w_10/http://{addr}/x.jpg"))
        .await
        .assert_error(504, "origin-timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    p.get("/img/w_10/photo-2560x1600.jpg").await.assert_ok();
}

#[tokio::test]
async fn origin_redirect_loop_is_502() {
    let origin = Origin::start(vec![
        ("/a", Reply::Redirect("/b".into())),
        ("/b", Reply::Redirect("/a".into())),
    ])
    .await;
    let p = one_worker().await;
    p.get(&format!("/img/w_10/{}", origin.url("/a")))
        .await
        .assert_error(502, "origin-error");
    assert!(
        origin.hits() <= 6,
        "bounded by max_redirects: {}",
        origin.hits()
    );
}
