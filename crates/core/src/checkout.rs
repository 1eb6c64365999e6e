//! Carts and checkout: a buyer's cart of lines from any merchants, kept in the journaled state
//! (it survives restarts and replicates) and dropped once untouched for [`CART_TTL_MS`]; and
//! the checkout, which places one order per merchant and pays them all from the buyer's wallet
//! in one command: every order is placed and paid, or the command is refused and nothing
//! changed.
//!
//! The checkout checks everything before it changes anything. Each merchant's order is priced
//! against the state as it is (its lines, campaigns, coupons and shipping: [`State::price_order`])
//! and its parcels planned ([`State::plan_parcels`]); the merchants' SKUs, campaigns, coupons
//! and warehouses are disjoint, so no order of the checkout changes what another one was priced
//! on. Then the wallet must hold the sum, and the ledger room for every transfer. Only then are
//! the orders reserved and settled, in merchant order of first appearance: by then no step can
//! be refused (the ledger's other bounds keep every balance far inside `i64`).

use crate::command::{DiscountRule, LineRequest, Outcome};
use crate::error::{out_of_bounds, CoreError};
use crate::ledger::Owner;
use crate::limits::*;
use crate::orders::{line_quantity, PricedOrder};
use crate::state::State;
use crate::types::*;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet};

/// A buyer's cart: lines in the order they were first added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    /// The last change: the cart is dropped [`CART_TTL_MS`] after it.
    pub touched: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub sku: SkuId,
    pub quantity: u32,
}

/// Every buyer's cart, and when each expires.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Carts {
    carts: BTreeMap<BuyerId, Cart>,
    /// (expiry, buyer) of every cart: the tick drops the due ones, a bounded number at a time.
    ends: BTreeSet<(Millis, BuyerId)>,
}

impl Carts {
    pub fn get(&self, buyer: BuyerId) -> Option<&Cart> {
        self.carts.get(&buyer)
    }

    pub fn len(&self) -> usize {
        self.carts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.carts.is_empty()
    }

    /// The earliest a cart expires.
    pub(crate) fn next_due(&self) -> Option<Millis> {
        self.ends.first().map(|(at, _)| *at)
    }

    fn remove(&mut self, buyer: BuyerId) {
        if let Some(cart) = self.carts.remove(&buyer) {
            self.ends.remove(&(expiry(cart.touched), buyer));
        }
    }

    /// Drops the carts due by `now`, at most `max`; returns how many.
    pub(crate) fn expire(&mut self, now: Millis, max: usize) -> usize {
        let due = crate::state::due_by(&self.ends, now, max);
        for &buyer in &due {
            self.remove(buyer);
        }
        due.len()
    }

    /// Every cart's bounds and its expiry's entry: for the audit.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.ends.len() != self.carts.len() {
            return Err("a cart without its expiry, or an expiry without its cart");
        }
        for (buyer, cart) in &self.carts {
            if cart.lines.is_empty() || cart.lines.len() > CART_LINES_MAX {
                return Err("a cart is empty or over its bound of lines");
            }
            if !self.ends.contains(&(expiry(cart.touched), *buyer)) {
                return Err("a cart's expiry is not where its last change says");
            }
            if cart.lines.iter().any(|l| l.quantity == 0 || l.quantity > LINE_QUANTITY_MAX) {
                return Err("a cart line's quantity is out of bounds");
            }
        }
        Ok(())
    }

    pub(crate) fn bytes(&self) -> u64 {
        let lines: usize = self.carts.values().map(|c| c.lines.capacity() * size_of::<CartLine>()).sum();
        (self.carts.len() * (size_of::<(BuyerId, Cart)>() + size_of::<(Millis, BuyerId)>()) + lines) as u64
    }
}

/// What a checkout made, kept for the audit: its orders (consecutive ids, one per store) and
/// the cross-store discount it shared among them, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutRecord {
    pub first: OrderId,
    pub orders: u8,
    pub cross_store: Option<(CouponId, Amount)>,
}

/// `off` shared by spends: each its proportional part rounded down, then the fen left over one
/// at a time to the first with room (a share never exceeds its spend; `off` ≤ their sum).
pub(crate) fn shares(off: u64, spends: &[u64]) -> SmallVec<[u64; 4]> {
    let spend: u64 = spends.iter().sum(); // each under AMOUNT_MAX, at most 20 of them
    let mut shares: SmallVec<[u64; 4]> =
        spends.iter().map(|&s| (u128::from(off) * u128::from(s) / u128::from(spend.max(1))) as u64).collect();
    let mut left = off - shares.iter().sum::<u64>().min(off);
    for (share, &s) in shares.iter_mut().zip(spends) {
        let more = left.min(s.saturating_sub(*share));
        *share += more;
        left -= more;
    }
    shares
}

