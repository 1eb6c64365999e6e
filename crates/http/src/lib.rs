//! elevens-http: the HTTP floor of the imperative shell.
//!
//! The gateway (axum: auth, limits, JSON) turns requests into commands and hands them to the
//! engine (`elevens-engine`, re-exported as [`engine`]), which stamps them with time, applies
//! them in order on one thread and makes each batch durable with one fsync before any reply
//! leaves. Requests and their handlers live here, one file per resource; what an answer shows is
//! rendered on the sequencer by `elevens-views` ([`views`]). This crate never decides a business
//! rule (those live in `elevens-core`, so replay sees them too) and the floors below never
//! import it: Cargo refuses.

pub mod access;
pub mod admission;
pub mod api;
pub mod batch;
pub mod catalogue;
pub mod checkout;
pub mod egress;
pub mod error;
pub mod events;
pub mod experiments;
pub mod fingerprint;
pub mod gate;
pub mod headers;
pub mod http;
pub mod keys;
pub mod ledger;
pub mod listing;
pub mod live;
pub mod logistics;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod products;
pub mod promotions;
pub mod routes;
pub mod search;
pub mod sheets;
mod telemetry;
pub mod webhooks;
pub mod wire;

use elevens_engine::write_private;
/// The floors below, by the names this crate's modules use for them: what the sequencer
/// renders (`views`), and the engine with its configuration, keys, audit and replication.
pub use elevens_engine::{audit, auth, config, engine, offline, replicated, seam};
pub use elevens_views as views;

use crate::api::AppState;
use crate::auth::{hash_secret, new_secret};
use crate::config::Config;
use crate::engine::{Engine, Item, ReplyWith};
use crate::error::ApiError;
use crate::gate::Gate;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use elevens_admission::{Class, Refusal};
use elevens_core::{Actor, Command};
use std::future::Future;
use std::sync::Arc;

/// The axum router with every route, the OpenAPI document and the JSON fallbacks.
pub fn router(app: AppState) -> Router {
    let (router, openapi) = routes::routes().split_for_parts();
    let openapi = Arc::new(openapi::document(&openapi));
    let body_limit = app.config.engine.request_bytes_max;
    let metrics = app.metrics.clone();
    let analytics = app.engine.analytics.clone();
    let gate = app.gate.clone();
    let gate_for_bound = app.gate.clone();
    let in_progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let in_progress_max = app.config.engine.http_in_progress_max;
    let commands = app.commands.clone();
    router
        .route("/v1/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .route("/v1/live", get(live::live))
        .route("/", get(live::screen))
        .route("/screen", get(live::screen))
        .route(
            "/screen/uplot.js",
            get(|| live::asset("text/javascript; charset=utf-8", elevens_web::UPLOT_JS)),
        )
        .route("/screen/uplot.css", get(|| live::asset("text/css; charset=utf-8", elevens_web::UPLOT_CSS)))
        .route("/screen/screen.js", get(|| live::script(elevens_web::SCREEN_JS)))
        .route("/screen/screen.css", get(|| live::style(elevens_web::SCREEN_CSS)))
        .route("/console", get(|| live::page(elevens_web::CONSOLE_HTML)))
        .route("/console/app.js", get(|| live::script(elevens_web::CONSOLE_JS)))
        .route("/console/zh.js", get(|| live::script(elevens_web::CONSOLE_ZH_JS)))
        .route("/console/console.css", get(|| live::style(elevens_web::CONSOLE_CSS)))
        .route(
            "/metrics",
            get(move || async move {
                match &metrics {
                    Some(handle) => {
                        gate.publish_metrics();
                        telemetry::collect(&analytics.lock());
                        handle.render().into_response()
                    }
                    None => ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "no metrics recorder in this process",
                    )
                    .into_response(),
                }
            }),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        // Inside the bound on requests in progress: a read waiting for its position holds a slot.
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            at_position(request, next, commands.clone())
        }))
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            let (gate, in_progress) = (gate_for_bound.clone(), in_progress.clone());
            bound_in_progress(request, next, gate, in_progress, in_progress_max)
        }))
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            refuse_oversized(request, next, body_limit)
        }))
        // Every answer, refusals by the layers above included, carries the security headers.
        .layer(axum::middleware::map_response(headers::security_headers))
        // Outermost: a request refused by the layers above is logged and counted too.
        .layer(axum::middleware::from_fn(access::observe))
        .with_state(app)
}

