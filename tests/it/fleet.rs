//! A fleet sharing one bucket on a real S3 server (s3s-fs on loopback): two instances with
//! their own empty disk tiers share renditions, a purge on one reaches the other, the store
//! killed or hung never fails a request, a corrupt object is never served, and `imgcdn warm
//! --offline` fills the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgcdn::config::Config;

use crate::s3server::{S3Server, ACCESS_KEY, SECRET_KEY};
use crate::support::*;

const JPG: &str = "/f/photo-2560x1600.jpg";
const BUCKET: &str = "cache";

fn img(opts: &str, origin: &Origin, path: &str) -> String {
    format!("/img/{opts}/{}", origin.url(path))
}

/// Config for an instance of the fleet: the store on `s3`, short poll and breaker times.
fn member(s3: &S3Server) -> impl FnOnce(&mut Config) {
    let endpoint = s3.endpoint();
    move |c| {
        c.store.url = format!("s3://{BUCKET}/fleet");
        c.store.endpoint = endpoint;
        c.store.allow_http = true;
        c.store.access_key_id = ACCESS_KEY.into();
        c.store.secret_access_key = SECRET_KEY.into();
        c.store.purge_poll_s = 0.2;
        c.store.breaker_failures = 3;
        c.store.breaker_open_s = 1;
        c.store.write_timeout_ms = 2000;
        c.admin.token = "s3cret".into();
    }
}

/// The bucket's objects under `fleet/r1/` (renditions and originals).
fn renditions(s3: &S3Server) -> Vec<String> {
    s3.objects(BUCKET)
        .into_iter()
        .filter(|o| o.starts_with("fleet/r1/"))
        .collect()
}

/// Wait (at most 10 s) until `cond` holds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn fleet_second_instance_answers_from_the_store_with_identical_bytes() {
    let s3 = S3Server::start(&[BUCKET]);
    let origin = Origin::start(vec![]).await;
    let a = proxy(member(&s3)).await;
    let b = proxy(member(&s3)).await;
    let path = img("w_120", &origin, JPG);
    let first = a.get(&path).await;
    first.assert_ok();
    assert_eq!(first.header("x-cache"), "MISS");
    // Written after the response, under <prefix>/r1/<2 hex>/<source>/<variant>.
    eventually("the upload", || !renditions(&s3).is_empty()).await;
    let tag = first.header("surrogate-key").to_owned();
    let objects = renditions(&s3);
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(
        objects[0].starts_with(&format!("fleet/r1/{}/{tag}/", &tag[..2])),
        "{objects:?}"
    );
    let second = b.get(&path).await;
    second.assert_ok();
    assert_eq!(second.header("x-cache"), "HIT store");
    assert_eq!(second.header("etag"), first.header("etag"));
    assert_eq!(second.body, first.body);
    assert_eq!(origin.hits(), 1, "the origin is fetched once for the fleet");
    // Copied into B's own tiers.
    assert_eq!(b.get(&path).await.header("x-cache"), "HIT memory");
    assert_eq!(
        b.metric("imgcdn_cache_lookups_total{result=\"store_hit\"}")
            .await,
        1.0
    );
    assert_eq!(
        b.metric("imgcdn_store_reads_total{result=\"hit\"}").await,
        1.0
    );
}

