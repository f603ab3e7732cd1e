//! How long a client connection may live without doing anything useful.
//!
//! Every accepted socket is wrapped in [`Watched`], which notes when bytes arrive and when a
//! write cannot make progress, and every request on it holds an [`InFlight`] guard. A
//! [`watchdog`] running beside the connection decides when it must go:
//!
//! - **head**: no request has started within `server.header_timeout_ms` of the connection's
//!   first moment (it sent nothing, stopped inside the protocol sniff, the TLS handshake or the
//!   first request head), or, on HTTP/1.1, within that time of the first byte of a later
//!   request head: closed at once.
//! - **idle**: no request in flight for `server.idle_timeout_ms` (HTTP/1.1 keep-alive or an
//!   idle HTTP/2 connection; HTTP/2 pings from the client do not count as use): shut down
//!   gracefully (HTTP/2 GOAWAY), and dropped if that does not finish promptly.
//! - **write stall**: a write has been waiting for the client to read for
//!   `server.write_timeout_ms`: closed at once.
//!
//! Only the connection's own timestamps are read; there is no timer per request. The watchdog
//! sleeps to the earliest deadline the state allows, so a connection costs one timer.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `u64::MAX` in a timestamp slot: not set.
const UNSET: u64 = u64::MAX;

/// The limits a connection lives under.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    pub write: Duration,
}

/// Why the watchdog ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No request head arrived in time: drop the socket.
    Head,
    /// Nothing in flight for the idle timeout: shut down gracefully.
    Idle,
    /// The client stopped reading: drop the socket.
    WriteStall,
}

