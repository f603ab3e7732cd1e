//! Issue 14, "hostile load": per-job ceilings, origins that cannot starve the pool, and cache
//! semantics that stay honest downstream. Each test fails on the code before the issue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

const PHOTO: &str = "photo-2560x1600.jpg";

#[tokio::test]
async fn hostile_job_over_the_memory_budget_is_refused_at_once() {
    // A full-size PNG of the 4 MP photo needs far more than 8 MiB: refused, not run alone.
    let p = proxy(|c| c.limits.memory_budget_mb = 8).await;
    let started = Instant::now();
    p.get(&format!("/img/f_png/{PHOTO}"))
        .await
        .assert_error(413, "job-too-large");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Small jobs still run.
    p.get(&format!("/img/w_100/{PHOTO}")).await.assert_ok();
}

#[tokio::test]
async fn hostile_explicit_avif_and_huge_outputs_have_ceilings() {
    let p = proxy(|_| {}).await;
    // 2000x1250 = 2.5 MP of AVIF: over limits.max_avif_pixels (2.1 MP).
    p.get(&format!("/img/w_2000,f_avif/{PHOTO}"))
        .await
        .assert_error(413, "avif-too-large");
    // The attack from the issue: 8192x8192 (67 MP) is over max_output_pixels (25 MP), and a
    // 3.2x enlargement of the photo to that size is refused before any pixel work.
    let started = Instant::now();
    for q in [10, 20, 30] {
        p.get(&format!(
            "/img/w_8192,h_8192,c_scale,up_1,f_avif,q_{q}/{PHOTO}"
        ))
        .await
        .assert_error(413, "output-too-large");
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    p.get(&format!("/img/w_600,f_avif/{PHOTO}"))
        .await
        .assert_ok();
}

#[tokio::test]
async fn hostile_job_past_its_time_budget_answers_503_and_frees_the_worker() {
    let p = proxy(|c| {
        c.limits.job_timeout_ms = 1;
        c.limits.workers = 1;
    })
    .await;
    let r = p.get(&format!("/img/w_1000,f_png/{PHOTO}")).await;
    r.assert_error(503, "job-timeout");
    assert_eq!(r.header("retry-after"), "1");
}

#[tokio::test]
async fn hostile_slow_origin_never_makes_local_renders_wait() {
    // One worker, nothing fetched ahead, no queue: before, 20 abandoned requests to a slow
    // origin held the only admission and every local render answered 503.
    let origin = Origin::start(vec![(
        "/slow.jpg",
        Reply::SlowBody(Duration::from_secs(3), jpeg(64, 64)),
    )])
    .await;
    let p = Arc::new(
        proxy(|c| {
            c.limits.workers = 1;
            c.limits.fetch_ahead = Some(0);
            c.limits.queue = 0;
        })
        .await,
    );
    let short = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let mut abandoned = Vec::new();
    for n in 0..20 {
        let url = p.url(&format!("/img/w_10/{}?n={n}", origin.url("/slow.jpg")));
        let c = short.clone();
        abandoned.push(tokio::spawn(
            async move { c.get(url).send().await.is_err() },
        ));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    p.get(&format!("/img/w_100/{PHOTO}")).await.assert_ok();
    p.get("/img/w_90/exif-orient6.jpg").await.assert_ok();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "local renders waited {:?}",
        started.elapsed()
    );
    for a in abandoned {
        assert!(
            a.await.expect("task"),
            "the slow request should have timed out"
        );
    }
}

#[tokio::test]
async fn hostile_abandoned_flights_are_cancelled() {
    // Every client of a flight has gone: the fetch is dropped, so the origin sees the
    // connection close long before it would have answered, and a later request starts anew.
    let origin = Origin::start(vec![(
        "/slow.jpg",
        Reply::SlowBody(Duration::from_millis(1500), jpeg(64, 64)),
    )])
    .await;
    let p = proxy(|_| {}).await;
    let path = format!("/img/w_10/{}", origin.url("/slow.jpg"));
    let short = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    assert!(short.get(p.url(&path)).send().await.is_err());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        p.state_flights_idle(),
        "the abandoned flight is still running"
    );
    p.get(&path).await.assert_ok();
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn hostile_no_store_and_private_origins_are_not_kept_downstream() {
    let body = jpeg(64, 64);
    let origin = Origin::start(vec![
        (
            "/ns.jpg",
            Reply::WithHeader("cache-control", "no-store", body.clone()),
        ),
        (
            "/priv.jpg",
            Reply::WithHeader("cache-control", "private, max-age=60", body.clone()),
        ),
        ("/ok.jpg", Reply::Body("image/jpeg", body)),
    ])
    .await;
    let p = proxy(|_| {}).await;
    for path in ["/ns.jpg", "/priv.jpg"] {
        let r = p.get(&format!("/img/w_32/{}", origin.url(path))).await;
        r.assert_ok();
        assert_eq!(r.header("cache-control"), "private, no-store", "{path}");
    }
    let r = p.get(&format!("/img/w_32/{}", origin.url("/ok.jpg"))).await;
    assert!(r.header("cache-control").starts_with("public"));
}

#[tokio::test]
async fn hostile_deterministic_failures_are_remembered_briefly() {
    let origin = Origin::start(vec![
        ("/gone.jpg", Reply::Status(404)),
        ("/broken", Reply::Status(500)),
    ])
    .await;
    let p = proxy(|_| {}).await;
    for w in [10, 10, 10, 20, 30, 10, 10, 10, 10, 10] {
        let r = p
            .get(&format!("/img/w_{w}/{}", origin.url("/gone.jpg")))
            .await;
        r.assert_error(404, "source-not-found");
        assert_eq!(r.header("cache-control"), "public, max-age=30");
    }
    assert_eq!(origin.hits(), 1, "one origin fetch for ten requests");
    // 5xx is never remembered.
    for _ in 0..3 {
        let r = p.get(&format!("/img/w_10/{}", origin.url("/broken"))).await;
        r.assert_error(502, "origin-error");
    }
    assert_eq!(origin.hits(), 4);
    // Off: every request asks again.
    let p = proxy(|c| c.cache.negative_ttl_s = 0).await;
    for _ in 0..2 {
        let r = p
            .get(&format!("/img/w_10/{}", origin.url("/gone.jpg")))
            .await;
        assert_eq!(r.header("cache-control"), "no-store");
    }
    assert_eq!(origin.hits(), 6);
}

#[tokio::test]
async fn hostile_fallback_is_never_304_and_carries_no_age() {
    let origin = Origin::start(vec![("/gone.jpg", Reply::Status(404))]).await;
    let p = proxy(|c| c.error.fallback_image = PHOTO.into()).await;
    let path = format!("/img/w_50/{}", origin.url("/gone.jpg"));
    let first = p.get(&path).await;
    assert_eq!(first.status, 404);
    let etag = first.header("etag").to_owned();
    let again = p.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.header("age"), "");
    assert!(!again.body.is_empty());
}

