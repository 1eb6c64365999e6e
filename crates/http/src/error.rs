//! The one place where errors become HTTP answers: `{"code", "message"}` with a stable code.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use elevens_admission::{waiting_room::TicketError, Refusal};
use elevens_core::{CoreError, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: match on this.
    pub code: String,
    /// For humans; may change between versions.
    pub message: String,
    /// Extra figures for some codes (e.g. `starts_in_ms` for `campaign_not_started`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// On 429 and 503: when to come back (also in `Retry-After`, rounded up to seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message: message.into(),
                details: None,
                retry_after_ms: None,
            },
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 `out_of_bounds` naming the request's `field` (in `details.field`, as the core's own
    /// refusals do), so a form shows the message beside it.
    pub fn out_of_bounds(field: &str, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::bad_request("out_of_bounds", message);
        e.body.details = Some(serde_json::json!({ "field": field }));
        e
    }

    /// A fault of the server's own (500), never of the request.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn overloaded() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the sequencer queue is full; retry after the delay in Retry-After",
        );
        e.body.retry_after_ms = Some(1_000);
        e
    }

    /// 403 for a key whose role may not use the endpoint at all.
    pub fn forbidden_key() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this key may not do that")
    }

    /// A write to a replicated node that cannot take it: `not_leader` (where the leader is, if
    /// known) on a follower; `no_quorum` on a leader that cannot reach a quorum of the stream's
    /// servers (or renew its lease), whose writes resume when it does.
    pub fn not_leader(engine: &crate::engine::EngineHandle) -> ApiError {
        let replica = engine.replica.as_ref();
        let leader =
            replica.and_then(|r| r.leader.lock().clone()).filter(|l| Some(l) != replica.map(|r| &r.node));
        let (code, message) = match (&leader, replica.is_some_and(|r| r.role() == "leader")) {
            (_, true) => (
                "no_quorum",
                "this leader cannot reach a quorum of the journal's servers now; writes resume when it does"
                    .to_string(),
            ),
            (Some(leader), false) => ("not_leader", format!("this node follows; the leader is {leader}")),
            (None, false) => (
                "not_leader",
                "this node follows and no leader is known yet; a standby takes over within seconds"
                    .to_string(),
            ),
        };
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        e.body.retry_after_ms = Some(1_000);
        e.body.details = leader.map(|leader| serde_json::json!({ "leader": leader }));
        e
    }

    pub fn shutting_down() -> ApiError {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the engine is stopping");
        e.body.retry_after_ms = Some(1_000);
        e
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> ApiError {
        let status = match error.kind() {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
        };
        let details = match &error {
            CoreError::CampaignNotStarted { campaign, starts_in_ms } => {
                Some(serde_json::json!({ "campaign_id": campaign.0, "starts_in_ms": starts_in_ms }))
            }
            CoreError::CampaignSoldOut { campaign, remaining } => {
                Some(serde_json::json!({ "campaign_id": campaign.0, "remaining": remaining }))
            }
            CoreError::InsufficientStock { available } => Some(serde_json::json!({ "available": available })),
            // The request's field at fault, so a form shows the message beside it.
            CoreError::OutOfBounds { what, .. } => Some(serde_json::json!({ "field": what })),
            _ => None,
        };
        let mut e = ApiError::new(status, error.code(), error.to_string());
        e.body.details = details;
        e
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        let status = match refusal {
            Refusal::Ticket(TicketError::NotYours | TicketError::WrongOrder) => StatusCode::FORBIDDEN,
            Refusal::Ticket(TicketError::Unknown) => StatusCode::NOT_FOUND,
            Refusal::Ticket(TicketError::Used) => StatusCode::CONFLICT,
            _ => StatusCode::TOO_MANY_REQUESTS,
        };
        let mut e = ApiError::new(status, refusal.code(), refusal.to_string());
        e.body.retry_after_ms = refusal.retry_after().map(|ns| ns.div_ceil(1_000_000));
        if let Refusal::Ticket(TicketError::NotAdmitted { position, wait_ms }) = refusal {
            e.body.details = Some(serde_json::json!({ "position": position, "wait_ms": wait_ms }));
        }
        e
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let (status, code) = match &rejection {
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::BytesRejection(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            _ => (StatusCode::BAD_REQUEST, "invalid_body"),
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after_ms = self.body.retry_after_ms;
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(ms) = retry_after_ms {
            let seconds = ms.div_ceil(1_000).max(1);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
