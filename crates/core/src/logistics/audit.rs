//! The invariants of logistics and after-sales, recomputed from the shipments, histories,
//! refunds and tickets rather than trusted from counters.

use super::*;
use crate::audit::Check;
use crate::orders::OrderStatus;
use crate::state::State;

fn check(name: &'static str, violation: Option<String>, summary: String) -> Check {
    match violation {
        Some(detail) => Check { name, ok: false, detail },
        None => Check { name, ok: true, detail: summary },
    }
}

/// Replays the forward-only rule over a history: the status it must end at.
fn replayed_status(history: &[HistoryEntry]) -> Option<(TrackingStatus, u32)> {
    let mut current: Option<(TrackingStatus, u32)> = None;
    for entry in history {
        let HistoryEntry::Tracking { status, occurred_at_s, .. } = *entry else { continue };
        let moves = current.is_none_or(|(c, at)| {
            c.rank() < TrackingStatus::FINAL_RANK && status.rank() >= c.rank() && occurred_at_s >= at
        });
        if moves {
            current = Some((status, occurred_at_s));
        }
    }
    current
}

impl State {
    /// No shipment without a paid order; every line of a paid order in exactly one shipment.
    pub(crate) fn check_shipments(&self) -> Check {
        let mut masks: BTreeMap<OrderId, u32> = BTreeMap::new();
        let violation = self.shipments().find_map(|(id, s)| {
            let o = self.order(s.order()).ok()?;
            if !(o.status.is_paid() || o.status == OrderStatus::Refunded) {
                return Some(format!("shipment {id}: order {} is {}", s.order(), o.status.name()));
            }
            let mask = masks.entry(s.order()).or_insert(0);
            if *mask & s.lines_mask != 0 || s.lines_mask == 0 {
                return Some(format!("shipment {id}: a line of order {} is in two shipments", s.order()));
            }
            *mask |= s.lines_mask;
            None
        });
        let violation = violation.or_else(|| {
            self.orders().find_map(|(id, o)| {
                let paid = o.status.is_paid() || o.status == OrderStatus::Refunded;
                let all = if o.lines.len() == 32 { u32::MAX } else { (1u32 << o.lines.len()) - 1 };
                let shipped = masks.get(&id).copied().unwrap_or(0);
                (paid && shipped != all)
                    .then(|| format!("order {id}: lines {all:b} paid, {shipped:b} in shipments"))
            })
        });
        check(
            "every_paid_line_shipped_once",
            violation,
            format!("{} shipments", self.logistics.shipments.len()),
        )
    }

    /// No warehouse day booked beyond its capacity, and each day's count is the shipments
    /// booked on it; the backlog counter is the shipments awaiting dispatch.
    pub(crate) fn check_capacity(&self) -> Check {
        let mut booked: BTreeMap<(u32, u32), u32> = BTreeMap::new();
        let mut awaiting: BTreeMap<u32, u64> = BTreeMap::new();
        for (_, s) in self.shipments() {
            let w = s.warehouse().0 as u32;
            if s.is_booked() {
                *booked.entry((w, s.dispatch_day)).or_insert(0) += 1;
            }
            if w != 0 && s.lifecycle == Lifecycle::AwaitingDispatch {
                *awaiting.entry(w).or_insert(0) += 1;
            }
        }
        let violation = self.warehouses().find_map(|(id, w)| {
            let v = id.0 as u32;
            if w.awaiting != awaiting.get(&v).copied().unwrap_or(0) {
                return Some(format!(
                    "warehouse {id}: backlog {} but {} shipments await",
                    w.awaiting,
                    awaiting.get(&v).copied().unwrap_or(0)
                ));
            }
            w.days.iter().find_map(|(&day, book)| {
                let counted = booked.get(&(v, day)).copied().unwrap_or(0);
                if book.booked > w.capacity_per_day {
                    return Some(format!(
                        "warehouse {id}, day {}: {} booked, capacity {}",
                        calendar::date_string(day),
                        book.booked,
                        w.capacity_per_day
                    ));
                }
                (book.booked != counted).then(|| {
                    format!(
                        "warehouse {id}, day {}: {} booked, {counted} shipments",
                        calendar::date_string(day),
                        book.booked
                    )
                })
            })
        });
        let violation = violation.or_else(|| {
            booked.iter().find_map(|(&(w, day), &n)| {
                let recorded = self.logistics.warehouses.get(w as usize - 1).map_or(0, |x| x.booked(day));
                (recorded != n).then(|| format!("warehouse {w}, day {day}: {n} shipments, {recorded} booked"))
            })
        });
        let days: usize = self.logistics.warehouses.iter().map(|w| w.days.len()).sum();
        check("capacity_never_overbooked", violation, format!("{days} warehouse days within capacity"))
    }

    /// Refunds within what was paid, per line and for shipping, and the ledger's refund
    /// transfers of each order add up to what its account says.
    pub(crate) fn check_refunds(&self) -> Check {
        let violation = self.logistics.refunds.iter().find_map(|(&id, a)| {
            let o = self.order(id).ok()?;
            let nets = self.order_line_nets(id).ok()?;
            for (p, line) in o.lines.iter().enumerate() {
                let (units, money) =
                    (a.units.get(p).copied().unwrap_or(0), a.lines.get(p).copied().unwrap_or_default());
                if units > line.quantity() || money > nets[p] {
                    return Some(format!(
                        "order {id}, line {p}: refunded {units} units / {} of {} / {}",
                        money.0,
                        line.quantity(),
                        nets[p].0
                    ));
                }
            }
            let lines: u128 = a.lines.iter().map(|m| u128::from(m.0)).sum();
            if a.shipping > self.order_shipping(id)
                || lines + u128::from(a.shipping.0) != u128::from(a.total.0)
                || a.total > o.total
            {
                return Some(format!(
                    "order {id}: refunded {} (shipping {}) of {}",
                    a.total.0, a.shipping.0, o.total.0
                ));
            }
            None
        });
        let refunds = self.logistics.refunds.len();
        check("refunds_within_paid", violation, format!("{refunds} orders with refunds within what was paid"))
    }

    /// A tracking status never moves backwards: replaying each history gives the status held.
    pub(crate) fn check_tracking(&self) -> Check {
        let violation = self.shipments().find_map(|(id, s)| {
            let replayed = replayed_status(&self.logistics.history(&s));
            let held = s.tracking.map(|t| (t, s.tracking_at_s));
            (replayed != held)
                .then(|| format!("shipment {id}: status {held:?}, its history says {replayed:?}"))
        });
        let events = self.logistics.history.len();
        check("tracking_forward_only", violation, format!("{events} history records replayed"))
    }

    /// Every ticket names an order of its merchant (and buyer), and one breach one ticket.
    pub(crate) fn check_tickets(&self) -> Check {
        let mut seen = BTreeSet::new();
        let violation = self.tickets().find_map(|(id, t)| {
            let o = self.order(t.order).ok();
            if o.is_none_or(|o| o.merchant() != t.merchant || o.buyer() != t.buyer) {
                return Some(format!("ticket {id}: order {} is not of merchant {}", t.order, t.merchant));
            }
            if let Some(s) = t.shipment {
                if self.shipment(s).map_or(true, |s| s.order() != t.order)
                    || !seen.insert((s.0, t.kind as u8))
                {
                    return Some(format!(
                        "ticket {id}: shipment {s} is not of its order, or the breach has two tickets"
                    ));
                }
            }
            None
        });
        check("tickets_name_their_orders", violation, format!("{} tickets", self.logistics.tickets.len()))
    }
}
