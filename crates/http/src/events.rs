//! `GET /v1/events`: the event feed over HTTP, with long polling.
//!
//! Who reads what: an admin or service key reads every event (and may narrow it to one
//! merchant's); a merchant key reads its own store's events only; buyer and carrier keys are
//! refused (a buyer's own changes are in its orders, wallet and shipments).

use crate::api::{AppQuery, AppState, Auth};
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use elevens_core::Actor;
use elevens_feed::{Feed, FeedError, Filter, Page};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// The most events one read returns.
pub const EVENTS_PER_READ_MAX: usize = 1_000;
/// The most events one read looks at (matching or not), so that a narrow filter over a long
/// stretch of others costs a bounded read: the answer's `next` says where to go on.
pub const EVENTS_SCANNED_PER_READ_MAX: u64 = 100_000;
/// The longest a read waits for a new event.
pub const EVENTS_WAIT_MS_MAX: u64 = 30_000;
/// Reads waiting at once; past it, a read answers at once (as with `wait_ms=0`).
pub const EVENT_WAITERS_MAX: usize = 64;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Events after this position (default 0: from the oldest kept).
    pub after: Option<u64>,
    /// At most this many events (1 to 1,000; default 100).
    pub limit: Option<usize>,
    /// Comma-separated event types (default: all), e.g. `order.paid,order.refunded`.
    pub types: Option<String>,
    /// Only this merchant's events (admin and service keys; a merchant key reads its own).
    pub merchant: Option<u64>,
    /// With nothing new, wait up to this long for an event (0 to 30,000 ms; default 0).
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    /// `{position, id, type, version, record, at, merchant, buyer, data}` each, by position.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Read on with `after=next`: past every event this read looked at.
    pub next: u64,
    /// The newest position.
    pub head: u64,
    /// The oldest position kept.
    pub oldest: u64,
}

/// Who may read the feed, and whose events.
pub(crate) fn scope(actor: Actor, merchant: Option<u64>) -> Result<Option<u64>, ApiError> {
    match actor {
        Actor::Admin | Actor::Service => Ok(merchant),
        Actor::Merchant(own) if merchant.is_none_or(|m| m == own.0) => Ok(Some(own.0)),
        Actor::Merchant(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a merchant key reads its own store's events only",
        )),
        Actor::Buyer(_) | Actor::Carrier(_) | Actor::Viewer => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the event feed needs an admin, service or merchant key",
        )),
    }
}

/// The type mask of a comma-separated list.
pub(crate) fn types_mask(types: Option<&str>) -> Result<u64, ApiError> {
    let Some(types) = types.filter(|t| !t.trim().is_empty()) else { return Ok(Filter::ALL_TYPES) };
    Filter::types_of(types.split(',').map(str::trim)).map_err(|unknown| {
        ApiError::bad_request(
            "invalid_event_type",
            format!("unknown event type {unknown:?}; the types are {}", elevens_feed::TYPES.join(", ")),
        )
    })
}

/// A read of the feed off the runtime's workers (it reads files).
pub(crate) async fn read(feed: &Feed, after: u64, limit: usize, filter: Filter) -> Result<Page, ApiError> {
    let feed = feed.clone();
    tokio::task::spawn_blocking(move || feed.read(after, limit, EVENTS_SCANNED_PER_READ_MAX, &filter))
        .await
        .map_err(|_| ApiError::internal("the feed's read stopped"))?
        .map_err(|error| match error {
            FeedError::Expired { oldest_kept, after } => {
                let mut e = ApiError::new(
                    StatusCode::GONE,
                    "position_expired",
                    format!(
                        "events before position {oldest_kept} are no longer kept; resume with after={after} (events in between are lost to this reader)"
                    ),
                );
                e.body.details = Some(serde_json::json!({ "oldest": oldest_kept }));
                e
            }
            other => ApiError::internal(other.to_string()),
        })
}

static WAITERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(EVENT_WAITERS_MAX);

/// Durable events after a position, in order: a consumer that reads on from `next` misses
/// none and sees none twice. Positions are gap-free and the same after any restart; an event
/// is here only once its command is durable. A position older than the retention is `410`.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsParams),
    responses((status = 200, body = EventsPage), (status = 410, body = ErrorBody), (status = "4XX", body = ErrorBody)))]
pub async fn list_events(
    State(app): State<AppState>,
    Auth(actor): Auth,
    AppQuery(params): AppQuery<EventsParams>,
) -> Result<Json<EventsPage>, ApiError> {
    let filter =
        Filter { types: types_mask(params.types.as_deref())?, merchant: scope(actor, params.merchant)? };
    let limit = params.limit.unwrap_or(100);
    if !(1..=EVENTS_PER_READ_MAX).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit is 1 to 1,000"));
    }
    let wait_ms = params.wait_ms.unwrap_or(0);
    if wait_ms > EVENTS_WAIT_MS_MAX {
        return Err(ApiError::bad_request("invalid_wait", "wait_ms is 0 to 30,000"));
    }
    let feed = app.commands.feed();
    app.commands.feed_caught_up().await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let mut after = params.after.unwrap_or(0);
    let _waiting = if wait_ms > 0 { WAITERS.try_acquire().ok() } else { None };
    let may_wait = _waiting.is_some();
    let page = loop {
        let mut head = feed.watch();
        let page = read(feed, after, limit, filter).await?;
        if !page.events.is_empty() || !may_wait || tokio::time::Instant::now() >= deadline {
            break page;
        }
        after = page.next;
        // Woken when the head moves past what this read saw, or at the deadline.
        let seen = page.head;
        let moved = tokio::time::timeout_at(deadline, head.wait_for(|h| *h > seen)).await;
        if moved.is_err() {
            break Page { next: after, ..page };
        }
    };
    Ok(Json(EventsPage {
        events: page.events.iter().map(|(position, event)| event.to_json(*position)).collect(),
        next: page.next.max(after),
        head: page.head,
        oldest: feed.oldest(),
    }))
}
