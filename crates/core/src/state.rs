//! The state machine: one value, changed only by [`State::apply`], one command at a time.
//!
//! Every command is validated completely before the first mutation, so a refused command changes
//! nothing (invariant 6), and a command either happens whole or not at all.

use crate::catalogue::Sku;
use crate::chunked::Chunked;
use crate::command::*;
use crate::error::{out_of_bounds, CoreError};
use crate::idempotency::{IdempotencyStore, OrderFacts, Written};
use crate::keys::ApiKey;
use crate::ledger::{Ledger, Leg, Owner, TransferKind};
use crate::limits::*;
use crate::logistics::Logistics;
use crate::orders::{Order, OrderDiscount, OrderStatus};
use crate::promotions::Campaign;
use crate::promotions::{Coupon, RedPacket};
use crate::reservations::Reservations;
use crate::texts::TextArena;
use crate::types::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub name: String,
    pub commission_bps: u16,
    /// Its warehouses, oldest first; a SKU names one by its position here.
    pub warehouses: Vec<WarehouseId>,
    /// Its time zone's offset from UTC, in minutes (0, UTC, until it sets one).
    pub utc_offset_minutes: i16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buyer {
    pub name: String,
    /// The delivery address's region, here beside the name (one lookup on the payment's path);
    /// the address itself is in the logistics tables. `None` until one is set.
    pub region: Option<crate::logistics::RegionId>,
}

/// The whole state of the engine. Tables indexed by dense ids are `Vec`s: fast, compact and
/// iterated in a fixed order, which makes the digest deterministic.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The time of the last applied command (commands never move it backwards).
    pub(crate) clock: Millis,
    /// How many commands changed state (the journal's record count).
    pub(crate) applied: u64,
    pub(crate) api_keys: Vec<ApiKey>,
    pub(crate) merchants: Vec<Merchant>,
    pub(crate) buyers: Vec<Buyer>,
    /// In chunks, like the orders: a catalogue of millions never doubles (and copies) on the
    /// sequencer.
    pub(crate) skus: Chunked<Sku>,
    /// The SKUs' titles and descriptions.
    pub(crate) sku_texts: TextArena,
    pub(crate) campaigns: Vec<Campaign>,
    /// The sale the operator features on the big screen ([`Command::FeatureCampaign`]).
    pub(crate) featured_campaign: Option<CampaignId>,
    pub(crate) orders: Chunked<Order>,
    /// The coupons applied to an order, for the orders that have any (a minority): `total` is
    /// the lines' sum less these. Beside the orders rather than in each, so an order without
    /// coupons pays nothing for them.
    pub(crate) order_discounts: BTreeMap<OrderId, Vec<OrderDiscount>>,
    pub(crate) ledger: Ledger,
    /// Pending orders by expiry.
    pub(crate) reservations: Reservations,
    /// Encoded apart from the rest, after it (see [`State::write_to`]).
    #[serde(skip)]
    pub(crate) idempotency: IdempotencyStore,
    pub(crate) coupons: Vec<Coupon>,
    pub(crate) red_packets: Vec<RedPacket>,
    /// Open red packets by end time.
    pub(crate) red_packet_ends: BTreeSet<(Millis, RedPacketId)>,
    /// A/B experiments (definitions only: assignment is a hash, outcomes are analytics').
    pub(crate) experiments: Vec<NewExperiment>,
    /// Warehouses, carriers, shipments, returns and tickets.
    pub(crate) logistics: Logistics,
    /// Buyers' carts.
    pub(crate) carts: crate::checkout::Carts,
    /// Products (SKUs grouped as variants) and the category tree.
    pub(crate) products: crate::products::Products,
    /// What each checkout made, for the audit.
    pub(crate) checkouts: Vec<crate::checkout::CheckoutRecord>,
    /// The notes stores keep on their orders, for the few orders that have any.
    pub(crate) order_notes: BTreeMap<OrderId, Vec<crate::orders::OrderNote>>,
    /// What the last `Tick` did, by id, for the event feed (not state: not encoded, and
    /// overwritten by the next tick).
    #[serde(skip)]
    pub(crate) last_tick: TickNotice,
    /// The lines (positions and units) the last refund gave back, for the event feed: a
    /// refund's outcome has only its amount. Not state, like `last_tick`.
    #[serde(skip)]
    pub(crate) last_refund: Vec<(u8, u32)>,
}

