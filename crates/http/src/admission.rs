//! Admission control's API: the waiting room's tickets, the figures, the rules at runtime.

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::gate::SetRulesError;
use crate::views::*;
use axum::http::StatusCode;
use axum::Json;
use elevens_admission::waiting_room::{TicketError, TicketState, TicketView};
use elevens_admission::{Refusal, Rules, Stats};
use elevens_core::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeTicketRequest {
    pub campaign_id: u64,
    pub buyer_id: u64,
}

/// A waiting-room ticket: `state` is `waiting` (with `position` and `wait_ms`), `admitted`
/// (with `use_within_ms`) or `used`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResponse {
    /// Send it as the `Waiting-Room-Ticket` header of the order.
    pub ticket: String,
    pub campaign_id: u64,
    pub buyer_id: u64,
    pub state: &'static str,
    pub position: Option<u64>,
    pub wait_ms: Option<u64>,
    pub use_within_ms: Option<u64>,
}

impl From<TicketView> for TicketResponse {
    fn from(view: TicketView) -> TicketResponse {
        let (state, position, wait_ms, use_within_ms) = match view.state {
            TicketState::Waiting { position, wait_ms } => ("waiting", Some(position), Some(wait_ms), None),
            TicketState::Admitted { use_within_ms } => ("admitted", None, None, Some(use_within_ms)),
            TicketState::Used => ("used", None, None, None),
        };
        TicketResponse {
            ticket: format!("{:016x}", view.ticket),
            campaign_id: view.campaign_id,
            buyer_id: view.buyer_id,
            state,
            position,
            wait_ms,
            use_within_ms,
        }
    }
}

/// Take a ticket in a campaign's waiting room (or get back the one this buyer holds). Tickets are
/// admitted first-in first-out at the room's rate; poll `GET /v1/waiting-room/{ticket}`.
#[utoipa::path(post, path = "/v1/waiting-room", tag = "admission", request_body = TakeTicketRequest,
    responses((status = 201, body = TicketResponse), (status = "4XX", body = ErrorBody)))]
pub async fn take_ticket(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppJson(request): AppJson<TakeTicketRequest>,
) -> Result<(StatusCode, Json<TicketResponse>), ApiError> {
    if !actor.may_act_for_buyer(BuyerId(request.buyer_id)) {
        return Err(ApiError::forbidden_key());
    }
    if request.campaign_id == 0 || request.buyer_id == 0 {
        return Err(ApiError::bad_request("invalid_body", "campaign_id and buyer_id start at 1"));
    }
    // A room only for a campaign that exists and has not ended, and its ticket only for that
    // campaign's SKU: otherwise a ticket for anything would bypass a hot SKU's rate limit.
    let campaign = match read_view(&app, actor, Query::Campaign(CampaignId(request.campaign_id))).await? {
        View::Campaign(campaign) => campaign,
        _ => return Err(ApiError::internal("a campaign read answered with another view")),
    };
    if campaign.status == "ended" {
        return Err(ApiError::new(StatusCode::CONFLICT, "campaign_ended", "this campaign has ended"));
    }
    let (campaign_id, sku) = (request.campaign_id, campaign.sku_id);
    let view = app.gate.with(|a, now| a.take_ticket(campaign_id, sku, request.buyer_id, now))?;
    Ok((CREATED, Json(view.into())))
}

/// Where a waiting-room ticket stands: its position and estimated wait, or that it is admitted.
#[utoipa::path(get, path = "/v1/waiting-room/{ticket}", tag = "admission",
    responses((status = 200, body = TicketResponse), (status = "4XX", body = ErrorBody)))]
pub async fn get_ticket(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(ticket): AppPath<String>,
) -> Result<Json<TicketResponse>, ApiError> {
    let ticket = parse_ticket(&ticket)?;
    let view = app.gate.with(|a, now| a.ticket(ticket, now))?;
    // Another buyer's ticket is answered as absent: tickets are not to be collected.
    if !actor.may_act_for_buyer(BuyerId(view.buyer_id)) {
        return Err(Refusal::Ticket(TicketError::Unknown).into());
    }
    Ok(Json(view.into()))
}

/// Admission control now: the adaptive limit, commands in flight, admitted and shed per class.
#[utoipa::path(get, path = "/v1/admission", tag = "admission",
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn get_admission(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Stats>, ApiError> {
    if !matches!(actor, Actor::Admin | Actor::Service) {
        return Err(ApiError::forbidden_key());
    }
    Ok(Json(app.gate.stats()))
}

/// The admission rules in force (admin).
#[utoipa::path(get, path = "/v1/admission/rules", tag = "admission",
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn get_admission_rules(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Rules>, ApiError> {
    if actor != Actor::Admin {
        return Err(ApiError::forbidden_key());
    }
    Ok(Json(app.gate.rules()))
}

/// Replace the admission rules at runtime (admin); absent fields take their defaults. Buckets,
/// the adaptive limit's value and tickets carry over. Kept in the data directory before they take
/// effect, so a restart starts with them (they are operations, not business state: not journaled,
/// and each node of a cluster keeps its own).
#[utoipa::path(put, path = "/v1/admission/rules", tag = "admission", request_body = Object,
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn put_admission_rules(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppJson(rules): AppJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<Rules>, ApiError> {
    if actor != Actor::Admin {
        return Err(ApiError::forbidden_key());
    }
    // An object, never serde's sequence form of a struct (`[]` would have reset every rule).
    let rules: Rules = serde_json::from_value(serde_json::Value::Object(rules))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string()))?;
    let gate = app.gate.clone();
    let set = tokio::task::spawn_blocking(move || gate.set_rules(rules))
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "rules_not_kept", "stopping; retry"))?;
    match set {
        Ok(()) => Ok(Json(app.gate.rules())),
        Err(SetRulesError::Invalid(why)) => Err(ApiError::bad_request("invalid_rules", why)),
        Err(error @ SetRulesError::NotKept(_)) => {
            tracing::error!(%error, "admission rules not replaced");
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "rules_not_kept", error.to_string());
            e.body.retry_after_ms = Some(1_000);
            Err(e)
        }
    }
}
