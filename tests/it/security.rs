//! Signed URLs, presets, and the host/scheme policy, end to end.

use std::process::Command;

use imgcdn::signature::sign_path;

use crate::support::*;

const KEY: &str = "0123456789abcdef-key";
const OLD: &str = "fedcba9876543210-old";

async fn signed_proxy() -> Proxy {
    proxy(|c| c.security.signing_keys = vec![KEY.into(), OLD.into()]).await
}

#[tokio::test]
async fn signed_url_is_served_and_unsigned_or_wrong_is_403() {
    let origin = Origin::start(vec![]).await;
    let p = signed_proxy().await;
    let path = format!("/img/w_100/{}?v=1", origin.url("/f/photo-2560x1600.jpg"));
    p.get(&sign_path(KEY, &path)).await.assert_ok();
    p.get(&path).await.assert_error(403, "bad-signature");
    let wrong = sign_path("another-key-of-16+", &path);
    p.get(&wrong).await.assert_error(403, "bad-signature");
    // The query is signed too.
    let signed = sign_path(KEY, &path);
    p.get(&signed.replace("?v=1", "?v=2"))
        .await
        .assert_error(403, "bad-signature");
    // Changing the options breaks the signature.
    p.get(&signed.replace("/w_100/", "/w_101/"))
        .await
        .assert_error(403, "bad-signature");
    assert_eq!(origin.hits(), 1, "refused requests never reach the origin");
}

#[tokio::test]
async fn signed_url_any_configured_key_verifies() {
    let p = signed_proxy().await;
    p.get(&sign_path(OLD, "/img/w_50/photo-2560x1600.jpg"))
        .await
        .assert_ok();
}

#[tokio::test]
async fn signed_url_with_collapsed_scheme_slashes_verifies() {
    let origin = Origin::start(vec![]).await;
    let p = signed_proxy().await;
    let signed = sign_path(
        KEY,
        &format!("/img/w_100/{}", origin.url("/f/photo-2560x1600.jpg")),
    );
    let collapsed = signed.replace("http://", "http:/");
    assert_ne!(signed, collapsed);
    p.get(&collapsed).await.assert_ok();
}

#[tokio::test]
async fn signature_segment_is_ignored_when_signing_is_off() {
    let p = proxy(|_| {}).await;
    p.get(&sign_path(KEY, "/img/w_50/photo-2560x1600.jpg"))
        .await
        .assert_ok();
}

#[tokio::test]
async fn presets_expand_and_only_presets_refuses_the_rest() {
    let p = proxy(|c| {
        c.presets
            .insert("thumb".into(), "w_150,h_150,c_fill".into());
        c.security.only_presets = true;
    })
    .await;
    assert_eq!(
        p.get("/img/p_thumb/photo-2560x1600.jpg").await.dims(),
        (150, 150)
    );
    p.get("/img/w_151/photo-2560x1600.jpg")
        .await
        .assert_error(400, "w_151");
    p.get("/img/p_thumb,h_10/photo-2560x1600.jpg")
        .await
        .assert_error(400, "h_10");
    p.get("/img/p_nope/photo-2560x1600.jpg")
        .await
        .assert_error(400, "p_nope");
    let open = proxy(|c| {
        c.presets
            .insert("thumb".into(), "w_150,h_150,c_fill".into());
    })
    .await;
    assert_eq!(
        open.get("/img/p_thumb,w_300/photo-2560x1600.jpg")
            .await
            .dims(),
        (300, 150)
    );
}

#[tokio::test]
async fn policy_deny_hosts_and_allow_http() {
    let origin = Origin::start(vec![]).await;
    let path = format!("/img/w_50/{}", origin.url("/f/photo-2560x1600.jpg"));
    let denied = proxy(|c| c.source.deny_hosts = vec!["127.0.0.1".into()]).await;
    denied
        .get(&path)
        .await
        .assert_error(403, "source-forbidden");
    let https_only = proxy(|c| c.source.allow_http = false).await;
    https_only
        .get(&path)
        .await
        .assert_error(403, "source-forbidden");
    assert_eq!(origin.hits(), 0);
}

#[test]
fn sign_command_prints_a_path_the_server_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, format!("[security]\nsigning_keys = [\"{KEY}\"]\n")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_imgcdn"))
        .args([
            "--config",
            file.to_str().expect("utf8"),
            "sign",
            "/img/w_300/https://a.example/cat.jpg?v=1",
        ])
        .output()
        .expect("run imgcdn sign");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        printed,
        sign_path(KEY, "/img/w_300/https://a.example/cat.jpg?v=1")
    );
    assert!(printed.starts_with("/img/s_"));
}