/// One merchant's part of a checkout.
struct Group {
    merchant: MerchantId,
    lines: SmallVec<[LineRequest; 4]>,
    coupons: SmallVec<[CouponId; 1]>,
}

type Groups = SmallVec<[Group; 4]>;

fn expiry(touched: Millis) -> Millis {
    touched.saturating_add(CART_TTL_MS)
}

impl State {
    /// Sets a line of the buyer's cart to `quantity` units of `sku` (0 takes it out). The SKU
    /// must exist; its stock is not held (the checkout checks it).
    pub(crate) fn set_cart_line(
        &mut self,
        actor: crate::types::Actor,
        now: Millis,
        buyer: BuyerId,
        sku: SkuId,
        quantity: u32,
    ) -> Result<Outcome, CoreError> {
        self.require_buyer(actor, buyer, "change another buyer's cart")?;
        self.sku(sku)?;
        if quantity > 0 {
            line_quantity(quantity)?;
        }
        // An expired cart not yet dropped by the tick is empty: its lines do not come back.
        let mut cart = Cart { lines: self.cart(buyer, now).to_vec(), touched: now };
        match cart.lines.iter().position(|l| l.sku == sku) {
            Some(i) if quantity == 0 => {
                cart.lines.remove(i);
            }
            Some(i) => cart.lines[i].quantity = quantity,
            None if quantity == 0 => return Err(CoreError::NotFound("cart line")),
            None if cart.lines.len() >= CART_LINES_MAX => {
                return Err(out_of_bounds("cart", "a cart holds at most 100 lines"))
            }
            None => cart.lines.push(CartLine { sku, quantity }),
        }
        let lines = cart.lines.len() as u32;
        self.carts.remove(buyer);
        if !cart.lines.is_empty() {
            self.carts.ends.insert((expiry(now), buyer));
            self.carts.carts.insert(buyer, cart);
        }
        Ok(Outcome::CartChanged { buyer, lines })
    }

    pub fn carts(&self) -> &Carts {
        &self.carts
    }

    /// The buyer's cart as it stands at `now` (an expired one, not yet dropped, is empty).
    pub fn cart(&self, buyer: BuyerId, now: Millis) -> &[CartLine] {
        match self.carts.get(buyer) {
            Some(cart) if expiry(cart.touched) > now => &cart.lines,
            _ => &[],
        }
    }

    /// What a line would cost the buyer if ordered at `now` (the campaign's price if one
    /// governs the SKU), or why it could not be ordered; changes nothing.
    pub fn quote_line(
        &self,
        buyer: BuyerId,
        sku: SkuId,
        quantity: u32,
        now: Millis,
    ) -> Result<crate::OrderLine, CoreError> {
        let units = line_quantity(quantity)?;
        self.price_line(buyer, sku, self.sku(sku)?, units, now)
    }

