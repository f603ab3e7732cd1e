//! Every error status the service documents, each with a short text body and `no-store`.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn error_bad_option_is_400_naming_the_token() {
    let p = proxy(|_| {}).await;
    p.get("/img/w_abc/photo-2560x1600.jpg")
        .await
        .assert_error(400, "w_abc");
    p.get("/img/zz_1/photo-2560x1600.jpg")
        .await
        .assert_error(400, "zz_1");
    p.get("/img/w_1,w_2/photo-2560x1600.jpg")
        .await
        .assert_error(400, "w_2");
    p.get("/img/dpr_5/photo-2560x1600.jpg")
        .await
        .assert_error(400, "dpr_5");
}

#[tokio::test]
async fn error_missing_source_is_400() {
    let p = proxy(|_| {}).await;
    p.get("/img/w_100/")
        .await
        .assert_error(400, "missing-source");
    p.get("/img/w_100")
        .await
        .assert_error(400, "missing-source");
}

#[tokio::test]
async fn error_not_found_origin_and_local_is_404() {
    let origin = Origin::start(vec![("/gone", Reply::Status(410))]).await;
    let p = proxy(|_| {}).await;
    p.get(&format!("/img/_/{}", origin.url("/nope.jpg")))
        .await
        .assert_error(404, "source-not-found");
    p.get(&format!("/img/_/{}", origin.url("/gone")))
        .await
        .assert_error(404, "source-not-found");
    p.get("/img/_/nope.jpg")
        .await
        .assert_error(404, "source-not-found");
}

#[tokio::test]
async fn error_unknown_route_is_404_and_other_methods_405() {
    let p = proxy(|_| {}).await;
    p.get("/nope").await.assert_error(404, "no-route");
    let r = p
        .request(reqwest::Method::POST, "/img/w_1/x.jpg", &[])
        .await;
    r.assert_error(405, "method-not-allowed");
    assert_eq!(r.header("allow"), "GET, HEAD");
}

#[tokio::test]
async fn error_source_bytes_over_limit_is_413() {
    let p = proxy(|c| c.source.max_bytes = 10_000).await;
    p.get("/img/w_100/photo-2560x1600.jpg")
        .await
        .assert_error(413, "source-too-large");
    let origin = Origin::start(vec![]).await;
    let r = p
        .get(&format!(
            "/img/w_100/{}",
            origin.url("/f/photo-2560x1600.jpg")
        ))
        .await;
    r.assert_error(413, "source-too-large");
}

#[tokio::test]
async fn error_source_pixels_over_limit_is_413_before_decoding() {
    let origin = Origin::start(vec![(
        "/bomb.png",
        Reply::Body("image/png", png_header_only(100_000, 100_000)),
    )])
    .await;
    let p = proxy(|_| {}).await;
    p.get(&format!("/img/w_100/{}", origin.url("/bomb.png")))
        .await
        .assert_error(413, "source-too-many-pixels");
    let p = proxy(|c| c.limits.max_source_pixels = 1_000_000).await;
    p.get("/img/w_100/photo-2560x1600.jpg")
        .await
        .assert_error(413, "source-too-many-pixels");
}

#[tokio::test]
async fn error_animation_pixels_over_limit_is_413() {
    // The fixture has five frames of 480x300: 720 000 pixels summed.
    let p = proxy(|c| c.limits.max_animation_pixels = 700_000).await;
    p.get("/img/w_100/animated-480x300.gif")
        .await
        .assert_error(413, "animation-too-large");
    let p = proxy(|c| c.limits.max_animation_pixels = 720_000).await;
    assert_eq!(p.get("/img/w_100/animated-480x300.gif").await.status, 200);
}

#[tokio::test]
async fn error_output_over_limit_is_413() {
    let p = proxy(|c| c.limits.max_output_pixels = 1_000_000).await;
    p.get("/img/w_2000,h_2000,c_pad/photo-2560x1600.jpg")
        .await
        .assert_error(413, "output-too-large");
}

#[tokio::test]
async fn error_url_too_long_is_414() {
    let p = proxy(|c| c.server.max_url_bytes = 200).await;
    let long = format!("/img/w_100/{}.jpg", "a".repeat(300));
    p.get(&long).await.assert_error(414, "url-too-long");
}

