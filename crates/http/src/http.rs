//! The HTTP/1.1 listener: every connection bounded in number and in time, and a graceful stop.
//!
//! - At most `connections_max` connections are served at once; one more is answered
//!   `503 too_many_connections` with `Retry-After` and closed, so a flood of idle sockets never
//!   takes the descriptors that `/healthz`, the journal and the snapshots need.
//! - A request's headers must arrive within `header_read_timeout_ms` (slowloris), its body within
//!   `body_read_timeout_ms` of the request's start, and a connection with no bytes either way for
//!   `idle_timeout_ms` is closed once its current request (if any) is answered.
//! - On shutdown the listener stops accepting, every connection finishes and answers the request
//!   it is reading or handling and then closes, for at most `drain_timeout_ms`.
//!
//! axum's own `serve` has none of these bounds, hence this loop over hyper's connection builder.

use crate::config::HttpLimits;
use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Descriptors kept back from connections for everything else the process opens: the journal's
/// segments, snapshots, the data directory's lock, the listener.
pub const RESERVED_DESCRIPTORS: u64 = 256;
/// Refusals being written at once, beyond which a connection over the limit is closed unanswered.
const REFUSALS_IN_FLIGHT_MAX: usize = 1_024;
/// How long writing a refusal may take.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a connection checks whether it has been idle too long.
const IDLE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a stop waits for connections dropped past the drain timeout to go.
const ABORT_WAIT: Duration = Duration::from_secs(1);
/// How long the accept loop pauses after an accept error (out of descriptors, say).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Raises the soft limit on open descriptors to the hard limit, and returns the number of
/// connections that fit under it (`wanted` at most), leaving [`RESERVED_DESCRIPTORS`] for the rest.
pub fn fit_descriptors(wanted: usize) -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct passed, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    let room = limit.rlim_cur.saturating_sub(RESERVED_DESCRIPTORS).max(1);
    let fitted = wanted.min(usize::try_from(room).unwrap_or(usize::MAX));
    if fitted < wanted {
        tracing::warn!(
            descriptors = limit.rlim_cur,
            wanted,
            connections_max = fitted,
            "the descriptor limit holds fewer connections than configured: raise LimitNOFILE / ulimit -n"
        );
    }
    fitted
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections_max = fit_descriptors(limits.connections_max);
    let connections = Arc::new(Semaphore::new(connections_max));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT_MAX));
    // `false` then `true`: stop taking requests; then, past the drain timeout, `abort`: drop the
    // connection, so nothing outlives the stop (a connection holds the engine's handle).
    let (stop, stopping) = watch::channel(Stop::Serve);
    let body_timeout = Duration::from_millis(limits.body_read_timeout_ms);
    let router =
        router.layer(axum::middleware::from_fn(move |request: Request, next: axum::middleware::Next| {
            let request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
            next.run(request)
        }));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, stopping, limits) = (router.clone(), stopping.clone(), limits.clone());
        tokio::spawn(async move {
            serve_connection(stream, router, &limits, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(Stop::Drain);
    let all = u32::try_from(connections_max).unwrap_or(u32::MAX);
    let drain = Duration::from_millis(limits.drain_timeout_ms);
    if tokio::time::timeout(drain, connections.acquire_many(all)).await.is_err() {
        tracing::warn!(
            open = connections_max - connections.available_permits(),
            "connections still open after the drain timeout: closing them"
        );
        let _ = stop.send(Stop::Abort);
        let _ = tokio::time::timeout(ABORT_WAIT, connections.acquire_many(all)).await;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Serve,
    Drain,
    Abort,
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: &HttpLimits,
    mut stopping: watch::Receiver<Stop>,
) {
    let origin = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Tracked { stream, activity: activity.clone(), origin });
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let idle_ms = limits.idle_timeout_ms;
    let mut tick = tokio::time::interval(IDLE_CHECK_INTERVAL);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            changed = stopping.changed() => {
                match (changed, *stopping.borrow()) {
                    (Err(_), _) | (_, Stop::Abort) => return,
                    (_, Stop::Drain) if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    _ => {}
                }
            }
            _ = tick.tick(), if !closing => {
                let now = origin.elapsed().as_millis() as u64;
                if now.saturating_sub(activity.load(Ordering::Relaxed)) >= idle_ms {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Answers a connection over the limit and closes it.
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"code":"too_many_connections","message":"the server has as many connections as it serves; retry shortly","retry_after_ms":1000}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// A connection's socket, noting when it last moved a byte (ms since the connection began).
struct Tracked {
    stream: TcpStream,
    activity: Arc<AtomicU64>,
    origin: Instant,
}

impl Tracked {
    fn touch(&self) {
        self.activity.store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A request body that must be read whole by a deadline; past it, reading fails (the extractor
/// answers 4xx and the connection closes).
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, timeout: Duration) -> DeadlineBody {
        DeadlineBody { inner, deadline: Box::pin(tokio::time::sleep(timeout)) }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
