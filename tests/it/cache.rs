//! The cache, end to end, with a counting origin: hits, coalescing, the source cache, restart
//! from disk, corrupt entries, the disk cap, purge (also while a render is in flight), and
//! origins that forbid storing.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

const JPG: &str = "/f/photo-2560x1600.jpg";

fn img(opts: &str, origin: &Origin, path: &str) -> String {
    format!("/img/{opts}/{}", origin.url(path))
}

#[tokio::test]
async fn cache_second_identical_request_is_a_memory_hit() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|_| {}).await;
    let path = img("w_100", &origin, JPG);
    let first = p.get(&path).await;
    first.assert_ok();
    assert_eq!(first.header("x-cache"), "MISS");
    assert!(first.header("server-timing").contains("decode;dur="));
    let second = p.get(&path).await;
    second.assert_ok();
    assert_eq!(second.header("x-cache"), "HIT memory");
    assert!(second.header("age").parse::<u64>().is_ok(), "Age on hits");
    assert_eq!(second.header("etag"), first.header("etag"));
    assert_eq!(second.body, first.body);
    assert_eq!(origin.hits(), 1);
    let tag = first.header("surrogate-key");
    assert_eq!(tag.len(), 64);
    assert_eq!(second.header("surrogate-key"), tag);
    assert_eq!(second.header("cache-tag"), tag);
}

#[tokio::test]
async fn cache_equivalent_options_share_an_entry() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|_| {}).await;
    p.get(&img("w_200,h_100", &origin, JPG)).await.assert_ok();
    assert_eq!(
        p.get(&img("h_100,w_200", &origin, JPG))
            .await
            .header("x-cache"),
        "HIT memory"
    );
    p.get(&img("w_150,dpr_2", &origin, JPG)).await.assert_ok();
    assert_eq!(
        p.get(&img("w_300", &origin, JPG)).await.header("x-cache"),
        "HIT memory"
    );
}

#[tokio::test]
async fn cache_hit_answers_304_to_a_matching_etag() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|_| {}).await;
    let path = img("w_100", &origin, JPG);
    let etag = p.get(&path).await.header("etag").to_string();
    let r = p.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("x-cache"), "HIT memory");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn cache_50_concurrent_identical_requests_make_one_fetch() {
    let body = fixture("photo-2560x1600.jpg");
    let origin = Origin::start(vec![(
        "/slow.jpg",
        Reply::SlowBody(Duration::from_millis(300), body),
    )])
    .await;
    let p = Arc::new(proxy(|_| {}).await);
    let path = img("w_120", &origin, "/slow.jpg");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (p, path) = (p.clone(), path.clone());
        tasks.push(tokio::spawn(async move { p.get(&path).await }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let r = t.await.expect("task");
        r.assert_ok();
        bodies.push(r.body);
    }
    assert_eq!(origin.hits(), 1);
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "everyone got the same bytes"
    );
}

#[tokio::test]
async fn cache_originals_are_written_to_disk_on_their_second_use_only() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_string_lossy().into_owned();
    let origin = Origin::start(vec![]).await;
    let p = proxy_with(move |c| c.cache.dir = d).await;
    p.get(&img("w_100", &origin, JPG)).await.assert_ok();
    assert_eq!(
        files_under(dir.path()).len(),
        1,
        "a source asked for in one size: its rendition only"
    );
    // A second size is made from the original held in memory, which is kept now.
    let r = p.get(&img("w_200", &origin, JPG)).await;
    assert_eq!(r.header("x-cache"), "MISS");
    assert_eq!(r.dims().0, 200);
    assert_eq!(origin.hits(), 1);
    assert_eq!(
        files_under(dir.path()).len(),
        3,
        "two renditions and the original"
    );
    p.get(&img("w_300", &origin, JPG)).await.assert_ok();
    assert_eq!(
        origin.hits(),
        1,
        "the third size is made from the kept original"
    );
}

