//! Orders: placing one reserves its stock and applies its coupons, paying it moves the money
//! (buyer to merchant, commission to the platform, the platform's coupon subsidy), and an
//! unpaid one is cancelled or expires and gives its stock and coupons back.

use crate::catalogue::Sku;
use crate::command::*;
use crate::error::{out_of_bounds, CoreError};
use crate::ledger::{Leg, Owner, TransferKind};
use crate::limits::*;
use crate::logistics::Plan;
use crate::state::State;
use crate::types::*;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    /// Every parcel has left its warehouse.
    Shipped,
    /// Every parcel has arrived.
    Delivered,
    Cancelled,
    Expired,
    /// Everything paid was refunded.
    Refunded,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Refunded,
    ];

    /// Paid for and not wholly refunded: its money is with the merchant.
    pub fn is_paid(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered)
    }

    pub fn name(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
        }
    }
}

/// An order's lines: one inline (most orders), or several on the heap. 24 bytes, the size of
/// one line: the enum's tag lives in the line's quantity, which is never 0. A `SmallVec` with
/// one line inline took 32 (its capacity beside the line). Encoded as the sequence of lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderLines {
    One(OrderLine),
    Many(Box<[OrderLine]>),
}

impl Default for OrderLines {
    fn default() -> OrderLines {
        OrderLines::Many(Box::default())
    }
}

impl OrderLines {
    /// One line inline, two or more on the heap: a one-line order (most of them) allocates
    /// nothing, whether placed on the sequencer or decoded from a snapshot.
    fn try_collect<E>(mut lines: impl Iterator<Item = Result<OrderLine, E>>) -> Result<OrderLines, E> {
        let Some(first) = lines.next().transpose()? else { return Ok(OrderLines::default()) };
        let Some(second) = lines.next().transpose()? else { return Ok(OrderLines::One(first)) };
        let many = [Ok(first), Ok(second)].into_iter().chain(lines).collect::<Result<Vec<_>, E>>()?;
        Ok(OrderLines::Many(many.into_boxed_slice()))
    }

    pub fn as_slice(&self) -> &[OrderLine] {
        match self {
            OrderLines::One(line) => std::slice::from_ref(line),
            OrderLines::Many(lines) => lines,
        }
    }
}

impl std::ops::Deref for OrderLines {
    type Target = [OrderLine];

    fn deref(&self) -> &[OrderLine] {
        self.as_slice()
    }
}

impl FromIterator<OrderLine> for OrderLines {
    fn from_iter<I: IntoIterator<Item = OrderLine>>(lines: I) -> OrderLines {
        let Ok(lines) = OrderLines::try_collect(lines.into_iter().map(Ok::<_, std::convert::Infallible>));
        lines
    }
}

impl<'a> IntoIterator for &'a OrderLines {
    type Item = &'a OrderLine;
    type IntoIter = std::slice::Iter<'a, OrderLine>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for OrderLines {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Decodes without an allocation for the one-line orders (a restart decodes millions of them).
impl<'de> Deserialize<'de> for OrderLines {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<OrderLines, D::Error> {
        struct Lines;
        impl<'de> serde::de::Visitor<'de> for Lines {
            type Value = OrderLines;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of order lines")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<OrderLines, A::Error> {
                let lines = std::iter::from_fn(|| seq.next_element::<OrderLine>().transpose());
                // Bounded by what was encoded: `place_order` refuses more than ORDER_LINES_MAX.
                let too_many = || serde::de::Error::custom("more lines than an order may have");
                OrderLines::try_collect(lines.enumerate().map(|(i, line)| {
                    if i < ORDER_LINES_MAX {
                        line
                    } else {
                        Err(too_many())
                    }
                }))
            }
        }
        deserializer.deserialize_seq(Lines)
    }
}

/// 24 bytes, inline in its order when it is the only one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: SkuId,
    /// Never 0 (`place_order` refuses it), which leaves [`OrderLines`] room for its tag.
    quantity: NonZeroU32,
    pub unit_price: Amount,
    /// The flash-sale campaign that priced the line, as its id's value, 0 for none (ids start
    /// at 1, and there are at most [`CAMPAIGNS_MAX`]): an `Option<CampaignId>` takes 16 bytes.
    campaign: u32,
}