/// The header every answer carries: the last record durable and applied on this node when it
/// was sent (for a write, at or after the write's own).
pub const POSITION_HEADER: &str = "x-elevens-position";
/// The header a read sends to see at least that position (a write's answer's, read from a
/// standby): it waits up to [`POSITION_WAIT`] for this node to get there.
pub const MIN_POSITION_HEADER: &str = "x-elevens-min-position";
/// How long a read waits for the position it asks for before it is answered 503.
const POSITION_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

async fn at_position(request: Request, next: Next, engine: Arc<dyn seam::Commands>) -> Response {
    let wanted = request
        .headers()
        .get(MIN_POSITION_HEADER)
        .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    match wanted {
        Some(None) => {
            let message = format!("{MIN_POSITION_HEADER} is a record number (an unsigned integer)");
            return ApiError::bad_request("invalid_position", message).into_response();
        }
        Some(Some(wanted)) if !engine.wait_durable(wanted, POSITION_WAIT).await => {
            let at = engine.durable_seq();
            let message = format!("this node is at record {at}, behind {wanted}; retry, or ask the leader");
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "behind", message);
            e.body.retry_after_ms = Some(1_000);
            return e.into_response();
        }
        _ => {}
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(POSITION_HEADER, engine.durable_seq().into());
    response
}

/// Sheds a request with 429 when too many are already being handled, or a batch when admission
/// is shedding its class anyway: the cheapest refusal the gateway can make (no key hashed, no
/// body read). Payments get eight times the room, and the operator's routes (health, metrics,
/// admission rules) are never shed.
async fn bound_in_progress(
    request: Request,
    next: Next,
    gate: Arc<Gate>,
    in_progress: Arc<std::sync::atomic::AtomicUsize>,
    max: usize,
) -> Response {
    use std::sync::atomic::Ordering;
    let path = request.uri().path();
    let operator = ["/healthz", "/metrics", "/v1/live", "/v1/cluster", "/"].contains(&path);
    let page = path.starts_with("/screen") || path.starts_with("/console");
    if operator || page || path.starts_with("/v1/admission") {
        return next.run(request).await;
    }
    let class = door_class(path, request.headers());
    let bound = if class == Class::Pay { max.saturating_mul(8) } else { max };
    // A batch of orders that arrives while admission sheds orders for want of room in flight
    // would be decoded only to be refused command by command: under a 10x spike over HTTP that
    // cost more than the cores had (goodput 4.7% of capacity). Refused here, it costs nothing.
    let full = || gate.with(|admission, _| admission.is_full(class));
    let previous = in_progress.fetch_add(1, Ordering::Relaxed);
    // Decrements on every path out, including a client that hangs up mid-request.
    struct Leave(Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Leave {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let _leave = Leave(in_progress);
    if previous >= bound || (is_batch(path) && full()) {
        let refusal = Refusal::Overloaded { retry_after: gate::BOUND_RETRY };
        gate.with(|admission, _| admission.note_shed(class, &refusal));
        return ApiError::from(refusal).into_response();
    }
    next.run(request).await
}

/// How the door classes a request it has not read: a payment by its path, a batch by the class
/// it declares (the batch handler then checks every command against it).
fn door_class(path: &str, headers: &axum::http::HeaderMap) -> Class {
    let declared_pay = || batch::declared_batch_class(headers).is_ok_and(|c| c == Some(Class::Pay));
    if path.ends_with("/pay") || (is_batch(path) && declared_pay()) {
        Class::Pay
    } else {
        Class::Order
    }
}

fn is_batch(path: &str) -> bool {
    path == "/v1/batch" || path == "/v1/batch/binary"
}

/// Refuses a body announced larger than the limit before reading a byte of it. (Bodies without a
/// length are cut at the limit by `DefaultBodyLimit` as they are read.)
async fn refuse_oversized(request: Request, next: Next, limit: usize) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        let message = format!("a request body is at most {limit} bytes");
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message).into_response();
    }
    next.run(request).await
}