    /// Places one order per merchant of `requested` (the cart's lines if empty) with the
    /// merchants' `coupons`, and pays them all from the buyer's wallet: all or none.
    pub(crate) fn checkout(
        &mut self,
        actor: crate::types::Actor,
        now: Millis,
        buyer: BuyerId,
        requested: &[LineRequest],
        coupons: &[CouponId],
    ) -> Result<Outcome, CoreError> {
        self.require_buyer(actor, buyer, "check out for another buyer")?;
        let from_cart = requested.is_empty();
        let lines: Vec<LineRequest> = if from_cart {
            self.cart(buyer, now).iter().map(|l| LineRequest { sku: l.sku, quantity: l.quantity }).collect()
        } else {
            requested.to_vec()
        };
        if lines.is_empty() || lines.len() > CART_LINES_MAX {
            return Err(out_of_bounds("lines", "a checkout has 1 to 100 lines, or a cart that has them"));
        }
        if coupons.len() > CHECKOUT_MERCHANTS_MAX {
            return Err(out_of_bounds("coupons", "at most one coupon per store"));
        }
        let (groups, cross_store) = self.group_by_merchant(&lines, coupons)?;
        let mut priced: SmallVec<[(PricedOrder, crate::logistics::Plan); 4]> = SmallVec::new();
        for group in &groups {
            let order = self.price_order(buyer, &group.lines, &group.coupons, now)?;
            let plan = self.plan_parcels(group.merchant, buyer, &order.lines, now)?;
            priced.push((order, plan));
        }
        let currency = priced[0].0.currency;
        if priced.iter().any(|(o, _)| o.currency != currency) {
            return Err(CoreError::CurrencyMismatch("a checkout pays in one currency"));
        }
        let cross_store = match cross_store {
            Some(id) => Some((id, self.apportion_cross_store(id, buyer, currency, &mut priced, now)?)),
            None => None,
        };
        let total = priced
            .iter()
            .try_fold(Amount::ZERO, |sum, (o, _)| sum.checked_add(o.total))
            .filter(|t| t.0 <= AMOUNT_MAX)
            .ok_or(CoreError::AmountTooLarge)?;
        if self.ledger.balance(Owner::Buyer(buyer), currency) < total.0 as i64 {
            return Err(CoreError::InsufficientFunds);
        }
        // A payment posts at most PAYMENT_LEGS_MAX transfers (to the merchant, the commission,
        // the platform's subsidy).
        let legs = crate::orders::PAYMENT_LEGS_MAX as u64 * priced.len() as u64;
        let transfers = self.ledger.transfers().len() as u64 + legs;
        if transfers > TRANSFERS_MAX || self.orders.len() as u64 + priced.len() as u64 > ORDERS_MAX {
            return Err(CoreError::Overflow("orders or transfers ever made"));
        }

        // Everything checked: nothing below is refused.
        let first = OrderId::from_index(self.orders.len());
        let orders = priced.len() as u32;
        for (order, plan) in priced {
            let id = OrderId::from_index(self.orders.len());
            // Paid at once: the shortest hold, never reached.
            self.reserve_order(buyer, order, now, RESERVATION_TTL_MS_MIN);
            self.settle(id, &plan, now)?;
        }
        if from_cart {
            self.carts.remove(buyer);
        }
        self.checkouts.push(CheckoutRecord { first, orders: orders as u8, cross_store });
        Ok(Outcome::CheckedOut { first, orders, total })
    }

    /// The lines grouped by their SKU's merchant, in order of first appearance, each with the
    /// coupons of its merchant, and the platform's cross-store discount if one is named. A
    /// coupon of no merchant in the checkout, or another of the platform's, is refused.
    fn group_by_merchant(
        &self,
        lines: &[LineRequest],
        coupons: &[CouponId],
    ) -> Result<(Groups, Option<CouponId>), CoreError> {
        let mut groups = Groups::new();
        for line in lines {
            let merchant = self.sku(line.sku)?.merchant();
            match groups.iter().position(|g| g.merchant == merchant) {
                Some(i) => groups[i].lines.push(line.clone()),
                None if groups.len() >= CHECKOUT_MERCHANTS_MAX => {
                    return Err(out_of_bounds("lines", "a checkout spans at most 20 stores"))
                }
                None => groups.push(Group {
                    merchant,
                    lines: smallvec::smallvec![line.clone()],
                    coupons: SmallVec::new(),
                }),
            }
        }
        let mut cross_store = None;
        for &id in coupons {
            let coupon = self.coupon(id)?;
            let Sponsor::Merchant(merchant) = coupon.terms.sponsor else {
                if !matches!(coupon.terms.rule, DiscountRule::CrossStore { .. }) {
                    return Err(CoreError::CouponNotApplicable(id, "a checkout takes the stores' coupons"));
                }
                if cross_store.replace(id).is_some() {
                    return Err(CoreError::CouponNotApplicable(id, "one cross-store discount at most"));
                }
                continue;
            };
            let group = groups.iter_mut().find(|g| g.merchant == merchant).ok_or_else(|| {
                out_of_bounds("coupons", "a coupon of a store with no line in the checkout")
            })?;
            group.coupons.push(id);
        }
        Ok((groups, cross_store))
    }

