//! `imgcdn warm`: online against a running server, offline into a cache directory, and the
//! binary's exit status.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use imgcdn::config::{Config, Settings};
use imgcdn::server::AppState;
use imgcdn::warm::{self, Expand};

use crate::support::*;

const PHOTO: &str = "photo-2560x1600.jpg";

#[tokio::test]
async fn warm_online_makes_then_finds_cached_and_counts_failures() {
    let p = proxy(|_| {}).await;
    let expand = Expand {
        sources: vec![PHOTO.into()],
        widths: vec![100, 200],
        options: "f_webp".into(),
    };
    let targets = warm::targets("/img/w_50/missing.jpg\n", &expand);
    let server = p.url("");
    let first = warm::online(&server, targets.clone(), 4, "image/webp", false)
        .await
        .expect("client");
    assert_eq!((first.made, first.cached), (2, 0), "{first}");
    assert_eq!(first.failed.get("404"), Some(&1));
    let again = warm::online(&server, targets, 4, "image/webp", false)
        .await
        .expect("client");
    assert_eq!((again.made, again.cached), (0, 2), "{again}");
    let r = p.get(&format!("/img/w_200,f_webp/{PHOTO}")).await;
    assert_eq!(r.header("x-cache"), "HIT memory");
}

#[tokio::test]
async fn warm_offline_fills_the_cache_a_later_server_serves_from() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_string_lossy().into_owned();
    let mut config = Config::default();
    config.source.base = fixtures_dir().to_string_lossy().into_owned();
    config.cache.dir = d.clone();
    let state =
        Arc::new(AppState::new(Settings::try_from(config).expect("config")).expect("state"));
    let targets = vec![
        format!("/img/w_120,f_auto/{PHOTO}"),
        format!("https://cdn.example/img/w_60/{PHOTO}"),
        format!("/meta/w_120/{PHOTO}"),
    ];
    let summary = warm::offline(state, targets, 2, "image/webp", false).await;
    assert_eq!((summary.made, summary.failures()), (3, 0), "{summary}");
    let p = proxy_with(move |c| c.cache.dir = d).await;
    for (path, accept) in [
        (format!("/img/w_120,f_auto/{PHOTO}"), "image/webp"),
        (format!("/img/w_60/{PHOTO}"), "*/*"),
        (format!("/meta/w_120/{PHOTO}"), "*/*"),
    ] {
        let r = p.get_with(&path, &[("accept", accept)]).await;
        r.assert_ok();
        assert_eq!(r.header("x-cache"), "HIT disk", "{path}");
    }
}

#[tokio::test]
async fn warm_binary_exits_non_zero_when_a_request_fails() {
    let p = proxy(|_| {}).await;
    let server = p.url("");
    let bin = env!("CARGO_BIN_EXE_imgcdn");
    let run = |list: &'static str| {
        let server = server.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(bin)
                .args(["warm", "--server", &server, "-"])
                .current_dir(std::env::temp_dir())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(list.as_bytes())
                .expect("write");
            child.wait_with_output().expect("output")
        })
    };
    let ok = run("/img/w_40/photo-2560x1600.jpg\n").await.expect("join");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 made, 0 already cached, 0 failed"));
    let bad = run("/img/w_40/photo-2560x1600.jpg\n/img/w_40/nope.jpg\n")
        .await
        .expect("join");
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.contains("0 made, 1 already cached, 1 failed (404: 1)"),
        "{out}"
    );
}