/// Registers the first admin key, once, on a new journal. The secret is read from
/// `config.admin_key_path` or written there (mode 0600) *before* it is journaled, so a crash in
/// between never leaves a key nobody knows. Returns the secret when it was created now.
async fn bootstrap_admin_key(
    engine: &engine::EngineHandle,
    config: &Config,
) -> anyhow::Result<Option<String>> {
    if !engine.keys.none_ever() {
        if !engine.keys.has_admin() {
            tracing::warn!(
                "no admin key works in this data directory: stop the server and run `elevens admin-key --data {}`",
                config.data_dir.display()
            );
        }
        return Ok(None);
    }
    let path = &config.admin_key_path;
    let secret = match std::fs::read_to_string(path) {
        Ok(existing) if !existing.trim().is_empty() => existing.trim().to_owned(),
        _ => {
            let secret = new_secret();
            write_private(path, &secret)?;
            secret
        }
    };
    let command = Command::CreateApiKey { acts_as: Actor::Admin, secret_sha256: hash_secret(&secret) };
    let rx = seam::Commands::submit(
        engine,
        vec![Item::Write { actor: Actor::Admin, idempotency: None, command, reply: ReplyWith::Outcome }],
    )
    .map_err(|_| anyhow::anyhow!("engine overloaded at start-up"))?;
    let results = rx.await?;
    if let Some(Err(error)) = results.into_iter().next() {
        anyhow::bail!("registering the admin key failed: {error}");
    }
    Ok(Some(secret))
}

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM (Docker, systemd, Kubernetes): the signal
/// to stop taking work, answer what is in flight and exit. The handlers are installed by this
/// call, not when the future is first polled: a server polls it only between accepts, and a
/// SIGTERM that came before would take the default disposition and kill the process. Call it
/// inside the runtime (tokio's signal driver needs one).
pub fn stop_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    async move {
        let (Ok(mut interrupt), Ok(mut terminate)) = handlers else {
            // Without handlers the default disposition stops the process; wait for nothing.
            return std::future::pending().await;
        };
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(
            signal = name,
            "stopping: answering what is in flight, then the last batch is made durable"
        );
    }
}

/// Connections waiting to be accepted, at most (the socket's `listen` backlog).
const LISTEN_BACKLOG: u32 = 1_024;

/// Binds `config.listen`, failing before anything is created in the data directory when another
/// process serves on it. The socket listens only once the engine has recovered ([`serve_on`]):
/// until then a connection is refused at once, so a client or a balancer tries another node,
/// instead of being accepted and kept waiting for as long as recovery takes (a replicated node
/// may wait seconds for NATS).
pub fn bind(config: &Config) -> anyhow::Result<tokio::net::TcpSocket> {
    let cannot = |e: std::io::Error| anyhow::anyhow!("cannot listen on {}: {e}", config.listen);
    let socket = match config.listen {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(cannot)?;
    // As the standard library's listeners do: a restart binds while old connections linger.
    socket.set_reuseaddr(true).map_err(cannot)?;
    socket.bind(config.listen).map_err(cannot)?;
    Ok(socket)
}

/// Binds, recovers the engine from `config.data_dir`, serves the API until `shutdown` resolves,
/// answers what is in flight, lets the last batch become durable and stops.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let socket = bind(&config)?;
    serve_on(socket, config, shutdown).await
}