/// What a connection has been doing, in milliseconds since it was accepted.
#[derive(Debug)]
pub struct Activity {
    born: Instant,
    /// Requests started on this connection.
    started: AtomicU64,
    in_flight: AtomicU32,
    /// When the connection last became idle (accepted, or its last request ended).
    idle_since: AtomicU64,
    /// First byte read while no request was in flight, since it last became idle.
    head_since: AtomicU64,
    /// When a write began waiting for the client (`UNSET` when writes flow).
    write_blocked_since: AtomicU64,
    /// HTTP/2: bytes between requests are frames (pings, settings), not a request head.
    h2: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            born: Instant::now(),
            started: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(UNSET),
            write_blocked_since: AtomicU64::new(UNSET),
            h2: AtomicBool::new(false),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(UNSET - 1)
    }

    /// The connection speaks HTTP/2 (known from ALPN or the client preface).
    pub fn set_h2(&self) {
        self.h2.store(true, Ordering::Relaxed);
    }

    /// A request starts; the guard ends it when dropped (answered or abandoned).
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(UNSET, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn read(&self, bytes: &[u8]) {
        if self.started.load(Ordering::Relaxed) == 0 && bytes.starts_with(b"PRI * HTTP/2.0") {
            self.set_h2();
        }
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let now = self.now();
            let _ =
                self.head_since
                    .compare_exchange(UNSET, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn write_pending(&self) {
        let now = self.now();
        let _ = self.write_blocked_since.compare_exchange(
            UNSET,
            now,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn write_flowing(&self) {
        self.write_blocked_since.store(UNSET, Ordering::Relaxed);
    }

    /// Bytes went out: the connection is in use (a large answer to a slow reader is still
    /// being sent after its request's guard was dropped), so it is not idle.
    fn wrote(&self) {
        self.write_flowing();
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            self.idle_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// What must happen at `now` (ms since accepted): `Err(verdict)` to end the connection,
    /// or `Ok(wait)`: nothing can be due before `now + wait`.
    fn check(&self, now: u64, t: &Timeouts) -> Result<u64, Verdict> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(UNSET - 1);
        let (header, idle, write) = (ms(t.header), ms(t.idle), ms(t.write));
        // Anything that starts after `now` has a deadline at least this far away.
        let mut wait = header.min(idle).min(write);
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked != UNSET {
            let due = blocked.saturating_add(write);
            if now >= due {
                return Err(Verdict::WriteStall);
            }
            wait = wait.min(due - now);
        }
        // A request in flight, or an answer waiting for the client to read (the stall limit
        // above governs that): neither head nor idle limits apply.
        if self.in_flight.load(Ordering::Relaxed) > 0 || blocked != UNSET {
            return Ok(wait);
        }
        let head = if self.started.load(Ordering::Relaxed) == 0 {
            Some(header)
        } else if self.h2.load(Ordering::Relaxed) {
            None
        } else {
            let since = self.head_since.load(Ordering::Relaxed);
            (since != UNSET).then(|| since.saturating_add(header))
        };
        let idle_due = self.idle_since.load(Ordering::Relaxed).saturating_add(idle);
        for (due, verdict) in [(head, Verdict::Head), (Some(idle_due), Verdict::Idle)] {
            let Some(due) = due else { continue };
            if now >= due {
                return Err(verdict);
            }
            wait = wait.min(due - now);
        }
        Ok(wait)
    }
}

/// Held for as long as a request is being answered.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        if a.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            a.idle_since.store(a.now(), Ordering::Relaxed);
            a.head_since.store(UNSET, Ordering::Relaxed);
        }
    }
}

/// Resolves when the connection must end, and says why.
pub async fn watchdog(activity: Arc<Activity>, timeouts: Timeouts) -> Verdict {
    loop {
        match activity.check(activity.now(), &timeouts) {
            Err(verdict) => return verdict,
            // At least a millisecond, so a deadline a hair away cannot spin.
            Ok(wait) => tokio::time::sleep(Duration::from_millis(wait.max(1))).await,
        }
    }
}

/// A socket that reports its reads and stalled writes to an [`Activity`].
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let got = &buf.filled()[before..];
            if !got.is_empty() {
                this.activity.read(got);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        if polled.is_pending() {
            this.activity.write_pending();
        } else {
            this.activity.write_flowing();
        }
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<S> Watched<S> {
    fn note_write(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => self.activity.write_pending(),
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.wrote(),
            Poll::Ready(_) => self.activity.write_flowing(),
        }
    }
}

/// TCP keepalive on an accepted socket: a peer that vanished without a FIN (NAT timeout,
/// mobile client) is found within about two minutes even on a connection with work in flight.
pub fn keepalive(stream: &tokio::net::TcpStream) {
    let params = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(5);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&params) {
        tracing::debug!(error = %e, "could not enable TCP keepalive");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header: Duration::from_millis(100),
        idle: Duration::from_millis(1000),
        write: Duration::from_millis(500),
    };

    #[test]
    fn conn_silent_connection_ends_at_the_header_timeout() {
        let a = Activity::new();
        assert_eq!(a.check(0, &T), Ok(100));
        assert_eq!(a.check(99, &T), Ok(1));
        assert_eq!(a.check(100, &T), Err(Verdict::Head));
    }

    #[test]
    fn conn_request_in_flight_has_no_head_or_idle_deadline() {
        let a = Activity::new();
        let guard = a.request();
        assert_eq!(a.check(10_000, &T), Ok(100));
        drop(guard);
        // Idle from the moment the request ended (~0 ms in this test).
        let now = a.now();
        assert_eq!(a.check(now + 999, &T), Ok(1));
        assert_eq!(a.check(now + 1000, &T), Err(Verdict::Idle));
    }

    #[test]
    fn conn_partial_head_on_keep_alive_ends_at_the_header_timeout() {
        let a = Activity::new();
        drop(a.request());
        a.head_since.store(50, Ordering::Relaxed);
        assert_eq!(a.check(149, &T), Ok(1));
        assert_eq!(a.check(150, &T), Err(Verdict::Head));
        // On HTTP/2 bytes between requests are frames: only the idle limit applies.
        a.set_h2();
        assert!(a.check(150, &T).is_ok());
    }

    #[test]
    fn conn_stalled_write_ends_even_with_a_request_in_flight() {
        let a = Activity::new();
        let _guard = a.request();
        a.write_blocked_since.store(200, Ordering::Relaxed);
        assert_eq!(a.check(300, &T), Ok(100));
        assert_eq!(a.check(700, &T), Err(Verdict::WriteStall));
        a.write_flowing();
        assert!(a.check(700, &T).is_ok());
    }

    #[test]
    fn conn_answer_still_being_sent_is_not_idle() {
        let a = Activity::new();
        drop(a.request());
        // The guard is gone but the body is still going out, slowly: each write is use.
        a.idle_since.store(0, Ordering::Relaxed);
        a.wrote();
        let sent = a.idle_since.load(Ordering::Relaxed);
        assert_eq!(a.check(sent + 999, &T), Ok(1));
        // A write waiting on the client suspends the idle limit; the stall limit applies.
        a.write_blocked_since.store(sent + 10, Ordering::Relaxed);
        assert!(a.check(sent + 400, &T).is_ok());
        assert_eq!(a.check(sent + 510, &T), Err(Verdict::WriteStall));
    }

    #[test]
    fn conn_h2_preface_is_recognised() {
        let a = Activity::new();
        a.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert!(a.h2.load(Ordering::Relaxed));
        let b = Activity::new();
        b.read(b"GET / HTTP/1.1\r\n");
        assert!(!b.h2.load(Ordering::Relaxed));
    }
}
