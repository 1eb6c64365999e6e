//! Carts and checkout: a buyer's cart (its lines set one at a time, read priced as of now) and
//! the checkout that places and pays one order per store in one command.

use crate::api::*;
use crate::error::ErrorBody;
use crate::orders::LineRequestBody;
use crate::views::*;
use elevens_core::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartLineRequest {
    /// 0 takes the line out of the cart.
    #[schema(minimum = 0, maximum = 10_000)]
    pub quantity: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub buyer_id: u64,
    /// The lines to buy; none (or absent) checks out the buyer's cart, which is then emptied.
    #[serde(default)]
    pub lines: Vec<LineRequestBody>,
    /// The stores' coupons, at most one per store.
    #[serde(default)]
    pub coupons: Vec<u64>,
}

impl CheckoutRequest {
    pub(crate) fn command(self) -> Command {
        Command::Checkout {
            buyer: BuyerId(self.buyer_id),
            lines: self.lines.into_iter().map(LineRequest::from).collect(),
            coupons: self.coupons.into_iter().map(CouponId).collect(),
        }
    }
}

/// A buyer's cart, each line priced as it would be ordered now (campaign prices included),
/// with why a line cannot be ordered now if it cannot.
#[utoipa::path(get, path = "/v1/buyers/{id}/cart", tag = "checkout",
    responses((status = 200, body = CartView), (status = "4XX", body = ErrorBody)))]
pub async fn get_cart(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Cart(BuyerId(id))).await
}

/// Sets the quantity of a SKU in the buyer's cart (0 takes it out). The cart holds at most 100
/// lines of any stores, holds no stock, and is dropped 30 days after its last change.
#[utoipa::path(put, path = "/v1/buyers/{id}/cart/lines/{sku_id}", tag = "checkout", request_body = CartLineRequest,
    responses((status = 200, body = CartView), (status = "4XX", body = ErrorBody)))]
pub async fn set_cart_line(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath((id, sku_id)): AppPath<(u64, u64)>,
    AppJson(request): AppJson<CartLineRequest>,
) -> Answer {
    let command = Command::SetCartLine { buyer: BuyerId(id), sku: SkuId(sku_id), quantity: request.quantity };
    write(&app, actor, &key, command, OK).await
}

/// Checks out lines of any stores (or the cart): one order per store, with its coupons and
/// shipping, all paid from the buyer's wallet in one payment. Either every order is placed and
/// paid, or the checkout is refused and nothing changed.
#[utoipa::path(post, path = "/v1/checkout", tag = "checkout", request_body = CheckoutRequest,
    responses((status = 201, body = CheckoutView), (status = "4XX", body = ErrorBody)))]
pub async fn checkout(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CheckoutRequest>,
) -> Answer {
    write(&app, actor, &key, request.command(), CREATED).await
}
