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

#[tokio::test]
async fn binary_serves_samples_with_default_config() {
    let cache = tempfile::tempdir().expect("cache dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let _child = Child(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(ROOT)
            .env("IMGCDN_CACHE__DIR", cache.path())
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
