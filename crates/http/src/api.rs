//! The HTTP floor's toolkit: the shared state, the extractors (key, idempotency key,
//! waiting-room ticket), the write and read helpers every handler uses. Each resource's
//! handlers are in a file of its own (`catalogue.rs`, `orders.rs`, `ledger.rs`, `promotions.rs`,
//! `keys.rs`, `logistics.rs`, `batch.rs`, ...); `routes.rs` registers them.

use crate::config::Config;
use crate::engine::{EngineHandle, Item, Reply, ReplyWith};
use crate::error::ApiError;
use crate::fingerprint::{idempotency, Defaulted};
use crate::gate::{submit_admitted, Gate, SubmitError};
use crate::seam::Commands;
use crate::views::logistics::PAGE_ENTRIES_MAX;
use crate::views::*;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, request::Parts, StatusCode};
use axum::Json;
use elevens_core::*;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    /// Where every command and read goes: the one seam below this floor.
    pub commands: Arc<dyn Commands>,
    /// The engine's parts that are not commands: the keys' cache (auth), the read models
    /// (analytics, search), the audit, the replica's status.
    pub engine: EngineHandle,
    pub config: Arc<Config>,
    /// Renders `/metrics`; absent where no recorder was installed (the bench, tests in-process).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub gate: Arc<Gate>,
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    pub screen: Arc<crate::live::Screen>,
}

/// `axum::Json`, with its rejections answered as [`ApiError`]s.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

/// The actor behind the request's API key (`Authorization: Bearer <key>` or `X-Api-Key`).
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Auth, ApiError> {
        authenticate(app, &parts.headers, None).map(Auth)
    }
}

/// The actor behind a request's key: `Authorization: Bearer`, `X-Api-Key`, or `fallback` (the
/// live feed's `?key=`, for a browser's EventSource, which cannot send headers).
pub(crate) fn authenticate(
    app: &AppState,
    headers: &axum::http::HeaderMap,
    fallback: Option<&str>,
) -> Result<Actor, ApiError> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = header(header::AUTHORIZATION.as_str())
        .and_then(bearer_token)
        .or_else(|| header("x-api-key"))
        .or(fallback)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send an API key: Authorization: Bearer <key>",
            )
        })?;
    app.engine.keys.authenticate(secret.trim()).ok_or_else(|| {
        // A standby may not have applied a key the leader made a moment ago, so only the leader
        // says a key does not exist; a standby sends the client there.
        if app.engine.replica.is_some() && !app.engine.writable() {
            return ApiError::not_leader(&app.engine);
        }
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", "unknown or revoked API key")
    })
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's name is
/// case-insensitive (RFC 9110 §11.1), so `bearer` and `BEARER` are the same.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// The longest accepted `Idempotency-Key`, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 200;

/// The `Idempotency-Key` header, required on every state-changing request.
pub struct IdempotencyKey(pub String);

pub(crate) fn check_idempotency_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_BYTES_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "an idempotency key is 1 to 200 visible ASCII characters",
        ));
    }
    Ok(())
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<IdempotencyKey, ApiError> {
        let key = parts
            .headers
            .get("idempotency-key")
            .ok_or_else(|| {
                ApiError::bad_request(
                    "idempotency_key_required",
                    "send an Idempotency-Key header with every change",
                )
            })?
            .to_str()
            .map_err(|_| ApiError::bad_request("invalid_idempotency_key", "not visible ASCII"))?;
        check_idempotency_key(key)?;
        Ok(IdempotencyKey(key.to_owned()))
    }
}

/// The optional `Waiting-Room-Ticket` header of an order: 16 hex digits.
pub struct WaitingRoomTicket(pub Option<u64>);

pub(crate) fn parse_ticket(text: &str) -> Result<u64, ApiError> {
    if text.len() != 16 {
        return Err(ApiError::bad_request("invalid_ticket", "a waiting-room ticket is 16 hex digits"));
    }
    u64::from_str_radix(text, 16)
        .map_err(|_| ApiError::bad_request("invalid_ticket", "a waiting-room ticket is 16 hex digits"))
}

impl<S: Send + Sync> FromRequestParts<S> for WaitingRoomTicket {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<WaitingRoomTicket, ApiError> {
        let Some(value) = parts.headers.get("waiting-room-ticket") else {
            return Ok(WaitingRoomTicket(None));
        };
        let text = value.to_str().map_err(|_| ApiError::bad_request("invalid_ticket", "not ASCII"))?;
        Ok(WaitingRoomTicket(Some(parse_ticket(text)?)))
    }
}

