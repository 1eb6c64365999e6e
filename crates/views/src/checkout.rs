//! Carts and checkouts as the API shows them: a cart with what each line would cost now, and a
//! checkout's orders under one total.

use crate::*;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct CartView {
    pub buyer_id: u64,
    pub lines: Vec<CartLineView>,
    /// What the lines that can be ordered now would cost together, before the stores'
    /// coupons and shipping.
    pub subtotal: u64,
    /// When the cart is dropped unless changed before (absent for an empty cart).
    pub expires_at: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CartLineView {
    pub sku_id: u64,
    pub title: String,
    pub merchant_id: u64,
    pub quantity: u32,
    #[schema(value_type = String)]
    pub currency: Code,
    /// The unit price if ordered now: the flash price while a campaign governs the SKU.
    pub unit_price: u64,
    pub campaign_id: Option<u64>,
    pub line_total: u64,
    pub available: u64,
    /// Why the line cannot be ordered now (an error's code: `insufficient_stock`,
    /// `campaign_not_started`, ...), absent if it can.
    pub unavailable: Option<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutView {
    /// One per store, placed and paid.
    pub orders: Vec<OrderView>,
    pub total: u64,
    #[schema(value_type = String)]
    pub currency: Code,
}

pub(crate) fn cart_view(state: &State, buyer: BuyerId, now: Millis) -> Result<View, CoreError> {
    state.buyer(buyer)?;
    let mut subtotal = 0u64;
    let mut lines = Vec::new();
    for line in state.cart(buyer, now) {
        let sku = state.sku(line.sku)?;
        let quote = state.quote_line(buyer, line.sku, line.quantity, now);
        let (unit_price, campaign) = match &quote {
            Ok(l) => (l.unit_price, l.campaign()),
            Err(_) => (sku.price, None),
        };
        let line_total = unit_price.0.saturating_mul(u64::from(line.quantity));
        if quote.is_ok() {
            subtotal = subtotal.saturating_add(line_total);
        }
        lines.push(CartLineView {
            sku_id: line.sku.0,
            title: state.sku_title(sku).to_string(),
            merchant_id: sku.merchant().0,
            quantity: line.quantity,
            currency: Code(sku.currency),
            unit_price: unit_price.0,
            campaign_id: campaign.map(|c| c.0),
            line_total,
            available: sku.available,
            unavailable: quote.err().map(|e| e.code()),
        });
    }
    let expires_at =
        state.carts().get(buyer).filter(|_| !lines.is_empty()).map(|c| c.touched.0 + limits::CART_TTL_MS);
    Ok(View::Cart(CartView { buyer_id: buyer.0, lines, subtotal, expires_at }))
}

/// A checkout's answer: its orders as their command left them (paid), and their total.
pub(crate) fn checkout_view(
    state: &State,
    first: OrderId,
    orders: u32,
    total: Amount,
) -> Result<View, CoreError> {
    let mut views = Vec::with_capacity(orders as usize);
    let mut currency = None;
    for id in first.0..first.0 + u64::from(orders) {
        let order = state.order(OrderId(id))?;
        currency = Some(order.currency);
        let as_paid = Some((OrderStatus::Paid, order.commission, false));
        if let View::Order(view) = order_view(state, OrderId(id), as_paid)? {
            views.push(view);
        }
    }
    let currency = currency.ok_or(CoreError::NotFound("the checkout's orders"))?;
    Ok(View::Checkout(CheckoutView { orders: views, total: total.0, currency: Code(currency) }))
}
