//! The listener: an accept loop serving HTTP/1.1 with hyper, with the timeouts that stop a
//! client from holding a connection by sending slowly or not at all, and graceful shutdown.
//!
//! Every connection is bounded at each stage (see [`HttpTimeouts`]):
//!
//! - **Waiting for a request.** A new connection must deliver its first request head within
//!   `header_read_timeout` of being accepted. After a response, a keep-alive connection may
//!   wait up to `keep_alive_idle_timeout` for the first byte of its next request; from that
//!   byte on, the head must be complete within `header_read_timeout`. A client trickling a
//!   header one byte every few seconds is closed when its time is up, however often it sends.
//! - **Reading the body.** The whole request body must arrive within `request_body_timeout`
//!   of the head (tower-http's `RequestBodyDeadlineLayer`, a deadline for the whole body, not
//!   per chunk); a handler reading a body that arrives later gets an error and answers 400.
//! - **Handling** is not bounded here: long responses (the revocation stream) end at shutdown.
//!
//! hyper (1.12) has one timer for the first of those stages, `header_read_timeout`, which it
//! starts as soon as it waits for a request head: on a keep-alive connection that is right
//! after the previous response, so on its own it would also be the idle limit. To let the idle
//! limit differ (longer, for a reverse proxy's pool of upstream connections, or shorter), the
//! connection's [`hyper::rt::Timer`] makes that wait two-phase: the stream counts the bytes it
//! reads, and the timer's sleep waits `keep_alive_idle_timeout` while none has arrived, then
//! `header_read_timeout` from the first one. hyper uses a server connection's timer for the
//! header timeout only; `tests/it/http_timeouts.rs` pins the behaviour.
//!
//! Shutdown: once the signal completes, no new connection is accepted, idle connections are
//! closed, and the call returns when every in-flight request has finished.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::Service as _;
use tower_http::timeout::RequestBodyDeadlineLayer;

/// How long the listener waits for each stage of a request (see the [module](self) docs).
/// Each must be more than zero and at most [`MAX_TIMEOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// Time to receive a complete request head (request line and headers): from the moment a
    /// connection is accepted for its first request, from the first byte of each later one.
    /// Default 10 s.
    pub header_read_timeout: Duration,
    /// Time to receive a whole request body, from the end of its head. Default 10 s (bodies
    /// are at most [`crate::MAX_BODY_BYTES`]).
    pub request_body_timeout: Duration,
    /// How long a keep-alive connection may wait, after a response, for the first byte of its
    /// next request before it is closed. Default 75 s: above the 60 s for which nginx keeps an
    /// idle upstream connection by default, so that the proxy, not Ostiary, closes it (a
    /// request sent on a connection that the server is closing would fail).
    pub keep_alive_idle_timeout: Duration,
}

impl Default for HttpTimeouts {
    /// 10 s for a request head, 10 s for a body, 75 s idle between keep-alive requests.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(10),
            keep_alive_idle_timeout: Duration::from_secs(75),
        }
    }
}

/// The longest accepted timeout (a day): long enough for anything, short enough that a
/// deadline computed from it cannot overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

impl HttpTimeouts {
    /// Refuses a zero timeout (it would close every connection at once) and one longer than
    /// [`MAX_TIMEOUT`], naming it.
    pub fn validate(&self) -> Result<(), crate::StartError> {
        let named = [
            ("header_read_timeout", self.header_read_timeout),
            ("request_body_timeout", self.request_body_timeout),
            ("keep_alive_idle_timeout", self.keep_alive_idle_timeout),
        ];
        match named
            .into_iter()
            .find(|(_, value)| value.is_zero() || *value > MAX_TIMEOUT)
        {
            Some((name, _)) => Err(crate::StartError::Timeout(name)),
            None => Ok(()),
        }
    }
}

/// Pause after an accept error that is not about one connection (out of file descriptors):
/// retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` (HTTP/1.1, keep-alive) until `shutdown` completes, then
/// waits for in-flight requests to finish and returns. Handlers see the TCP peer as
/// `ConnectInfo<SocketAddr>`. Fails at once (`InvalidInput`) if `timeouts` are out of range
/// ([`HttpTimeouts::validate`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: HttpTimeouts,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    timeouts
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut make_service = router
        .layer(RequestBodyDeadlineLayer::new(timeouts.request_body_timeout))
        .into_make_service_with_connect_info::<SocketAddr>();
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                tracing::error!(%error, "cannot accept connections; retrying in a second");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let service = match make_service.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let read = Arc::new(AtomicU64::new(0));
        let mut builder = http1::Builder::new();
        builder
            .timer(HeadTimer {
                read: read.clone(),
                timeouts,
                first_wait_done: Arc::new(AtomicBool::new(false)),
            })
            .header_read_timeout(timeouts.header_read_timeout);
        let connection = builder.serve_connection(
            TokioIo::new(CountingStream {
                inner: stream,
                read,
            }),
            TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts, resets, malformed requests: the client's problem, not ours.
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors that concern one connection only (it was reset before it could be accepted).
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A TCP stream that counts the bytes read from it, for its connection's [`HeadTimer`].
struct CountingStream {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.read
                .fetch_add(u64::try_from(read).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One connection's timer. hyper asks it for a sleep (`sleep_until`) each time the connection
/// starts waiting for a request head, and drops that sleep once the head is parsed; when the
/// sleep completes first, hyper closes the connection. Other sleeps are plain tokio ones.
#[derive(Clone)]
struct HeadTimer {
    /// Bytes read by the connection's stream so far.
    read: Arc<AtomicU64>,
    timeouts: HttpTimeouts,
    /// Whether the connection has started waiting for a head before (its first wait has no
    /// idle phase).
    first_wait_done: Arc<AtomicBool>,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    /// The wait for a request head; hyper's deadline (now + `header_read_timeout`) is replaced
    /// by the two-phase one.
    fn sleep_until(&self, _deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let now = tokio::time::Instant::now();
        let first = !self.first_wait_done.swap(true, Ordering::Relaxed);
        let (in_head, limit) = if first {
            (true, self.timeouts.header_read_timeout)
        } else {
            (false, self.timeouts.keep_alive_idle_timeout)
        };
        Box::pin(HeadWait {
            read: self.read.clone(),
            read_at_start: self.read.load(Ordering::Relaxed),
            in_head,
            header_read_timeout: self.timeouts.header_read_timeout,
            sleep: Box::pin(tokio::time::sleep_until(now + limit)),
        })
    }

    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A wait for a request head: until the idle deadline while no byte has been read, then
/// `header_read_timeout` from the first byte. hyper polls it whenever a read leaves the head
/// incomplete, which is when a first byte can be noticed.
struct HeadWait {
    read: Arc<AtomicU64>,
    read_at_start: u64,
    /// Whether the head's clock runs (a byte arrived, or this is the connection's first wait).
    in_head: bool,
    header_read_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.in_head && self.read.load(Ordering::Relaxed) != self.read_at_start {
            self.in_head = true;
            let deadline = tokio::time::Instant::now() + self.header_read_timeout;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadWait {}
