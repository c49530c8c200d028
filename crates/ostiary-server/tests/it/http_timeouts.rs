//! The listener's timeouts (`ostiary_server::serve`): slow request heads and bodies and idle
//! keep-alive connections are closed; normal clients keep their connections; shutdown waits
//! for in-flight requests.
//!
//! Most tests run a minimal router on tokio's paused clock: the clock jumps to the next timer
//! whenever every task waits, so a 75 s idle period takes no real time. Raw sockets are used
//! because the point is what a misbehaving client does byte by byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use ostiary_server::HttpTimeouts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::harness::{http, spawn_app_with_server};

/// Three distinct values, so that a test can tell which one closed a connection.
const TIMEOUTS: HttpTimeouts = HttpTimeouts {
    header_read_timeout: Duration::from_secs(10),
    request_body_timeout: Duration::from_secs(20),
    keep_alive_idle_timeout: Duration::from_secs(30),
};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: ostiary.test\r\n\r\n";

/// A minimal router served by `ostiary_server::serve::serve` on 127.0.0.1.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Told when `/slow` has been entered; `/slow` answers once `release` is notified.
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

impl Server {
    async fn start(timeouts: HttpTimeouts) -> Self {
        let entered = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let (in_handler, released) = (entered.clone(), release.clone());
        let router = Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/peer",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            )
            .route(
                "/echo",
                post(
                    |body: Result<Bytes, axum::extract::rejection::BytesRejection>| async move {
                        match body {
                            Ok(body) => {
                                (axum::http::StatusCode::OK, format!("{} bytes", body.len()))
                            }
                            Err(_) => (
                                axum::http::StatusCode::BAD_REQUEST,
                                "body not read in time".into(),
                            ),
                        }
                    },
                ),
            )
            .route(
                "/slow",
                get(move || async move {
                    in_handler.notify_one();
                    released.notified().await;
                    "done"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ostiary_server::serve::serve(
            listener,
            router,
            timeouts,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task,
            entered,
            release,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }
}

/// One response read from `stream`: status code and body (`Content-Length` framing).
async fn read_response(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> (u16, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().expect("length"))
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                let status = head[9..12].parse().expect("status");
                let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned();
                return (status, body);
            }
        }
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "connection closed mid-response: {data:?}");
        data.extend_from_slice(&buf[..n]);
    }
}