impl OrderLine {
    pub fn new(
        sku: SkuId,
        quantity: NonZeroU32,
        unit_price: Amount,
        campaign: Option<CampaignId>,
    ) -> OrderLine {
        // Campaign ids fit (`create_campaign` refuses more than CAMPAIGNS_MAX).
        let campaign = campaign.map_or(0, |c| u32::try_from(c.0).unwrap_or(0));
        OrderLine { sku, quantity, unit_price, campaign }
    }

    /// The line's amount: its unit price times its quantity.
    pub fn total(&self) -> Result<Amount, CoreError> {
        self.unit_price
            .checked_mul(u64::from(self.quantity()))
            .ok_or_else(|| CoreError::Overflow("order total"))
    }

    pub fn quantity(&self) -> u32 {
        self.quantity.get()
    }

    /// Set when the line was priced by a flash-sale campaign.
    pub fn campaign(&self) -> Option<CampaignId> {
        (self.campaign != 0).then_some(CampaignId(self.campaign.into()))
    }
}

/// An order: 64 bytes (128 before its merchant, buyer, reservation and line's campaign took
/// less room, its discounts moved beside and its one line lost a `SmallVec`'s capacity), the
/// largest of the per-order records. `total` and the expiry never change once placed,
/// `commission` once paid, the restock flag once refunded: remembered outcomes read them back
/// ([`crate::idempotency`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The buyer's id value (there are at most [`BUYERS_MAX`]): [`Order::buyer`].
    buyer: u32,
    /// The merchant's id value (there are at most [`MERCHANTS_MAX`]): [`Order::merchant`].
    merchant: u32,
    pub currency: Currency,
    pub status: OrderStatus,
    pub placed_at: Millis,
    /// How long the stock is held for payment (at most [`RESERVATION_TTL_MS_MAX`], below
    /// 2^31) in the low 31 bits, and in the top bit whether a refund restocked the order:
    /// [`Order::expires_at`], [`Order::restocked`]. A `bool` of its own took 8 bytes.
    reservation_and_restocked: u32,
    pub total: Amount,
    /// The platform's share, fixed when the order is paid.
    pub commission: Amount,
    /// Inline when there is one (most orders): no allocation for it.
    pub lines: OrderLines,
}

/// A line's quantity, if it is one: 1 to [`LINE_QUANTITY_MAX`].
pub(crate) fn line_quantity(quantity: u32) -> Result<NonZeroU32, CoreError> {
    NonZeroU32::new(quantity)
        .filter(|q| q.get() <= LINE_QUANTITY_MAX)
        .ok_or_else(|| out_of_bounds("quantity", "between 1 and 10000 per line"))
}

/// An order checked and priced, not yet placed ([`State::price_order`]).
pub(crate) struct PricedOrder {
    pub(crate) merchant: MerchantId,
    pub(crate) currency: Currency,
    pub(crate) lines: smallvec::SmallVec<[OrderLine; 1]>,
    pub(crate) discounts: Vec<OrderDiscount>,
    pub(crate) shipping: Amount,
    /// The lines' sum, less the discounts, plus shipping.
    pub(crate) total: Amount,
}

/// The top bit of [`Order::reservation_and_restocked`].
const RESTOCKED: u32 = 1 << 31;

const _: () = assert!(std::mem::size_of::<Order>() == 64 && std::mem::size_of::<OrderLine>() == 24);
const _: () = assert!(std::mem::size_of::<OrderLines>() == 24);
const _: () = assert!(
    CAMPAIGNS_MAX <= u32::MAX as u64
        && MERCHANTS_MAX <= u32::MAX as u64
        && BUYERS_MAX <= u32::MAX as u64
        && RESERVATION_TTL_MS_MAX < RESTOCKED as u64
);

impl Order {
    pub fn buyer(&self) -> BuyerId {
        BuyerId(self.buyer.into())
    }

    pub fn merchant(&self) -> MerchantId {
        MerchantId(self.merchant.into())
    }

    /// When the reservation ends: the order can be paid until then, and expires at it.
    pub fn expires_at(&self) -> Millis {
        self.placed_at.saturating_add((self.reservation_and_restocked & !RESTOCKED).into())
    }

