//! The log writer: lines go into a shared buffer that one thread writes out in batches, the
//! way nginx's `access_log … buffer= flush=` does.
//!
//! A request's log line costs a short lock and a copy on its reactor thread. It never costs a
//! write syscall, nor a wake-up of another thread. The writer thread wakes every
//! [`FLUSH_EVERY`], or as soon as the buffer passes [`HIGH_WATER`], and writes everything
//! pending in one call. A slow output (a pipe to a stalled log collector) stalls only that
//! thread. Past [`MAX_PENDING`] bytes, new lines are dropped and counted, and the count is
//! written once output resumes.
//!
//! The [`FlushGuard`] writes what is pending when it is dropped (when `main` returns).

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest a line waits before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Pending bytes that wake the writer early.
pub const HIGH_WATER: usize = 64 * 1024;
/// Pending bytes beyond which new lines are dropped.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

/// Where log lines go: a `tracing_subscriber` writer (`MakeWriter`); cheap to clone.
#[derive(Clone)]
pub struct BatchedLog {
    shared: Arc<Shared>,
}

/// Stops the writer thread after it wrote everything pending.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    dropped: u64,
    closed: bool,
}

impl BatchedLog {
    /// Start the writer thread over `out`. Fails only when no thread can be started.
    pub fn start<W: Write + Send + 'static>(out: W) -> std::io::Result<(BatchedLog, FlushGuard)> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("imgcdn-log".to_owned())
                .spawn(move || write_out(&shared, out))?
        };
        let guard = FlushGuard {
            shared: Arc::clone(&shared),
            thread: Some(thread),
        };
        Ok((BatchedLog { shared }, guard))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer thread: take everything pending, write it, repeat until closed.
fn write_out<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let (dropped, closed) = {
            let mut pending = shared.lock();
            // Writers wake this thread only at HIGH_WATER; a trickle of lines is picked up by
            // the next tick, so there is one write per FLUSH_EVERY at most.
            while pending.buf.is_empty() && pending.dropped == 0 && !pending.closed {
                pending = shared
                    .wake
                    .wait_timeout(pending, FLUSH_EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut pending.buf, &mut batch);
            (std::mem::take(&mut pending.dropped), pending.closed)
        };
        // Nowhere to report a failing stderr: the lines are lost, as with any logger.
        let _ = out.write_all(&batch);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "imgcdn: {dropped} log lines dropped (log output too slow)"
            );
        }
        let _ = out.flush();
        batch.clear();
        if batch.capacity() > 4 * HIGH_WATER {
            batch = Vec::new();
        }
        if closed {
            return;
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for BatchedLog {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        (&*self).write(line)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the subscriber writes each line through: a borrow, so a line costs no `Arc` clone.
impl Write for &BatchedLog {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        if pending.closed || pending.buf.len() + line.len() > MAX_PENDING {
            pending.dropped += 1;
            return Ok(line.len());
        }
        let was_below = pending.buf.len() < HIGH_WATER;
        pending.buf.extend_from_slice(line);
        if was_below && pending.buf.len() >= HIGH_WATER {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedLog {
    type Writer = &'a BatchedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read, and stall.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        stall: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _stalled = self.stall.lock().unwrap();
            self.bytes.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn logwriter_writes_every_line_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (log, guard) = BatchedLog::start(sink.clone()).unwrap();
        let mut writers: Vec<_> = (0..4).map(|_| log.clone()).collect();
        for i in 0..10_000 {
            writeln!(writers[i % 4], "line {i}").unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert_eq!(lines[0], "line 0");
        assert_eq!(lines[9_999], "line 9999");
    }

    #[test]
    fn logwriter_writes_a_lone_line_without_the_guard() {
        let sink = Sink::default();
        let (mut log, _guard) = BatchedLog::start(sink.clone()).unwrap();
        log.write_all(b"hello\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.bytes.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(&*sink.bytes.lock().unwrap(), b"hello\n");
    }

    #[test]
    fn logwriter_drops_and_counts_lines_while_the_output_is_stalled() {
        let sink = Sink::default();
        let stalled = sink.stall.lock().unwrap();
        let (mut log, guard) = BatchedLog::start(sink.clone()).unwrap();
        // The writer thread takes at most one batch and then blocks on the stalled output;
        // lines beyond MAX_PENDING after that are dropped, never buffered.
        let line = vec![b'x'; 1023];
        let lines = 3 * MAX_PENDING / 1024;
        for _ in 0..lines {
            log.write_all(&line).unwrap();
            log.write_all(b"\n").unwrap();
        }
        assert!(log.shared.lock().buf.len() <= MAX_PENDING);
        drop(stalled);
        drop(guard);
        let bytes = sink.bytes.lock().unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("log lines dropped"), "no drop report");
        assert!(bytes.len() < 2 * MAX_PENDING + 1024);
    }
}
