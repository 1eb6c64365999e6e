//! After-sales: refunds per line and of shipping, returns, and service tickets.
//!
//! A refund moves money back along the payment's legs, pro rata: of a refund that brings what
//! was refunded of an order to `R` (of its total `T`), the platform returns its commission up
//! to `floor(commission * R / T)` and the merchant the platform's coupon subsidy up to
//! `floor(subsidy * R / T)`, so partial refunds that add up to the whole order return exactly
//! what the payment moved. A line's share of the order's coupons is split by its gross amount
//! (the remainder of the rounding to the first lines with room), and a line refunds at most
//! its share: never more than what was paid for it.

use super::*;
use crate::command::{LineRequest, Outcome};
use crate::error::{out_of_bounds, CoreError};
use crate::ledger::{Leg, Owner, TransferKind};
use crate::limits::*;
use crate::orders::OrderStatus;
use crate::state::State;
use smallvec::SmallVec;

/// What has been refunded of one order (kept only for orders with a refund).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAccount {
    /// Units refunded, per line position.
    pub units: Vec<u32>,
    /// Money refunded, per line position.
    pub lines: Vec<Amount>,
    pub shipping: Amount,
    /// Everything refunded, lines and shipping.
    pub total: Amount,
    /// The platform's commission returned so far.
    pub commission: Amount,
    /// The platform's coupon subsidy the merchant gave back so far.
    pub subsidy: Amount,
}

/// A refund checked and priced, not yet made ([`State::plan_refund`]).
struct RefundPlan {
    /// (line position, units, money) of each line refunded.
    per_line: SmallVec<[(usize, u32, Amount); 1]>,
    shipping: Amount,
    /// This refund's money, lines and shipping.
    amount: Amount,
    /// Everything refunded of the order once this refund is made.
    refunded: Amount,
    commission_back: u64,
    subsidy_back: u64,
    legs: SmallVec<[Leg; 3]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReturnReason {
    Damaged,
    WrongItem,
    NotAsDescribed,
    NoLongerWanted,
    NotReceived,
    Other,
}

impl ReturnReason {
    pub const ALL: [ReturnReason; 6] = [
        ReturnReason::Damaged,
        ReturnReason::WrongItem,
        ReturnReason::NotAsDescribed,
        ReturnReason::NoLongerWanted,
        ReturnReason::NotReceived,
        ReturnReason::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReturnReason::Damaged => "damaged",
            ReturnReason::WrongItem => "wrong_item",
            ReturnReason::NotAsDescribed => "not_as_described",
            ReturnReason::NoLongerWanted => "no_longer_wanted",
            ReturnReason::NotReceived => "not_received",
            ReturnReason::Other => "other",
        }
    }

