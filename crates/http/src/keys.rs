//! API keys: minting one for a role, revoking one (the operator's).

use crate::api::*;
use crate::auth::{hash_secret, new_secret};
use crate::engine::{Item, ReplyWith};
use crate::error::{ApiError, ErrorBody};
use crate::fingerprint::{idempotency, Defaulted};
use crate::views::*;
use axum::Json;
use elevens_core::*;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Admin,
    Service,
    Merchant,
    Buyer,
    Carrier,
    /// Read-only: the big screen's live figures and the analytics, nothing that changes state.
    Viewer,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub role: RoleName,
    /// Required for the `merchant` role.
    pub merchant_id: Option<u64>,
    /// Required for the `buyer` role.
    pub buyer_id: Option<u64>,
    /// Required for the `carrier` role.
    pub carrier_id: Option<u64>,
    /// What the operator calls it ("storefront, Hangzhou"), at most 200 bytes.
    pub label: Option<String>,
}

/// Create an API key (admin). The secret is in the answer, once.
#[utoipa::path(post, path = "/v1/api-keys", tag = "admin", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyView), (status = "4XX", body = ErrorBody)))]
pub async fn create_api_key(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateApiKeyRequest>,
) -> Answer {
    let acts_as = match (request.role, request.merchant_id, request.buyer_id, request.carrier_id) {
        (RoleName::Admin, None, None, None) => Actor::Admin,
        (RoleName::Service, None, None, None) => Actor::Service,
        (RoleName::Merchant, Some(m), None, None) => Actor::Merchant(MerchantId(m)),
        (RoleName::Buyer, None, Some(b), None) => Actor::Buyer(BuyerId(b)),
        (RoleName::Carrier, None, None, Some(c)) => Actor::Carrier(CarrierId(c)),
        (RoleName::Viewer, None, None, None) => Actor::Viewer,
        _ => return Err(ApiError::bad_request(
            "invalid_role",
            "merchant keys need merchant_id, buyer keys buyer_id, carrier keys carrier_id, other roles none",
        )),
    };
    // The fingerprint leaves the secret out, so a repeat matches the first request; a repeat
    // answers the key's id without the secret, which only the first answer carries.
    let secret = new_secret();
    let secret_sha256 = hash_secret(&secret);
    let command = match request.label {
        Some(label) => Command::CreateLabelledApiKey { acts_as, secret_sha256, label },
        None => Command::CreateApiKey { acts_as, secret_sha256 },
    };
    let idem = Some(idempotency(actor, &key.0, &command, Defaulted::NONE));
    let item = Item::Write { actor, idempotency: idem, command, reply: ReplyWith::View };
    let view = submit_one(&app, item, None).await?;
    let View::ApiKey(mut view) = view else { return Err(ApiError::shutting_down()) };
    if app.engine.keys.authenticate(&secret).is_some() {
        view.key = Some(secret);
    }
    Ok((CREATED, Json(View::ApiKey(view))))
}

/// Revoke an API key (admin).
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "admin",
    responses((status = 200, body = ApiKeyView), (status = "4XX", body = ErrorBody)))]
pub async fn revoke_api_key(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::RevokeApiKey { key: ApiKeyId(id) }, OK).await
}
