//! Warehouses, carriers, addresses, and shipments: booking at payment, dispatch, tracking, and
//! the time-driven work of a day's end (roll-over of what did not leave, missed deliveries).

use super::calendar;
use super::*;
use crate::command::{NewCarrier, NewTrackingEvent, NewWarehouse, Outcome};
use crate::error::{out_of_bounds, CoreError};
use crate::limits::*;
use crate::orders::{OrderLine, OrderStatus};
use crate::state::State;
use smallvec::SmallVec;

/// What a buyer is promised for one SKU before ordering (and what payment books).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    pub warehouse: WarehouseId,
    pub dispatch_day: u32,
    /// `None` when no carrier serves the lane from the warehouse's region to the buyer's.
    pub delivery: Option<(CarrierId, u32, u32)>,
}

/// One shipment a payment will create, planned before anything changes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planned {
    warehouse: u32,
    lines_mask: u32,
    estimate: Option<Estimate>,
}

/// What paying an order creates: its parcels, and where they go.
pub(crate) struct Plan {
    /// Empty: one implicit parcel of every line (a merchant without warehouses).
    parcels: SmallVec<[Planned; 1]>,
    /// The buyer's region at payment ([`RegionId::NONE`]: no address).
    destination: RegionId,
}

/// The first working day from `from` with room for one more parcel, within `horizon` days.
fn first_slot(w: &Warehouse, from: u32, horizon: u32) -> Option<u32> {
    calendar::first_day_with_room(&w.calendar(), from, w.capacity_per_day, horizon, |d| w.booked(d))
}

/// Up to `budget` shipments of the first entry of `due` whose time (`at` of its key) has
/// come, taken from the end of its list; the entry goes once its list is empty. `None` when
/// nothing is due or the budget is spent.
fn take_due<K: Ord + Copy>(
    due: &mut BTreeMap<K, Vec<U40>>,
    now: Millis,
    at: impl Fn(&K) -> Millis,
    budget: usize,
) -> Option<(K, Vec<U40>)> {
    let mut entry = due.first_entry().filter(|e| budget > 0 && at(e.key()) <= now)?;
    let key = *entry.key();
    let list = entry.get_mut();
    let taken = list.split_off(list.len() - list.len().min(budget));
    if list.is_empty() {
        entry.remove();
    }
    Some((key, taken))
}

fn seconds(at: Millis) -> u32 {
    u32::try_from(at.0 / 1_000).unwrap_or(u32::MAX)
}

fn check_region(name: &str) -> Result<(), CoreError> {
    let ok = (1..=REGION_BYTES_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(out_of_bounds("region", "1 to 32 letters, digits, '-' or '_'"))
    }
}

impl State {
    pub fn logistics(&self) -> &Logistics {
        &self.logistics
    }

    pub fn warehouse(&self, id: WarehouseId) -> Result<&Warehouse, CoreError> {
        id.index()
            .and_then(|i| self.logistics.warehouses.get(i))
            .ok_or_else(|| CoreError::NotFound("warehouse"))
    }