async fn purge(p: &Proxy, source: &str) -> u16 {
    p.client()
        .post(p.url("/admin/purge"))
        .header("authorization", "Bearer s3cret")
        .body(format!(r#"{{"source": "{source}"}}"#))
        .send()
        .await
        .expect("purge")
        .status()
        .as_u16()
}

#[tokio::test]
async fn fleet_purge_on_one_instance_empties_the_store_and_the_others_tiers() {
    let s3 = S3Server::start(&[BUCKET]);
    let origin = Origin::start(vec![]).await;
    let a = proxy(member(&s3)).await;
    let b = proxy(member(&s3)).await;
    let path = img("w_100", &origin, JPG);
    let other = img("w_100", &origin, "/f/gray-2560x1600.jpg");
    a.get(&path).await.assert_ok();
    a.get(&other).await.assert_ok();
    eventually("the uploads", || renditions(&s3).len() == 2).await;
    assert_eq!(b.get(&path).await.header("x-cache"), "HIT store");
    assert_eq!(b.get(&path).await.header("x-cache"), "HIT memory");
    assert_eq!(purge(&a, &origin.url(JPG)).await, 200);
    // The source's prefix is empty at once; the other source is untouched.
    let left = renditions(&s3);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(s3
        .objects(BUCKET)
        .iter()
        .any(|o| o.starts_with("fleet/purges/")));
    // B drops it from its own tiers within the poll interval (0.2 s here).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let again = b.get(&path).await;
    again.assert_ok();
    assert_eq!(again.header("x-cache"), "MISS");
    assert_eq!(b.get(&other).await.header("x-cache"), "HIT store");
}

#[tokio::test]
async fn fleet_a_killed_store_never_fails_a_request_and_the_breaker_recovers() {
    let mut s3 = S3Server::start(&[BUCKET]);
    let origin = Origin::start(vec![]).await;
    let a = proxy(member(&s3)).await;
    a.get(&img("w_50", &origin, JPG)).await.assert_ok();
    eventually("the upload", || renditions(&s3).len() == 1).await;
    s3.kill();
    for w in 60..70 {
        let r = a.get(&img(&format!("w_{w}"), &origin, JPG)).await;
        r.assert_ok();
        assert_eq!(r.header("x-cache"), "MISS");
    }
    assert_eq!(a.metric("imgcdn_store_breaker_open").await, 1.0);
    assert!(
        a.metric("imgcdn_store_reads_total{result=\"skipped\"}")
            .await
            >= 1.0
    );
    assert_eq!(
        a.get("/ready").await.status,
        200,
        "/ready does not depend on the store"
    );
    // Back: after breaker_open_s one probe closes the breaker, and hits come back.
    s3.restart();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = proxy(member(&s3)).await;
    let mut hit = false;
    for _ in 0..20 {
        if b.get(&img("w_50", &origin, JPG)).await.header("x-cache") == "HIT store" {
            hit = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hit, "the store serves again after it came back");
    // A's breaker closes with a probe.
    closes_again(&a, &origin).await;
}

#[tokio::test]
async fn fleet_a_hung_store_costs_at_most_the_read_budget() {
    let mut s3 = S3Server::start(&[BUCKET]);
    let origin = Origin::start(vec![]).await;
    let a = proxy(member(&s3)).await;
    // Warm the origin connection and the source cache, so timings below are the render's.
    let baseline_started = Instant::now();
    a.get(&img("w_40", &origin, JPG)).await.assert_ok();
    let render = baseline_started.elapsed();
    s3.freeze();
    let mut slowest = Duration::ZERO;
    for w in 80..86 {
        let started = Instant::now();
        let r = a.get(&img(&format!("w_{w}"), &origin, JPG)).await;
        slowest = slowest.max(started.elapsed());
        r.assert_ok();
    }
    // The read budget is 300 ms; renders of this size take about `render` (generous slack
    // for a loaded CI machine).
    assert!(
        slowest < render + Duration::from_millis(300) + Duration::from_secs(3),
        "slowest {slowest:?}, render {render:?}"
    );
    assert_eq!(a.metric("imgcdn_store_breaker_open").await, 1.0);
    s3.thaw();
    closes_again(&a, &origin).await;
}

/// Requests go on being answered until the breaker has let a probe through and closed (its
/// open time doubles while probes fail, so this may take a few seconds).
async fn closes_again(p: &Proxy, origin: &Origin) {
    for w in 200..300 {
        p.get(&img(&format!("w_{w}"), origin, JPG))
            .await
            .assert_ok();
        if p.metric("imgcdn_store_breaker_open").await == 0.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the breaker never closed");
}

#[tokio::test]
async fn fleet_a_corrupt_object_is_never_served_and_is_replaced() {
    let s3 = S3Server::start(&[BUCKET]);
    let origin = Origin::start(vec![]).await;
    let a = proxy(member(&s3)).await;
    let path = img("w_64", &origin, JPG);
    let first = a.get(&path).await;
    eventually("the upload", || renditions(&s3).len() == 1).await;
    // Truncate the object's file behind the server's back.
    let object = s3.root().join(BUCKET).join(&renditions(&s3)[0]);
    let bytes = std::fs::read(&object).expect("object file");
    std::fs::write(&object, &bytes[..bytes.len() / 2]).expect("truncate");
    let b = proxy(member(&s3)).await;
    let r = b.get(&path).await;
    r.assert_ok();
    assert_eq!(r.header("x-cache"), "MISS");
    assert_eq!(r.body, first.body);
    assert_eq!(b.metric("imgcdn_store_corrupt_total").await, 1.0);
    // Replaced by B's render (an overwrite), and whole again for the next instance.
    let c = proxy(member(&s3)).await;
    let mut whole = false;
    for _ in 0..50 {
        let r = c.get(&path).await;
        if r.header("x-cache") == "HIT store" {
            assert_eq!(r.body, first.body);
            whole = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(whole, "the object was rewritten");
}

#[tokio::test]
async fn fleet_what_the_origin_forbids_keeping_never_reaches_the_store() {
    let s3 = S3Server::start(&[BUCKET]);
    let body = fixture("photo-2560x1600.jpg");
    let origin = Origin::start(vec![(
        "/private.jpg",
        Reply::WithHeader("cache-control", "no-store", body),
    )])
    .await;
    let a = proxy(member(&s3)).await;
    a.get(&img("w_90", &origin, "/private.jpg"))
        .await
        .assert_ok();
    a.get(&img("w_90", &origin, JPG)).await.assert_ok();
    eventually("the storable upload", || renditions(&s3).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(renditions(&s3).len(), 1);
}

#[tokio::test]
async fn fleet_offline_warm_fills_the_store() {
    let s3 = S3Server::start(&[BUCKET]);
    let origin = Origin::start(vec![]).await;
    let mut config = Config::default();
    config.source.base = fixtures_dir().to_string_lossy().into_owned();
    config.source.allow_networks = vec!["127.0.0.0/8".into()];
    config.source.allow_ports = Vec::new();
    config.cache.disk_mb = 0;
    member(&s3)(&mut config);
    let settings = imgcdn::config::Settings::try_from(config).expect("config");
    let state = Arc::new(imgcdn::server::AppState::new(settings).expect("state"));
    let targets: Vec<String> = [100, 200, 300]
        .iter()
        .map(|w| img(&format!("w_{w}"), &origin, JPG))
        .collect();
    let summary = imgcdn::warm::offline(state, targets.clone(), 2, "image/webp", false).await;
    assert_eq!((summary.made, summary.failures()), (3, 0), "{summary}");
    // Flushed before it returned.
    assert_eq!(renditions(&s3).len(), 3);
    let b = proxy(member(&s3)).await;
    for t in &targets {
        assert_eq!(b.get(t).await.header("x-cache"), "HIT store");
    }
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn fleet_a_render_in_flight_at_purge_time_is_never_stored_anywhere() {
    let s3 = S3Server::start(&[BUCKET]);
    let origin = Origin::start(vec![(
        "/slow.jpg",
        Reply::SlowBody(Duration::from_millis(1200), fixture("photo-2560x1600.jpg")),
    )])
    .await;
    let a = proxy(member(&s3)).await;
    let b = Arc::new(proxy(member(&s3)).await);
    let path = img("w_100", &origin, "/slow.jpg");
    let in_flight = {
        let (b, path) = (b.clone(), path.clone());
        tokio::spawn(async move { b.get(&path).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(purge(&a, &origin.url("/slow.jpg")).await, 200);
    let made = in_flight.await.expect("task");
    made.assert_ok();
    assert_eq!(made.header("x-cache"), "MISS");
    // Past B's poll and any upload it could have made.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(renditions(&s3).is_empty(), "{:?}", renditions(&s3));
    assert_eq!(b.get(&path).await.header("x-cache"), "MISS");
}

#[tokio::test]
async fn fleet_kept_originals_make_every_size_one_origin_fetch_per_fleet() {
    let s3 = S3Server::start(&[BUCKET]);
    let origin = Origin::start(vec![]).await;
    let keep = |s3: &S3Server| {
        let m = member(s3);
        move |c: &mut Config| {
            m(c);
            c.store.keep_sources = true;
        }
    };
    let a = proxy(keep(&s3)).await;
    let b = proxy(keep(&s3)).await;
    a.get(&img("w_100", &origin, JPG)).await.assert_ok();
    // The second size keeps the original (`cache.keep_sources_min_uses`): two renditions and
    // the original.
    a.get(&img("w_150", &origin, JPG)).await.assert_ok();
    eventually("three uploads", || renditions(&s3).len() == 3).await;
    let other_size = b.get(&img("w_220", &origin, JPG)).await;
    other_size.assert_ok();
    assert_eq!(other_size.header("x-cache"), "MISS");
    assert_eq!(other_size.dims().0, 220);
    assert_eq!(origin.hits(), 1, "B made its size from the stored original");
}
