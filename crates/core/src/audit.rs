//! The audit: every invariant of the brief (§3) that can be checked on one state, recomputed
//! from first principles (order lines, ledger transfers) rather than trusted from counters.

use crate::ledger::Owner;
use crate::limits::EXTERNAL_ISSUED_MAX;
use crate::orders::OrderStatus;
use crate::state::State;
use crate::types::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// The first violation found, or a summary of what was checked.
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    pub checks: Vec<Check>,
    pub digest: String,
    pub applied: u64,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

fn check(name: &'static str, violation: Option<String>, summary: String) -> Check {
    match violation {
        Some(detail) => Check { name, ok: false, detail },
        None => Check { name, ok: true, detail: summary },
    }
}

impl State {
    pub fn audit(&self) -> AuditReport {
        let checks = vec![
            self.check_stock(),
            self.check_campaigns(),
            self.check_ledger(),
            self.check_orders(),
            self.check_coupons(),
            self.check_red_packets(),
            self.check_reservations(),
            self.check_shipments(),
            self.check_capacity(),
            self.check_refunds(),
            self.check_tracking(),
            self.check_tickets(),
            check(
                "products_and_categories",
                self.products.check(self).err(),
                format!("{} products, {} categories", self.products().count(), self.categories().count()),
            ),
            check(
                "cart_bounds",
                self.carts.check().err().map(String::from),
                format!("{} carts within bounds", self.carts.len()),
            ),
            check(
                "checkouts_whole",
                self.check_checkouts().err(),
                format!("{} checkouts all paid, discounts shared exactly", self.checkouts.len()),
            ),
            check(
                "idempotency_index",
                (!self.idempotency.is_consistent(self))
                    .then(|| "index and entries disagree, or an outcome names what is not there".into()),
                format!("{} keys remembered", self.idempotency.len()),
            ),
        ];
        AuditReport { checks, digest: self.digest(), applied: self.applied }
    }

    /// Invariant 1: available + reserved + sold == received, and reserved equals what pending
    /// orders hold.
    fn check_stock(&self) -> Check {
        let mut held = vec![0u64; self.skus.len()];
        for order in self.orders.iter().filter(|o| o.status == OrderStatus::PendingPayment) {
            for line in &order.lines {
                if let Some(h) = line.sku.index().and_then(|i| held.get_mut(i)) {
                    *h += u64::from(line.quantity());
                }
            }
        }
        let violation = self.skus.iter().enumerate().find_map(|(i, s)| {
            let id = SkuId::from_index(i);
            let total = u128::from(s.available) + u128::from(s.reserved) + u128::from(s.sold);
            if total != u128::from(s.received) {
                return Some(format!(
                    "sku {id}: available {} + reserved {} + sold {} != received {}",
                    s.available, s.reserved, s.sold, s.received
                ));
            }
            (s.reserved != held[i])
                .then(|| format!("sku {id}: reserved {} but pending orders hold {}", s.reserved, held[i]))
        });
        check("no_oversell", violation, format!("{} SKUs balanced", self.skus.len()))
    }

    /// Invariant 1, campaigns: never beyond quantity or a buyer's limit; counters match orders.
    fn check_campaigns(&self) -> Check {
        let mut taken: BTreeMap<(CampaignId, BuyerId), u64> = BTreeMap::new();
        for order in
            self.orders.iter().filter(|o| !matches!(o.status, OrderStatus::Cancelled | OrderStatus::Expired))
        {
            for line in &order.lines {
                if let Some(c) = line.campaign() {
                    *taken.entry((c, order.buyer())).or_insert(0) += u64::from(line.quantity());
                }
            }
        }
        let violation = self.campaigns.iter().enumerate().find_map(|(i, c)| {
            let id = CampaignId::from_index(i);
            if c.taken > c.quantity {
                return Some(format!("campaign {id}: taken {} > quantity {}", c.taken, c.quantity));
            }
            // A SKU edit may not make a sale that has not ended dearer than the shelf.
            let shelf = c.sku.index().and_then(|i| self.skus.get(i)).map_or(0, |s| s.price.0);
            if !c.is_over(self.clock) && c.flash_price.0 > shelf {
                return Some(format!(
                    "campaign {id}: flash price {} above the SKU's {shelf}",
                    c.flash_price.0
                ));
            }
            let by_orders: u64 =
                taken.range((id, BuyerId(0))..=(id, BuyerId(u64::MAX))).map(|(_, q)| q).sum();
            if by_orders != c.taken {
                return Some(format!("campaign {id}: taken {} but orders hold {by_orders}", c.taken));
            }
            c.taken_by_buyer.iter().find_map(|(b, &used)| {
                let held = taken.get(&(id, *b)).copied().unwrap_or(0);
                (used > c.per_buyer_limit || u64::from(used) != held).then(|| {
                    format!(
                        "campaign {id}, buyer {b}: {used} units (limit {}, orders {held})",
                        c.per_buyer_limit
                    )
                })
            })
        });
        check("campaign_limits", violation, format!("{} campaigns within limits", self.campaigns.len()))
    }