/// The ids a `Tick` touched: its outcome has only their counts (outcomes are remembered per
/// idempotency key, so every byte counts), and the feed names each. Bounded like the tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickNotice {
    pub expired: Vec<OrderId>,
    pub closed: Vec<RedPacketId>,
    pub repromised: Vec<ShipmentId>,
}

/// Whether the command changed the state (and so must be journaled) or only answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The command changed state; the outcome is new.
    Changed(Outcome),
    /// The idempotency key was seen before with the same command: the first outcome, unchanged.
    Repeated(Outcome),
}

impl Applied {
    pub fn outcome(&self) -> &Outcome {
        match self {
            Applied::Changed(o) | Applied::Repeated(o) => o,
        }
    }

    pub fn changed(&self) -> bool {
        matches!(self, Applied::Changed(_))
    }
}

impl Written for State {
    fn order_facts(&self, order: OrderId) -> Option<OrderFacts> {
        let o = self.order(order).ok()?;
        Some(OrderFacts {
            total: o.total,
            expires_at: o.expires_at(),
            commission: o.commission,
            restocked: o.restocked(),
        })
    }

    fn claim(&self, transfer: TransferId) -> Option<(RedPacketId, Amount)> {
        let t = self.ledger.transfer(transfer)?;
        let Owner::Escrow(packet) = t.debit else { return None };
        Some((packet, t.amount))
    }
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// The bytes the state's tables hold, table by table (see [`crate::footprint`]).
    pub fn footprint(&self) -> crate::Footprint {
        use crate::footprint::{map_of_lists, vec};
        let mut footprint = crate::Footprint::default();
        footprint.add("orders", self.orders.bytes() + map_of_lists(&self.order_discounts));
        footprint.add("reservations", self.reservations.bytes());
        footprint.add("carts", self.carts.bytes());
        footprint.add("products and categories", self.products.bytes());
        footprint.add(
            "checkouts",
            (self.checkouts.capacity() * size_of::<crate::checkout::CheckoutRecord>()) as u64,
        );
        self.ledger.footprint(&mut footprint);
        self.idempotency.footprint(&mut footprint);
        footprint.add("skus", self.skus.bytes() + self.sku_texts.bytes());
        footprint.add("buyers and merchants", vec(&self.buyers) + vec(&self.merchants) + vec(&self.api_keys));
        footprint.add(
            "promotions",
            vec(&self.campaigns)
                + vec(&self.coupons)
                + vec(&self.red_packets)
                + crate::footprint::set(&self.red_packet_ends)
                + vec(&self.experiments),
        );
        self.logistics.footprint(&mut footprint);
        footprint
    }

    /// The time of the last command that changed state.
    pub fn clock(&self) -> Millis {
        self.clock
    }

    /// How many commands have changed state since the beginning.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// A hint that this command comes soon: starts loading where [`State::apply`] will look up
    /// its idempotency key and, for a payment, the buyer's wallet, record and first SKU (the
    /// cache misses of the flash workload's hot path). Changes nothing.
    pub fn prefetch(&self, idempotency: Option<&Idempotency>, command: &Command) {
        if let Some(idempotency) = idempotency {
            self.idempotency.prefetch(idempotency.key);
        }
        if let Command::PayOrder { order } = command {
            if let Ok(order) = self.order(*order) {
                self.ledger.prefetch(Owner::Buyer(order.buyer()));
                // What its parcel is planned from, if its merchant ships from warehouses: the
                // buyer's region, the SKU's warehouse.
                if self.merchant(order.merchant()).is_ok_and(|m| !m.warehouses.is_empty()) {
                    if let Ok(buyer) = self.buyer(order.buyer()) {
                        crate::hint::prefetch(buyer);
                    }
                    if let Some(sku) = order.lines.first().and_then(|l| self.sku(l.sku).ok()) {
                        crate::hint::prefetch(sku);
                    }
                }
            }
        }
    }

