//! The state machine: one value, changed only by [`State::apply`], one command at a time.
//!
//! Every command is validated completely before the first mutation, so a refused command changes
//! nothing (invariant 6), and a command either happens whole or not at all.

use crate::chunked::Chunked;
use crate::command::*;
use crate::error::{out_of_bounds, CoreError};
use crate::idempotency::IdempotencyStore;
use crate::ledger::{Ledger, Leg, Owner, TransferKind};
use crate::limits::*;
use crate::logistics::Logistics;
use crate::promotions::{Coupon, RedPacket};
use crate::reservations::Reservations;
use crate::texts::TextArena;
use crate::types::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use thin_vec::ThinVec;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub acts_as: Actor,
    pub secret_sha256: [u8; 32],
    pub revoked: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub name: String,
    pub commission_bps: u16,
    /// Its warehouses, oldest first; a SKU names one by its position here.
    pub warehouses: Vec<WarehouseId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buyer {
    pub name: String,
    /// The delivery address's region, here beside the name (one lookup on the payment's path);
    /// the address itself is in the logistics tables. `None` until one is set.
    pub region: Option<crate::logistics::RegionId>,
}

/// One SKU and its inventory. `available + reserved + sold == received`, always.
///
/// 64 bytes: a catalogue holds millions. The title and description are in the state's text
/// arena ([`State::sku_title`], [`crate::texts`]; they were boxed `str`s, 32 bytes and an
/// allocation), where they start in five bytes (eight took the SKU to 72); the campaigns a
/// `ThinVec` (8, no allocation for a SKU that never had one), the merchant in four bytes; as
/// `String`s, a `Vec` and a `u64` it took 128.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    /// The merchant's id value (there are at most [`MERCHANTS_MAX`]): [`Sku::merchant`].
    merchant: u32,
    /// Where the title begins in the text arena; the description follows it.
    texts_at: U40,
    /// At most [`NAME_BYTES_MAX`].
    title_len: u8,
    /// At most [`DESCRIPTION_BYTES_MAX`].
    description_len: u16,
    pub price: Amount,
    pub currency: Currency,
    /// Free to reserve.
    pub available: u64,
    /// Held by unpaid orders.
    pub reserved: u64,
    /// Paid for (and not put back by a refund with restock).
    pub sold: u64,
    /// All stock ever received: initial stock plus restocks plus refunds with restock.
    pub received: u64,
    /// Campaigns on this SKU, in creation order; their windows never overlap.
    pub campaigns: ThinVec<CampaignId>,
    /// Where it ships from: a 1-based position among its merchant's warehouses (0: the first).
    pub(crate) warehouse_slot: u8,
}

const _: () = assert!(std::mem::size_of::<Sku>() == 64);
const _: () = assert!(NAME_BYTES_MAX <= u8::MAX as usize && DESCRIPTION_BYTES_MAX <= u16::MAX as usize);

impl Sku {
    pub fn merchant(&self) -> MerchantId {
        MerchantId(self.merchant.into())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub sku: SkuId,
    pub flash_price: Amount,
    pub quantity: u64,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub per_buyer_limit: u32,
    /// Units held by pending or paid orders at the flash price. Never above `quantity`.
    pub taken: u64,
    /// Units per buyer, held by pending or paid orders. Never above `per_buyer_limit`.
    pub taken_by_buyer: BTreeMap<BuyerId, u32>,
    /// When it was created: its creation's answer is rendered as of then.
    pub created_at: Millis,
}

impl Campaign {
    pub fn is_open(&self, now: Millis) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

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
    pub(crate) orders: Chunked<Order>,
    /// The coupons applied to an order, for the orders that have any (a minority): `total` is
    /// the lines' sum less these. Beside the orders rather than in each, where even an empty
    /// list took 8 bytes of every order.
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
    /// What the last `Tick` did, by id, for the event feed (not state: not encoded, and
    /// overwritten by the next tick).
    #[serde(skip)]
    pub(crate) last_tick: TickNotice,
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

