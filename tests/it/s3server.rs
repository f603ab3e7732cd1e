//! A real S3-compatible server on loopback for the store and `s3://` source tests: `s3s-fs`
//! (crates.io, real SigV4 checks, files under a temporary root) run as a child process, so a
//! test can kill it (store down), stop it with SIGSTOP (store hung) and start it again on the
//! same port and data.
//!
//! The binary is `$S3S_FS_BIN`, else `s3s-fs` on `PATH`, else `~/.cargo/bin/s3s-fs`; `.ci/run`
//! installs it with `cargo install --locked s3s-fs --version 0.14.1 --features binary`. A missing
//! binary fails the test with that command rather than skipping it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "AKIMGCDNTEST";
pub const SECRET_KEY: &str = "imgcdn-test-secret";

pub struct S3Server {
    pub addr: SocketAddr,
    root: tempfile::TempDir,
    child: Option<Child>,
    stopped: bool,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("S3S_FS_BIN") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    if let Some(p) = on_path {
        return p;
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let p = home.join("bin/s3s-fs");
    assert!(
        p.is_file(),
        "s3s-fs not found: install it with \
         `cargo install --locked s3s-fs --version 0.14.1 --features binary` (or set S3S_FS_BIN)"
    );
    p
}

impl S3Server {
    /// Start a server with these (empty) buckets.
    pub fn start(buckets: &[&str]) -> S3Server {
        let root = tempfile::tempdir().expect("s3 root");
        for b in buckets {
            std::fs::create_dir_all(root.path().join(b)).expect("bucket dir");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut s = S3Server {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            root,
            child: None,
            stopped: false,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The directory holding the buckets (objects are plain files under `<root>/<bucket>/<key>`).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The files of every object in `bucket` (relative keys), sorted; s3s-fs's own side files
    /// are left out.
    pub fn objects(&self, bucket: &str) -> Vec<String> {
        let base = self.root.path().join(bucket);
        let mut out: Vec<String> = crate::support::files_under(&base)
            .into_iter()
            .filter_map(|p| {
                let rel = p.strip_prefix(&base).ok()?.to_string_lossy().into_owned();
                (!rel.contains(".internal.") && !rel.starts_with(".s3s")).then_some(rel)
            })
            .collect();
        out.sort();
        out
    }

    /// SIGKILL: the store is down (connections refused).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stopped = false;
    }

    /// Start again on the same port and data after [`S3Server::kill`].
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOP: the store hangs (the kernel still accepts connections, nothing answers).
    pub fn freeze(&mut self) {
        self.signal("-STOP");
        self.stopped = true;
    }

    /// SIGCONT after [`S3Server::freeze`].
    pub fn thaw(&mut self) {
        self.signal("-CONT");
        self.stopped = false;
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .arg(sig)
                .arg(c.id().to_string())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig} failed");
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Never leave a frozen or running server behind, also when the test failed.
        if self.stopped {
            self.signal("-CONT");
        }
        self.kill();
    }
}
