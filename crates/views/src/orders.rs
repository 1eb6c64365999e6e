//! Orders as the API shows them: lines, discounts, totals, status.

use crate::*;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct DiscountView {
    pub coupon_id: u64,
    pub amount: u64,
    pub funded_by: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    pub sku_id: u64,
    /// The SKU's title now; in reads of an order, not in a write's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub quantity: u32,
    pub unit_price: u64,
    pub campaign_id: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: u64,
    pub buyer_id: u64,
    /// The buyer's name; in reads of an order (its buyer, merchant and the platform's keys read
    /// it), not in a write's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer_name: Option<String>,
    /// Where the buyer has its parcels sent now (its address, then its region), in reads of an
    /// order, when the buyer has given one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ships_to: Option<String>,
    pub merchant_id: u64,
    /// `pending_payment`, `paid`, `shipped`, `delivered`, `cancelled`, `expired` or `refunded`.
    pub status: &'static str,
    #[schema(value_type = String)]
    pub currency: Code,
    pub total: u64,
    pub commission: u64,
    pub placed_at: u64,
    /// When the reservation lapses if the order is not paid.
    pub expires_at: u64,
    pub restocked: bool,
    #[schema(value_type = Vec<LineView>)]
    pub lines: smallvec::SmallVec<[LineView; 1]>,
    /// The lines' sum, before coupons.
    pub subtotal: u64,
    /// The shipping fee, once per order (in `total`).
    pub shipping: u64,
    /// Refunded so far, lines and shipping.
    pub refunded: u64,
    pub discounts: Vec<DiscountView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiredView {
    /// Reservations released.
    pub expired: u32,
    /// Parcels booked again after missing their dispatch day.
    pub repromised: u32,
    /// Service tickets the engine opened for breaches.
    pub tickets_opened: u32,
    /// Red packets closed, their rest returned to the sponsor.
    pub closed_red_packets: u32,
}

/// An order as it is now, named: its buyer's name and its lines' titles, as a person reads it.
/// Reads only: a write's answer stays the bare [`order_view`], which costs no lookup.
pub(crate) fn named_order_view(state: &State, id: OrderId) -> Result<View, CoreError> {
    let mut view = order_view(state, id, None)?;
    if let View::Order(o) = &mut view {
        o.buyer_name = state.buyer(BuyerId(o.buyer_id)).ok().map(|b| b.name.clone());
        o.ships_to = state
            .address(BuyerId(o.buyer_id))
            .map(|(text, region)| format!("{text}, {}", state.logistics().region_name(region)));
        for line in &mut o.lines {
            line.title = state.sku(SkuId(line.sku_id)).ok().map(|s| state.sku_title(s).to_owned());
        }
    }
    Ok(view)
}

/// An order as it is now, or, with `as_of`, as the outcome that is being answered left it.
pub(crate) fn order_view(
    state: &State,
    id: OrderId,
    as_of: Option<(OrderStatus, Amount, bool)>,
) -> Result<View, CoreError> {
    let o = state.order(id)?;
    let (status, commission, restocked) = as_of.unwrap_or((o.status, o.commission, o.restocked()));
    Ok(View::Order(OrderView {
        order_id: id.0,
        buyer_id: o.buyer().0,
        buyer_name: None,
        ships_to: None,
        merchant_id: o.merchant().0,
        status: status.name(),
        currency: Code(o.currency),
        total: o.total.0,
        commission: commission.0,
        placed_at: o.placed_at.0,
        expires_at: o.expires_at().0,
        restocked,
        shipping: state.order_shipping(id).0,
        // As of an answer: a refund's answer shows the order refunded whole, the others none.
        refunded: match as_of {
            None => state.refund_account(id).map_or(0, |a| a.total.0),
            Some((OrderStatus::Refunded, ..)) => o.total.0,
            Some(_) => 0,
        },
        subtotal: o.total.0 + state.order_discounts(id).iter().map(|d| d.amount.0).sum::<u64>()
            - state.order_shipping(id).0,
        discounts: state
            .order_discounts(id)
            .iter()
            .map(|d| DiscountView {
                coupon_id: d.coupon.0,
                amount: d.amount.0,
                funded_by: sponsor_name(d.funded_by).0,
            })
            .collect(),
        lines: o
            .lines
            .iter()
            .map(|l| LineView {
                sku_id: l.sku.0,
                title: None,
                quantity: l.quantity(),
                unit_price: l.unit_price.0,
                campaign_id: l.campaign().map(|c| c.0),
            })
            .collect(),
    }))
}