#[tokio::test]
async fn hostile_every_response_is_nosniff() {
    let p = proxy(|_| {}).await;
    for path in ["/health", "/img/bogus_1/x.jpg", "/nope"] {
        let r = p.get(path).await;
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
    }
}

#[tokio::test]
async fn hostile_client_hints_cannot_override_presets_or_mint_variants() {
    let p = proxy(|c| {
        c.output.client_hints = true;
        c.presets
            .insert("thumb".into(), "w_150,h_150,c_fill".into());
    })
    .await;
    // The preset fixes the width: the hint is ignored (before, 1200x45).
    let r = p
        .get_with(&format!("/img/p_thumb/{PHOTO}"), &[("width", "4000")])
        .await;
    r.assert_ok();
    assert_eq!(r.dims(), (150, 150));
    // A DPR hint is quantised: 3.137 and 2.9 are both 3 (one variant, one key).
    let a = p
        .get_with(&format!("/img/w_100/{PHOTO}"), &[("sec-ch-dpr", "3.137")])
        .await;
    let b = p
        .get_with(&format!("/img/w_100/{PHOTO}"), &[("sec-ch-dpr", "2.9")])
        .await;
    assert_eq!(a.dims(), (300, 188));
    assert_eq!(b.header("x-cache"), "HIT memory");
    // Widths snap up to a ladder: 641 and 700 share one variant.
    let a = p
        .get_with(&format!("/img/_/{PHOTO}"), &[("width", "641")])
        .await;
    let b = p
        .get_with(&format!("/img/_/{PHOTO}"), &[("width", "700")])
        .await;
    assert_eq!(a.dims().0, 750);
    assert_eq!(b.header("x-cache"), "HIT memory");
}