    /// Applies one command. On `Err`, nothing changed. On `Ok(Applied::Changed)`, the envelope
    /// must be journaled before the outcome is acknowledged.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<Applied, CoreError> {
        let now = envelope.at.max(self.clock);
        if let Some(idem) = envelope.idempotency {
            if let Some(seen) = self.idempotency.get(idem.key) {
                if !seen.same_command(idem.fingerprint) {
                    return Err(CoreError::IdempotencyKeyReused);
                }
                // Only a damaged state could not say it (the audit checks every one).
                let outcome =
                    seen.outcome(self).ok_or_else(|| CoreError::NotFound("the remembered outcome"))?;
                return Ok(Applied::Repeated(outcome));
            }
        }
        let outcome = self.execute(envelope.actor, now, &envelope.command)?;
        self.clock = now;
        self.applied += 1;
        if let Some(idem) = envelope.idempotency {
            self.idempotency.remember(idem, now, &outcome);
        }
        self.idempotency.forget_old(now);
        Ok(Applied::Changed(outcome))
    }

    /// The flash path's two commands here; every other in [`State::execute_other`], out of line,
    /// so that a command added there cannot change the code an order runs.
    fn execute(&mut self, actor: Actor, now: Millis, command: &Command) -> Result<Outcome, CoreError> {
        match command {
            Command::PlaceOrder { buyer, lines, coupons, reservation_ttl_ms } => {
                self.place_order(actor, now, *buyer, lines, coupons, *reservation_ttl_ms)
            }
            Command::PayOrder { order } => self.pay_order(actor, now, *order),
            _ => self.execute_other(actor, now, command),
        }
    }

    #[inline(never)]
    fn execute_other(&mut self, actor: Actor, now: Millis, command: &Command) -> Result<Outcome, CoreError> {
        match command {
            // Taken by `execute`; here for the match to be whole.
            Command::PlaceOrder { buyer, lines, coupons, reservation_ttl_ms } => {
                self.place_order(actor, now, *buyer, lines, coupons, *reservation_ttl_ms)
            }
            Command::PayOrder { order } => self.pay_order(actor, now, *order),
            Command::CreateApiKey { acts_as, secret_sha256 } => {
                self.create_api_key(actor, *acts_as, *secret_sha256, "")
            }
            Command::CreateLabelledApiKey { acts_as, secret_sha256, label } => {
                self.create_api_key(actor, *acts_as, *secret_sha256, label)
            }
            Command::RevokeApiKey { key } => self.revoke_api_key(actor, *key),
            Command::CreateMerchant { name, commission_bps } => {
                self.create_merchant(actor, name, *commission_bps)
            }
            Command::CreateBuyer { name } => self.create_buyer(actor, name),
            Command::NoteOrder { order, body } => self.note_order(actor, now, *order, body),
            Command::SetStoreZone { merchant, utc_offset_minutes } => {
                self.set_store_zone(actor, *merchant, *utc_offset_minutes)
            }
            Command::CreateSku(new) => self.create_sku(actor, new),
            Command::Restock { sku, quantity } => self.restock(actor, *sku, *quantity),
            Command::TopUp { buyer, amount, currency } => self.top_up(actor, now, *buyer, *amount, *currency),
            Command::CreateCampaign(new) => self.create_campaign(actor, now, "", new),
            Command::CreateNamedCampaign(named) => {
                self.create_campaign(actor, now, &named.name, &named.terms)
            }
            Command::UpdateCampaign(edit) => self.update_campaign(actor, now, edit),
            Command::EndCampaign { campaign } => self.end_campaign(actor, now, *campaign),
            Command::FeatureCampaign { campaign } => self.feature_campaign(actor, *campaign),
            Command::ReplyTicket { ticket, body } => self.reply_ticket(actor, now, *ticket, body),
            Command::CancelOrder { order } => self.cancel_order(actor, *order),
            Command::RefundOrder { order, restock } => self.refund_order(actor, now, *order, *restock),
            Command::Tick => self.tick(actor, now),
            Command::CreateCoupon(new) => self.create_coupon(actor, new),
            Command::DisableCoupon { coupon } => self.disable_coupon(actor, *coupon),
            Command::CreateRedPacket(new) => self.create_red_packet(actor, now, new),
            Command::CloseRedPacket { packet } => self.close_red_packet_by(actor, now, *packet),
            Command::ClaimRedPacket { packet, buyer } => self.claim_red_packet(actor, now, *packet, *buyer),
            Command::CreateExperiment(new) => self.create_experiment(actor, new),
            Command::CreateWarehouse(new) => self.create_warehouse(actor, new),
            Command::CreateCarrier(new) => self.create_carrier(actor, new),
            Command::SetAddress { buyer, region, text } => self.set_address(actor, *buyer, region, text),
            Command::SetSkuWarehouse { sku, warehouse } => self.set_sku_warehouse(actor, *sku, *warehouse),
            Command::SetShippingFee { merchant, currency, fee } => {
                self.set_shipping_fee(actor, *merchant, *currency, *fee)
            }
            Command::DispatchShipment { shipment } => self.dispatch_shipment(actor, now, *shipment),
            Command::CancelShipment { shipment } => self.cancel_shipment(actor, *shipment),
            Command::RecordTracking { events } => self.record_tracking(actor, now, events),
            Command::RefundLines { order, lines, shipping, restock } => {
                self.refund_lines(actor, now, *order, lines, *shipping, *restock)
            }
            Command::RequestReturn { order, lines, reason } => {
                self.request_return(actor, now, *order, lines, *reason)
            }
            Command::DecideReturn { ret, approve } => self.decide_return(actor, now, *ret, *approve),
            Command::ReceiveReturn { ret, restock } => self.receive_return(actor, now, *ret, *restock),
            Command::RefundReturn { ret, shipping } => self.refund_return(actor, now, *ret, *shipping),
            Command::OpenTicket { order, subject } => self.open_ticket(actor, now, *order, subject),
            Command::UpdateTicket { ticket, status } => self.update_ticket(actor, now, *ticket, *status),
            Command::UpdateSku(edit) => self.update_sku(actor, now, edit),
            Command::SetCartLine { buyer, sku, quantity } => {
                self.set_cart_line(actor, now, *buyer, *sku, *quantity)
            }
            Command::Checkout { buyer, lines, coupons } => self.checkout(actor, now, *buyer, lines, coupons),
            Command::CreateCategory { name, parent } => self.create_category(actor, name, *parent),
            Command::MoveCategory { category, parent } => self.move_category(actor, *category, *parent),
            Command::CreateProduct(new) => self.create_product(actor, new),
            Command::AddVariant { product, sku, options } => self.add_variant(actor, *product, *sku, options),
            Command::MoveProduct { product, category } => self.move_product(actor, *product, *category),
        }
    }

    // ---- access and validation helpers ----

    pub(crate) fn require_admin(actor: Actor, what: &'static str) -> Result<(), CoreError> {
        match actor {
            Actor::Admin => Ok(()),
            _ => Err(CoreError::Forbidden(what)),
        }
    }

    pub(crate) fn check_name(what: &'static str, name: &str, max: usize) -> Result<(), CoreError> {
        if name.trim().is_empty() {
            return Err(out_of_bounds(what, "must not be empty"));
        }
        if name.len() > max {
            return Err(out_of_bounds(what, "too long"));
        }
        Ok(())
    }

    pub(crate) fn check_positive_amount(amount: Amount) -> Result<(), CoreError> {
        if amount.0 == 0 {
            return Err(out_of_bounds("amount", "must be positive"));
        }
        if amount.0 > AMOUNT_MAX {
            return Err(CoreError::AmountTooLarge);
        }
        Ok(())
    }

    /// The buyer exists and the actor may act for it.
    pub(crate) fn require_buyer(
        &self,
        actor: Actor,
        buyer: BuyerId,
        what: &'static str,
    ) -> Result<(), CoreError> {
        self.buyer(buyer)?;
        if !actor.may_act_for_buyer(buyer) {
            return Err(CoreError::Forbidden(what));
        }
        Ok(())
    }

    pub fn merchant(&self, id: MerchantId) -> Result<&Merchant, CoreError> {
        id.index().and_then(|i| self.merchants.get(i)).ok_or_else(|| CoreError::NotFound("merchant"))
    }

    pub fn buyer(&self, id: BuyerId) -> Result<&Buyer, CoreError> {
        id.index().and_then(|i| self.buyers.get(i)).ok_or_else(|| CoreError::NotFound("buyer"))
    }

    pub fn sku(&self, id: SkuId) -> Result<&Sku, CoreError> {
        id.index().and_then(|i| self.skus.get(i)).ok_or_else(|| CoreError::NotFound("sku"))
    }

    pub fn campaign(&self, id: CampaignId) -> Result<&Campaign, CoreError> {
        id.index().and_then(|i| self.campaigns.get(i)).ok_or_else(|| CoreError::NotFound("campaign"))
    }

    pub fn order(&self, id: OrderId) -> Result<&Order, CoreError> {
        id.index().and_then(|i| self.orders.get(i)).ok_or_else(|| CoreError::NotFound("order"))
    }

    /// The ids the last `Tick` expired, closed and booked again.
    pub fn last_tick(&self) -> &TickNotice {
        &self.last_tick
    }

    /// The lines of an order (positions and units) the last refund gave back.
    pub fn last_refund(&self) -> &[(u8, u32)] {
        &self.last_refund
    }

    /// The coupons applied to an order (none for most).
    pub fn order_discounts(&self, id: OrderId) -> &[OrderDiscount] {
        self.order_discounts.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Every SKU, oldest first.
    pub fn skus(&self) -> impl ExactSizeIterator<Item = (SkuId, &Sku)> + '_ {
        self.skus.iter().enumerate().map(|(i, s)| (SkuId(i as u64 + 1), s))
    }

    /// Every campaign, oldest first.
    pub fn campaigns(&self) -> impl ExactSizeIterator<Item = (CampaignId, &Campaign)> + '_ {
        self.campaigns.iter().enumerate().map(|(i, c)| (CampaignId(i as u64 + 1), c))
    }

    /// Every order, oldest first.
    pub fn merchants(&self) -> impl ExactSizeIterator<Item = (MerchantId, &Merchant)> + '_ {
        self.merchants.iter().enumerate().map(|(i, m)| (MerchantId::from_index(i), m))
    }

    pub fn orders(&self) -> impl ExactSizeIterator<Item = (OrderId, &Order)> + '_ {
        self.orders.iter().enumerate().map(|(i, o)| (OrderId(i as u64 + 1), o))
    }

    pub fn api_keys(&self) -> &[ApiKey] {
        &self.api_keys
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn idempotency(&self) -> &IdempotencyStore {
        &self.idempotency
    }

    /// When a placed order's reservation ends (orders are never removed, so it is there).
    pub(crate) fn order_expiry(&self, id: OrderId) -> Millis {
        id.index().and_then(|i| self.orders.get(i)).map_or(Millis(0), Order::expires_at)
    }

    /// The earliest pending reservation's expiry, so the shell knows when to send
    /// `Tick`.
    pub fn next_due(&self) -> Option<Millis> {
        let reservation = self.reservations.first(|id| self.order_expiry(id));
        let packet = self.red_packet_ends.first().map(|(at, _)| *at);
        [reservation, packet, self.next_logistics_due(), self.carts.next_due()].into_iter().flatten().min()
    }

    /// The campaign that governs sales of a SKU at `now`: the open one, or else the next one not
    /// yet started (a flash-sale SKU is not sold before its sale opens).
    pub fn governing_campaign(&self, sku: &Sku, now: Millis) -> Option<(CampaignId, &Campaign)> {
        sku.campaigns
            .iter()
            .filter_map(|&id| Some((id, self.campaign(id).ok()?)))
            .filter(|(_, c)| !c.is_over(now))
            .min_by_key(|(_, c)| c.starts_at)
    }

    // ---- commands ----

    fn create_merchant(
        &mut self,
        actor: Actor,
        name: &str,
        commission_bps: u16,
    ) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "create merchants")?;
        Self::check_name("name", name, NAME_BYTES_MAX)?;
        if commission_bps > COMMISSION_BPS_MAX {
            return Err(out_of_bounds("commission_bps", "at most 10000"));
        }
        if self.merchants.len() as u64 >= MERCHANTS_MAX {
            return Err(CoreError::Overflow("merchants"));
        }
        let merchant =
            Merchant { name: name.to_owned(), commission_bps, warehouses: Vec::new(), utc_offset_minutes: 0 };
        self.merchants.push(merchant);
        Ok(Outcome::MerchantCreated { merchant: MerchantId::from_index(self.merchants.len() - 1) })
    }

    fn set_store_zone(
        &mut self,
        actor: Actor,
        merchant: MerchantId,
        utc_offset_minutes: i16,
    ) -> Result<Outcome, CoreError> {
        self.merchant(merchant)?;
        if !actor.may_manage_merchant(merchant) {
            return Err(CoreError::Forbidden("set another merchant's time zone"));
        }
        if utc_offset_minutes.unsigned_abs() > UTC_OFFSET_MINUTES_MAX || utc_offset_minutes % 15 != 0 {
            return Err(out_of_bounds("utc_offset_minutes", "a multiple of 15 between -840 and 840"));
        }
        let index = merchant.index().ok_or(CoreError::NotFound("merchant"))?;
        self.merchants[index].utc_offset_minutes = utc_offset_minutes;
        Ok(Outcome::StoreZoneSet { merchant })
    }

    fn create_experiment(&mut self, actor: Actor, new: &NewExperiment) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "define experiments")?;
        Self::check_name("name", &new.name, NAME_BYTES_MAX)?;
        if !(2..=EXPERIMENT_VARIANTS_MAX).contains(&new.variants.len()) {
            return Err(out_of_bounds("variants", "between 2 and 8"));
        }
        for variant in &new.variants {
            Self::check_name("variant name", &variant.name, NAME_BYTES_MAX)?;
            if !(1..=EXPERIMENT_WEIGHT_MAX).contains(&variant.weight) {
                return Err(out_of_bounds("weight", "between 1 and 10000"));
            }
        }
        if new.ends_at <= new.starts_at || new.ends_at.0 - new.starts_at.0 > PROMOTION_DURATION_MS_MAX {
            return Err(out_of_bounds("ends_at", "after starts_at, at most 93 days later"));
        }
        self.experiments.push(new.clone());
        Ok(Outcome::ExperimentCreated { experiment: ExperimentId::from_index(self.experiments.len() - 1) })
    }

    pub fn experiment(&self, id: ExperimentId) -> Result<&NewExperiment, CoreError> {
        id.index().and_then(|i| self.experiments.get(i)).ok_or_else(|| CoreError::NotFound("experiment"))
    }

    pub fn experiments(&self) -> impl ExactSizeIterator<Item = (ExperimentId, &NewExperiment)> + '_ {
        self.experiments.iter().enumerate().map(|(i, e)| (ExperimentId::from_index(i), e))
    }

    fn create_buyer(&mut self, actor: Actor, name: &str) -> Result<Outcome, CoreError> {
        if !matches!(actor, Actor::Admin | Actor::Service) {
            return Err(CoreError::Forbidden("create buyers"));
        }
        Self::check_name("name", name, NAME_BYTES_MAX)?;
        if self.buyers.len() as u64 >= BUYERS_MAX {
            return Err(CoreError::Overflow("buyers"));
        }
        self.buyers.push(Buyer { name: name.to_owned(), region: None });
        Ok(Outcome::BuyerCreated { buyer: BuyerId::from_index(self.buyers.len() - 1) })
    }

    fn top_up(
        &mut self,
        actor: Actor,
        now: Millis,
        buyer: BuyerId,
        amount: Amount,
        currency: Currency,
    ) -> Result<Outcome, CoreError> {
        // Money comes in from its real source: an operator, or a service key relaying a payment
        // provider's confirmed deposit. A buyer reads and spends its wallet; it never funds it.
        if !matches!(actor, Actor::Admin | Actor::Service) {
            return Err(CoreError::Forbidden("top up a wallet (admin and service keys only)"));
        }
        self.buyer(buyer)?;
        Self::check_positive_amount(amount)?;
        if amount.0 > TOP_UP_AMOUNT_MAX {
            return Err(CoreError::AmountTooLarge);
        }
        let legs =
            [Leg { debit: Owner::External, credit: Owner::Buyer(buyer), amount, kind: TransferKind::TopUp }];
        let transfer = self.ledger.move_money(currency, &legs, None, now)?;
        let balance = self.ledger.balance(Owner::Buyer(buyer), currency);
        Ok(Outcome::ToppedUp { transfer, balance })
    }

    fn tick(&mut self, actor: Actor, now: Millis) -> Result<Outcome, CoreError> {
        if !matches!(actor, Actor::Admin | Actor::Service) {
            return Err(CoreError::Forbidden("advance time-driven work"));
        }
        let ended = due_by(&self.red_packet_ends, now, EXPIRE_BATCH_MAX);
        for &id in &ended {
            self.close_red_packet(id, now);
        }
        let due = self.reservations.due(now, EXPIRE_BATCH_MAX, |id| self.order_expiry(id));
        for &id in &due {
            self.close_unpaid(id, OrderStatus::Expired);
        }
        let budget = EXPIRE_BATCH_MAX.saturating_sub(due.len());
        let budget = budget.saturating_sub(self.carts.expire(now, budget));
        self.last_tick.repromised.clear();
        let (repromised, tickets) = self.logistics_tick(now, budget);
        let outcome =
            Outcome::Ticked { expired: due.len() as u32, closed: ended.len() as u32, repromised, tickets };
        (self.last_tick.expired, self.last_tick.closed) = (due, ended);
        Ok(outcome)
    }

    // ---- snapshots and digest ----

    /// The canonical encoding of the whole state: the snapshot format, and what the digest hashes.
    /// The state's layout, first in its encoding: postcard is not self-describing, so a snapshot
    /// of another layout could otherwise decode into a wrong state instead of failing. Bump it
    /// whenever a stored type changes. (2: ledger histories chained through the transfers;
    /// 3: the idempotency store in a part of its own; 4: remembered outcomes, orders and SKUs
    /// compact, the store's time per second; 5: reservations as a run of ids and a set; 6: SKU texts in an arena;
    /// 7: remembered outcomes keep 96 bits of their key; 8: outcomes as of when written;
    /// 9: logistics and after-sales; 10: carts, products and categories; 11: checkouts.)
    pub const LAYOUT: [u8; 8] = *b"ELSTAT13";

    pub fn encode(&self) -> Vec<u8> {
        // Encoding plain data into memory cannot fail.
        self.write_to(Vec::new()).unwrap_or_default()
    }

    /// Writes the encoding to `out` as it goes, never holding all of it (a state of ten million
    /// orders encodes to over a gigabyte): the layout, everything but the idempotency store,
    /// the idempotency store, and last the length of the first two (so the two parts can be
    /// decoded side by side, [`EncodedState`], while written in one pass).
    pub fn write_to<W: std::io::Write>(&self, out: W) -> Result<W, postcard::Error> {
        use postcard::ser_flavors::Flavor;
        let mut sink = Buffered { out, buf: [0; ENCODE_BUFFER_BYTES], len: 0, flushed: 0 };
        sink.try_extend(&Self::LAYOUT)?;
        let sink = postcard::serialize_with_flavor(self, sink)?;
        let main_end = sink.flushed + sink.len as u64;
        let mut sink = postcard::serialize_with_flavor(&self.idempotency, sink)?;
        sink.try_extend(&main_end.to_le_bytes())?;
        sink.flush()?;
        Ok(sink.out)
    }

    /// What a decoded state must hold before anything reads it by index: each table's
    /// references point inside the tables they name. Decoding checks it, so no bytes from disk
    /// can make a later read index out of bounds.
    fn check_references(&mut self) -> Result<(), &'static str> {
        self.ledger.check_references()?;
        self.reservations.finish_decode(self.orders.len())?;
        let (skus, campaigns) = (self.skus.len(), self.campaigns.len());
        let names = |id: Option<usize>, len: usize| id.is_some_and(|i| i < len);
        for order in self.orders.iter() {
            for line in &order.lines {
                if !names(line.sku.index(), skus)
                    || line.campaign().is_some_and(|c| !names(c.index(), campaigns))
                {
                    return Err("an order line names a SKU or campaign that does not exist");
                }
            }
        }
        if self.campaigns.iter().any(|c| !names(c.sku.index(), skus)) {
            return Err("a campaign names a SKU that does not exist");
        }
        if self.skus.iter().any(|s| s.campaigns.iter().any(|c| !names(c.index(), campaigns))) {
            return Err("a SKU names a campaign that does not exist");
        }
        self.check_logistics_references()?;
        Ok(())
    }

    pub fn decode(bytes: &[u8]) -> Result<State, postcard::Error> {
        let parts = EncodedState::split(bytes)?;
        Ok(parts.decode_main()?.with_idempotency(parts.decode_idempotency()?))
    }

    /// The state with the idempotency store decoded apart ([`EncodedState`]).
    pub fn with_idempotency(mut self, idempotency: IdempotencyStore) -> State {
        self.idempotency = idempotency;
        self
    }

    /// BLAKE3 of the canonical encoding: two states are equal, bit for bit, iff their digests are.
    pub fn digest(&self) -> String {
        // `write_to` hands the hasher blocks of its buffer; hashing into memory cannot fail.
        let hasher = self.write_to(blake3::Hasher::new()).expect("plain data encodes");
        hasher.finalize().to_hex().to_string()
    }
}