    fn execute(&mut self, actor: Actor, now: Millis, command: &Command) -> Result<Outcome, CoreError> {
        match command {
            Command::CreateApiKey { acts_as, secret_sha256 } => {
                self.create_api_key(actor, *acts_as, *secret_sha256)
            }
            Command::RevokeApiKey { key } => self.revoke_api_key(actor, *key),
            Command::CreateMerchant { name, commission_bps } => {
                self.create_merchant(actor, name, *commission_bps)
            }
            Command::CreateBuyer { name } => self.create_buyer(actor, name),
            Command::CreateSku(new) => self.create_sku(actor, new),
            Command::Restock { sku, quantity } => self.restock(actor, *sku, *quantity),
            Command::TopUp { buyer, amount, currency } => self.top_up(actor, now, *buyer, *amount, *currency),
            Command::CreateCampaign(new) => self.create_campaign(actor, now, new),
            Command::PlaceOrder { buyer, lines, coupons, reservation_ttl_ms } => {
                self.place_order(actor, now, *buyer, lines, coupons, *reservation_ttl_ms)
            }
            Command::PayOrder { order } => self.pay_order(actor, now, *order),
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

    /// The coupons applied to an order (none for most).
    /// The ids the last `Tick` expired, closed and booked again.
    pub fn last_tick(&self) -> &TickNotice {
        &self.last_tick
    }

    pub fn order_discounts(&self, id: OrderId) -> &[OrderDiscount] {
        self.order_discounts.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Every SKU, oldest first.
    pub fn skus(&self) -> impl ExactSizeIterator<Item = (SkuId, &Sku)> + '_ {
        self.skus.iter().enumerate().map(|(i, s)| (SkuId(i as u64 + 1), s))
    }

    pub fn sku_title(&self, sku: &Sku) -> &str {
        self.sku_texts.get(sku.texts_at.get(), sku.title_len.into())
    }

    pub fn sku_description(&self, sku: &Sku) -> &str {
        self.sku_texts.get(sku.texts_at.get() + u64::from(sku.title_len), sku.description_len.into())
    }

    /// Every campaign, oldest first.
    pub fn campaigns(&self) -> impl ExactSizeIterator<Item = (CampaignId, &Campaign)> + '_ {
        self.campaigns.iter().enumerate().map(|(i, c)| (CampaignId(i as u64 + 1), c))
    }

    /// Every order, oldest first.
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
        [reservation, packet, self.next_logistics_due()].into_iter().flatten().min()
    }

    /// The campaign that governs sales of a SKU at `now`: the open one, or else the next one not
    /// yet started (a flash-sale SKU is not sold before its sale opens).
    pub fn governing_campaign(&self, sku: &Sku, now: Millis) -> Option<(CampaignId, &Campaign)> {
        sku.campaigns
            .iter()
            .filter_map(|&id| Some((id, self.campaign(id).ok()?)))
            .filter(|(_, c)| now < c.ends_at)
            .min_by_key(|(_, c)| c.starts_at)
    }

    // ---- commands ----

