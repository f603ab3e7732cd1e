//! Connection lifetimes under hostile clients: sockets that send nothing, stop inside the
//! protocol sniff or a request head, idle keep-alive and HTTP/2 connections, and clients that
//! stop reading. None of them may hold a connection slot for long.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Read until the server closes (EOF or reset); `None` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut got)).await {
        Ok(_) => Some(got),
        Err(_) => None,
    }
}

#[tokio::test]
async fn conn_idle_sockets_at_max_connections_do_not_lock_out_health() {
    const SLOTS: usize = 6;
    let p = proxy(|c| {
        c.server.max_connections = SLOTS;
        c.server.header_timeout_ms = 500;
    })
    .await;
    // Every slot taken by a client that does nothing useful: silent, stuck in the HTTP/2
    // preface (the protocol sniff), or stuck inside a request head.
    let mut idle = Vec::new();
    for i in 0..SLOTS {
        let mut s = TcpStream::connect(p.addr).await.expect("connect");
        match i % 3 {
            0 => {}
            1 => s.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write"),
            _ => s.write_all(b"GET /health HT").await.expect("write"),
        }
        idle.push(s);
    }
    // Let the server accept them all before asking.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), p.raw_get("/health"))
        .await
        .expect("/health must answer while idle sockets hold every slot");
    assert_eq!((status, body.as_str()), (200, "OK"));
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500 + 1000),
        "/health took {took:?}: more than the header timeout plus a second"
    );
    // And the idle sockets were closed by the server, not merely outnumbered.
    for s in &mut idle {
        assert!(closed_within(s, Duration::from_secs(2)).await.is_some());
    }
}

#[tokio::test]
async fn conn_silent_socket_is_closed_after_the_header_timeout() {
    let p = proxy(|c| c.server.header_timeout_ms = 300).await;
    let mut s = TcpStream::connect(p.addr).await.expect("connect");
    let started = Instant::now();
    let got = closed_within(&mut s, Duration::from_secs(5))
        .await
        .expect("a socket that sends nothing must be closed");
    assert!(got.is_empty() || !String::from_utf8_lossy(&got).contains("200"));
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(250)..Duration::from_secs(2)).contains(&took),
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn conn_idle_keep_alive_is_closed_after_the_idle_timeout() {
    let p = proxy(|c| {
        c.server.idle_timeout_ms = 400;
        c.server.header_timeout_ms = 5_000;
    })
    .await;
    let mut s = TcpStream::connect(p.addr).await.expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    // The answer arrives and the connection stays open for the next request...
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.expect("read");
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.ends_with("OK"), "{head}");
    let idle_from = Instant::now();
    // ...until it has idled for the idle timeout (well before the 5 s header timeout).
    let rest = closed_within(&mut s, Duration::from_secs(4))
        .await
        .expect("an idle keep-alive connection must be closed");
    assert!(rest.is_empty());
    let took = idle_from.elapsed();
    assert!(
        (Duration::from_millis(300)..Duration::from_millis(2_500)).contains(&took),
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn conn_busy_keep_alive_connection_is_not_closed_while_used() {
    let p = proxy(|c| {
        c.server.idle_timeout_ms = 600;
        c.server.header_timeout_ms = 600;
    })
    .await;
    let mut s = TcpStream::connect(p.addr).await.expect("connect");
    // Requests every 200 ms for twice the idle timeout on one connection: all answered.
    for _ in 0..6 {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("write on a connection in use");
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn conn_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let p = proxy(|c| {
        c.server.idle_timeout_ms = 400;
        c.server.header_timeout_ms = 5_000;
    })
    .await;
    let tcp = TcpStream::connect(p.addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.expect("h2 ready");
    let request = http::Request::get(p.url("/health"))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("send");
    let response = response.await.expect("response");
    assert_eq!(response.status(), 200);
    let idle_from = Instant::now();
    // The server says GOAWAY and closes: the client's connection task ends.
    let _ = tokio::time::timeout(Duration::from_secs(4), connection)
        .await
        .expect("an idle HTTP/2 connection must be closed")
        .expect("connection task");
    let took = idle_from.elapsed();
    assert!(
        (Duration::from_millis(300)..Duration::from_millis(2_500)).contains(&took),
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn conn_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let p = proxy(|c| {
        c.server.write_timeout_ms = 500;
        c.cache.memory_mb = 64;
    })
    .await;
    // A big answer (a full-size PNG of the photo, several MB) to a client whose receive
    // buffer is tiny and who never reads: the server's writes stall.
    const PATH: &str = "/img/w_2560,f_png/photo-2560x1600.jpg";
    let full = p.get(PATH).await;
    full.assert_ok();
    let length = full.body.len();
    assert!(length > 6_000_000, "answer too small to stall: {length}");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut s = socket.connect(p.addr).await.expect("connect");
    let request = format!("GET {PATH} HTTP/1.1\r\nHost: t\r\n\r\n");
    s.write_all(request.as_bytes()).await.expect("write");
    // Stop reading for well past the write timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The server has given up: what arrives is what was buffered, then EOF or a reset.
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the stalled connection must have been closed");
    assert!(
        got.len() < length,
        "the whole answer arrived ({} bytes): the writer was never dropped",
        got.len()
    );
    // The server is fine.
    assert_eq!(p.raw_get("/health").await.0, 200);
}

#[tokio::test]
async fn conn_slow_reader_gets_the_whole_answer_past_the_idle_timeout() {
    let p = proxy(|c| {
        c.server.idle_timeout_ms = 300;
        c.server.write_timeout_ms = 5_000;
    })
    .await;
    const PATH: &str = "/img/w_1600,f_png/photo-2560x1600.jpg";
    let full = p.get(PATH).await;
    full.assert_ok();
    let length = full.body.len();
    // A reader that takes 32 KiB every 20 ms through a small window: the answer takes well
    // over the idle timeout to go out, and every write is progress.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("rcvbuf");
    let mut s = socket.connect(p.addr).await.expect("connect");
    let request = format!("GET {PATH} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        started.elapsed() > Duration::from_millis(300),
        "the answer went out too fast to test anything"
    );
    let head = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    assert_eq!(got.len() - head - 4, length, "the answer was cut off");
}