    pub fn warehouses(&self) -> impl ExactSizeIterator<Item = (WarehouseId, &Warehouse)> + '_ {
        self.logistics.warehouses.iter().enumerate().map(|(i, w)| (WarehouseId::from_index(i), w))
    }

    pub fn carrier(&self, id: CarrierId) -> Result<&Carrier, CoreError> {
        id.index().and_then(|i| self.logistics.carriers.get(i)).ok_or_else(|| CoreError::NotFound("carrier"))
    }

    pub fn shipment(&self, id: ShipmentId) -> Result<Shipment, CoreError> {
        id.index()
            .and_then(|i| self.logistics.shipments.get(i, |o| self.order_lines(o)))
            .ok_or_else(|| CoreError::NotFound("shipment"))
    }

    /// Every shipment, in id order.
    pub fn shipments(
        &self,
    ) -> impl DoubleEndedIterator<Item = (ShipmentId, Shipment)> + ExactSizeIterator + '_ {
        (0..self.logistics.shipments.len()).map(|i| {
            let s =
                self.logistics.shipments.get(i, |o| self.order_lines(o)).unwrap_or_else(|| unreachable!());
            (ShipmentId::from_index(i), s)
        })
    }

    /// How many lines an order has (0 if there is no such order).
    fn order_lines(&self, order: OrderId) -> usize {
        self.order(order).map_or(0, |o| o.lines.len())
    }

    /// The record of the shipment at `index` for a change, written out first if it is
    /// implicit ([`table`](super::table)).
    fn shipment_mut(&mut self, index: usize) -> Option<&mut Shipment> {
        let orders = &self.orders;
        let lines = |o: OrderId| o.index().and_then(|i| orders.get(i)).map_or(0, |o| o.lines.len());
        self.logistics.shipments.record_mut(index, lines)
    }

    /// A buyer's delivery address and its region.
    pub fn address(&self, buyer: BuyerId) -> Option<(&str, RegionId)> {
        let region = self.buyer(buyer).ok()?.region?;
        Some((self.logistics.addresses.get(&buyer)?, region))
    }

    /// The warehouse a SKU ships from: the one set for it, else its merchant's first; `None`
    /// while the merchant has none.
    pub fn sku_warehouse(&self, sku: &crate::catalogue::Sku) -> Option<WarehouseId> {
        let slot = usize::from(sku.warehouse_slot).saturating_sub(1);
        let merchant = self.merchant(sku.merchant()).ok()?;
        merchant.warehouses.get(slot).copied()
    }

    /// An order's shipments, in id order (consecutive ids, created at payment).
    pub fn order_shipments(&self, order: OrderId) -> impl Iterator<Item = (ShipmentId, Shipment)> + '_ {
        let shipments = &self.logistics.shipments;
        let first = shipments.first_of(order);
        let positions = first.checked_sub(1).map_or(0..0, |f| f as usize..shipments.len());
        let lines = self.order_lines(order);
        positions.map_while(move |index| {
            let s = shipments.get(index, |_| lines)?;
            (s.order() == order).then_some((ShipmentId::from_index(index), s))
        })
    }

    pub fn shipping_fee(&self, merchant: MerchantId, currency: Currency) -> Amount {
        self.logistics.shipping_fees.get(&(merchant, currency)).copied().unwrap_or(Amount::ZERO)
    }

    /// The shipping fee an order was charged (once, however many parcels it ships in).
    pub fn order_shipping(&self, order: OrderId) -> Amount {
        self.logistics.order_shipping.get(&order).copied().unwrap_or(Amount::ZERO)
    }

    /// Refuses a region that is neither known nor has room in the table.
    fn check_new_region(&self, name: &str, adding: usize) -> Result<(), CoreError> {
        check_region(name)?;
        if self.logistics.region(name).is_none() && self.logistics.regions.len() + adding >= REGIONS_MAX {
            return Err(CoreError::Overflow("regions"));
        }
        Ok(())
    }

    // ---- commands: set-up ----

    pub(crate) fn create_warehouse(
        &mut self,
        actor: Actor,
        new: &NewWarehouse,
    ) -> Result<Outcome, CoreError> {
        let merchant = self.merchant(new.merchant)?;
        if !actor.may_manage_merchant(new.merchant) {
            return Err(CoreError::Forbidden("create warehouses for another merchant"));
        }
        Self::check_name("name", &new.name, NAME_BYTES_MAX)?;
        self.check_new_region(&new.region, 0)?;
        if !(1..=WAREHOUSE_CAPACITY_PER_DAY_MAX).contains(&new.capacity_per_day) {
            return Err(out_of_bounds("capacity_per_day", "between 1 and 10000000 parcels"));
        }
        if new.cutoff_minute > 24 * 60 {
            return Err(out_of_bounds("cutoff_minute", "between 0 and 1440"));
        }
        if new.utc_offset_minutes.unsigned_abs() > UTC_OFFSET_MINUTES_MAX {
            return Err(out_of_bounds("utc_offset_minutes", "between -840 and 840"));
        }
        if new.closed_weekdays >= 0x7f {
            return Err(out_of_bounds("closed_weekdays", "at least one weekday must be open"));
        }
        if new.closed_days.len() > CLOSED_DAYS_MAX {
            return Err(out_of_bounds("closed_days", "at most 366"));
        }
        if merchant.warehouses.len() >= WAREHOUSES_PER_MERCHANT_MAX {
            return Err(out_of_bounds("warehouses", "a merchant has at most 255"));
        }
        if self.logistics.warehouses.len() as u64 >= WAREHOUSES_MAX {
            return Err(CoreError::Overflow("warehouses"));
        }
        let mut closed_days = new.closed_days.clone();
        closed_days.sort_unstable();
        closed_days.dedup();
        let region = self.logistics.intern_region(&new.region);
        self.logistics.warehouses.push(Warehouse {
            merchant: new.merchant,
            name: new.name.clone(),
            region,
            capacity_per_day: new.capacity_per_day,
            cutoff_minute: new.cutoff_minute,
            utc_offset_minutes: new.utc_offset_minutes,
            closed_weekdays: new.closed_weekdays,
            closed_days,
            days: BTreeMap::new(),
            awaiting: 0,
        });
        let id = WarehouseId::from_index(self.logistics.warehouses.len() - 1);
        self.merchants[new.merchant.index().unwrap_or_default()].warehouses.push(id);
        Ok(Outcome::WarehouseCreated { warehouse: id })
    }

    pub(crate) fn create_carrier(&mut self, actor: Actor, new: &NewCarrier) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "create carriers")?;
        Self::check_name("name", &new.name, NAME_BYTES_MAX)?;
        if new.lanes.is_empty() || new.lanes.len() > LANES_PER_CARRIER_MAX {
            return Err(out_of_bounds("lanes", "a carrier has 1 to 1024 lanes"));
        }
        for (i, lane) in new.lanes.iter().enumerate() {
            self.check_new_region(&lane.from, 2 * i)?;
            self.check_new_region(&lane.to, 2 * i + 1)?;
            if lane.p50_days > lane.p90_days || lane.p90_days > TRANSIT_DAYS_MAX {
                return Err(out_of_bounds("p90_days", "p50_days <= p90_days <= 60"));
            }
        }
        if self.logistics.carriers.len() >= CARRIERS_MAX {
            return Err(CoreError::Overflow("carriers"));
        }
        let lanes = new
            .lanes
            .iter()
            .map(|l| Lane {
                from: self.logistics.intern_region(&l.from),
                to: self.logistics.intern_region(&l.to),
                p50_days: l.p50_days,
                p90_days: l.p90_days,
            })
            .collect();
        self.logistics.carriers.push(Carrier { name: new.name.clone(), lanes });
        Ok(Outcome::CarrierCreated { carrier: CarrierId::from_index(self.logistics.carriers.len() - 1) })
    }

    pub(crate) fn set_address(
        &mut self,
        actor: Actor,
        buyer: BuyerId,
        region: &str,
        text: &str,
    ) -> Result<Outcome, CoreError> {
        self.require_buyer(actor, buyer, "set another buyer's address")?;
        check_region(region)?;
        // Only merchants' warehouses and the operator's carriers add regions: a buyer's key
        // names one of theirs, and cannot fill the region table.
        let region = self.logistics.region(region).ok_or_else(|| CoreError::NotFound("region"))?;
        Self::check_name("address", text, ADDRESS_BYTES_MAX)?;
        self.logistics.addresses.insert(buyer, text.to_owned());
        self.buyers[buyer.index().unwrap_or_default()].region = Some(region);
        Ok(Outcome::AddressSet { buyer })
    }

    pub(crate) fn set_sku_warehouse(
        &mut self,
        actor: Actor,
        sku_id: SkuId,
        warehouse: WarehouseId,
    ) -> Result<Outcome, CoreError> {
        let sku = self.sku(sku_id)?;
        if !actor.may_manage_merchant(sku.merchant()) {
            return Err(CoreError::Forbidden("move another merchant's SKU"));
        }
        let slot = self.warehouse_slot(sku.merchant(), warehouse)?;
        self.skus[sku_id.index().unwrap_or_default()].warehouse_slot = slot;
        Ok(Outcome::SkuWarehouseSet { sku: sku_id, warehouse })
    }

    /// A warehouse's 1-based position among its merchant's, refused if it is another's.
    pub(crate) fn warehouse_slot(
        &self,
        merchant: MerchantId,
        warehouse: WarehouseId,
    ) -> Result<u8, CoreError> {
        let w = self.warehouse(warehouse)?;
        if w.merchant != merchant {
            return Err(out_of_bounds("warehouse", "belongs to another merchant"));
        }
        let position = self.merchant(merchant)?.warehouses.iter().position(|&x| x == warehouse);
        // At most WAREHOUSES_PER_MERCHANT_MAX (255), so the slot fits.
        Ok(position.map_or(0, |p| (p + 1) as u8))
    }

    pub(crate) fn set_shipping_fee(
        &mut self,
        actor: Actor,
        merchant: MerchantId,
        currency: Currency,
        fee: Amount,
    ) -> Result<Outcome, CoreError> {
        self.merchant(merchant)?;
        if !actor.may_manage_merchant(merchant) {
            return Err(CoreError::Forbidden("set another merchant's shipping fee"));
        }
        if fee.0 > SHIPPING_FEE_MAX {
            return Err(out_of_bounds("fee", "at most 10^9 minor units"));
        }
        if fee == Amount::ZERO {
            self.logistics.shipping_fees.remove(&(merchant, currency));
        } else {
            self.logistics.shipping_fees.insert((merchant, currency), fee);
        }
        Ok(Outcome::ShippingFeeSet { merchant, fee })
    }

    // ---- promises ----

    /// The fastest carrier on a lane: the lowest p90, then the lowest p50, then the oldest.
    fn best_lane(&self, from: RegionId, to: RegionId) -> Option<(CarrierId, Lane)> {
        let mut best: Option<(CarrierId, Lane)> = None;
        for (i, carrier) in self.logistics.carriers.iter().enumerate() {
            for lane in carrier.lanes.iter().filter(|l| l.from == from && l.to == to) {
                if best.is_none_or(|(_, b)| (lane.p90_days, lane.p50_days) < (b.p90_days, b.p50_days)) {
                    best = Some((CarrierId::from_index(i), *lane));
                }
            }
        }
        best
    }

    /// When a parcel from `warehouse` to `destination` paid at `now` would leave and arrive:
    /// the first working day from the cut-off with room, plus the lane's transit days.
    pub fn estimate(
        &self,
        warehouse: WarehouseId,
        destination: Option<RegionId>,
        now: Millis,
    ) -> Result<Estimate, CoreError> {
        let w = self.warehouse(warehouse)?;
        let (today, minute) = calendar::local_day_and_minute(now.0, w.utc_offset_minutes);
        let no_room = CoreError::NoDispatchCapacity { warehouse };
        let earliest =
            calendar::earliest_dispatch(&w.calendar(), today, minute, w.cutoff_minute, BOOKING_HORIZON_DAYS)
                .ok_or(no_room.clone())?;
        let horizon = BOOKING_HORIZON_DAYS.saturating_sub(earliest - today);
        let day = first_slot(w, earliest, horizon).ok_or(no_room)?;
        let delivery = destination
            .and_then(|to| self.best_lane(w.region, to))
            .map(|(carrier, lane)| (carrier, day + u32::from(lane.p50_days), day + u32::from(lane.p90_days)));
        Ok(Estimate { warehouse, dispatch_day: day, delivery })
    }

    /// The shipments paying `order` creates, one per warehouse among its lines, each with its
    /// booking; refused (and so is the payment) if a warehouse has no room within the horizon.
    pub(crate) fn plan_shipments(&self, order: OrderId, now: Millis) -> Result<Plan, CoreError> {
        let o = self.order(order)?;
        self.plan_parcels(o.merchant(), o.buyer(), &o.lines, now)
    }

    /// The parcels of a merchant's lines to a buyer, as they would be booked at `now`.
    pub(crate) fn plan_parcels(
        &self,
        merchant: MerchantId,
        buyer: BuyerId,
        lines: &[OrderLine],
        now: Millis,
    ) -> Result<Plan, CoreError> {
        let mut parcels = SmallVec::new();
        // A merchant without warehouses books nothing: one parcel of every line, unscheduled,
        // without a destination (nothing is promised), so the flash sale's hot path looks up
        // no SKU and no buyer for it, and stores it implicitly ([`table`](super::table)).
        if self.merchant(merchant)?.warehouses.is_empty() {
            return Ok(Plan { parcels, destination: RegionId::NONE });
        }
        let address = self.buyer(buyer)?.region;
        let destination = address.unwrap_or(RegionId::NONE);
        for (position, line) in lines.iter().enumerate() {
            let warehouse = self.sku(line.sku).ok().and_then(|s| self.sku_warehouse(s));
            let value = warehouse.map_or(0, |w| w.0 as u32);
            if let Some(p) = parcels.iter_mut().find(|p: &&mut Planned| p.warehouse == value) {
                p.lines_mask |= 1 << position;
                continue;
            }
            let estimate = warehouse.map(|w| self.estimate(w, address, now)).transpose()?;
            parcels.push(Planned { warehouse: value, lines_mask: 1 << position, estimate });
        }
        Ok(Plan { parcels, destination })
    }

    /// Creates the planned shipments and books their days (after the payment moved the money):
    /// without a plan (a merchant without warehouses), one implicit parcel of every line.
    pub(crate) fn create_shipments(&mut self, order: OrderId, plan: &Plan, now: Millis) {
        let destination = plan.destination;
        let l = &mut self.logistics;
        l.shipments.start_order(order);
        if plan.parcels.is_empty() {
            l.shipments.push_implicit(order, seconds(now));
            return;
        }
        for planned in &plan.parcels {
            let id = l.shipments.len() as u64 + 1;
            let (carrier, dispatch_day, promised_from, promised_by) = match planned.estimate {
                None => (0, 0, 0, 0),
                Some(e) => {
                    let (carrier, from, by) = e.delivery.map_or((0, 0, 0), |(c, f, b)| (c.0 as u16, f, b));
                    (carrier, e.dispatch_day, from, by)
                }
            };
            l.shipments.push_record(Shipment {
                order: U40::new(order.0),
                last_event: U40::default(),
                warehouse: planned.warehouse,
                carrier,
                destination,
                lifecycle: Lifecycle::AwaitingDispatch,
                tracking: None,
                events: 0,
                lines_mask: planned.lines_mask,
                dispatch_day,
                promised_from,
                promised_by,
                created_at_s: seconds(now),
                dispatched_at_s: 0,
                delivered_at_s: 0,
                tracking_at_s: 0,
            });
            if planned.estimate.is_some() {
                l.warehouses[planned.warehouse as usize - 1].awaiting += 1;
                l.book(planned.warehouse, dispatch_day, id);
                l.expect_delivery(planned.warehouse, (carrier != 0).then_some(promised_by), id);
            }
        }
    }

    // ---- commands: dispatch and tracking ----

    fn shipment_for_merchant(
        &self,
        actor: Actor,
        id: ShipmentId,
        what: &'static str,
    ) -> Result<Shipment, CoreError> {
        let s = self.shipment(id)?;
        let merchant = self.order(s.order())?.merchant();
        if !actor.may_manage_merchant(merchant) {
            return Err(CoreError::Forbidden(what));
        }
        Ok(s)
    }

    pub(crate) fn dispatch_shipment(
        &mut self,
        actor: Actor,
        now: Millis,
        id: ShipmentId,
    ) -> Result<Outcome, CoreError> {
        let s = self.shipment_for_merchant(actor, id, "dispatch another merchant's shipment")?;
        if s.lifecycle != Lifecycle::AwaitingDispatch {
            return Err(CoreError::ShipmentState { status: s.lifecycle.name() });
        }
        self.mark_dispatched(id, seconds(now));
        Ok(Outcome::ShipmentDispatched { shipment: id })
    }

    /// Moves an awaiting shipment to dispatched at `at_s`, counts it on time or late, and moves
    /// its order to shipped once every parcel has left.
    fn mark_dispatched(&mut self, id: ShipmentId, at_s: u32) {
        let Some(s) = id.index().and_then(|i| self.shipment_mut(i)) else { return };
        s.lifecycle = Lifecycle::Dispatched;
        s.dispatched_at_s = at_s;
        let (warehouse, booked_day, order) = (s.warehouse, s.dispatch_day, s.order());
        let l = &mut self.logistics;
        if let Some(w) = (warehouse as usize).checked_sub(1).and_then(|i| l.warehouses.get_mut(i)) {
            let (day, _) = calendar::local_day_and_minute(u64::from(at_s) * 1_000, w.utc_offset_minutes);
            w.days.entry(day).or_default().dispatched += 1;
            w.awaiting = w.awaiting.saturating_sub(1);
            if day <= booked_day {
                l.counters.dispatched_on_time += 1;
            } else {
                l.counters.dispatched_late += 1;
            }
        }
        self.follow_shipments(order);
    }

    /// The order's status from its parcels: shipped when every parcel not cancelled has left,
    /// delivered when every one has arrived.
    fn follow_shipments(&mut self, order: OrderId) {
        let (mut all_left, mut all_arrived, mut any) = (true, true, false);
        for (_, s) in self.order_shipments(order) {
            match s.lifecycle {
                Lifecycle::Cancelled => continue,
                Lifecycle::AwaitingDispatch => all_left = false,
                Lifecycle::Dispatched => {}
                Lifecycle::Delivered => {
                    any = true;
                    continue;
                }
            }
            any = true;
            all_arrived = false;
        }
        let Some(o) = order.index().and_then(|i| self.orders.get_mut(i)) else { return };
        if !any || !matches!(o.status, OrderStatus::Paid | OrderStatus::Shipped) {
            return;
        }
        if all_arrived {
            o.status = OrderStatus::Delivered;
        } else if all_left {
            o.status = OrderStatus::Shipped;
        }
    }

    pub(crate) fn cancel_shipment(&mut self, actor: Actor, id: ShipmentId) -> Result<Outcome, CoreError> {
        let s = self.shipment_for_merchant(actor, id, "cancel another merchant's shipment")?;
        if s.lifecycle != Lifecycle::AwaitingDispatch {
            return Err(CoreError::ShipmentState { status: s.lifecycle.name() });
        }
        self.drop_shipment(id);
        Ok(Outcome::ShipmentCancelled { shipment: id })
    }

    /// Cancels an awaiting shipment and frees its booked slot.
    pub(crate) fn drop_shipment(&mut self, id: ShipmentId) {
        let Some(index) = id.index().filter(|&i| {
            self.logistics.shipments.get(i, |_| 0).is_some_and(|s| s.lifecycle == Lifecycle::AwaitingDispatch)
        }) else {
            return;
        };
        let Some(s) = self.shipment_mut(index) else { return };
        s.lifecycle = Lifecycle::Cancelled;
        let (warehouse, day, order) = (s.warehouse, s.dispatch_day, s.order());
        let l = &mut self.logistics;
        if let Some(w) = (warehouse as usize).checked_sub(1).and_then(|i| l.warehouses.get_mut(i)) {
            w.awaiting = w.awaiting.saturating_sub(1);
            if let Some(book) = w.days.get_mut(&day) {
                book.booked = book.booked.saturating_sub(1);
            }
        }
        self.follow_shipments(order);
    }

    pub(crate) fn record_tracking(
        &mut self,
        actor: Actor,
        now: Millis,
        events: &[NewTrackingEvent],
    ) -> Result<Outcome, CoreError> {
        if events.is_empty() || events.len() > TRACKING_EVENTS_PER_COMMAND_MAX {
            return Err(out_of_bounds("events", "1 to 5000 per request"));
        }
        // Check every event before the first is recorded: a refused batch changes nothing.
        let mut added: BTreeMap<u64, u16> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            let bad = |error: CoreError| CoreError::InBatch { index: i as u32, error: Box::new(error) };
            let s = self.shipment(e.shipment).map_err(bad)?;
            let merchant = self.order(s.order()).map_err(bad)?.merchant();
            let allowed = match actor {
                Actor::Admin | Actor::Service => true,
                Actor::Merchant(m) => m == merchant,
                Actor::Carrier(c) => s.carrier() == Some(c),
                Actor::Buyer(_) | Actor::Viewer => false,
            };
            if !allowed {
                return Err(bad(CoreError::Forbidden("report tracking of a shipment it does not carry")));
            }
            if s.lifecycle == Lifecycle::Cancelled {
                return Err(bad(CoreError::ShipmentState { status: s.lifecycle.name() }));
            }
            if e.occurred_at.0 == 0 || e.occurred_at.0 > now.0.saturating_add(TRACKING_CLOCK_SKEW_MS) {
                return Err(bad(out_of_bounds("occurred_at", "after 1970 and not in the future")));
            }
            let count = added.entry(e.shipment.0).or_insert(0);
            *count += 1;
            if usize::from(s.events) + usize::from(*count) > HISTORY_PER_SHIPMENT_MAX {
                return Err(bad(CoreError::TrackingHistoryFull { shipment: e.shipment }));
            }
        }
        let (mut recorded, mut duplicates) = (0u32, 0u32);
        for e in events {
            if self.record_one(e, now) {
                recorded += 1;
            } else {
                duplicates += 1;
            }
        }
        Ok(Outcome::TrackingRecorded { recorded, duplicates })
    }

    /// Records one checked event; `false` if the shipment already has an event with its key.
    fn record_one(&mut self, e: &NewTrackingEvent, now: Millis) -> bool {
        let key = key48(e.key);
        let Some(s) = e.shipment.index().and_then(|i| self.shipment_mut(i)) else { return false };
        let mut at = s.last_event.get();
        let index = e.shipment.index().unwrap_or_default();
        let l = &mut self.logistics;
        while let Some(record) = at.checked_sub(1).and_then(|i| l.history.get(i as usize)) {
            if record.kind < REPROMISED && record.key == key {
                return false;
            }
            at = record.prev.get();
        }
        let occurred_s = seconds(e.occurred_at);
        l.append_history(index, e.status as u8, key, occurred_s);
        let Some(s) = l.shipments.written_mut(index) else { return false };
        let moves = s.tracking.is_none_or(|current| {
            current.rank() < TrackingStatus::FINAL_RANK
                && e.status.rank() >= current.rank()
                && occurred_s >= s.tracking_at_s
        });
        if moves {
            s.tracking = Some(e.status);
            s.tracking_at_s = occurred_s;
        }
        let awaiting = s.lifecycle == Lifecycle::AwaitingDispatch;
        if moves && awaiting && e.status.rank() >= TrackingStatus::InTransit.rank() {
            self.mark_dispatched(e.shipment, occurred_s);
        }
        if moves && e.status == TrackingStatus::Delivered {
            self.mark_delivered(e.shipment, occurred_s);
        }
        let kind = match e.status {
            TrackingStatus::Exception => Some(TicketKind::Exception),
            TrackingStatus::AttemptFail => Some(TicketKind::AttemptFail),
            TrackingStatus::ReturnToSender => Some(TicketKind::ReturnToSender),
            _ => None,
        };
        if let Some(kind) = kind {
            self.open_breach_ticket(e.shipment, kind, now);
        }
        true
    }

    fn mark_delivered(&mut self, id: ShipmentId, at_s: u32) {
        let Some(s) = id.index().and_then(|i| self.shipment_mut(i)) else { return };
        if s.lifecycle == Lifecycle::Delivered {
            return;
        }
        s.lifecycle = Lifecycle::Delivered;
        s.delivered_at_s = at_s;
        let (warehouse, promised_by, order, carrier) = (s.warehouse, s.promised_by, s.order(), s.carrier);
        let l = &mut self.logistics;
        l.counters.delivered += 1;
        if carrier != 0 {
            let offset = (warehouse as usize)
                .checked_sub(1)
                .and_then(|i| l.warehouses.get(i))
                .map_or(0, |w| w.utc_offset_minutes);
            let (day, _) = calendar::local_day_and_minute(u64::from(at_s) * 1_000, offset);
            if day <= promised_by {
                l.counters.delivered_on_time += 1;
            } else {
                l.counters.delivered_late += 1;
            }
        }
        self.follow_shipments(order);
    }

    // ---- time-driven work ----

    /// When the next day's end with work is due.
    pub(crate) fn next_logistics_due(&self) -> Option<Millis> {
        let dispatch = self.logistics.dispatch_due.keys().next().map(|k| k.0);
        dispatch.into_iter().chain(self.logistics.delivery_due.keys().next().copied()).min()
    }

    /// The work of the days that ended by `now`, at most `budget` shipments: parcels still
    /// awaiting dispatch are booked again on the first day with room (a re-promise, recorded
    /// with its reason, and a ticket); parcels not delivered by their promised day get a
    /// ticket. Returns (re-promised, tickets opened).
    pub(crate) fn logistics_tick(&mut self, now: Millis, mut budget: usize) -> (u32, u32) {
        let tickets_before = self.logistics.tickets.len();
        let mut repromised = 0u32;
        while let Some(((_, warehouse, day), due)) =
            take_due(&mut self.logistics.dispatch_due, now, |k| k.0, budget)
        {
            budget -= due.len();
            for id in due {
                let id = ShipmentId(id.get());
                let Ok(s) = self.shipment(id) else { continue };
                if s.lifecycle == Lifecycle::AwaitingDispatch
                    && s.dispatch_day == day
                    && s.warehouse == warehouse
                {
                    self.roll_over(id, now);
                    self.last_tick.repromised.push(id);
                    repromised += 1;
                }
            }
        }
        while let Some((at, due)) = take_due(&mut self.logistics.delivery_due, now, |&k| k, budget) {
            budget -= due.len();
            for id in due {
                let id = ShipmentId(id.get());
                let Ok(s) = self.shipment(id) else { continue };
                let open = matches!(s.lifecycle, Lifecycle::AwaitingDispatch | Lifecycle::Dispatched);
                let still_due = self.logistics.delivery_end(s.warehouse, s.promise()) == Some(at);
                if open && still_due {
                    self.open_breach_ticket(id, TicketKind::MissedDelivery, now);
                }
            }
        }
        (repromised, (self.logistics.tickets.len() - tickets_before) as u32)
    }

    /// Books an undispatched parcel again on the first day with room from its warehouse's next
    /// dispatch day, moves its promise by as many days, and records why.
    fn roll_over(&mut self, id: ShipmentId, now: Millis) {
        let Some(index) = id.index() else { return };
        let Some(s) = self.logistics.shipments.written_mut(index) else { return };
        let (warehouse, old_day) = (s.warehouse, s.dispatch_day);
        let w = &self.logistics.warehouses[(warehouse as usize).saturating_sub(1)];
        let (today, _) = calendar::local_day_and_minute(now.0, w.utc_offset_minutes);
        let from = today.max(old_day + 1);
        // No horizon here: the parcel is paid for and must leave, and past the last booked day
        // the first working day has room, so the search ends within the days already booked.
        let Some(new_day) = first_slot(w, from, u32::MAX - from) else { return };
        let l = &mut self.logistics;
        if let Some(book) = l.warehouses[(warehouse as usize).saturating_sub(1)].days.get_mut(&old_day) {
            book.booked = book.booked.saturating_sub(1);
            book.rolled_over += 1;
        }
        let Some(s) = l.shipments.written_mut(index) else { return };
        let shift = new_day - old_day;
        s.dispatch_day = new_day;
        if s.carrier != 0 {
            s.promised_from += shift;
            s.promised_by += shift;
        }
        let promise = s.promise();
        let kind = REPROMISED + RepromiseReason::MissedDispatch as u8;
        l.append_history(index, kind, key48(u64::from(new_day)), seconds(now));
        l.counters.repromised += 1;
        l.counters.repromised_days += u64::from(shift);
        l.book(warehouse, new_day, id.0);
        l.expect_delivery(warehouse, promise, id.0);
        self.open_breach_ticket(id, TicketKind::MissedDispatch, now);
    }
}

impl Logistics {
    /// Books one parcel on a warehouse day (the caller found room) and schedules its check.
    fn book(&mut self, warehouse: u32, day: u32, shipment: u64) {
        let Some(w) = (warehouse as usize).checked_sub(1).and_then(|i| self.warehouses.get_mut(i)) else {
            return;
        };
        let end = Millis(calendar::day_end_ms(day, w.utc_offset_minutes));
        w.days.entry(day).or_default().booked += 1;
        self.dispatch_due.entry((end, warehouse, day)).or_default().push(U40::new(shipment));
    }

    /// When a promised delivery day ends, in the warehouse's local time.
    fn delivery_end(&self, warehouse: u32, promised_by: Option<u32>) -> Option<Millis> {
        let w = (warehouse as usize).checked_sub(1).and_then(|i| self.warehouses.get(i))?;
        Some(Millis(calendar::day_end_ms(promised_by?, w.utc_offset_minutes)))
    }

    fn expect_delivery(&mut self, warehouse: u32, promised_by: Option<u32>, shipment: u64) {
        if let Some(end) = self.delivery_end(warehouse, promised_by) {
            self.delivery_due.entry(end).or_default().push(U40::new(shipment));
        }
    }
}