/// Lets admission control decide on each item, submits the admitted ones, and answers one result
/// per item, in order: a refused item gets its refusal where it stood.
pub(crate) async fn submit(
    app: &AppState,
    items: Vec<Item>,
    ticket: Option<u64>,
) -> Result<Vec<Result<Reply, ApiError>>, ApiError> {
    let (admitted, refusals, in_flight) = app.gate.admit(&*app.commands, items, ticket);
    let outcomes = submit_admitted(&*app.commands, admitted, in_flight).await.map_err(|e| match e {
        SubmitError::Overloaded => ApiError::overloaded(),
        SubmitError::ShuttingDown => ApiError::shutting_down(),
        SubmitError::NotLeader => ApiError::not_leader(&app.engine),
    })?;
    let mut outcomes = outcomes.into_iter();
    Ok(refusals
        .into_iter()
        .map(|refusal| match refusal {
            Some(refusal) => Err(refusal.into()),
            None => outcomes.next().ok_or_else(ApiError::shutting_down)?.map_err(ApiError::from),
        })
        .collect())
}

/// One read, or one write answered with its view.
pub(crate) async fn submit_one(app: &AppState, item: Item, ticket: Option<u64>) -> Result<View, ApiError> {
    view_of(submit(app, vec![item], ticket).await?.pop().ok_or_else(ApiError::shutting_down)??)
}

pub(crate) type Answer = Result<(StatusCode, Json<View>), ApiError>;

pub(crate) async fn write(
    app: &AppState,
    actor: Actor,
    key: &IdempotencyKey,
    command: Command,
    status: StatusCode,
) -> Answer {
    write_ticketed(app, actor, key, (command, Defaulted::NONE), status, None).await
}

/// A write, `command` with the fields the gateway filled in for the client.
pub(crate) async fn write_ticketed(
    app: &AppState,
    actor: Actor,
    key: &IdempotencyKey,
    (command, defaulted): (Command, Defaulted),
    status: StatusCode,
    ticket: Option<u64>,
) -> Answer {
    let idempotency = Some(idempotency(actor, &key.0, &command, defaulted));
    let item = Item::Write { actor, idempotency, command, reply: ReplyWith::View };
    let view = submit_one(app, item, ticket).await?;
    Ok((status, Json(view)))
}

/// A read through the sequencer (admitted as a read), for the other route modules.
pub(crate) async fn read_view(app: &AppState, actor: Actor, query: Query) -> Result<View, ApiError> {
    submit_one(app, Item::Read { actor, query }, None).await
}

pub(crate) async fn read(app: &AppState, actor: Actor, query: Query) -> Answer {
    Ok((StatusCode::OK, Json(submit_one(app, Item::Read { actor, query }, None).await?)))
}

pub(crate) fn currency(code: &str) -> Result<Currency, ApiError> {
    Currency::parse(code).ok_or_else(|| {
        ApiError::bad_request("invalid_currency", "a currency is an ISO 4217 code such as CNY")
    })
}

/// The statuses a write answers with.
pub(crate) const CREATED: StatusCode = StatusCode::CREATED;
pub(crate) const OK: StatusCode = StatusCode::OK;

/// A write asked with [`ReplyWith::View`], or a read, comes back as a view.
pub(crate) fn view_of(reply: Reply) -> Result<View, ApiError> {
    match reply {
        Reply::View(view) => Ok(*view),
        Reply::Outcome(_) => Err(ApiError::internal("an outcome where a view was asked")),
    }
}

/// A page's size: 50 unless asked, 1 to [`PAGE_ENTRIES_MAX`].
/// A list's words to find (`q`), as the sequencer compares them: trimmed, lower-cased; 1 to
/// [`TEXT_MAX_BYTES`](crate::views::owned::TEXT_MAX_BYTES) bytes, not only spaces.
pub(crate) fn words(q: Option<String>) -> Result<Option<String>, ApiError> {
    let max = crate::views::owned::TEXT_MAX_BYTES;
    match q {
        Some(q) if q.trim().is_empty() || q.len() > max => {
            Err(ApiError::out_of_bounds("q", format!("q: 1 to {max} bytes, not only spaces")))
        }
        q => Ok(q.map(|q| q.trim().to_lowercase())),
    }
}

pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(50);
    if limit == 0 || limit > PAGE_ENTRIES_MAX {
        return Err(ApiError::out_of_bounds("limit", format!("limit: 1 to {PAGE_ENTRIES_MAX}")));
    }
    Ok(limit)
}
