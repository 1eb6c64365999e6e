//! Orders: placing, reading, paying, cancelling, refunding, and releasing due reservations.

use crate::api::*;
use crate::config::Config;
use crate::error::ErrorBody;
use crate::fingerprint::Defaulted;
use crate::views::*;
use elevens_core::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequestBody {
    pub sku_id: u64,
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    pub buyer_id: u64,
    pub lines: Vec<LineRequestBody>,
    /// Coupon ids: at most one platform and one merchant coupon.
    #[serde(default)]
    pub coupons: Vec<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Put the units back on sale.
    #[serde(default)]
    pub restock: bool,
}

impl From<LineRequestBody> for LineRequest {
    fn from(line: LineRequestBody) -> LineRequest {
        LineRequest { sku: SkuId(line.sku_id), quantity: line.quantity }
    }
}

impl PlaceOrderRequest {
    pub(crate) fn command(self, config: &Config) -> Command {
        Command::PlaceOrder {
            buyer: BuyerId(self.buyer_id),
            lines: self.lines.into_iter().map(LineRequest::from).collect(),
            coupons: self.coupons.into_iter().map(CouponId).collect(),
            reservation_ttl_ms: config.engine.reservation_ttl_ms,
        }
    }
}

/// Place an order: reserves the stock until the order is paid, cancelled or expires. An order
/// with an admitted waiting-room ticket (header `Waiting-Room-Ticket`) passes the rate limits.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = PlaceOrderRequest,
    responses((status = 201, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn place_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    ticket: WaitingRoomTicket,
    AppJson(request): AppJson<PlaceOrderRequest>,
) -> Answer {
    let command = request.command(&app.config);
    write_ticketed(&app, actor, &key, (command, Defaulted::NONE), CREATED, ticket.0).await
}

/// An order.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn get_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Order(OrderId(id))).await
}

/// Pay an order from the buyer's wallet: merchant and platform are credited atomically.
#[utoipa::path(post, path = "/v1/orders/{id}/pay", tag = "orders",
    responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn pay_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::PayOrder { order: OrderId(id) }, OK).await
}

/// Cancel an unpaid order; its stock is released.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders",
    responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn cancel_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::CancelOrder { order: OrderId(id) }, OK).await
}

/// Refund a paid order (admin or its merchant); the merchant chooses whether to restock.
#[utoipa::path(post, path = "/v1/orders/{id}/refund", tag = "orders", request_body = RefundRequest,
    responses((status = 200, body = OrderView), (status = "4XX", body = ErrorBody)))]
pub async fn refund_order(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<RefundRequest>,
) -> Answer {
    write(&app, actor, &key, Command::RefundOrder { order: OrderId(id), restock: request.restock }, OK).await
}

/// Release every reservation that is due now (the engine also does this by itself).
#[utoipa::path(post, path = "/v1/reservations/expire", tag = "orders",
    responses((status = 200, body = ExpiredView), (status = "4XX", body = ErrorBody)))]
pub async fn expire_reservations(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
) -> Answer {
    write(&app, actor, &key, Command::Tick, OK).await
}