    fn create_api_key(
        &mut self,
        actor: Actor,
        acts_as: Actor,
        secret_sha256: [u8; 32],
    ) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "create API keys")?;
        match acts_as {
            Actor::Merchant(m) => {
                self.merchant(m)?;
            }
            Actor::Buyer(b) => {
                self.buyer(b)?;
            }
            Actor::Carrier(c) => {
                self.carrier(c)?;
            }
            Actor::Admin | Actor::Service | Actor::Viewer => {}
        }
        if self.api_keys.iter().any(|k| k.secret_sha256 == secret_sha256) {
            return Err(out_of_bounds("secret", "already registered"));
        }
        self.api_keys.push(ApiKey { acts_as, secret_sha256, revoked: false });
        Ok(Outcome::ApiKeyCreated { key: ApiKeyId::from_index(self.api_keys.len() - 1) })
    }

    fn revoke_api_key(&mut self, actor: Actor, key: ApiKeyId) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "revoke API keys")?;
        let entry =
            key.index().and_then(|i| self.api_keys.get(i)).ok_or_else(|| CoreError::NotFound("api key"))?;
        // Without an admin key nobody could create another one: the data directory would be
        // locked out for good. Rotate by creating the new key first.
        let admins = self.api_keys.iter().filter(|k| !k.revoked && k.acts_as == Actor::Admin).count();
        if !entry.revoked && entry.acts_as == Actor::Admin && admins == 1 {
            return Err(CoreError::LastAdminKey);
        }
        self.api_keys[key.index().unwrap_or_default()].revoked = true;
        Ok(Outcome::ApiKeyRevoked { key })
    }

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
        self.merchants.push(Merchant { name: name.to_owned(), commission_bps, warehouses: Vec::new() });
        Ok(Outcome::MerchantCreated { merchant: MerchantId::from_index(self.merchants.len() - 1) })
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

    fn create_sku(&mut self, actor: Actor, new: &NewSku) -> Result<Outcome, CoreError> {
        let NewSku { merchant, ref title, ref description, price, currency, initial_stock, warehouse } = *new;
        self.merchant(merchant)?;
        if !actor.may_manage_merchant(merchant) {
            return Err(CoreError::Forbidden("create SKUs for another merchant"));
        }
        Self::check_name("title", title, NAME_BYTES_MAX)?;
        if description.len() > DESCRIPTION_BYTES_MAX {
            return Err(out_of_bounds("description", "too long"));
        }
        Self::check_positive_amount(price)?;
        if initial_stock > STOCK_QUANTITY_MAX {
            return Err(out_of_bounds("initial_stock", "too large"));
        }
        let warehouse_slot = match warehouse {
            Some(w) => self.warehouse_slot(merchant, w)?,
            None => 0,
        };
        if !self.sku_texts.has_room() {
            return Err(CoreError::Overflow("bytes of SKU texts ever stored"));
        }
        let texts_at = U40::new(self.sku_texts.push(&[title, description]));
        self.skus.push(Sku {
            // These fit: merchant ids are at most MERCHANTS_MAX (and this one exists), the
            // texts' lengths were checked above, and the arena's positions with `has_room`.
            merchant: u32::try_from(merchant.0).unwrap_or(0),
            texts_at,
            title_len: u8::try_from(title.len()).unwrap_or(0),
            description_len: u16::try_from(description.len()).unwrap_or(0),
            price,
            currency,
            available: initial_stock,
            reserved: 0,
            sold: 0,
            received: initial_stock,
            campaigns: ThinVec::new(),
            warehouse_slot,
        });
        Ok(Outcome::SkuCreated { sku: SkuId::from_index(self.skus.len() - 1), initial_stock })
    }

    /// Edits a SKU's texts or price. New texts are appended to the arena (texts already there
    /// never move) and the SKU points at them; the old bytes stay, counted against the arena's
    /// bound like any text stored. A price may not drop below the flash price of a campaign of
    /// this SKU that has not ended, which would make the "sale" dearer than the shelf.
    fn update_sku(&mut self, actor: Actor, now: Millis, edit: &SkuEdit) -> Result<Outcome, CoreError> {
        let SkuEdit { sku: sku_id, ref title, ref description, price } = *edit;
        let sku = self.sku(sku_id)?;
        if !actor.may_manage_merchant(sku.merchant()) {
            return Err(CoreError::Forbidden("edit another merchant's SKU"));
        }
        if title.is_none() && description.is_none() && price.is_none() {
            return Err(out_of_bounds("edit", "give a title, a description or a price"));
        }
        if let Some(title) = title {
            Self::check_name("title", title, NAME_BYTES_MAX)?;
        }
        if description.as_ref().is_some_and(|d| d.len() > DESCRIPTION_BYTES_MAX) {
            return Err(out_of_bounds("description", "too long"));
        }
        if let Some(price) = price {
            Self::check_positive_amount(price)?;
            let undercut = sku
                .campaigns
                .iter()
                .filter_map(|c| self.campaign(*c).ok())
                .any(|c| now < c.ends_at && c.flash_price > price);
            if undercut {
                return Err(out_of_bounds(
                    "price",
                    "must not be below the flash price of a campaign not ended",
                ));
            }
        }
        let texts = (title.is_some() || description.is_some()).then(|| {
            let title = title.as_deref().unwrap_or_else(|| self.sku_title(sku)).to_owned();
            let description = description.as_deref().unwrap_or_else(|| self.sku_description(sku)).to_owned();
            (title, description)
        });
        if texts.is_some() && !self.sku_texts.has_room() {
            return Err(CoreError::Overflow("bytes of SKU texts ever stored"));
        }
        let texts_at =
            texts.as_ref().map(|(t, d)| (U40::new(self.sku_texts.push(&[t, d])), t.len(), d.len()));
        let sku = &mut self.skus[sku_id.index().unwrap_or_default()];
        if let Some((at, title_len, description_len)) = texts_at {
            // Checked above against the bounds that fit these widths.
            sku.texts_at = at;
            sku.title_len = u8::try_from(title_len).unwrap_or(0);
            sku.description_len = u16::try_from(description_len).unwrap_or(0);
        }
        if let Some(price) = price {
            sku.price = price;
        }
        Ok(Outcome::SkuUpdated { sku: sku_id })
    }

    fn restock(&mut self, actor: Actor, sku_id: SkuId, quantity: u64) -> Result<Outcome, CoreError> {
        let sku = self.sku(sku_id)?;
        if !actor.may_manage_merchant(sku.merchant()) {
            return Err(CoreError::Forbidden("restock another merchant's SKU"));
        }
        if quantity == 0 || quantity > STOCK_QUANTITY_MAX {
            return Err(out_of_bounds("quantity", "must be between 1 and 1000000000"));
        }
        let received = sku.received.checked_add(quantity).ok_or_else(|| CoreError::Overflow("stock"))?;
        let sku = &mut self.skus[sku_id.index().unwrap_or_default()];
        sku.available += quantity; // available <= received, which did not overflow.
        sku.received = received;
        Ok(Outcome::Restocked { sku: sku_id, received })
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

    fn create_campaign(
        &mut self,
        actor: Actor,
        now: Millis,
        new: &NewCampaign,
    ) -> Result<Outcome, CoreError> {
        let NewCampaign { sku: sku_id, flash_price, currency, quantity, starts_at, ends_at, per_buyer_limit } =
            *new;
        let sku = self.sku(sku_id)?;
        if !actor.may_manage_merchant(sku.merchant()) {
            return Err(CoreError::Forbidden("create campaigns on another merchant's SKU"));
        }
        if currency != sku.currency {
            return Err(CoreError::CurrencyMismatch("the flash price must be in the SKU's currency"));
        }
        Self::check_positive_amount(flash_price)?;
        if flash_price > sku.price {
            return Err(out_of_bounds("flash_price", "must not exceed the SKU's price"));
        }
        if quantity == 0 || quantity > STOCK_QUANTITY_MAX {
            return Err(out_of_bounds("quantity", "must be between 1 and 1000000000"));
        }
        if per_buyer_limit == 0 || per_buyer_limit > LINE_QUANTITY_MAX {
            return Err(out_of_bounds("per_buyer_limit", "must be between 1 and 10000"));
        }
        if ends_at <= starts_at {
            return Err(out_of_bounds("ends_at", "must be after starts_at"));
        }
        if ends_at.0 - starts_at.0 > CAMPAIGN_DURATION_MS_MAX {
            return Err(out_of_bounds("ends_at", "a campaign lasts at most 31 days"));
        }
        let overlaps = sku
            .campaigns
            .iter()
            .filter_map(|&c| self.campaign(c).ok())
            .any(|c| starts_at < c.ends_at && c.starts_at < ends_at);
        if overlaps {
            return Err(CoreError::CampaignOverlap);
        }
        if self.campaigns.len() as u64 >= CAMPAIGNS_MAX {
            return Err(CoreError::Overflow("campaigns ever created"));
        }
        let campaign = CampaignId::from_index(self.campaigns.len());
        self.campaigns.push(Campaign {
            sku: sku_id,
            flash_price,
            quantity,
            starts_at,
            ends_at,
            per_buyer_limit,
            taken: 0,
            taken_by_buyer: BTreeMap::new(),
            created_at: now,
        });
        self.skus[sku_id.index().unwrap_or_default()].campaigns.push(campaign);
        Ok(Outcome::CampaignCreated { campaign })
    }

    fn place_order(
        &mut self,
        actor: Actor,
        now: Millis,
        buyer: BuyerId,
        requested: &[LineRequest],
        coupons: &[CouponId],
        reservation_ttl_ms: u64,
    ) -> Result<Outcome, CoreError> {
        self.require_buyer(actor, buyer, "place orders for another buyer")?;
        if requested.is_empty() || requested.len() > ORDER_LINES_MAX {
            return Err(out_of_bounds("lines", "an order has 1 to 32 lines"));
        }
        if !(RESERVATION_TTL_MS_MIN..=RESERVATION_TTL_MS_MAX).contains(&reservation_ttl_ms) {
            return Err(out_of_bounds("reservation_ttl_ms", "between 1 s and 7 days"));
        }
        // Validate every line and price it; nothing is changed until all lines pass.
        // On the stack for the one line most orders have: nothing allocated on the sequencer.
        let mut lines = smallvec::SmallVec::<[OrderLine; 1]>::new();
        let mut total = Amount::ZERO;
        let mut merchant_currency: Option<(MerchantId, Currency)> = None;
        for (i, line) in requested.iter().enumerate() {
            let Some(line_quantity) = NonZeroU32::new(line.quantity).filter(|q| q.get() <= LINE_QUANTITY_MAX)
            else {
                return Err(out_of_bounds("quantity", "between 1 and 10000 per line"));
            };
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
            let quantity = u64::from(line.quantity);
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
                        return Err(CoreError::CampaignSoldOut {
                            campaign: id,
                            remaining: c.quantity - c.taken,
                        });
                    }
                    let used = c.taken_by_buyer.get(&buyer).copied().unwrap_or(0);
                    if used + line.quantity > c.per_buyer_limit {
                        return Err(CoreError::CampaignLimitExceeded {
                            campaign: id,
                            limit: c.per_buyer_limit,
                            used,
                        });
                    }
                    (c.flash_price, Some(id))
                }
            };
            let line_total =
                unit_price.checked_mul(quantity).ok_or_else(|| CoreError::Overflow("order total"))?;
            total = total.checked_add(line_total).ok_or_else(|| CoreError::Overflow("order total"))?;
            lines.push(OrderLine::new(line.sku, line_quantity, unit_price, campaign));
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

        if self.orders.len() as u64 >= ORDERS_MAX {
            return Err(CoreError::Overflow("orders ever placed"));
        }

        // All checks passed: reserve.
        let order = OrderId::from_index(self.orders.len());
        for line in &lines {
            self.hold(buyer, line);
        }
        for d in &discounts {
            self.hold_coupon(d.coupon, buyer, d.amount, true);
        }
        // All fit: buyers and merchants are bounded by BUYERS_MAX and MERCHANTS_MAX, and the
        // TTL was checked above.
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
        Ok(Outcome::OrderPlaced { order, total, expires_at })
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

    fn pay_order(&mut self, actor: Actor, now: Millis, id: OrderId) -> Result<Outcome, CoreError> {
        let order = self.order_for_buyer(actor, id, "pay another buyer's order")?;
        if order.status != OrderStatus::PendingPayment {
            return Err(CoreError::OrderState { status: order.status.name() });
        }
        if now >= order.expires_at() {
            return Err(CoreError::ReservationExpired { expired_at: order.expires_at() });
        }
        let commission_bps = self.merchant(order.merchant())?.commission_bps;
        let commission = order.total.basis_points(commission_bps);
        let (legs, n) = payment_legs(order, self.order_discounts(id), commission);
        let legs = &legs[..n];
        let (currency, total, expires_at) = (order.currency, order.total, order.expires_at());
        let plan = self.plan_shipments(id, now)?;
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
        self.create_shipments(id, &plan, now);
        Ok(Outcome::OrderPaid { order: id, total, commission })
    }

    fn cancel_order(&mut self, actor: Actor, id: OrderId) -> Result<Outcome, CoreError> {
        let order = self.order_for_buyer(actor, id, "cancel another buyer's order")?;
        if order.status != OrderStatus::PendingPayment {
            return Err(CoreError::OrderState { status: order.status.name() });
        }
        self.close_unpaid(id, OrderStatus::Cancelled);
        Ok(Outcome::OrderCancelled { order: id })
    }

    /// Releases a pending order's stock and moves it to `status` (cancelled or expired).
    fn close_unpaid(&mut self, id: OrderId, status: OrderStatus) {
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
    fn refund_order(
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

    fn tick(&mut self, actor: Actor, now: Millis) -> Result<Outcome, CoreError> {
        if !matches!(actor, Actor::Admin | Actor::Service) {
            return Err(CoreError::Forbidden("advance time-driven work"));
        }
        let ended = due_by(&self.red_packet_ends, now);
        for &id in &ended {
            self.close_red_packet(id, now);
        }
        let due = self.reservations.due(now, EXPIRE_BATCH_MAX, |id| self.order_expiry(id));
        for &id in &due {
            self.close_unpaid(id, OrderStatus::Expired);
        }
        let budget = EXPIRE_BATCH_MAX.saturating_sub(due.len());
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
    /// 9: logistics and after-sales.)
    pub const LAYOUT: [u8; 8] = *b"ELSTATE9";

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
/// Through `postcard::to_io` every varint was its own `write_all` through the writer's layers
/// (27% of the samples of `/v1/audit` at 10.6 M orders, most of it the digest); buffered here,
/// a forked snapshot writer of that state took 9.2-10.9 s instead of 10.6-12.0 s.
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

/// What is due at `now` in a time-ordered set, at most `EXPIRE_BATCH_MAX` (bounded work per tick;
/// the rest is due at the next one).
fn due_by<T: Copy>(set: &BTreeSet<(Millis, T)>, now: Millis) -> Vec<T> {
    set.iter().take_while(|(at, _)| *at <= now).take(EXPIRE_BATCH_MAX).map(|(_, id)| *id).collect()
}

/// What the platform pays the merchant for its coupons on an order (its platform-funded
/// discounts), at payment; a refund takes it back pro rata.
pub(crate) fn platform_subsidy(discounts: &[OrderDiscount]) -> Amount {
    Amount(discounts.iter().filter(|d| d.funded_by == Sponsor::Platform).map(|d| d.amount.0).sum())
}

/// The legs of a payment: the buyer pays the merchant and the platform its commission; the
/// platform pays the merchant its platform-funded discounts. Zero-amount legs are left out;
/// returns the legs and how many there are. (A refund moves them back pro rata:
/// [`crate::logistics`]' after-sales.)
fn payment_legs(order: &Order, discounts: &[OrderDiscount], commission: Amount) -> ([Leg; 3], usize) {
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