#[tokio::test]
async fn cache_variants_of_one_source_fetch_it_once() {
    let body = fixture("photo-2560x1600.jpg");
    let origin = Origin::start(vec![(
        "/slow.jpg",
        Reply::SlowBody(Duration::from_millis(300), body),
    )])
    .await;
    let p = Arc::new(proxy(|_| {}).await);
    // Sequential: the original is kept.
    p.get(&img("w_100", &origin, "/slow.jpg")).await.assert_ok();
    let r = p.get(&img("w_200", &origin, "/slow.jpg")).await;
    assert_eq!(r.header("x-cache"), "MISS");
    assert_eq!(r.dims(), (200, 125));
    assert_eq!(origin.hits(), 1);
    // Concurrent, on a fresh server: still one fetch.
    let p = Arc::new(proxy(|_| {}).await);
    let mut tasks = Vec::new();
    for w in 0..10 {
        let (p, path) = (
            p.clone(),
            img(&format!("w_{}", 50 + w), &origin, "/slow.jpg"),
        );
        tasks.push(tokio::spawn(async move { p.get(&path).await }));
    }
    for t in tasks {
        t.await.expect("task").assert_ok();
    }
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn cache_restart_serves_from_disk_without_the_origin() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_string_lossy().into_owned();
    let origin = Origin::start(vec![]).await;
    let path = img("w_100", &origin, JPG);
    let first = {
        let d = d.clone();
        let p = proxy_with(move |c| c.cache.dir = d).await;
        p.get(&path).await
    };
    first.assert_ok();
    drop(origin);
    let d2 = d.clone();
    let p = proxy_with(move |c| c.cache.dir = d2).await;
    let r = p.get(&path).await;
    r.assert_ok();
    assert_eq!(r.header("x-cache"), "HIT disk");
    assert_eq!(r.header("etag"), first.header("etag"));
    assert_eq!(r.header("content-type"), "image/jpeg");
    assert_eq!(r.body, first.body);
    assert_eq!(p.get(&path).await.header("x-cache"), "HIT memory");
}