#[tokio::test]
async fn hostile_client_hints_add_no_variants_under_only_presets() {
    let p = proxy(|c| {
        c.output.client_hints = true;
        c.security.only_presets = true;
        c.presets.insert("small".into(), "h_100".into());
    })
    .await;
    let r = p
        .get_with(
            &format!("/img/p_small/{PHOTO}"),
            &[("width", "640"), ("sec-ch-dpr", "2"), ("save-data", "on")],
        )
        .await;
    r.assert_ok();
    assert_eq!(r.dims(), (160, 100));
}

#[tokio::test]
async fn hostile_local_file_replaced_in_place_is_served_fresh() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("logo.jpg");
    std::fs::write(&file, jpeg(64, 32)).expect("write");
    let base = dir.path().to_string_lossy().into_owned();
    let p = proxy(move |c| c.source.base = base).await;
    assert_eq!(p.get("/img/w_10/logo.jpg").await.dims(), (10, 5));
    assert_eq!(
        p.get("/img/w_10/logo.jpg").await.header("x-cache"),
        "HIT memory"
    );
    // Same name, new content (a new inode and size, as a deploy writes it).
    let tmp = dir.path().join("logo.jpg.new");
    std::fs::write(&tmp, jpeg(32, 64)).expect("write");
    std::fs::rename(&tmp, &file).expect("rename");
    let r = p.get("/img/w_10/logo.jpg").await;
    assert_eq!(r.header("x-cache"), "MISS");
    assert_eq!(r.dims(), (10, 20));
}

#[tokio::test]
async fn hostile_origin_ports_are_80_and_443_by_default_and_cloud_metadata_is_refused() {
    let origin = Origin::start(vec![("/x.jpg", Reply::Body("image/jpeg", jpeg(8, 8)))]).await;
    let p = proxy(|c| c.source.allow_ports = vec![80, 443]).await;
    let r = p.get(&format!("/img/w_4/{}", origin.url("/x.jpg"))).await;
    r.assert_error(403, "port not allowed");
    assert_eq!(origin.hits(), 0);
    for host in ["168.63.129.16", "169.254.169.254", "100.100.100.200"] {
        p.get(&format!("/img/w_4/http://{host}/metadata"))
            .await
            .assert_error(403, "source-forbidden");
    }
}

#[tokio::test]
async fn hostile_allow_networks_scoped_to_host_and_port() {
    let origin = Origin::start(vec![("/x.jpg", Reply::Body("image/jpeg", jpeg(8, 8)))]).await;
    let port = origin.addr.port();
    // Loopback is let in for `localhost` on the origin's port only.
    let p =
        proxy(|c| c.source.allow_networks = vec![format!("localhost=127.0.0.0/8:{port}")]).await;
    p.get(&format!("/img/w_4/http://localhost:{port}/x.jpg"))
        .await
        .assert_ok();
    assert_eq!(origin.hits(), 1);
    // The same address by another name, or as a literal: refused before any request.
    p.get(&format!("/img/w_4/http://127.0.0.1:{port}/x.jpg"))
        .await
        .assert_error(403, "source-forbidden");
    // Another port of the scoped host: refused before anything is resolved or sent.
    let other = Origin::start(vec![("/x.jpg", Reply::Body("image/jpeg", jpeg(8, 8)))]).await;
    p.get(&format!(
        "/img/w_4/http://localhost:{}/x.jpg",
        other.addr.port()
    ))
    .await
    .assert_error(403, "port not allowed");
    assert_eq!((origin.hits(), other.hits()), (1, 0));
    // A network scoped to a port without a host serves IP-literal URLs on that port only.
    let p = proxy(|c| c.source.allow_networks = vec![format!("127.0.0.1/32:{port}")]).await;
    p.get(&format!("/img/w_4/http://127.0.0.1:{port}/x.jpg?n=2"))
        .await
        .assert_ok();
    p.get(&format!(
        "/img/w_4/http://127.0.0.1:{}/x.jpg",
        other.addr.port()
    ))
    .await
    .assert_error(403, "source-forbidden");
    p.get(&format!("/img/w_4/http://localhost:{port}/x.jpg?n=3"))
        .await
        .assert_error(403, "source-forbidden");
    assert_eq!(other.hits(), 0);
}