/// Waits up to `limit` for the server to close `stream`; `true` if it did. Whatever the server
/// sends before closing is read and discarded.
async fn closes_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_head_sent_one_byte_at_a_time_is_cut_off_after_the_header_read_timeout() {
    let server = Server::start(TIMEOUTS).await;
    let mut stream = server.connect().await;
    let start = Instant::now();
    let head =
        b"GET / HTTP/1.1\r\nHost: ostiary.test\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

    // One byte every 2 s: never silent for long, but the whole head would take 2.5 minutes.
    let mut closed = false;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err()
            || closes_within(&mut stream, Duration::from_secs(2)).await
        {
            closed = true;
            break;
        }
    }

    assert!(
        closed,
        "the server must close a connection whose head never completes"
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= TIMEOUTS.header_read_timeout
            && elapsed <= TIMEOUTS.header_read_timeout + Duration::from_secs(2),
        "closed after {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let server = Server::start(TIMEOUTS).await;
    let mut stream = server.connect().await;
    let start = Instant::now();

    assert!(closes_within(&mut stream, Duration::from_secs(300)).await);

    let elapsed = start.elapsed();
    assert!(
        elapsed >= TIMEOUTS.header_read_timeout
            && elapsed < TIMEOUTS.header_read_timeout + Duration::from_secs(1),
        "a first request has no idle allowance: closed after {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(TIMEOUTS).await;
    let mut stream = server.connect().await;
    stream.write_all(GET).await.unwrap();
    assert_eq!(read_response(&mut stream).await, (200, "ok".into()));
    let idle_since = Instant::now();

    assert!(closes_within(&mut stream, Duration::from_secs(300)).await);

    let idle = idle_since.elapsed();
    assert!(
        idle >= TIMEOUTS.keep_alive_idle_timeout
            && idle < TIMEOUTS.keep_alive_idle_timeout + Duration::from_secs(1),
        "closed after {idle:?} idle (not after the header timeout)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_connection_serves_requests_within_the_idle_timeout() {
    let server = Server::start(TIMEOUTS).await;
    let mut stream = server.connect().await;
    stream.write_all(GET).await.unwrap();
    assert_eq!(read_response(&mut stream).await, (200, "ok".into()));

    // Longer than the header timeout, shorter than the idle timeout: the same connection
    // still serves the next request.
    tokio::time::sleep(Duration::from_secs(25)).await;
    stream.write_all(GET).await.unwrap();
    assert_eq!(read_response(&mut stream).await, (200, "ok".into()));
    tokio::time::sleep(Duration::from_secs(25)).await;
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: ostiary.test\r\n\r\n")
        .await
        .unwrap();

    // Handlers see the TCP peer as `ConnectInfo`.
    let (status, peer) = read_response(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(peer, stream.local_addr().unwrap().to_string());
}

#[tokio::test(start_paused = true)]
async fn after_an_idle_period_the_next_head_has_the_header_read_timeout_from_its_first_byte() {
    let server = Server::start(TIMEOUTS).await;
    let mut stream = server.connect().await;
    stream.write_all(GET).await.unwrap();
    assert_eq!(read_response(&mut stream).await, (200, "ok".into()));
    tokio::time::sleep(Duration::from_secs(25)).await;

    stream.write_all(b"GET / HT").await.unwrap();
    let first_byte = Instant::now();
    assert!(closes_within(&mut stream, Duration::from_secs(300)).await);

    let elapsed = first_byte.elapsed();
    assert!(
        elapsed >= TIMEOUTS.header_read_timeout
            && elapsed < TIMEOUTS.header_read_timeout + Duration::from_secs(1),
        "closed {elapsed:?} after the head began"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_trickled_past_the_request_body_timeout_is_refused() {
    let server = Server::start(TIMEOUTS).await;
    let mut stream = server.connect().await;
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: ostiary.test\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    let head_sent = Instant::now();
    let (mut reader, mut writer) = stream.into_split();

    // A byte a second: 100 s for the body, against a 20 s deadline for all of it.
    tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let response = tokio::time::timeout(Duration::from_secs(300), read_response(&mut reader))
        .await
        .ok();

    assert_eq!(response, Some((400, "body not read in time".into())));
    let elapsed = head_sent.elapsed();
    assert!(
        elapsed >= TIMEOUTS.request_body_timeout
            && elapsed <= TIMEOUTS.request_body_timeout + Duration::from_secs(1),
        "answered after {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_sent_in_time_is_read() {
    let server = Server::start(TIMEOUTS).await;
    let mut stream = server.connect().await;
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: ostiary.test\r\nContent-Length: 5\r\n\r\nab")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stream.write_all(b"cde").await.unwrap();

    assert_eq!(read_response(&mut stream).await, (200, "5 bytes".into()));
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_in_flight_requests_finish_closes_idle_connections_and_stops_accepting() {
    let mut server = Server::start(TIMEOUTS).await;
    let mut idle = server.connect().await;
    idle.write_all(GET).await.unwrap();
    assert_eq!(read_response(&mut idle).await, (200, "ok".into()));
    let mut busy = server.connect().await;
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: ostiary.test\r\n\r\n")
        .await
        .unwrap();
    server.entered.notified().await;

    let _ = server.stop.take().expect("running").send(());

    assert!(
        closes_within(&mut idle, Duration::from_secs(1)).await,
        "idle connections close at once"
    );
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "no new connection is accepted"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(5), &mut server.task)
            .await
            .is_err(),
        "serve waits for the request in flight"
    );
    server.release.notify_one();
    assert_eq!(read_response(&mut busy).await, (200, "done".into()));
    let served = tokio::time::timeout(Duration::from_secs(5), &mut server.task).await;
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "serve returns once it is done: {served:?}"
    );
}

#[tokio::test]
async fn a_zero_or_overlong_timeout_is_refused_by_name() {
    let zero = HttpTimeouts {
        keep_alive_idle_timeout: Duration::ZERO,
        ..HttpTimeouts::default()
    };
    assert_eq!(
        zero.validate().unwrap_err().to_string(),
        "keep_alive_idle_timeout must be more than zero and at most a day"
    );
    let overlong = HttpTimeouts {
        header_read_timeout: Duration::from_secs(u64::MAX),
        ..HttpTimeouts::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = ostiary_server::serve::serve(listener, Router::new(), overlong, async {}).await;
    let error = served.expect_err("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        error.to_string().starts_with("header_read_timeout must be"),
        "{error}"
    );
    assert!(HttpTimeouts::default().validate().is_ok());
}

// The IdP itself, on the real clock: its configured timeouts reach its listener, and a crowd
// of slow clients does not keep others out.

/// Waits (real time, at most `limit`) for the server to close `stream`.
async fn closed_in_real_time(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    closes_within(stream, limit).await.then(|| start.elapsed())
}

#[tokio::test]
async fn the_idp_closes_a_slow_head_and_refuses_a_slow_body_after_its_configured_timeouts() {
    let app = spawn_app_with_server(|config| {
        config.http.header_read_timeout = Duration::from_secs(1);
        config.http.request_body_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();

    let mut slow_head = TcpStream::connect(&addr).await.unwrap();
    slow_head
        .write_all(b"POST /token HTTP/1.1\r\nHost: ostiary.te")
        .await
        .unwrap();
    let closed = closed_in_real_time(&mut slow_head, Duration::from_secs(10)).await;
    assert!(
        closed.is_some_and(|after| after >= Duration::from_millis(900)),
        "{closed:?}"
    );

    let mut slow_body = TcpStream::connect(&addr).await.unwrap();
    slow_body
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: ostiary.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(10), read_response(&mut slow_body))
            .await
            .expect("an answer once the body deadline passed");
    assert_eq!(status, 400);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "invalid_request", "{body}");
}

/// How many slow clients the attack used.
const SLOW_CLIENTS: usize = 1000;

#[tokio::test]
async fn the_idp_answers_normal_requests_while_a_thousand_slow_clients_hold_connections() {
    // A long header timeout, so that all of them are still open when counted below.
    let app = spawn_app_with_server(|config| {
        config.http.header_read_timeout = Duration::from_secs(120);
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        stream
            .write_all(b"GET /userinfo HTTP/1.1\r\nHost: ostiary.te")
            .await
            .unwrap();
        slow.push(stream);
    }

    let started = std::time::Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        http()
            .get(app.url("/.well-known/openid-configuration"))
            .send(),
    )
    .await
    .expect("answered while the slow clients wait")
    .expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));

    // They were all accepted and are still waiting.
    let mut buf = [0u8; 1];
    let open = slow
        .iter()
        .filter(|s| matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock))
        .count();
    assert_eq!(open, SLOW_CLIENTS);
}
