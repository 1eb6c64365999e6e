//! The catalogue's resources: merchants and SKUs (create, read, edit, restock).

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::fingerprint::Defaulted;
use crate::views::*;
use elevens_core::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchantRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The platform's commission in basis points; the server's default if absent.
    pub commission_bps: Option<u16>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSkuRequest {
    pub merchant_id: u64,
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// At most 4,000 bytes of UTF-8.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: String,
    /// Minor units (fen, cents).
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub price: u64,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Initial stock.
    #[schema(maximum = 1_000_000_000_u64)]
    pub stock: u64,
    /// The merchant's warehouse it ships from (default: the merchant's first).
    pub warehouse_id: Option<u64>,
}

/// A SKU edit: the fields given replace the SKU's, the others stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSkuRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    /// At most 4,000 bytes of UTF-8.
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    /// Minor units; for orders placed from now on. Not below the flash price of a campaign of
    /// this SKU that has not ended.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub price: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    #[schema(minimum = 1, maximum = 1_000_000_000_u64)]
    pub quantity: u64,
}

impl CreateSkuRequest {
    pub(crate) fn command(self) -> Result<Command, ApiError> {
        Ok(Command::CreateSku(Box::new(NewSku {
            merchant: MerchantId(self.merchant_id),
            title: self.title,
            description: self.description,
            price: Amount(self.price),
            currency: currency(&self.currency)?,
            initial_stock: self.stock,
            warehouse: self.warehouse_id.map(WarehouseId),
        })))
    }
}

/// Create a merchant (admin).
#[utoipa::path(post, path = "/v1/merchants", tag = "catalogue", request_body = CreateMerchantRequest,
    responses((status = 201, body = MerchantView), (status = "4XX", body = ErrorBody)))]
pub async fn create_merchant(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateMerchantRequest>,
) -> Answer {
    let defaulted = Defaulted { commission_bps: request.commission_bps.is_none(), ..Defaulted::NONE };
    let commission_bps = request.commission_bps.unwrap_or(app.config.engine.default_commission_bps);
    let command = Command::CreateMerchant { name: request.name, commission_bps };
    write_ticketed(&app, actor, &key, (command, defaulted), CREATED, None).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreZoneRequest {
    /// The store's offset from UTC, in minutes: 480 for China (UTC+08:00), a multiple of 15.
    #[schema(minimum = -840, maximum = 840, multiple_of = 15)]
    pub utc_offset_minutes: i16,
}

/// Set the store's time zone: its day on the dashboard and the times its console shows (the
/// merchant, or admin).
#[utoipa::path(put, path = "/v1/merchants/{id}/time-zone", tag = "catalogue", request_body = StoreZoneRequest,
    responses((status = 200, body = MerchantView), (status = "4XX", body = ErrorBody)))]
pub async fn set_store_zone(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<StoreZoneRequest>,
) -> Answer {
    let command =
        Command::SetStoreZone { merchant: MerchantId(id), utc_offset_minutes: request.utc_offset_minutes };
    write(&app, actor, &key, command, OK).await
}

/// A merchant.
#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "catalogue",
    responses((status = 200, body = MerchantView), (status = "4XX", body = ErrorBody)))]
pub async fn get_merchant(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Merchant(MerchantId(id))).await
}

/// Create a SKU (admin, or the merchant itself).
#[utoipa::path(post, path = "/v1/skus", tag = "catalogue", request_body = CreateSkuRequest,
    responses((status = 201, body = SkuView), (status = "4XX", body = ErrorBody)))]
pub async fn create_sku(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateSkuRequest>,
) -> Answer {
    write(&app, actor, &key, request.command()?, CREATED).await
}

/// A SKU with its inventory: available, reserved, sold.
#[utoipa::path(get, path = "/v1/skus/{id}", tag = "catalogue",
    responses((status = 200, body = SkuView), (status = "4XX", body = ErrorBody)))]
pub async fn get_sku(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Sku(SkuId(id))).await
}

/// Edit a SKU's title, description or price (admin, or its merchant).
#[utoipa::path(patch, path = "/v1/skus/{id}", tag = "catalogue", request_body = UpdateSkuRequest,
    responses((status = 200, body = SkuView), (status = "4XX", body = ErrorBody)))]
pub async fn update_sku(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<UpdateSkuRequest>,
) -> Answer {
    let UpdateSkuRequest { title, description, price } = request;
    let edit = SkuEdit { sku: SkuId(id), title, description, price: price.map(Amount) };
    write(&app, actor, &key, Command::UpdateSku(Box::new(edit)), OK).await
}

/// Add stock to a SKU.
#[utoipa::path(post, path = "/v1/skus/{id}/restock", tag = "catalogue", request_body = RestockRequest,
    responses((status = 200, body = RestockView), (status = "4XX", body = ErrorBody)))]
pub async fn restock(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<RestockRequest>,
) -> Answer {
    write(&app, actor, &key, Command::Restock { sku: SkuId(id), quantity: request.quantity }, OK).await
}
