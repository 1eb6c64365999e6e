//! Wallets on the ledger: buyers, top-ups, and the wallets of buyers, merchants and the platform.

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::views::*;
use elevens_core::limits::WALLET_ENTRIES_MAX;
use elevens_core::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBuyerRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// Minor units.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    pub amount: u64,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WalletParams {
    /// How many of the newest entries to show (at most 1000; default 20).
    pub entries: Option<usize>,
    /// Entries older than this transfer: an account's `next_before`, for the next page.
    pub before: Option<u64>,
}

pub(crate) fn top_up(buyer: u64, request: TopUpRequest) -> Result<Command, ApiError> {
    Ok(Command::TopUp {
        buyer: BuyerId(buyer),
        amount: Amount(request.amount),
        currency: currency(&request.currency)?,
    })
}

/// A merchant's wallet: balances per currency and the newest ledger entries.
#[utoipa::path(get, path = "/v1/merchants/{id}/wallet", tag = "wallets", params(WalletParams),
    responses((status = 200, body = WalletView), (status = "4XX", body = ErrorBody)))]
pub async fn get_merchant_wallet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
    AppQuery(params): AppQuery<WalletParams>,
) -> Answer {
    read(&app, actor, wallet(Owner::Merchant(MerchantId(id)), params)).await
}

pub(crate) fn wallet(owner: Owner, params: WalletParams) -> Query {
    Query::Wallet {
        owner,
        entries_max: params.entries.unwrap_or(20).min(WALLET_ENTRIES_MAX),
        before: params.before.map(TransferId),
    }
}

/// Create a buyer (admin, service).
#[utoipa::path(post, path = "/v1/buyers", tag = "wallets", request_body = CreateBuyerRequest,
    responses((status = 201, body = BuyerView), (status = "4XX", body = ErrorBody)))]
pub async fn create_buyer(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateBuyerRequest>,
) -> Answer {
    write(&app, actor, &key, Command::CreateBuyer { name: request.name }, CREATED).await
}

/// A buyer.
#[utoipa::path(get, path = "/v1/buyers/{id}", tag = "wallets",
    responses((status = 200, body = BuyerView), (status = "4XX", body = ErrorBody)))]
pub async fn get_buyer(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Buyer(BuyerId(id))).await
}

/// Top up a buyer's wallet from the external funding account.
#[utoipa::path(post, path = "/v1/buyers/{id}/top-ups", tag = "wallets", request_body = TopUpRequest,
    responses((status = 201, body = TopUpView), (status = "4XX", body = ErrorBody)))]
pub async fn create_top_up(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<TopUpRequest>,
) -> Answer {
    write(&app, actor, &key, top_up(id, request)?, CREATED).await
}

/// A buyer's wallet: balances per currency and the newest ledger entries.
#[utoipa::path(get, path = "/v1/buyers/{id}/wallet", tag = "wallets", params(WalletParams),
    responses((status = 200, body = WalletView), (status = "4XX", body = ErrorBody)))]
pub async fn get_buyer_wallet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
    AppQuery(params): AppQuery<WalletParams>,
) -> Answer {
    read(&app, actor, wallet(Owner::Buyer(BuyerId(id)), params)).await
}

/// The platform's commission account (admin).
#[utoipa::path(get, path = "/v1/platform/wallet", tag = "wallets", params(WalletParams),
    responses((status = 200, body = WalletView), (status = "4XX", body = ErrorBody)))]
pub async fn get_platform_wallet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppQuery(params): AppQuery<WalletParams>,
) -> Answer {
    read(&app, actor, wallet(Owner::Platform, params)).await
}
