//! `s3://` sources against a real S3-compatible server (`s3s-fs` on loopback, real SigV4):
//! allow-list, missing objects, refused credentials, a server that is down or hung, size caps.

use std::time::{Duration, Instant};

use imgcdn::config::Config;

use crate::s3server::{S3Server, ACCESS_KEY, SECRET_KEY};
use crate::support::*;

/// A server with bucket `photos` holding `cat.jpg` (64x32) and `a/b/my cat.jpg` (32x16).
fn server() -> S3Server {
    let s3 = S3Server::start(&["photos", "other"]);
    let photos = s3.root().join("photos");
    std::fs::write(photos.join("cat.jpg"), jpeg(64, 32)).expect("put cat.jpg");
    std::fs::create_dir_all(photos.join("a/b")).expect("key dirs");
    std::fs::write(photos.join("a/b/my cat.jpg"), jpeg(32, 16)).expect("put my cat.jpg");
    std::fs::write(s3.root().join("other/cat.jpg"), jpeg(64, 32)).expect("put other");
    s3
}

fn reach(c: &mut Config, s3: &S3Server) {
    c.source.buckets = vec!["photos".into()];
    c.source.bucket_endpoint = s3.endpoint();
    c.source.bucket_allow_http = true;
    c.source.bucket_access_key_id = ACCESS_KEY.into();
    c.source.bucket_secret_access_key = SECRET_KEY.into();
}

#[tokio::test]
async fn bucket_allowed_bucket_serves_image() {
    let s3 = server();
    let p = proxy(|c| reach(c, &s3)).await;
    let r = p.get("/img/w_32/s3://photos/cat.jpg").await;
    r.assert_ok();
    assert_eq!(r.dims(), (32, 16));
    // A key with a space and folders, and the slash-collapsed spelling.
    let r = p.get("/img/w_16/s3://photos/a/b/my%20cat.jpg").await;
    assert_eq!(r.dims(), (16, 8));
    let r = p.get("/img/w_16/s3:/photos/cat.jpg").await;
    assert_eq!(r.dims(), (16, 8));
}

#[tokio::test]
async fn bucket_not_on_allow_list_forbidden() {
    let s3 = server();
    let p = proxy(|c| reach(c, &s3)).await;
    p.get("/img/w_32/s3://other/cat.jpg")
        .await
        .assert_error(403, "source-forbidden");
    // Another provider's bucket of the same name is another bucket.
    p.get("/img/w_32/gs://photos/cat.jpg")
        .await
        .assert_error(403, "source-forbidden");
    // With no allow-list at all, bucket sources are refused.
    let closed = proxy(|c| {
        reach(c, &s3);
        c.source.buckets.clear();
    })
    .await;
    closed
        .get("/img/w_32/s3://photos/cat.jpg")
        .await
        .assert_error(403, "source-forbidden");
}

#[tokio::test]
async fn bucket_missing_key_not_found() {
    let s3 = server();
    let p = proxy(|c| reach(c, &s3)).await;
    p.get("/img/w_32/s3://photos/nope.jpg")
        .await
        .assert_error(404, "source-not-found");
}

#[tokio::test]
async fn bucket_malformed_sources_bad_request() {
    let s3 = server();
    let p = proxy(|c| reach(c, &s3)).await;
    for path in [
        "/img/w_32/s3://Photos/cat.jpg",
        "/img/w_32/s3://photos/",
        // (`..` would be resolved by the test client itself; an empty segment is not.)
        "/img/w_32/s3://photos/a//cat.jpg",
        "/img/w_32/s3://photos/cat.jpg?v=2",
    ] {
        p.get(path).await.assert_error(400, "bad-source");
    }
}

#[tokio::test]
async fn bucket_wrong_secret_forbidden() {
    let s3 = server();
    let p = proxy(|c| {
        reach(c, &s3);
        c.source.bucket_secret_access_key = "not-the-secret".into();
    })
    .await;
    p.get("/img/w_32/s3://photos/cat.jpg")
        .await
        .assert_error(403, "source-forbidden");
}

#[tokio::test]
async fn bucket_server_killed_bad_gateway() {
    let mut s3 = server();
    let p = proxy(|c| reach(c, &s3)).await;
    s3.kill();
    p.get("/img/w_32/s3://photos/cat.jpg")
        .await
        .assert_error(502, "origin-error");
}

#[tokio::test]
async fn bucket_server_frozen_gateway_timeout_within_deadline() {
    let mut s3 = server();
    let p = proxy(|c| {
        reach(c, &s3);
        c.source.timeout_ms = 1_000;
    })
    .await;
    s3.freeze();
    let started = Instant::now();
    let r = p.get("/img/w_32/s3://photos/cat.jpg").await;
    let took = started.elapsed();
    s3.thaw();
    r.assert_error(504, "origin-timeout");
    assert!(took < Duration::from_millis(2_500), "took {took:?}");
}

#[tokio::test]
async fn bucket_object_over_max_bytes_too_large() {
    let s3 = server();
    let p = proxy(|c| {
        reach(c, &s3);
        c.source.max_bytes = 100;
    })
    .await;
    p.get("/img/w_32/s3://photos/cat.jpg")
        .await
        .assert_error(413, "source-too-large");
}

#[tokio::test]
async fn bucket_version_id_is_its_own_source() {
    let s3 = server();
    let p = proxy(|c| reach(c, &s3)).await;
    p.get("/img/w_32/s3://photos/cat.jpg").await.assert_ok();
    // s3s-fs keeps no versions: what matters here is that the versioned URL is not answered
    // from the unversioned one's cache entry, so it reaches the server (and fails there).
    let r = p.get("/img/w_32/s3://photos/cat.jpg?versionId=v1").await;
    assert!(
        !r.header("x-cache").starts_with("HIT"),
        "status {}",
        r.status
    );
}
