//! The store against `object_store`'s in-memory and throttled stores: format checks, repair,
//! TTL, create-only writes, the read budget and the breaker (on tokio's paused clock), the
//! bounded queue, and purges with their log.

use super::*;
use object_store::memory::InMemory;
use object_store::throttle::{ThrottleConfig, ThrottledStore};

fn key(n: u8) -> Key {
    Key([n; 32])
}

fn entry(body: &'static [u8]) -> Entry {
    Entry::new(Bytes::from_static(body), "image/webp", "\"e\"")
}

fn store_over(client: Arc<dyn ObjectStore>) -> Arc<Store> {
    polled(Store::with_client(
        client,
        Path::from("fleet"),
        test_settings(),
        Duration::from_secs(3600),
    ))
}

/// As if the cache's poller had read the purge log once.
fn polled(store: Arc<Store>) -> Arc<Store> {
    store.polled.store(true, Ordering::Release);
    store
}

async fn write_and_flush(store: &Store, source: &Key, key: &Key, e: &Entry) {
    store.write(source, key, e, false);
    assert!(store.flush(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn store_reads_wait_for_the_first_purge_log_read() {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = store_over(mem.clone());
    let (s, k) = (key(1), key(2));
    write_and_flush(&a, &s, &k, &entry(b"x")).await;
    a.purge(&s).await.unwrap();
    // Written again by an instance that had not heard of the purge yet.
    let mut stale = entry(b"stale");
    stale.created = now_secs() - 5;
    let raw = Bytes::from(stale.encode());
    mem.put(&a.path(&s, &k), raw.into()).await.unwrap();
    let fresh = Store::with_client(
        mem,
        Path::from("fleet"),
        test_settings(),
        Duration::from_secs(3600),
    );
    assert!(
        matches!(fresh.read(&s, &k, false).await, Read::Miss),
        "not before the log was read"
    );
    assert_eq!(fresh.poll_purges().await.unwrap(), vec![s]);
    assert!(
        matches!(fresh.read(&s, &k, false).await, Read::Miss),
        "older than the purge"
    );
}

#[tokio::test]
async fn store_round_trip_uses_the_documented_layout() {
    let mem = Arc::new(InMemory::new());
    let store = store_over(mem.clone());
    let (s, k) = (key(0xab), key(2));
    write_and_flush(&store, &s, &k, &entry(b"pixels")).await;
    let path = format!("fleet/r1/ab/{}/{}", s.hex(), k.hex());
    let raw = mem
        .get(&Path::from(path))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(Entry::decode(raw).unwrap().body, &b"pixels"[..]);
    match store.read(&s, &k, false).await {
        Read::Hit(e) => assert_eq!(e.body, &b"pixels"[..]),
        Read::Miss => panic!("expected a hit"),
    }
    assert!(matches!(store.read(&s, &key(3), false).await, Read::Miss));
    let snap = store.snapshot();
    assert_eq!((snap.hits, snap.misses, snap.writes), (1, 1, 1));
}

#[tokio::test]
async fn store_corrupt_objects_are_never_served_and_are_repaired() {
    let mem = Arc::new(InMemory::new());
    let store = store_over(mem.clone());
    let (s, k) = (key(1), key(2));
    write_and_flush(&store, &s, &k, &entry(b"pixels")).await;
    let path = store.path(&s, &k);
    let mut bytes = mem
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    mem.put(&path, bytes.into()).await.unwrap();
    assert!(matches!(store.read(&s, &k, false).await, Read::Miss));
    assert_eq!(store.snapshot().corrupt, 1);
    // The next write overwrites (a create-only write would find the bad object, or race
    // the delete).
    write_and_flush(&store, &s, &k, &entry(b"fixed")).await;
    match store.read(&s, &k, false).await {
        Read::Hit(e) => assert_eq!(e.body, &b"fixed"[..]),
        Read::Miss => panic!("expected the repaired object"),
    }
}

#[tokio::test]
async fn store_refuses_content_types_imgcdn_does_not_make() {
    let store = store_over(Arc::new(InMemory::new()));
    let (s, k) = (key(1), key(2));
    let html = Entry::new(Bytes::from_static(b"<script>"), "text/html", "");
    write_and_flush(&store, &s, &k, &html).await;
    assert!(matches!(store.read(&s, &k, false).await, Read::Miss));
    assert_eq!(store.snapshot().corrupt, 1);
}

#[tokio::test]
async fn store_expired_entries_are_misses_and_are_overwritten() {
    let store = store_over(Arc::new(InMemory::new()));
    let (s, k) = (key(1), key(2));
    let mut old = entry(b"old");
    old.created = now_secs() - 7200;
    write_and_flush(&store, &s, &k, &old).await;
    assert!(matches!(store.read(&s, &k, false).await, Read::Miss));
    write_and_flush(&store, &s, &k, &entry(b"new")).await;
    assert!(matches!(store.read(&s, &k, false).await, Read::Hit(e) if e.body == b"new"[..]));
}

#[tokio::test]
async fn store_writes_are_create_only_and_already_exists_is_success() {
    let store = store_over(Arc::new(InMemory::new()));
    let (s, k) = (key(1), key(2));
    write_and_flush(&store, &s, &k, &entry(b"first")).await;
    write_and_flush(&store, &s, &k, &entry(b"second")).await;
    assert!(matches!(store.read(&s, &k, false).await, Read::Hit(e) if e.body == b"first"[..]));
    let snap = store.snapshot();
    assert_eq!((snap.writes, snap.errors), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn store_reads_keep_their_budget_and_the_breaker_opens_and_closes() {
    let throttled = Arc::new(ThrottledStore::new(
        InMemory::new(),
        ThrottleConfig {
            wait_get_per_call: Duration::from_secs(30),
            ..ThrottleConfig::default()
        },
    ));
    let store = store_over(throttled.clone());
    let (s, k) = (key(1), key(2));
    // Three reads each wait the budget (300 ms), then the breaker is open.
    for _ in 0..3 {
        let started = Instant::now();
        assert!(matches!(store.read(&s, &k, false).await, Read::Miss));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_millis(400));
    }
    assert!(store.breaker.is_open());
    let started = Instant::now();
    assert!(matches!(store.read(&s, &k, false).await, Read::Miss));
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "an open breaker is an instant miss"
    );
    assert_eq!(store.snapshot().skipped, 1);
    // Writes are dropped while open.
    store.write(&s, &k, &entry(b"x"), false);
    assert_eq!(store.snapshot().writes_dropped, 1);
    // The store recovers; after the open time one probe goes through and closes it.
    throttled.config_mut(|c| c.wait_get_per_call = Duration::ZERO);
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(matches!(store.read(&s, &k, false).await, Read::Miss));
    assert!(!store.breaker.is_open());
}

#[tokio::test(start_paused = true)]
async fn store_breaker_waits_longer_while_probes_fail() {
    let b = Breaker::new(2, Duration::from_secs(10));
    assert!(!b.failure());
    assert!(b.failure(), "the second failure opens it");
    assert!(!b.allow());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(b.allow(), "one probe");
    assert!(!b.allow(), "only one");
    assert!(!b.failure());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(!b.allow(), "open for 20 s after a failed probe");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(b.allow());
    b.success();
    assert!(b.allow() && b.allow());
}

#[tokio::test(start_paused = true)]
async fn store_full_queue_drops_writes_without_blocking() {
    let throttled = Arc::new(ThrottledStore::new(
        InMemory::new(),
        ThrottleConfig {
            wait_put_per_call: Duration::from_secs(1),
            ..ThrottleConfig::default()
        },
    ));
    let store = polled(Store::with_client(
        throttled,
        Path::from("fleet"),
        Settings {
            queue_entries: 2,
            write_concurrency: 1,
            ..test_settings()
        },
        Duration::from_secs(3600),
    ));
    let s = key(1);
    for n in 0..10 {
        store.write(&s, &key(n), &entry(b"x"), false);
    }
    let snap = store.snapshot();
    assert!(snap.writes_dropped >= 7, "{snap:?}");
    assert!(store.flush(Duration::from_secs(30)).await);
    let snap = store.snapshot();
    assert_eq!(snap.writes + snap.writes_dropped, 10, "{snap:?}");
    assert_eq!((snap.queue_entries, snap.queue_bytes), (0, 0));
}

#[tokio::test]
async fn store_purge_deletes_the_prefix_and_reaches_other_instances_through_the_log() {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = store_over(mem.clone());
    let b = store_over(mem.clone());
    // Purges made before B started are applied too.
    let (s, other) = (key(1), key(9));
    for k in 2..5 {
        write_and_flush(&a, &s, &key(k), &entry(b"x")).await;
    }
    write_and_flush(&a, &other, &key(2), &entry(b"x")).await;
    a.purge(&s).await.unwrap();
    let left: Vec<_> = mem
        .list(Some(&Path::from("fleet/r1")))
        .map(|m| m.unwrap().location.to_string())
        .collect()
        .await;
    assert_eq!(left.len(), 1, "only the other source is left: {left:?}");
    assert_eq!(b.poll_purges().await.unwrap(), vec![s]);
    assert!(b.poll_purges().await.unwrap().is_empty(), "applied once");
    assert!(
        a.poll_purges().await.unwrap().is_empty(),
        "its own purge is not applied again"
    );
    // An upload of work that started before the purge is dropped.
    let mut late = entry(b"late");
    late.created = now_secs() - 60;
    b.write(&s, &key(7), &late, false);
    assert!(b.flush(Duration::from_secs(5)).await);
    assert!(matches!(b.read(&s, &key(7), false).await, Read::Miss));
}

#[test]
fn store_purge_log_names_parse_strictly() {
    let hex = key(7).hex();
    assert_eq!(
        parse_log_name(&format!("0001700000000-{hex}")),
        Some((1_700_000_000, key(7)))
    );
    for bad in [
        "",
        "x-y",
        &format!("170000000000-{hex}"),
        "0001700000000-zz",
    ] {
        assert_eq!(parse_log_name(bad), None, "{bad}");
    }
}