    /// Invariant 2: every balance equals its entries, no wallet below zero, and the balances of
    /// each currency sum to zero.
    fn check_ledger(&self) -> Check {
        let ledger = &self.ledger;
        let violation = ledger.transfers().enumerate().find_map(|(i, t)| {
            (t.amount.0 == 0 || t.debit == t.credit)
                .then(|| format!("transfer {}: empty or self transfer", TransferId::from_index(i)))
        });
        // Each balance equals its entries, and each history chain is whole.
        let violation = violation.or_else(|| ledger.histories_violation());
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        let violation = violation.or_else(|| {
            ledger.accounts().iter().find_map(|a| {
                *sums.entry(a.currency).or_insert(0) += i128::from(a.balance);
                let wrong_sign = match a.owner {
                    Owner::External => a.balance > 0,
                    _ => a.balance < 0,
                };
                if a.owner == Owner::External && i128::from(a.balance) < -i128::from(EXTERNAL_ISSUED_MAX) {
                    return Some(format!(
                        "external {}: {} brought in, beyond the issuance bound {EXTERNAL_ISSUED_MAX}",
                        a.currency,
                        -i128::from(a.balance)
                    ));
                }
                wrong_sign.then(|| {
                    format!("{:?} {}: balance {} has the wrong sign", a.owner, a.currency, a.balance)
                })
            })
        });
        let violation = violation.or_else(|| {
            sums.iter().find(|(_, &s)| s != 0).map(|(c, s)| format!("{c}: balances sum to {s}, not 0"))
        });
        // How close the external side is to its bound, in the currency nearest to it.
        let issued = ledger
            .accounts()
            .iter()
            .filter(|a| a.owner == Owner::External)
            .map(|a| (a.balance.unsigned_abs(), a.currency))
            .max();
        let headroom = match issued {
            Some((issued, currency)) => format!(
                "; most brought in: {issued} {currency}, {} ppm of the issuance bound",
                u128::from(issued) * 1_000_000 / u128::from(EXTERNAL_ISSUED_MAX)
            ),
            None => String::new(),
        };
        check(
            "money_conserved",
            violation,
            format!(
                "{} transfers over {} accounts balance{headroom}",
                ledger.transfers().len(),
                ledger.accounts().len()
            ),
        )
    }

    /// Orders: totals match lines, coupons and shipping; a paid order's transfers pay exactly
    /// its total less what was refunded.
    fn check_orders(&self) -> Check {
        let mut paid: Vec<i128> = vec![0; self.orders.len()];
        for t in self.ledger.transfers() {
            if let Some(i) = t.order.and_then(|o| o.index()) {
                let signed = match (t.debit, t.credit) {
                    (Owner::Buyer(_), _) => i128::from(t.amount.0),
                    (_, Owner::Buyer(_)) => -i128::from(t.amount.0),
                    _ => 0, // subsidies move between platform and merchant
                };
                if let Some(p) = paid.get_mut(i) {
                    *p += signed;
                }
            }
        }
        let violation = self.orders.iter().enumerate().find_map(|(i, o)| {
            let id = OrderId::from_index(i);
            let lines: u128 =
                o.lines.iter().map(|l| u128::from(l.unit_price.0) * u128::from(l.quantity())).sum();
            let discounts: u128 = self.order_discounts(id).iter().map(|d| u128::from(d.amount.0)).sum();
            let shipping = u128::from(self.order_shipping(id).0);
            if lines + shipping != u128::from(o.total.0) + discounts {
                return Some(format!(
                    "order {id}: total {} + discounts {discounts} but lines and shipping sum to {}",
                    o.total.0,
                    lines + shipping
                ));
            }
            let refunded = self.refund_account(id).map_or(0, |a| i128::from(a.total.0));
            let expected = match o.status {
                OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered | OrderStatus::Refunded => {
                    i128::from(o.total.0) - refunded
                }
                _ => 0,
            };
            (paid[i] != expected)
                .then(|| format!("order {id} ({}): buyer paid {} net", o.status.name(), paid[i]))
        });
        check("orders_paid_exactly", violation, format!("{} orders consistent", self.orders.len()))
    }
}