#[tokio::test]
async fn error_not_an_image_is_415() {
    let origin = Origin::start(vec![
        (
            "/page",
            Reply::Body(
                "image/jpeg",
                bytes::Bytes::from_static(b"<!doctype html><html><body>500</body></html>"),
            ),
        ),
        (
            "/pdf",
            Reply::Body(
                "image/png",
                bytes::Bytes::from_static(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
            ),
        ),
        ("/empty", Reply::Body("image/png", bytes::Bytes::new())),
    ])
    .await;
    let p = proxy(|_| {}).await;
    for path in ["/page", "/pdf", "/empty"] {
        p.get(&format!("/img/w_100/{}", origin.url(path)))
            .await
            .assert_error(415, "unsupported-format");
    }
}

#[tokio::test]
async fn error_truncated_image_is_422() {
    let full = fixture("photo-2560x1600.jpg");
    let truncated = full.slice(..full.len() * 6 / 10);
    let png = alpha_png();
    let png_cut = png.slice(..png.len() / 2);
    let origin = Origin::start(vec![
        ("/cut.jpg", Reply::Body("image/jpeg", truncated)),
        ("/cut.png", Reply::Body("image/png", png_cut)),
    ])
    .await;
    let p = proxy(|_| {}).await;
    p.get(&format!("/img/w_100/{}", origin.url("/cut.jpg")))
        .await
        .assert_error(422, "corrupt-image");
    p.get(&format!("/img/w_100/{}", origin.url("/cut.png")))
        .await
        .assert_error(422, "corrupt-image");
}

#[tokio::test]
async fn error_origin_failure_is_502() {
    let origin = Origin::start(vec![("/boom", Reply::Status(500))]).await;
    let p = proxy(|_| {}).await;
    p.get(&format!("/img/w_100/{}", origin.url("/boom")))
        .await
        .assert_error(502, "origin-error");
    // Nothing listens on port 1.
    p.get("/img/w_100/http://127.0.0.1:1/x.jpg")
        .await
        .assert_error(502, "origin-error");
}

#[tokio::test]
async fn error_origin_timeout_is_504() {
    let origin = Origin::start(vec![("/slow", Reply::Sleep(Duration::from_secs(5)))]).await;
    let p = proxy(|c| c.source.timeout_ms = 300).await;
    let started = std::time::Instant::now();
    p.get(&format!("/img/w_100/{}", origin.url("/slow")))
        .await
        .assert_error(504, "origin-timeout");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn error_overload_is_503_with_retry_after() {
    // One worker, no queue, many concurrent full-size renders: some must be refused at once.
    let p = std::sync::Arc::new(
        proxy(|c| {
            c.limits.workers = 1;
            c.limits.queue = 0;
            // Only admission is under test: a busy CI machine must not turn waits into 503
            // job-timeout.
            c.limits.job_timeout_ms = 300_000;
        })
        .await,
    );
    let mut tasks = Vec::new();
    for i in 0..12 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            p.get(&format!("/img/w_2000,q_{}/photo-2560x1600.jpg", 50 + i))
                .await
        }));
    }
    let mut refused = 0;
    for t in tasks {
        let r = t.await.expect("task");
        match r.status {
            200 => {}
            503 => {
                r.assert_error(503, "overloaded");
                assert_eq!(r.header("retry-after"), "1");
                refused += 1;
            }
            s => panic!("unexpected status {s}: {}", r.text()),
        }
    }
    assert!(refused > 0, "no request was refused");
}

#[tokio::test]
async fn error_fetches_to_one_host_are_capped() {
    // Two fetches per host: however many requests wait, the origin never sees more than two
    // fetches at once, and everyone queued is served in the end.
    let body = fixture("photo-2560x1600.jpg");
    let origin = Origin::start(vec![(
        "/slow.jpg",
        Reply::SlowBody(Duration::from_millis(100), body),
    )])
    .await;
    let p = Arc::new(
        proxy(|c| {
            c.limits.workers = 1;
            c.limits.fetch_ahead = Some(1);
            c.limits.queue = 16;
            c.source.max_per_host = 2;
        })
        .await,
    );
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (p, path) = (
            p.clone(),
            format!("/img/w_100/{}?n={n}", origin.url("/slow.jpg")),
        );
        tasks.push(tokio::spawn(async move { p.get(&path).await }));
    }
    for t in tasks {
        t.await.expect("task").assert_ok();
    }
    assert_eq!(origin.hits(), 8);
    assert!(
        origin.peak_concurrency() <= 2,
        "{} fetches at once",
        origin.peak_concurrency()
    );
}
