//! The real binary: the newcomer's path (embedded defaults, samples in `./images`) and a
//! start-up failure that names the bad key.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_imgcdn");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Kills the child on drop, so a failed assertion never leaves a server running.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary serving on a free loopback port from the repository root (embedded defaults plus
/// `env`), once `/health` has answered `OK`: the child, a client and the base URL. The cache
/// directory lives as long as the returned `TempDir`.
async fn start(env: &[(&str, &str)]) -> (Child, reqwest::Client, String, tempfile::TempDir) {
    let cache = tempfile::tempdir().expect("cache dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = Child(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(ROOT)
            .env("IMGCDN_CACHE__DIR", cache.path())
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn imgcdn"),
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.get(format!("{base}/health")).send().await {
            Ok(r) => {
                assert_eq!(r.text().await.expect("body"), "OK");
                break;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("server never answered: {e}"),
        }
    }
    (child, client, base, cache)
}

#[tokio::test]
async fn binary_serves_samples_with_default_config() {
    let (_child, client, base, _cache) = start(&[]).await;
    let r = client
        .get(format!("{base}/img/w_300/photo-2560x1600.jpg"))
        .send()
        .await
        .expect("img");
    assert_eq!(r.status(), 200);
    let img = image::load_from_memory(&r.bytes().await.expect("body")).expect("decode");
    assert_eq!((img.width(), img.height()), (300, 188));
}

#[test]
fn binary_unknown_env_key_stops_startup_naming_it() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(ROOT)
        .env("IMGCDN_SERVER__LISTEN_PORT", "1")
        .output()
        .expect("run imgcdn");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen_port"), "{stderr}");
}

#[test]
fn binary_bad_config_file_value_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[limits]\nqueue = \"many\"\n").expect("write");
    let out = Command::new(BIN)
        .args([
            "--config",
            file.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run imgcdn");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("queue"), "{stderr}");
}

#[tokio::test]
async fn binary_sigterm_exits_within_the_grace_period_with_a_render_running() {
    // A render that takes far longer than the grace period: a 4 MP AVIF at rav1e's slowest
    // speed (minutes), allowed by the AVIF pixel cap, the job timeout and the memory budget.
    let (mut child, client, base, _cache) = start(&[
        ("IMGCDN_SERVER__SHUTDOWN_GRACE_MS", "300"),
        ("IMGCDN_OUTPUT__AVIF_SPEED", "1"),
        ("IMGCDN_LIMITS__MAX_AVIF_PIXELS", "5000000"),
        ("IMGCDN_LIMITS__JOB_TIMEOUT_MS", "600000"),
        ("IMGCDN_LIMITS__MEMORY_BUDGET_MB", "4096"),
    ])
    .await;
    let slow = tokio::spawn(
        client
            .get(format!("{base}/img/w_2560,f_avif/photo-2560x1600.jpg"))
            .send(),
    );
    // Let the encode start, then ask the server to stop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if slow.is_finished() {
        let r = slow.await.expect("task").expect("response");
        panic!(
            "the render should still be running, but answered {}",
            r.status()
        );
    }
    let pid = child.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "still running {:?} after SIGTERM with a 300 ms grace period",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    let took = asked.elapsed();
    assert!(
        took < Duration::from_millis(300 + 1500),
        "exit took {took:?}"
    );
    slow.abort();
}
