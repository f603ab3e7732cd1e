//! Success headers, conditional requests and HEAD.

use crate::support::*;

const PATH: &str = "/img/w_300/photo-2560x1600.jpg";

#[tokio::test]
async fn health_answers_ok() {
    let p = proxy(|_| {}).await;
    let r = p.get("/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "OK");
    assert!(r.header("content-type").starts_with("text/plain"));
}

#[tokio::test]
async fn headers_on_success() {
    let p = proxy(|_| {}).await;
    let r = p.get(PATH).await;
    r.assert_ok();
    assert_eq!(
        r.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.header("content-length"), r.body.len().to_string());
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    let etag = r.header("etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
        "{etag}"
    );
    let timing = r.header("server-timing");
    for stage in ["fetch;dur=", "decode;dur=", "resize;dur=", "encode;dur="] {
        assert!(timing.contains(stage), "{timing}");
    }
    // Same request, same bytes, same ETag.
    assert_eq!(p.get(PATH).await.header("etag"), etag);
}

#[tokio::test]
async fn headers_cache_control_comes_from_config() {
    let p = proxy(|c| c.output.cache_control = "public, max-age=60".into()).await;
    assert_eq!(
        p.get(PATH).await.header("cache-control"),
        "public, max-age=60"
    );
}

#[tokio::test]
async fn conditional_if_none_match_is_304_without_body() {
    let p = proxy(|_| {}).await;
    let etag = p.get(PATH).await.header("etag").to_string();
    let r = p.get_with(PATH, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), etag);
    let r = p
        .get_with(PATH, &[("if-none-match", "\"something-else\"")])
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn head_has_get_headers_and_no_body() {
    let p = proxy(|_| {}).await;
    let get = p.get(PATH).await;
    let head = p.request(reqwest::Method::HEAD, PATH, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for h in ["content-type", "content-length", "etag", "cache-control"] {
        assert_eq!(head.header(h), get.header(h), "{h}");
    }
}

#[tokio::test]
async fn http2_cleartext_is_served() {
    let p = proxy(|_| {}).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let r = client.get(p.url(PATH)).send().await.expect("h2 request");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
}