/// [`serve`] on a socket the caller bound: it listens once the engine has recovered.
pub async fn serve_on(
    socket: tokio::net::TcpSocket,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // Prometheus text on GET /metrics; the recorder is process-wide, installed once, before the
    // engine starts so that what it counts while starting is kept.
    let metrics = telemetry::install();
    let (engine, report) = Engine::start(&config)?;
    tracing::info!(
        snapshot = ?report.snapshot_seq,
        replayed = report.journal.records_replayed,
        last_record = report.journal.last_seq,
        torn_bytes_cut = report.journal.torn_bytes_cut,
        snapshot_ms = report.snapshot_time.as_millis() as u64,
        journal_ms = report.journal_time.as_millis() as u64,
        read_models_ms = report.read_models_time.as_millis() as u64,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered"
    );
    let mut first_key = None;
    if engine.handle.replica.is_none() {
        if let Some(secret) = bootstrap_admin_key(&engine.handle, &config).await? {
            println!("admin key (shown once, also in {}): {secret}", config.admin_key_path.display());
        }
    } else {
        // A replicated journal's first key is registered by its first leader, once it leads.
        let (handle, config) = (engine.handle.clone(), config.clone());
        first_key = Some(tokio::spawn(async move {
            while !handle.writable() && handle.keys.none_ever() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            match bootstrap_admin_key(&handle, &config).await {
                Ok(Some(_)) => println!("admin key registered from {}", config.admin_key_path.display()),
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "registering the first admin key failed"),
            }
        }));
    }
    let listener = socket.listen(LISTEN_BACKLOG)?;
    let address = listener.local_addr()?;
    println!("elevens listening on http://{address} (data in {})", config.data_dir.display());
    let gate = Arc::new(Gate::kept_in(&config.data_dir, config.admission.clone())?);
    let limits = config.http.clone();
    let webhooks =
        webhooks::Webhooks::start(&config.data_dir, engine.handle.feed.clone(), config.webhooks.clone())?;
    let app = AppState {
        commands: Arc::new(engine.handle.clone()),
        engine: engine.handle.clone(),
        config: Arc::new(config),
        metrics,
        gate,
        webhooks,
        screen: Arc::new(live::Screen::new(engine::now_ms())),
    };
    http::serve(listener, router(app), limits, shutdown).await?;
    if let Some(task) = first_key {
        task.abort(); // it holds the engine open
    }
    tokio::task::spawn_blocking(move || engine.shutdown()).await?;
    Ok(())
}

/// Serves the HTTP API of a running engine on `listener`, behind `gate`, until `shutdown` resolves.
pub async fn serve_engine(
    engine: engine::EngineHandle,
    config: Arc<Config>,
    gate: Arc<Gate>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = config.http.clone();
    let webhooks = webhooks::Webhooks::start(&config.data_dir, engine.feed.clone(), config.webhooks.clone())?;
    let app = AppState {
        commands: Arc::new(engine.clone()),
        engine,
        config,
        metrics: None,
        gate,
        webhooks,
        screen: Arc::new(live::Screen::new(engine::now_ms())),
    };
    http::serve(listener, router(app), limits, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn the_door_gives_payments_and_declared_payment_batches_their_room() {
        let declared = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(batch::BATCH_CLASS_HEADER, value.parse().unwrap());
            headers
        };
        let none = HeaderMap::new();
        assert_eq!(door_class("/v1/orders/7/pay", &none), Class::Pay);
        assert_eq!(door_class("/v1/orders", &none), Class::Order);
        assert_eq!(door_class("/v1/batch", &none), Class::Order);
        assert_eq!(door_class("/v1/batch/binary", &declared("pay")), Class::Pay);
        assert_eq!(door_class("/v1/batch", &declared("pay")), Class::Pay);
        assert_eq!(door_class("/v1/batch", &declared("order")), Class::Order);
        assert_eq!(door_class("/v1/batch", &declared("PAY!")), Class::Order);
        // Only batches may declare: a single order stays an order whatever it says.
        assert_eq!(door_class("/v1/orders", &declared("pay")), Class::Order);
    }
}