impl State {
    /// The reservations index (derived, never encoded) holds exactly the pending orders, in
    /// order of expiry then id: what `Tick` expires is what the orders say is due.
    fn check_reservations(&self) -> Check {
        let mut pending: Vec<(Millis, OrderId)> = (self.orders.iter().enumerate())
            .filter(|(_, o)| o.status == OrderStatus::PendingPayment)
            .map(|(i, o)| (o.expires_at(), OrderId::from_index(i)))
            .collect();
        pending.sort_unstable();
        let expected: Vec<OrderId> = pending.into_iter().map(|(_, id)| id).collect();
        let indexed = self.reservations.due(Millis(u64::MAX), usize::MAX, |id| self.order_expiry(id));
        let violation = (indexed != expected).then(|| {
            format!("{} pending orders, {} in the reservations index", expected.len(), indexed.len())
        });
        check("reservations_index", violation, format!("{} reservations pending", expected.len()))
    }

    /// Coupons: never beyond the budget (uses, money) or a buyer's limit; the counters equal
    /// what live orders hold.
    fn check_coupons(&self) -> Check {
        let mut held: BTreeMap<CouponId, (u64, u128, BTreeMap<BuyerId, u32>)> = BTreeMap::new();
        for (id, discounts) in &self.order_discounts {
            let Some(o) = self.order(*id).ok().filter(|_| !discounts.is_empty()) else {
                let violation =
                    format!("discounts recorded for order {id}, which has none or does not exist");
                return check("coupon_budgets", Some(violation), String::new());
            };
            if !(o.status == OrderStatus::PendingPayment || o.status.is_paid()) {
                continue;
            }
            for d in discounts {
                let entry = held.entry(d.coupon).or_default();
                entry.0 += 1;
                entry.1 += u128::from(d.amount.0);
                *entry.2.entry(o.buyer()).or_default() += 1;
            }
        }
        let violation = self.coupons().find_map(|(id, c)| {
            let empty = (0, 0, BTreeMap::new());
            let (uses, money, by_buyer) = held.get(&id).unwrap_or(&empty);
            if c.used_count != *uses || u128::from(c.used_amount.0) != *money || &c.used_by_buyer != by_buyer
            {
                return Some(format!(
                    "coupon {id}: counters {} uses / {} off, orders hold {uses} / {money}",
                    c.used_count, c.used_amount.0
                ));
            }
            if c.terms.budget_uses.is_some_and(|max| c.used_count > max)
                || c.terms.budget_amount.is_some_and(|max| c.used_amount > max)
            {
                return Some(format!("coupon {id}: over budget"));
            }
            c.used_by_buyer.iter().find(|(_, &n)| n > c.terms.per_buyer_limit).map(|(b, n)| {
                format!("coupon {id}: buyer {b} used it {n} times, limit {}", c.terms.per_buyer_limit)
            })
        });
        check("coupon_budgets", violation, format!("{} coupons within budget", self.coupons.len()))
    }

    /// Red packets: shares sum to what was claimed, never more than `count` shares or the pool;
    /// each escrow holds exactly what is unclaimed, and nothing once the pool is closed.
    fn check_red_packets(&self) -> Check {
        let violation = self.red_packets().find_map(|(id, p)| {
            let sum: u128 = p.claims.values().map(|a| u128::from(a.0)).sum();
            if sum != u128::from(p.claimed_amount.0) || p.claims.values().any(|a| a.0 == 0) {
                return Some(format!("red packet {id}: shares sum to {sum}, claimed {}", p.claimed_amount.0));
            }
            if p.claims.len() as u64 > u64::from(p.terms.count)
                || p.claimed_amount.0 + p.returned.0 > p.terms.amount.0
            {
                return Some(format!(
                    "red packet {id}: {} shares, {} paid of {}",
                    p.claims.len(),
                    p.claimed_amount.0,
                    p.terms.amount.0
                ));
            }
            let escrow = self.ledger.balance(Owner::Escrow(id), p.terms.currency);
            let expected = if p.closed { 0 } else { (p.terms.amount.0 - p.claimed_amount.0) as i64 };
            (escrow != expected).then(|| format!("red packet {id}: escrow {escrow}, expected {expected}"))
        });
        check("red_packets_exact", violation, format!("{} red packets exact", self.red_packets.len()))
    }
}