/// An encoded state cut into its two parts, which decode independently: a restart decodes them
/// on both cores (the core has no threads; the caller runs them).
pub struct EncodedState<'a> {
    main: &'a [u8],
    idempotency: &'a [u8],
}

impl<'a> EncodedState<'a> {
    pub fn split(bytes: &'a [u8]) -> Result<EncodedState<'a>, postcard::Error> {
        let bad = postcard::Error::DeserializeBadEncoding;
        let body = bytes.strip_prefix(&State::LAYOUT).ok_or(bad.clone())?;
        let (parts, end) = body.split_last_chunk::<8>().ok_or(bad.clone())?;
        let main_end = usize::try_from(u64::from_le_bytes(*end)).map_err(|_| bad.clone())?;
        let main_len = main_end.checked_sub(State::LAYOUT.len()).ok_or(bad.clone())?;
        if main_len > parts.len() {
            return Err(bad);
        }
        let (main, idempotency) = parts.split_at(main_len);
        Ok(EncodedState { main, idempotency })
    }

    /// Everything but the idempotency store (empty here), its indexes rebuilt.
    pub fn decode_main(&self) -> Result<State, postcard::Error> {
        let mut state: State = postcard::from_bytes(self.main)?;
        state.check_references().map_err(|_| postcard::Error::SerdeDeCustom)?;
        state.ledger.rebuild_index();
        state.logistics.rebuild_index();
        Ok(state)
    }

    /// The idempotency store, its index rebuilt.
    pub fn decode_idempotency(&self) -> Result<IdempotencyStore, postcard::Error> {
        let mut store: IdempotencyStore = postcard::from_bytes(self.idempotency)?;
        store.rebuild_index();
        Ok(store)
    }
}

/// The buffer of [`State::write_to`], on the stack: the encoding may run in a forked child,
/// which must not allocate.
const ENCODE_BUFFER_BYTES: usize = 16 << 10;

/// A postcard flavor that buffers the encoding and writes it out in blocks, counting them.
/// Without it every varint would be its own `write_all` through the writer's layers (the digest
/// and the snapshot writer encode gigabytes this way).
struct Buffered<W> {
    out: W,
    buf: [u8; ENCODE_BUFFER_BYTES],
    len: usize,
    /// Bytes written to `out` so far.
    flushed: u64,
}

impl<W: std::io::Write> Buffered<W> {
    fn flush(&mut self) -> postcard::Result<()> {
        self.out.write_all(&self.buf[..self.len]).map_err(|_| postcard::Error::SerializeBufferFull)?;
        self.flushed += self.len as u64;
        self.len = 0;
        Ok(())
    }
}

impl<W: std::io::Write> postcard::ser_flavors::Flavor for Buffered<W> {
    type Output = Self;

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if self.len == ENCODE_BUFFER_BYTES {
            self.flush()?;
        }
        self.buf[self.len] = byte;
        self.len += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        if bytes.len() > ENCODE_BUFFER_BYTES - self.len {
            self.flush()?;
            if bytes.len() > ENCODE_BUFFER_BYTES {
                self.out.write_all(bytes).map_err(|_| postcard::Error::SerializeBufferFull)?;
                self.flushed += bytes.len() as u64;
                return Ok(());
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Self> {
        Ok(self)
    }
}

/// What is due at `now` in a time-ordered set, at most `max` (bounded work per tick; the rest
/// is due at the next one).
pub(crate) fn due_by<T: Copy>(set: &BTreeSet<(Millis, T)>, now: Millis, max: usize) -> Vec<T> {
    set.iter().take_while(|(at, _)| *at <= now).take(max).map(|(_, id)| *id).collect()
}