    /// Set when a refund put the order's units back in stock.
    pub fn restocked(&self) -> bool {
        self.reservation_and_restocked & RESTOCKED != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDiscount {
    pub coupon: CouponId,
    pub amount: Amount,
    /// Who pays for it: the merchant (receives less) or the platform (pays the merchant).
    pub funded_by: Sponsor,
}

/// A note a store keeps on an order: who wrote it (the store, or the operator for it), when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderNote {
    pub at: Millis,
    pub by_operator: bool,
    pub body: String,
}

impl State {
    /// The notes kept on an order, oldest first.
    pub fn order_notes(&self, order: OrderId) -> &[OrderNote] {
        self.order_notes.get(&order).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn note_order(
        &mut self,
        actor: Actor,
        now: Millis,
        id: OrderId,
        body: &str,
    ) -> Result<Outcome, CoreError> {
        let merchant = self.order(id)?.merchant();
        if !actor.may_manage_merchant(merchant) {
            return Err(CoreError::Forbidden("keep notes on another merchant's orders"));
        }
        Self::check_name("body", body, ORDER_NOTE_BYTES_MAX)?;
        let notes = self.order_notes.entry(id).or_default();
        if notes.len() >= ORDER_NOTES_MAX {
            return Err(out_of_bounds("notes", "at most 20 per order"));
        }
        notes.push(OrderNote { at: now, by_operator: actor == Actor::Admin, body: body.to_owned() });
        Ok(Outcome::OrderNoted { order: id, note: notes.len() as u32 })
    }

    pub(crate) fn place_order(
        &mut self,
        actor: Actor,
        now: Millis,
        buyer: BuyerId,
        requested: &[LineRequest],
        coupons: &[CouponId],
        reservation_ttl_ms: u64,
    ) -> Result<Outcome, CoreError> {
        self.require_buyer(actor, buyer, "place orders for another buyer")?;
        if !(RESERVATION_TTL_MS_MIN..=RESERVATION_TTL_MS_MAX).contains(&reservation_ttl_ms) {
            return Err(out_of_bounds("reservation_ttl_ms", "between 1 s and 7 days"));
        }
        let priced = self.price_order(buyer, requested, coupons, now)?;
        if self.orders.len() as u64 >= ORDERS_MAX {
            return Err(CoreError::Overflow("orders ever placed"));
        }
        Ok(self.reserve_order(buyer, priced, now, reservation_ttl_ms))
    }

    /// Checks and prices an order's lines, coupons and shipping as they would be at `now`,
    /// changing nothing. Inlined: it is the flash path's (the checkout's copy is the cost).
    #[inline(always)]
    pub(crate) fn price_order(
        &self,
        buyer: BuyerId,
        requested: &[LineRequest],
        coupons: &[CouponId],
        now: Millis,
    ) -> Result<PricedOrder, CoreError> {
        if requested.is_empty() || requested.len() > ORDER_LINES_MAX {
            return Err(out_of_bounds("lines", "an order has 1 to 32 lines"));
        }
        // On the stack for the one line most orders have: nothing allocated on the sequencer.
        let mut lines = smallvec::SmallVec::<[OrderLine; 1]>::new();
        let mut total = Amount::ZERO;
        let mut merchant_currency: Option<(MerchantId, Currency)> = None;
        for (i, line) in requested.iter().enumerate() {
            let quantity = line_quantity(line.quantity)?;
            if requested[..i].iter().any(|l| l.sku == line.sku) {
                return Err(CoreError::DuplicateSku);
            }
            let sku = self.sku(line.sku)?;
            match merchant_currency {
                None => merchant_currency = Some((sku.merchant(), sku.currency)),
                Some((m, _)) if m != sku.merchant() => return Err(CoreError::MixedMerchants),
                Some((_, c)) if c != sku.currency => {
                    return Err(CoreError::CurrencyMismatch("all lines must share one currency"))
                }
                Some(_) => {}
            }
            let priced = self.price_line(buyer, line.sku, sku, quantity, now)?;
            total = total.checked_add(priced.total()?).ok_or_else(|| CoreError::Overflow("order total"))?;
            lines.push(priced);
        }
        if total.0 > AMOUNT_MAX {
            return Err(CoreError::AmountTooLarge);
        }
        let Some((merchant, currency)) = merchant_currency else {
            return Err(out_of_bounds("lines", "an order has 1 to 32 lines"));
        };
        let priced = self.price_coupons(coupons, buyer, merchant, currency, total, now)?;
        let discounts: Vec<OrderDiscount> = priced
            .into_iter()
            .map(|(coupon, amount, funded_by)| OrderDiscount { coupon, amount, funded_by })
            .collect();
        for d in &discounts {
            total.0 -= d.amount.0; // each discount is at most what was left before it.
        }
        // Charged once per order, however many parcels it ships in.
        let shipping = self.shipping_fee(merchant, currency);
        total = total.checked_add(shipping).ok_or_else(|| CoreError::Overflow("order total"))?;
        if total.0 > AMOUNT_MAX {
            return Err(CoreError::AmountTooLarge);
        }
        Ok(PricedOrder { merchant, currency, lines, discounts, shipping, total })
    }

    /// One line checked against the SKU's stock and its campaign's window, units left and
    /// per-buyer limit, at the campaign's price if one governs the SKU now. Inlined, like
    /// [`State::price_order`].
    #[inline(always)]
    pub(crate) fn price_line(
        &self,
        buyer: BuyerId,
        id: SkuId,
        sku: &Sku,
        units: NonZeroU32,
        now: Millis,
    ) -> Result<OrderLine, CoreError> {
        let quantity = u64::from(units.get());
        if sku.available < quantity {
            return Err(CoreError::InsufficientStock { available: sku.available });
        }
        let (unit_price, campaign) = match self.governing_campaign(sku, now) {
            None => (sku.price, None),
            Some((id, c)) => {
                if !c.is_open(now) {
                    return Err(CoreError::CampaignNotStarted {
                        campaign: id,
                        starts_in_ms: c.starts_at.0 - now.0,
                    });
                }
                if c.quantity - c.taken < quantity {
                    return Err(CoreError::CampaignSoldOut { campaign: id, remaining: c.quantity - c.taken });
                }
                let used = c.taken_by_buyer.get(&buyer).copied().unwrap_or(0);
                if used + units.get() > c.per_buyer_limit {
                    return Err(CoreError::CampaignLimitExceeded {
                        campaign: id,
                        limit: c.per_buyer_limit,
                        used,
                    });
                }
                (c.flash_price, Some(id))
            }
        };
        Ok(OrderLine::new(id, units, unit_price, campaign))
    }

    /// Places a priced order: holds its stock and coupons, and its reservation until
    /// `now + reservation_ttl_ms`. Every check was made: nothing here fails. Inlined, like
    /// [`State::price_order`].
    #[inline(always)]
    pub(crate) fn reserve_order(
        &mut self,
        buyer: BuyerId,
        priced: PricedOrder,
        now: Millis,
        reservation_ttl_ms: u64,
    ) -> Outcome {
        let PricedOrder { merchant, currency, lines, discounts, shipping, total } = priced;
        let order = OrderId::from_index(self.orders.len());
        for line in &lines {
            self.hold(buyer, line);
        }
        for d in &discounts {
            self.hold_coupon(d.coupon, buyer, d.amount, true);
        }
        // All fit: buyers and merchants are bounded by BUYERS_MAX and MERCHANTS_MAX, and the
        // TTL was checked by the caller.
        let (buyer_value, merchant, reservation_ttl_ms) = (
            u32::try_from(buyer.0).unwrap_or(0),
            u32::try_from(merchant.0).unwrap_or(0),
            u32::try_from(reservation_ttl_ms).unwrap_or(0),
        );
        let expires_at = now.saturating_add(reservation_ttl_ms.into());
        self.orders.push(Order {
            buyer: buyer_value,
            merchant,
            currency,
            status: OrderStatus::PendingPayment,
            placed_at: now,
            reservation_and_restocked: reservation_ttl_ms,
            total,
            commission: Amount::ZERO,
            lines: lines.into_iter().collect(),
        });
        if !discounts.is_empty() {
            self.order_discounts.insert(order, discounts);
        }
        if shipping != Amount::ZERO {
            self.logistics.order_shipping.insert(order, shipping);
        }
        self.reservations.insert(order, expires_at);
        Outcome::OrderPlaced { order, total, expires_at }
    }

    /// Moves a line's units from available to reserved, and counts them against its campaign.
    fn hold(&mut self, buyer: BuyerId, line: &OrderLine) {
        let quantity = u64::from(line.quantity());
        let sku = &mut self.skus[line.sku.index().unwrap_or_default()];
        sku.available -= quantity;
        sku.reserved += quantity;
        if let Some(c) = line.campaign() {
            let campaign = &mut self.campaigns[c.index().unwrap_or_default()];
            campaign.taken += quantity;
            *campaign.taken_by_buyer.entry(buyer).or_insert(0) += line.quantity();
        }
    }

    /// Undoes [`State::hold`] for an order that will not be paid.
    fn release(&mut self, buyer: BuyerId, line: &OrderLine) {
        let quantity = u64::from(line.quantity());
        let sku = &mut self.skus[line.sku.index().unwrap_or_default()];
        sku.reserved -= quantity;
        sku.available += quantity;
        if let Some(c) = line.campaign() {
            let campaign = &mut self.campaigns[c.index().unwrap_or_default()];
            campaign.taken -= quantity;
            if let Some(used) = campaign.taken_by_buyer.get_mut(&buyer) {
                *used -= line.quantity();
                if *used == 0 {
                    campaign.taken_by_buyer.remove(&buyer);
                }
            }
        }
    }

    fn order_for_buyer(&self, actor: Actor, id: OrderId, what: &'static str) -> Result<&Order, CoreError> {
        let order = self.order(id)?;
        if !actor.may_act_for_buyer(order.buyer()) {
            return Err(CoreError::Forbidden(what));
        }
        Ok(order)
    }

    pub(crate) fn pay_order(&mut self, actor: Actor, now: Millis, id: OrderId) -> Result<Outcome, CoreError> {
        let order = self.order_for_buyer(actor, id, "pay another buyer's order")?;
        if order.status != OrderStatus::PendingPayment {
            return Err(CoreError::OrderState { status: order.status.name() });
        }
        if now >= order.expires_at() {
            return Err(CoreError::ReservationExpired { expired_at: order.expires_at() });
        }
        let plan = self.plan_shipments(id, now)?;
        self.settle(id, &plan, now)
    }

    /// Pays a pending order whose shipments are planned: moves the money (refused whole if the
    /// buyer's wallet is short), marks the order paid, turns its reserved units into sold ones,
    /// and creates its shipments. Inlined, like [`State::price_order`].
    #[inline(always)]
    pub(crate) fn settle(&mut self, id: OrderId, plan: &Plan, now: Millis) -> Result<Outcome, CoreError> {
        let order = self.order(id)?;
        let commission_bps = self.merchant(order.merchant())?.commission_bps;
        let commission = order.total.basis_points(commission_bps);
        let (legs, n) = payment_legs(order, self.order_discounts(id), commission);
        let legs = &legs[..n];
        let (currency, total, expires_at) = (order.currency, order.total, order.expires_at());
        self.ledger.move_money(currency, legs, Some(id), now)?;
        let index = id.index().unwrap_or_default();
        let order = &mut self.orders[index];
        order.status = OrderStatus::Paid;
        order.commission = commission;
        for line in &order.lines {
            let sku = &mut self.skus[line.sku.index().unwrap_or_default()];
            sku.reserved -= u64::from(line.quantity());
            sku.sold += u64::from(line.quantity());
        }
        self.reservations.remove(id, expires_at);
        self.create_shipments(id, plan, now);
        Ok(Outcome::OrderPaid { order: id, total, commission })
    }

    pub(crate) fn cancel_order(&mut self, actor: Actor, id: OrderId) -> Result<Outcome, CoreError> {
        let order = self.order_for_buyer(actor, id, "cancel another buyer's order")?;
        if order.status != OrderStatus::PendingPayment {
            return Err(CoreError::OrderState { status: order.status.name() });
        }
        self.close_unpaid(id, OrderStatus::Cancelled);
        Ok(Outcome::OrderCancelled { order: id })
    }

    /// Releases a pending order's stock and moves it to `status` (cancelled or expired).
    pub(crate) fn close_unpaid(&mut self, id: OrderId, status: OrderStatus) {
        let index = id.index().unwrap_or_default();
        let order = &mut self.orders[index];
        debug_assert_eq!(order.status, OrderStatus::PendingPayment);
        order.status = status;
        let (buyer, expires_at) = (order.buyer(), order.expires_at());
        let lines = std::mem::take(&mut self.orders[index].lines);
        for line in &lines {
            self.release(buyer, line);
        }
        self.orders[index].lines = lines;
        self.release_coupons(index);
        self.reservations.remove(id, expires_at);
    }

    /// Refunds everything not yet refunded of a paid order; `restock` puts its units back on
    /// sale. Its parcels not yet dispatched are cancelled.
    pub(crate) fn refund_order(
        &mut self,
        actor: Actor,
        now: Millis,
        id: OrderId,
        restock: bool,
    ) -> Result<Outcome, CoreError> {
        let amount = self.refund_rest(actor, now, id, restock)?;
        if restock {
            self.orders[id.index().unwrap_or_default()].reservation_and_restocked |= RESTOCKED;
        }
        Ok(Outcome::OrderRefunded { order: id, amount, restocked: restock })
    }

    /// Gives an order's coupon budgets back (it was cancelled, expired or refunded).
    pub(crate) fn release_coupons(&mut self, index: usize) {
        let (id, buyer) = (OrderId::from_index(index), self.orders[index].buyer());
        let Some(discounts) = self.order_discounts.remove(&id) else { return };
        for d in &discounts {
            self.hold_coupon(d.coupon, buyer, d.amount, false);
        }
        self.order_discounts.insert(id, discounts);
    }
}

/// What the platform pays the merchant for its coupons on an order (its platform-funded
/// discounts), at payment; a refund takes it back pro rata.
pub(crate) fn platform_subsidy(discounts: &[OrderDiscount]) -> Amount {
    Amount(discounts.iter().filter(|d| d.funded_by == Sponsor::Platform).map(|d| d.amount.0).sum())
}

/// The most transfers a payment posts ([`payment_legs`]).
pub(crate) const PAYMENT_LEGS_MAX: usize = 3;

/// The legs of a payment: the buyer pays the merchant and the platform its commission; the
/// platform pays the merchant its platform-funded discounts. Zero-amount legs are left out;
/// returns the legs and how many there are. (A refund moves them back pro rata:
/// [`crate::logistics`]' after-sales.)
#[inline(always)]
fn payment_legs(
    order: &Order,
    discounts: &[OrderDiscount],
    commission: Amount,
) -> ([Leg; PAYMENT_LEGS_MAX], usize) {
    let (b, m, p) = (Owner::Buyer(order.buyer()), Owner::Merchant(order.merchant()), Owner::Platform);
    let net = Amount(order.total.0 - commission.0); // commission <= total.
    let subsidy = platform_subsidy(discounts);
    let all = [
        Leg { debit: b, credit: m, amount: net, kind: TransferKind::Payment },
        Leg { debit: b, credit: p, amount: commission, kind: TransferKind::Commission },
        Leg { debit: Owner::External, credit: m, amount: subsidy, kind: TransferKind::CouponSubsidy },
    ];
    let mut legs = all;
    let mut n = 0;
    for leg in all.into_iter().filter(|l| l.amount.0 > 0) {
        legs[n] = leg;
        n += 1;
    }
    (legs, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_lines_encode_as_a_sequence_and_come_back_the_same() {
        let line = |n: u32| {
            let quantity = NonZeroU32::new(n).expect("not 0");
            OrderLine::new(SkuId(n.into()), quantity, Amount(100 * u64::from(n)), Some(CampaignId(n.into())))
        };
        for count in [0, 1, 3] {
            let lines: Vec<OrderLine> = (1..=count).map(line).collect();
            let packed: OrderLines = lines.iter().cloned().collect();
            assert_eq!(matches!(packed, OrderLines::One(_)), count == 1);
            assert_eq!(packed.as_slice(), &lines[..]);
            // The same bytes as the `SmallVec` it replaced (a sequence), so snapshots agree.
            let bytes = postcard::to_allocvec(&packed).expect("encodes");
            assert_eq!(bytes, postcard::to_allocvec(&lines).expect("encodes"));
            assert_eq!(postcard::from_bytes::<OrderLines>(&bytes).expect("decodes"), packed);
        }
        let too_many: Vec<OrderLine> = (1..=ORDER_LINES_MAX as u32 + 1).map(line).collect();
        let bytes = postcard::to_allocvec(&too_many).expect("encodes");
        assert!(postcard::from_bytes::<OrderLines>(&bytes).is_err());
    }
}