    /// Applies the platform's cross-store discount `id` to the priced orders: `off` per `every`
    /// of their spend together (their lines after the stores' coupons), within its cap and what
    /// is left of its budget, shared by the orders in proportion to their spend, rounded down,
    /// the remainder a fen at a time to the first orders with room ([`shares`]). Changes only
    /// `priced`; returns the discount.
    fn apportion_cross_store(
        &self,
        id: CouponId,
        buyer: BuyerId,
        currency: Currency,
        priced: &mut [(PricedOrder, crate::logistics::Plan)],
        now: Millis,
    ) -> Result<Amount, CoreError> {
        let coupon = self.coupon(id)?;
        let DiscountRule::CrossStore { merchants_fund, .. } = coupon.terms.rule else {
            return Err(CoreError::CouponNotApplicable(id, "not a cross-store discount"));
        };
        if !coupon.is_active(now) {
            return Err(CoreError::CouponNotActive(id));
        }
        if coupon.terms.currency != currency {
            return Err(CoreError::CouponNotApplicable(id, "another currency"));
        }
        let spends: SmallVec<[u64; 4]> = priced.iter().map(|(o, _)| o.total.0 - o.shipping.0).collect();
        let spend: u64 = spends.iter().sum(); // each under AMOUNT_MAX, at most 20 of them
        if spend < coupon.terms.min_spend.0 {
            return Err(CoreError::CouponMinSpend { coupon: id, min_spend: coupon.terms.min_spend.0 });
        }
        let orders = priced.len() as u32;
        let used = coupon.used_by_buyer.get(&buyer).copied().unwrap_or(0);
        if used + orders > coupon.terms.per_buyer_limit {
            return Err(CoreError::CouponLimitExceeded { coupon: id, limit: coupon.terms.per_buyer_limit });
        }
        let exhausted = coupon.terms.budget_amount.is_some_and(|b| coupon.used_amount >= b)
            || coupon.terms.budget_uses.is_some_and(|max| coupon.used_count + u64::from(orders) > max);
        if exhausted {
            return Err(CoreError::CouponBudgetExhausted(id));
        }
        let mut off = crate::promotions::discount(coupon.terms.rule, Amount(spend)).0;
        if let Some(budget) = coupon.terms.budget_amount {
            off = off.min(budget.0 - coupon.used_amount.0);
        }
        if off == 0 {
            return Err(CoreError::CouponNotApplicable(id, "the spend is under the discount's step"));
        }
        for ((order, _), share) in priced.iter_mut().zip(shares(off, &spends)) {
            if share == 0 {
                continue;
            }
            let funded_by =
                if merchants_fund { Sponsor::Merchant(order.merchant) } else { Sponsor::Platform };
            order.discounts.push(crate::orders::OrderDiscount {
                coupon: id,
                amount: Amount(share),
                funded_by,
            });
            order.total.0 -= share;
        }
        Ok(Amount(off))
    }

    /// Every checkout's orders exist, are one buyer's, one per store, and were all paid (none
    /// pending, cancelled or expired); a cross-store discount's shares sum to what the
    /// checkout took off and are the proportional shares of the orders' spends, to the fen;
    /// and no order outside a checkout holds a cross-store discount.
    pub(crate) fn check_checkouts(&self) -> Result<(), String> {
        let mut in_checkouts = 0usize;
        for (n, c) in self.checkouts.iter().enumerate() {
            let missing = |id| format!("checkout {n}: order {id} does not exist");
            let buyer = self.order(c.first).map_err(|_| missing(c.first))?.buyer();
            let mut merchants = BTreeSet::new();
            let mut spends: SmallVec<[u64; 4]> = SmallVec::new();
            let mut taken: SmallVec<[u64; 4]> = SmallVec::new();
            for id in (0..u64::from(c.orders)).map(|i| OrderId(c.first.0.saturating_add(i))) {
                let o = self.order(id).map_err(|_| missing(id))?;
                let was_paid = o.status.is_paid() || o.status == crate::orders::OrderStatus::Refunded;
                if !was_paid || o.buyer() != buyer {
                    return Err(format!(
                        "checkout {n}: order {id} is {} or another buyer's",
                        o.status.name()
                    ));
                }
                if !merchants.insert(o.merchant()) {
                    return Err(format!("checkout {n}: two orders of one store"));
                }
                let share: u64 = (self.order_discounts(id).iter())
                    .filter(|d| c.cross_store.is_some_and(|(coupon, _)| coupon == d.coupon))
                    .map(|d| d.amount.0)
                    .sum();
                spends.push(o.total.0.saturating_sub(self.order_shipping(id).0) + share);
                taken.push(share);
            }
            let off = c.cross_store.map_or(0, |(_, off)| off.0);
            if c.orders == 0 || taken.iter().sum::<u64>() != off || (off > 0 && shares(off, &spends) != taken)
            {
                return Err(format!(
                    "checkout {n}: the cross-store shares {taken:?} are not {off} shared by spend"
                ));
            }
            in_checkouts += taken.iter().filter(|&&t| t > 0).count();
        }
        let cross_store_discounts = (self.order_discounts.values().flatten())
            .filter(|d| {
                self.coupon(d.coupon).is_ok_and(|c| matches!(c.terms.rule, DiscountRule::CrossStore { .. }))
            })
            .count();
        if cross_store_discounts != in_checkouts {
            return Err(format!(
                "{cross_store_discounts} orders hold a cross-store discount, {in_checkouts} of them in checkouts"
            ));
        }
        Ok(())
    }
}