/// Make one entry, damage every file of it on disk with `damage`, restart, and expect a refetch.
async fn corrupt_entries_are_refetched(damage: fn(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_string_lossy().into_owned();
    let origin = Origin::start(vec![]).await;
    let path = img("w_100", &origin, JPG);
    // Originals kept on their first use, so both files of the entry can be damaged.
    let keep_now = |d: String| {
        move |c: &mut imgcdn::config::Config| {
            c.cache.dir = d;
            c.cache.keep_sources_min_uses = 1;
        }
    };
    let good = proxy_with(keep_now(d.clone())).await.get(&path).await;
    let files = files_under(dir.path());
    assert!(files.len() >= 2, "variant and original on disk: {files:?}");
    for f in &files {
        let mut data = std::fs::read(f).expect("read");
        damage(&mut data);
        std::fs::write(f, data).expect("write");
    }
    let p = proxy_with(keep_now(d)).await;
    let r = p.get(&path).await;
    r.assert_ok();
    assert_eq!(
        r.header("x-cache"),
        "MISS",
        "a damaged entry is never served"
    );
    assert_eq!(r.body, good.body);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn cache_truncated_disk_entry_is_refetched() {
    corrupt_entries_are_refetched(|d| d.truncate(d.len() / 2)).await;
}

#[tokio::test]
async fn cache_bit_flipped_disk_entry_is_refetched() {
    corrupt_entries_are_refetched(|d| {
        let i = d.len() - 100;
        d[i] ^= 0x04;
    })
    .await;
}

#[tokio::test]
async fn cache_disk_stays_under_its_cap() {
    let origin = Origin::start(vec![]).await;
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_string_lossy().into_owned();
    // 1 MiB of disk, originals not kept, ~40 renditions of 40-70 KB each.
    let p = proxy_with(move |c| {
        c.cache.dir = d;
        c.cache.disk_mb = 1;
        c.cache.keep_sources = false;
    })
    .await;
    for w in 0..40 {
        p.get(&img(&format!("w_{},q_95", 500 + w), &origin, JPG))
            .await
            .assert_ok();
    }
    let size = || {
        files_under(dir.path())
            .iter()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while size() > 1024 * 1024 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(size() <= 1024 * 1024, "disk tier holds {} bytes", size());
    assert!(size() > 0, "recent entries are kept");
}

#[tokio::test]
async fn cache_purge_removes_every_variant_and_the_original() {
    let origin = Origin::start(vec![]).await;
    let p = proxy(|c| c.admin.token = "s3cret".into()).await;
    for w in ["w_100", "w_200"] {
        p.get(&img(w, &origin, JPG)).await.assert_ok();
    }
    assert_eq!(origin.hits(), 1);
    let body = format!(r#"{{"source": "{}"}}"#, origin.url(JPG));
    let purge = |token: &'static str| {
        let body = body.clone();
        let p = &p;
        async move {
            p.client()
                .post(p.url("/admin/purge"))
                .header("authorization", token)
                .body(body)
                .send()
                .await
                .expect("purge")
        }
    };
    assert_eq!(purge("Bearer wrong").await.status(), 401);
    assert_eq!(purge("").await.status(), 401);
    assert_eq!(
        p.get(&img("w_100", &origin, JPG)).await.header("x-cache"),
        "HIT memory"
    );
    assert_eq!(purge("Bearer s3cret").await.status(), 200);
    for w in ["w_100", "w_200"] {
        let r = p.get(&img(w, &origin, JPG)).await;
        assert_eq!(r.header("x-cache"), "MISS", "{w}");
    }
    assert_eq!(origin.hits(), 2, "the original was purged too");
}

#[tokio::test]
async fn cache_purge_during_a_render_keeps_its_result_out_of_the_cache() {
    let body = fixture("photo-2560x1600.jpg");
    let origin = Origin::start(vec![(
        "/slow.jpg",
        Reply::SlowBody(Duration::from_millis(800), body),
    )])
    .await;
    let p = Arc::new(proxy(|c| c.admin.token = "s3cret".into()).await);
    let path = img("w_100", &origin, "/slow.jpg");
    let in_flight = {
        let (p, path) = (p.clone(), path.clone());
        tokio::spawn(async move { p.get(&path).await })
    };
    // The origin has been asked: the job is under way when the purge runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while origin.hits() == 0 {
        assert!(Instant::now() < deadline, "the origin was never asked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let purged = p
        .client()
        .post(p.url("/admin/purge"))
        .header("authorization", "Bearer s3cret")
        .body(format!(r#"{{"source": "{}"}}"#, origin.url("/slow.jpg")))
        .send()
        .await
        .expect("purge");
    assert_eq!(purged.status(), 200);
    let first = in_flight.await.expect("task");
    first.assert_ok();
    assert_eq!(first.header("x-cache"), "MISS");
    assert_eq!(origin.hits(), 1);
    // What was fetched and rendered before the purge was not stored.
    let next = p.get(&path).await;
    next.assert_ok();
    assert_eq!(
        next.header("x-cache"),
        "MISS",
        "the purged render was stored"
    );
    assert_eq!(
        origin.hits(),
        2,
        "the original fetched before the purge was stored"
    );
    // What was made after it is.
    assert_eq!(p.get(&path).await.header("x-cache"), "HIT memory");
}

#[tokio::test]
async fn cache_purge_is_off_without_a_token_and_checks_its_body() {
    let p = proxy(|_| {}).await;
    let r = p
        .client()
        .post(p.url("/admin/purge"))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404);
    let p = proxy(|c| c.admin.token = "t".into()).await;
    let r = p
        .client()
        .post(p.url("/admin/purge"))
        .header("authorization", "Bearer t")
        .body("nope")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let r = p
        .client()
        .get(p.url("/admin/purge"))
        .header("authorization", "Bearer t")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn cache_no_store_and_private_origins_are_never_stored() {
    let body = fixture("photo-2560x1600.jpg");
    let origin = Origin::start(vec![
        (
            "/ns.jpg",
            Reply::WithHeader("cache-control", "no-store", body.clone()),
        ),
        (
            "/pv.jpg",
            Reply::WithHeader("cache-control", "private, max-age=60", body),
        ),
    ])
    .await;
    let p = proxy(|_| {}).await;
    for path in ["/ns.jpg", "/pv.jpg"] {
        for _ in 0..2 {
            let r = p.get(&img("w_100", &origin, path)).await;
            r.assert_ok();
            assert_eq!(r.header("x-cache"), "MISS");
        }
    }
    assert_eq!(origin.hits(), 4);
    let cache_dir = p.state.settings.cache.dir.clone().expect("disk tier on");
    assert!(
        files_under(&cache_dir).is_empty(),
        "nothing was written to disk"
    );
}

#[tokio::test]
async fn cache_errors_are_shared_by_waiters_and_not_cached() {
    let body = fixture("photo-2560x1600.jpg");
    let left = Arc::new(AtomicUsize::new(1));
    let origin = Origin::start(vec![(
        "/flaky.jpg",
        Reply::FailFirst(left, Duration::from_millis(300), body),
    )])
    .await;
    let p = Arc::new(proxy(|_| {}).await);
    let path = img("w_100", &origin, "/flaky.jpg");
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (p, path) = (p.clone(), path.clone());
        tasks.push(tokio::spawn(async move { p.get(&path).await }));
    }
    for t in tasks {
        t.await.expect("task").assert_error(502, "origin-error");
    }
    assert_eq!(origin.hits(), 1, "one fetch for all waiters");
    let r = p.get(&path).await;
    r.assert_ok();
    assert_eq!(r.header("x-cache"), "MISS");
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn cache_new_default_quality_after_restart_makes_new_renditions() {
    let dir = tempfile::tempdir().expect("dir");
    let origin = Origin::start(vec![]).await;
    let path = img("w_300", &origin, JPG);
    let serve = |quality: u8| {
        let d = dir.path().to_string_lossy().into_owned();
        let path = path.clone();
        async move {
            let p = proxy_with(move |c| {
                c.cache.dir = d;
                c.output.default_quality = quality;
            })
            .await;
            (p.get(&path).await, p.get(&path).await)
        }
    };
    let (made, hit) = serve(90).await;
    assert_eq!(
        (made.header("x-cache"), hit.header("x-cache")),
        ("MISS", "HIT memory")
    );
    let (remade, _) = serve(40).await;
    assert_eq!(
        remade.header("x-cache"),
        "MISS",
        "not the q=90 rendition from disk"
    );
    assert!(remade.body.len() < made.body.len());
    let (again, _) = serve(90).await;
    assert_eq!(again.header("x-cache"), "HIT disk");
    assert_eq!(again.body, made.body);
}
