//! The playground page: served with the samples and options filled in, off when configured
//! off, and driven in a real headless Chromium (`tests/browser/playground.mjs`, Playwright;
//! `.ci/run` installs Debian's chromium and node; `npm ci` runs here when needed).

use std::path::Path;
use std::process::Command;

use crate::support::*;

#[tokio::test]
async fn playground_page_lists_samples_and_can_be_turned_off() {
    let p = proxy(|_| {}).await;
    let r = p.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert!(r
        .header("content-security-policy")
        .contains("default-src 'none'"));
    let html = r.text();
    assert!(
        html.contains("\"samples\":[") && html.contains("photo-2560x1600.jpg"),
        "samples filled in"
    );
    assert!(html.contains("\"sign\":false"));
    assert_eq!(
        p.get("/playground/sign?path=/img/w_1/x.jpg").await.status,
        404
    );
    let off = proxy(|c| c.server.playground = false).await;
    assert_eq!(off.get("/").await.status, 404);
}

#[tokio::test]
async fn playground_signs_only_when_allowed() {
    let key = "0123456789abcdef0123";
    let p = proxy(|c| {
        c.security.signing_keys = vec![key.into()];
        c.server.playground_sign = true;
    })
    .await;
    let r = p
        .get("/playground/sign?path=%2Fimg%2Fw_100%2Fphoto-2560x1600.jpg")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let signed = r.text().trim().to_owned();
    assert_eq!(
        signed,
        imgcdn::signature::sign_path(key, "/img/w_100/photo-2560x1600.jpg")
    );
    p.get(&signed).await.assert_ok();
    assert!(p.get("/").await.text().contains("\"sign\":true"));
    p.get("/playground/sign?path=/etc/passwd")
        .await
        .assert_error(400, "");
}

#[tokio::test]
async fn playground_in_headless_chromium_follows_the_width() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm runs (node and npm are needed for the browser test)");
        assert!(status.success(), "npm ci in tests/browser");
    }
    let p = proxy(|_| {}).await;
    let base = p.url("");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("playground.mjs"))
            .arg(base)
            .output()
            .expect("node runs")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("ok"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