    pub fn parse(name: &str) -> Option<ReturnReason> {
        ReturnReason::ALL.into_iter().find(|r| r.name() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReturnStatus {
    Requested,
    Approved,
    Rejected,
    Received,
    Refunded,
}

impl ReturnStatus {
    pub const ALL: [ReturnStatus; 5] = [
        ReturnStatus::Requested,
        ReturnStatus::Approved,
        ReturnStatus::Rejected,
        ReturnStatus::Received,
        ReturnStatus::Refunded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::Approved => "approved",
            ReturnStatus::Rejected => "rejected",
            ReturnStatus::Received => "received",
            ReturnStatus::Refunded => "refunded",
        }
    }

    /// Whether the return still holds its units (they cannot be returned or refunded twice).
    fn holds_units(self) -> bool {
        matches!(self, ReturnStatus::Requested | ReturnStatus::Approved | ReturnStatus::Received)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRequest {
    pub order: OrderId,
    /// (line position, units).
    pub lines: Vec<(u8, u32)>,
    pub reason: ReturnReason,
    pub status: ReturnStatus,
    pub requested_at: Millis,
    /// When it was approved or rejected, received, refunded: each set once, never changed, so
    /// an answer can be rendered as of its command.
    pub decided_at: Option<Millis>,
    pub received_at: Option<Millis>,
    pub refunded_at: Option<Millis>,
    pub restocked: bool,
    pub refunded: Amount,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketKind {
    /// Opened by the buyer.
    Buyer,
    MissedDispatch,
    MissedDelivery,
    Exception,
    AttemptFail,
    ReturnToSender,
}

impl TicketKind {
    pub fn name(self) -> &'static str {
        match self {
            TicketKind::Buyer => "buyer",
            TicketKind::MissedDispatch => "missed_dispatch",
            TicketKind::MissedDelivery => "missed_delivery",
            TicketKind::Exception => "exception",
            TicketKind::AttemptFail => "attempt_fail",
            TicketKind::ReturnToSender => "return_to_sender",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            TicketKind::Buyer => "",
            TicketKind::MissedDispatch => "The parcel did not leave the warehouse on its booked day",
            TicketKind::MissedDelivery => "The parcel was not delivered by its promised date",
            TicketKind::Exception => "The carrier reported an exception",
            TicketKind::AttemptFail => "The carrier could not deliver the parcel",
            TicketKind::ReturnToSender => "The parcel is being returned to the sender",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TicketStatus {
    New,
    Open,
    Pending,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::New,
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(name: &str) -> Option<TicketStatus> {
        TicketStatus::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A service ticket, owned by the order's merchant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub order: OrderId,
    pub merchant: MerchantId,
    pub buyer: BuyerId,
    pub shipment: Option<ShipmentId>,
    pub kind: TicketKind,
    pub status: TicketStatus,
    pub subject: String,
    pub opened_at: Millis,
    pub first_response_due: Millis,
    pub first_response_at: Option<Millis>,
    pub updated_at: Millis,
    /// The conversation after the subject, oldest first, at most [`TICKET_MESSAGES_MAX`].
    pub messages: Vec<TicketMessage>,
}

/// One message of a ticket's conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketMessage {
    /// Written by the store (or the operator for it); otherwise by the buyer.
    pub from_store: bool,
    pub at: Millis,
    pub body: String,
}

/// Each line's share of what the buyer paid for the lines (the order's coupons split by gross
/// amount, the rounding's remainder to the first lines with room).
pub fn line_nets(lines: &[crate::orders::OrderLine], discount: Amount) -> SmallVec<[Amount; 1]> {
    let gross: SmallVec<[u128; 1]> =
        lines.iter().map(|l| u128::from(l.unit_price.0) * u128::from(l.quantity())).collect();
    let subtotal: u128 = gross.iter().sum();
    let discount = u128::from(discount.0).min(subtotal);
    let mut shares: SmallVec<[u128; 1]> =
        gross.iter().map(|g| (discount * g).checked_div(subtotal).unwrap_or(0)).collect();
    let mut left = discount - shares.iter().sum::<u128>();
    for (share, g) in shares.iter_mut().zip(&gross) {
        let extra = left.min(g - *share);
        *share += extra;
        left -= extra;
    }
    gross.iter().zip(&shares).map(|(g, s)| Amount((g - s) as u64)).collect()
}

/// `part * numerator / denominator`, rounded down (0 for a zero denominator).
fn pro_rata(part: Amount, numerator: Amount, denominator: Amount) -> Amount {
    if denominator.0 == 0 {
        return Amount::ZERO;
    }
    Amount((u128::from(part.0) * u128::from(numerator.0) / u128::from(denominator.0)) as u64)
}

impl State {
    pub fn refund_account(&self, order: OrderId) -> Option<&RefundAccount> {
        self.logistics.refunds.get(&order)
    }

    /// The orders with a refund among `orders`, and what was refunded of each.
    pub fn refund_accounts(
        &self,
        orders: std::ops::Range<OrderId>,
    ) -> impl Iterator<Item = (OrderId, &RefundAccount)> {
        self.logistics.refunds.range(orders).map(|(id, account)| (*id, account))
    }

    /// What the buyer paid for each line of an order.
    pub fn order_line_nets(&self, order: OrderId) -> Result<SmallVec<[Amount; 1]>, CoreError> {
        let o = self.order(order)?;
        let discount = Amount(self.order_discounts(order).iter().map(|d| d.amount.0).sum());
        Ok(line_nets(&o.lines, discount))
    }

    pub fn return_request(&self, id: ReturnId) -> Result<&ReturnRequest, CoreError> {
        id.index().and_then(|i| self.logistics.returns.get(i)).ok_or_else(|| CoreError::NotFound("return"))
    }

    pub fn returns(
        &self,
    ) -> impl DoubleEndedIterator<Item = (ReturnId, &ReturnRequest)> + ExactSizeIterator + '_ {
        self.logistics.returns.iter().enumerate().map(|(i, r)| (ReturnId::from_index(i), r))
    }

    pub fn ticket(&self, id: TicketId) -> Result<&Ticket, CoreError> {
        id.index().and_then(|i| self.logistics.tickets.get(i)).ok_or_else(|| CoreError::NotFound("ticket"))
    }

    pub fn tickets(&self) -> impl DoubleEndedIterator<Item = (TicketId, &Ticket)> + ExactSizeIterator + '_ {
        self.logistics.tickets.iter().enumerate().map(|(i, t)| (TicketId::from_index(i), t))
    }

    fn order_after_payment(&self, id: OrderId) -> Result<&crate::orders::Order, CoreError> {
        let o = self.order(id)?;
        if !o.status.is_paid() {
            return Err(CoreError::OrderState { status: o.status.name() });
        }
        Ok(o)
    }

    /// Puts `units` of an order's lines (by position) back on sale: sold, now available.
    fn restock_lines(&mut self, order: OrderId, units: impl Iterator<Item = (usize, u32)>) {
        let index = order.index().unwrap_or_default();
        for (position, n) in units {
            let sku = self.orders[index].lines[position].sku;
            let s = &mut self.skus[sku.index().unwrap_or_default()];
            s.sold -= u64::from(n);
            s.available += u64::from(n);
        }
    }

    /// Units of each line not yet refunded nor held by an open return.
    fn returnable_units(&self, id: OrderId) -> Result<SmallVec<[u32; 1]>, CoreError> {
        let o = self.order(id)?;
        let account = self.logistics.refunds.get(&id);
        let mut left: SmallVec<[u32; 1]> = o
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| l.quantity() - account.and_then(|a| a.units.get(i)).copied().unwrap_or(0))
            .collect();
        for r in self.logistics.returns.iter().filter(|r| r.order == id && r.status.holds_units()) {
            for &(position, units) in &r.lines {
                if let Some(l) = left.get_mut(usize::from(position)) {
                    *l = l.saturating_sub(units);
                }
            }
        }
        Ok(left)
    }

    /// Resolves requested lines to (position, units), each within `limit` per line.
    fn resolve_lines(
        &self,
        id: OrderId,
        requested: &[LineRequest],
        limit: &[u32],
    ) -> Result<SmallVec<[(u8, u32); 1]>, CoreError> {
        let o = self.order(id)?;
        if requested.len() > ORDER_LINES_MAX {
            return Err(out_of_bounds("lines", "at most 32"));
        }
        let mut resolved = SmallVec::new();
        for (i, r) in requested.iter().enumerate() {
            if requested[..i].iter().any(|x| x.sku == r.sku) {
                return Err(CoreError::DuplicateSku);
            }
            let position = o
                .lines
                .iter()
                .position(|l| l.sku == r.sku)
                .ok_or_else(|| CoreError::NotFound("order line"))?;
            let left = limit.get(position).copied().unwrap_or(0);
            if r.quantity == 0 || r.quantity > left {
                return Err(CoreError::MoreThanBought { sku: r.sku, left });
            }
            resolved.push((position as u8, r.quantity));
        }
        Ok(resolved)
    }

    /// Refunds `lines` (positions and units) and `shipping` of an order: checks everything,
    /// moves the money, then records it. The order is refunded once nothing is left.
    fn refund_money(
        &mut self,
        now: Millis,
        id: OrderId,
        lines: &[(u8, u32)],
        shipping: Amount,
        restock: bool,
    ) -> Result<Amount, CoreError> {
        let plan = self.plan_refund(id, lines, shipping)?;
        let o = self.order(id)?;
        let (currency, line_count) = (o.currency, o.lines.len());
        self.ledger.move_money(currency, &plan.legs, Some(id), now)?;
        self.record_refund(id, &plan, line_count, restock);
        Ok(plan.amount)
    }

    /// What a refund of `lines` and `shipping` would move, each line's share to the fen, and
    /// the commission and subsidy that go back with it, pro rata; or why it cannot be.
    /// Changes nothing.
    fn plan_refund(
        &self,
        id: OrderId,
        lines: &[(u8, u32)],
        shipping: Amount,
    ) -> Result<RefundPlan, CoreError> {
        let o = self.order_after_payment(id)?;
        let nets = self.order_line_nets(id)?;
        let fee = self.order_shipping(id);
        let empty = RefundAccount::default();
        let account = self.logistics.refunds.get(&id).unwrap_or(&empty);
        let units_of = |p: usize| account.units.get(p).copied().unwrap_or(0);
        let amount_of = |p: usize| account.lines.get(p).copied().unwrap_or(Amount::ZERO);
        let mut amount = Amount::ZERO;
        let mut per_line: SmallVec<[(usize, u32, Amount); 1]> = SmallVec::new();
        for &(position, units) in lines {
            let p = usize::from(position);
            let line = o.lines.get(p).ok_or_else(|| CoreError::NotFound("order line"))?;
            let (done, quantity) = (units_of(p), line.quantity());
            if units == 0 || done + units > quantity {
                return Err(CoreError::MoreThanBought { sku: line.sku, left: quantity - done });
            }
            // Cumulative: the last unit refunds what is left of the line's share, to the fen.
            let after = pro_rata(nets[p], Amount(u64::from(done + units)), Amount(u64::from(quantity)));
            let this = Amount(after.0 - amount_of(p).0);
            amount = amount.checked_add(this).ok_or_else(|| CoreError::Overflow("refund"))?;
            per_line.push((p, units, this));
        }
        if shipping.0 > fee.0 - account.shipping.0 {
            return Err(CoreError::RefundAboveLeft { left: Amount(fee.0 - account.shipping.0) });
        }
        amount = amount.checked_add(shipping).ok_or_else(|| CoreError::Overflow("refund"))?;
        if amount == Amount::ZERO {
            return Err(out_of_bounds("refund", "nothing to refund: name lines or shipping"));
        }
        let refunded = account.total.checked_add(amount).ok_or_else(|| CoreError::Overflow("refund"))?;
        if refunded > o.total {
            return Err(CoreError::RefundAboveLeft { left: Amount(o.total.0 - account.total.0) });
        }
        let subsidy = crate::orders::platform_subsidy(self.order_discounts(id));
        let commission_back = pro_rata(o.commission, refunded, o.total).0 - account.commission.0;
        let subsidy_back = pro_rata(subsidy, refunded, o.total).0 - account.subsidy.0;
        let (b, m) = (Owner::Buyer(o.buyer()), Owner::Merchant(o.merchant()));
        let all = [
            Leg {
                debit: m,
                credit: b,
                amount: Amount(amount.0 - commission_back),
                kind: TransferKind::Refund,
            },
            Leg {
                debit: Owner::Platform,
                credit: b,
                amount: Amount(commission_back),
                kind: TransferKind::CommissionRefund,
            },
            Leg {
                debit: m,
                credit: Owner::External,
                amount: Amount(subsidy_back),
                kind: TransferKind::CouponSubsidyRefund,
            },
        ];
        let legs = all.into_iter().filter(|l| l.amount.0 > 0).collect();
        Ok(RefundPlan { per_line, shipping, amount, refunded, commission_back, subsidy_back, legs })
    }

    /// Records a refund whose money moved: the order's refund account, the units back on sale
    /// if `restock`, the parcels not yet left whose every line is now refunded (cancelled), and
    /// the order refunded once nothing is left.
    fn record_refund(&mut self, id: OrderId, plan: &RefundPlan, line_count: usize, restock: bool) {
        let account = self.logistics.refunds.entry(id).or_default();
        account.units.resize(line_count, 0);
        account.lines.resize(line_count, Amount::ZERO);
        for &(p, units, money) in &plan.per_line {
            account.units[p] += units;
            account.lines[p].0 += money.0;
        }
        account.shipping.0 += plan.shipping.0;
        account.total = plan.refunded;
        account.commission.0 += plan.commission_back;
        account.subsidy.0 += plan.subsidy_back;
        self.last_refund.clear();
        self.last_refund.extend(plan.per_line.iter().map(|&(p, n, _)| (p as u8, n)));
        let units: SmallVec<[u32; 1]> = account.units.iter().copied().collect();
        if restock {
            self.restock_lines(id, plan.per_line.iter().map(|&(p, n, _)| (p, n)));
        }
        let Ok(o) = self.order(id) else { return };
        let (total, full) = (o.total, o.lines.iter().enumerate().filter(|(i, l)| units[*i] == l.quantity()));
        let full = full.fold(0u32, |m, (i, _)| m | 1 << i);
        let cancel: SmallVec<[ShipmentId; 1]> = self
            .order_shipments(id)
            .filter(|(_, s)| s.lifecycle == Lifecycle::AwaitingDispatch && s.lines_mask & !full == 0)
            .map(|(sid, _)| sid)
            .collect();
        for sid in cancel {
            self.drop_shipment(sid);
        }
        if plan.refunded == total {
            let index = id.index().unwrap_or_default();
            self.orders[index].status = OrderStatus::Refunded;
            self.release_coupons(index);
        }
    }

    /// Refunds the rest of an order: every unit not yet refunded and the shipping left.
    pub(crate) fn refund_rest(
        &mut self,
        actor: Actor,
        now: Millis,
        id: OrderId,
        restock: bool,
    ) -> Result<Amount, CoreError> {
        let o = self.order(id)?;
        if !actor.may_manage_merchant(o.merchant()) {
            return Err(CoreError::Forbidden("refund another merchant's order"));
        }
        self.order_after_payment(id)?;
        let left = self.returnable_units(id)?;
        let account = self.logistics.refunds.get(&id);
        let o = self.order(id)?;
        let lines: SmallVec<[(u8, u32); 1]> = (0..o.lines.len())
            .map(|p| (p, o.lines[p].quantity() - account.and_then(|a| a.units.get(p)).copied().unwrap_or(0)))
            .filter(|&(_, n)| n > 0)
            .map(|(p, n)| (p as u8, n))
            .collect();
        if lines.iter().any(|&(p, n)| left[usize::from(p)] < n) {
            return Err(CoreError::ReturnOpen);
        }
        let shipping = Amount(self.order_shipping(id).0 - account.map_or(0, |a| a.shipping.0));
        self.refund_money(now, id, &lines, shipping, restock)
    }

    pub(crate) fn refund_lines(
        &mut self,
        actor: Actor,
        now: Millis,
        id: OrderId,
        lines: &[LineRequest],
        shipping: Amount,
        restock: bool,
    ) -> Result<Outcome, CoreError> {
        let o = self.order(id)?;
        if !actor.may_manage_merchant(o.merchant()) {
            return Err(CoreError::Forbidden("refund another merchant's order"));
        }
        self.order_after_payment(id)?;
        let left = self.returnable_units(id)?;
        let resolved = self.resolve_lines(id, lines, &left)?;
        let amount = self.refund_money(now, id, &resolved, shipping, restock)?;
        Ok(Outcome::LinesRefunded { order: id, amount })
    }

    // ---- returns ----

    pub(crate) fn request_return(
        &mut self,
        actor: Actor,
        now: Millis,
        id: OrderId,
        lines: &[LineRequest],
        reason: ReturnReason,
    ) -> Result<Outcome, CoreError> {
        let o = self.order(id)?;
        if !actor.may_act_for_buyer(o.buyer()) {
            return Err(CoreError::Forbidden("return another buyer's order"));
        }
        self.order_after_payment(id)?;
        if lines.is_empty() {
            return Err(out_of_bounds("lines", "a return names 1 to 32 lines"));
        }
        let left = self.returnable_units(id)?;
        let resolved = self.resolve_lines(id, lines, &left)?;
        if self.logistics.returns.len() as u64 >= RETURNS_MAX {
            return Err(CoreError::Overflow("returns"));
        }
        self.logistics.returns.push(ReturnRequest {
            order: id,
            lines: resolved.into_vec(),
            reason,
            status: ReturnStatus::Requested,
            requested_at: now,
            decided_at: None,
            received_at: None,
            refunded_at: None,
            restocked: false,
            refunded: Amount::ZERO,
        });
        Ok(Outcome::ReturnRequested { ret: ReturnId::from_index(self.logistics.returns.len() - 1) })
    }

    fn return_for_merchant(&self, actor: Actor, id: ReturnId) -> Result<&ReturnRequest, CoreError> {
        let r = self.return_request(id)?;
        if !actor.may_manage_merchant(self.order(r.order)?.merchant()) {
            return Err(CoreError::Forbidden("handle another merchant's returns"));
        }
        Ok(r)
    }

    pub(crate) fn decide_return(
        &mut self,
        actor: Actor,
        now: Millis,
        id: ReturnId,
        approve: bool,
    ) -> Result<Outcome, CoreError> {
        let r = self.return_for_merchant(actor, id)?;
        if r.status != ReturnStatus::Requested {
            return Err(CoreError::ReturnState { status: r.status.name() });
        }
        let r = &mut self.logistics.returns[id.index().unwrap_or_default()];
        r.status = if approve { ReturnStatus::Approved } else { ReturnStatus::Rejected };
        r.decided_at = Some(now);
        Ok(Outcome::ReturnDecided { ret: id, approved: approve })
    }

    /// The parcel came back. Receiving never refunds by itself; `restock` puts the units back
    /// on sale.
    pub(crate) fn receive_return(
        &mut self,
        actor: Actor,
        now: Millis,
        id: ReturnId,
        restock: bool,
    ) -> Result<Outcome, CoreError> {
        let r = self.return_for_merchant(actor, id)?;
        if r.status != ReturnStatus::Approved {
            return Err(CoreError::ReturnState { status: r.status.name() });
        }
        let (order, lines) = (r.order, r.lines.clone());
        if restock {
            self.restock_lines(order, lines.into_iter().map(|(p, n)| (usize::from(p), n)));
        }
        let r = &mut self.logistics.returns[id.index().unwrap_or_default()];
        r.status = ReturnStatus::Received;
        r.restocked = restock;
        r.received_at = Some(now);
        Ok(Outcome::ReturnReceived { ret: id })
    }

    /// Refunds a return's lines (approved, received or not) and `shipping` of the order.
    pub(crate) fn refund_return(
        &mut self,
        actor: Actor,
        now: Millis,
        id: ReturnId,
        shipping: Amount,
    ) -> Result<Outcome, CoreError> {
        let r = self.return_for_merchant(actor, id)?;
        if !matches!(r.status, ReturnStatus::Approved | ReturnStatus::Received) {
            return Err(CoreError::ReturnState { status: r.status.name() });
        }
        let (order, lines) = (r.order, r.lines.clone());
        let amount = self.refund_money(now, order, &lines, shipping, false)?;
        let r = &mut self.logistics.returns[id.index().unwrap_or_default()];
        r.status = ReturnStatus::Refunded;
        r.refunded = amount;
        r.refunded_at = Some(now);
        Ok(Outcome::ReturnRefunded { ret: id, amount })
    }

    // ---- tickets ----

    pub(crate) fn open_ticket(
        &mut self,
        actor: Actor,
        now: Millis,
        order: OrderId,
        subject: &str,
    ) -> Result<Outcome, CoreError> {
        let o = self.order(order)?;
        if !actor.may_act_for_buyer(o.buyer()) {
            return Err(CoreError::Forbidden("open tickets on another buyer's order"));
        }
        Self::check_name("subject", subject, TICKET_SUBJECT_BYTES_MAX)?;
        let open = self.logistics.buyer_tickets.get(&order).copied().unwrap_or(0);
        if open >= TICKETS_PER_ORDER_MAX {
            return Err(out_of_bounds("tickets", "at most 8 per order"));
        }
        if self.logistics.tickets.len() as u64 >= TICKETS_MAX {
            return Err(CoreError::Overflow("tickets"));
        }
        let (merchant, buyer) = (o.merchant(), o.buyer());
        *self.logistics.buyer_tickets.entry(order).or_insert(0) += 1;
        let id = self.push_ticket(order, merchant, buyer, None, TicketKind::Buyer, subject, now);
        Ok(Outcome::TicketOpened { ticket: id })
    }

    #[allow(clippy::too_many_arguments)]
    fn push_ticket(
        &mut self,
        order: OrderId,
        merchant: MerchantId,
        buyer: BuyerId,
        shipment: Option<ShipmentId>,
        kind: TicketKind,
        subject: &str,
        now: Millis,
    ) -> TicketId {
        self.logistics.tickets.push(Ticket {
            order,
            merchant,
            buyer,
            shipment,
            kind,
            status: TicketStatus::New,
            subject: subject.to_owned(),
            opened_at: now,
            first_response_due: now.saturating_add(TICKET_FIRST_RESPONSE_MS),
            first_response_at: None,
            updated_at: now,
            messages: Vec::new(),
        });
        TicketId::from_index(self.logistics.tickets.len() - 1)
    }

    /// Opens the engine's ticket for a shipment's breach, once per breach and shipment.
    pub(crate) fn open_breach_ticket(&mut self, shipment: ShipmentId, kind: TicketKind, now: Millis) {
        if !self.logistics.breaches.insert((shipment.0, kind as u8)) {
            return;
        }
        let Ok(s) = self.shipment(shipment) else { return };
        let Ok(o) = self.order(s.order()) else { return };
        let (order, merchant, buyer) = (s.order(), o.merchant(), o.buyer());
        self.push_ticket(order, merchant, buyer, Some(shipment), kind, kind.subject(), now);
    }

    pub(crate) fn update_ticket(
        &mut self,
        actor: Actor,
        now: Millis,
        id: TicketId,
        status: TicketStatus,
    ) -> Result<Outcome, CoreError> {
        let t = self.ticket(id)?;
        let staff = actor.may_manage_merchant(t.merchant);
        let buyer = matches!(actor, Actor::Buyer(b) if b == t.buyer);
        if !staff && !buyer {
            return Err(CoreError::Forbidden("update another merchant's tickets"));
        }
        let allowed = match (t.status, status) {
            (TicketStatus::Closed, _) | (_, TicketStatus::New) => false,
            (_, TicketStatus::Closed) => true,
            (TicketStatus::Resolved, TicketStatus::Open) => true,
            _ => staff,
        };
        if !allowed || t.status == status {
            return Err(CoreError::TicketState { status: t.status.name() });
        }
        let t = &mut self.logistics.tickets[id.index().unwrap_or_default()];
        t.status = status;
        t.updated_at = now;
        if staff && t.first_response_at.is_none() {
            t.first_response_at = Some(now);
        }
        Ok(Outcome::TicketUpdated { ticket: id, status, at: now })
    }

    /// A message in a ticket's conversation, by its store (or the operator) or its buyer. The
    /// store's first message is its first response and opens a new ticket; the buyer's reopens
    /// one pending or resolved. A closed ticket takes no more.
    pub(crate) fn reply_ticket(
        &mut self,
        actor: Actor,
        now: Millis,
        id: TicketId,
        body: &str,
    ) -> Result<Outcome, CoreError> {
        let t = self.ticket(id)?;
        // The store's side (its merchant, the operator) or the buyer's (the buyer, or a
        // storefront for it: whoever may act for the buyer).
        let staff = actor.may_manage_merchant(t.merchant);
        if !staff && !actor.may_act_for_buyer(t.buyer) {
            return Err(CoreError::Forbidden("write in another merchant's or buyer's tickets"));
        }
        if t.status == TicketStatus::Closed {
            return Err(CoreError::TicketState { status: t.status.name() });
        }
        Self::check_name("body", body, TICKET_MESSAGE_BYTES_MAX)?;
        if t.messages.len() >= TICKET_MESSAGES_MAX {
            return Err(out_of_bounds("messages", "at most 50 per ticket"));
        }
        let t = &mut self.logistics.tickets[id.index().unwrap_or_default()];
        t.messages.push(TicketMessage { from_store: staff, at: now, body: body.to_owned() });
        t.updated_at = now;
        if staff {
            t.first_response_at.get_or_insert(now);
            if t.status == TicketStatus::New {
                t.status = TicketStatus::Open;
            }
        } else if matches!(t.status, TicketStatus::Pending | TicketStatus::Resolved) {
            t.status = TicketStatus::Open;
        }
        Ok(Outcome::TicketReplied { ticket: id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::OrderLine;
    use proptest::prelude::*;
    use std::num::NonZeroU32;

    proptest! {
        /// Each line's share is at most its gross, and the shares add up to what was paid.
        #[test]
        fn line_shares_add_up_to_what_was_paid(
            lines in proptest::collection::vec((1u64..100_000, 1u32..50), 1..8),
            discount_share in 0u64..=1_000,
        ) {
            let lines: Vec<OrderLine> = lines.iter().enumerate().map(|(i, &(price, q))| {
                OrderLine::new(SkuId(i as u64 + 1), NonZeroU32::new(q).expect("not 0"), Amount(price), None)
            }).collect();
            let subtotal: u64 = lines.iter().map(|l| l.unit_price.0 * u64::from(l.quantity())).sum();
            let discount = Amount(subtotal * discount_share / 1_000);
            let nets = line_nets(&lines, discount);
            prop_assert_eq!(nets.iter().map(|a| a.0).sum::<u64>(), subtotal - discount.0);
            for (n, l) in nets.iter().zip(&lines) {
                prop_assert!(n.0 <= l.unit_price.0 * u64::from(l.quantity()));
            }
        }

        /// Refunding a line unit by unit, in any split, refunds exactly its share.
        #[test]
        fn unit_refunds_add_up_to_the_line(net in 0u64..10_000_000, quantity in 1u64..100, cut in 0u64..100) {
            let cut = cut.min(quantity);
            let first = pro_rata(Amount(net), Amount(cut), Amount(quantity));
            let all = pro_rata(Amount(net), Amount(quantity), Amount(quantity));
            prop_assert_eq!(all.0, net);
            prop_assert!(first <= all);
        }
    }
}
