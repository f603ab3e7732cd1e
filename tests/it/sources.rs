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
