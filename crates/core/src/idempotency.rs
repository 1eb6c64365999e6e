//! Remembered results of commands, by idempotency key, for a bounded time and count.

use crate::chunked::ChunkedDeque;
use crate::command::{Idempotency, Outcome};
use crate::key_index::{wrapped, KeyIndex};
use crate::limits::{IDEMPOTENCY_KEYS_MAX, IDEMPOTENCY_RETENTION_MS};
use crate::types::*;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What a remembered outcome reads back rather than keeps: facts the state writes once and
/// never changes after. An order's total and expiry are fixed when it is placed, its commission
/// when it is paid (the outcomes that read it come after), its restock flag by the refund that
/// sets it; a red packet's claim is a transfer, never changed. Implemented by `State`; the store
/// sees nothing else of it.
pub trait Written {
    /// The order's total, expiry, commission and restock flag.
    fn order_facts(&self, order: OrderId) -> Option<OrderFacts>;
    /// The packet and amount of a red packet's claim, by its transfer.
    fn claim(&self, transfer: TransferId) -> Option<(RedPacketId, Amount)>;
}

/// An order's facts a remembered outcome reads back ([`Written::order_facts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderFacts {
    pub total: Amount,
    pub expires_at: Millis,
    pub commission: Amount,
    pub restocked: bool,
}

/// A command's outcome as remembered for its idempotency key: 28 bytes, and there are two per
/// order (place, pay), so every byte counts. The key is kept to 96 bits ([`kept_key`]). The
/// outcome is kept as its kind and one number (an id, mostly); what the state keeps unchanged
/// forever once written (an order's total, expiry, commission and restock flag; a transfer's
/// amount and accounts) is read back from the state ([`Written`]), so a repeat
/// still returns exactly the first outcome. The kind shares a word with the command's
/// fingerprint; the few outcomes with a second number (a top-up's balance, a restock's count)
/// keep it in the store beside, as does the time, per second ([`IdempotencyStore`]). Kept
/// whole, with the time and the key's 16-byte alignment, it took 64 bytes; with the whole key,
/// 32. Packed to 4-byte alignment, so fields are read by value, never borrowed (the compiler
/// refuses a reference to one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C, packed(4))]
pub struct Remembered {
    key_low: u64,
    key_high: u32,
    /// The kind in the top byte, the command's fingerprint in the rest ([`FINGERPRINT_MASK`]).
    kind_fingerprint: u64,
    a: u64,
}

/// The 96 bits of an idempotency key the store keeps and indexes: the low 64, and the high 64
/// folded to 32 (so a key that differs from another only in its top bits still differs here).
/// The gateway's keys are BLAKE3 digests, for which any 96 bits are as good: two of the 20 M
/// keys a full store holds share them once in ~10^14 stores.
fn kept_key(key: u128) -> u128 {
    let high = (key >> 64) as u64;
    u128::from(high as u32 ^ (high >> 32) as u32) << 64 | u128::from(key as u64)
}

/// The fingerprint bits a [`Remembered`] keeps: 56 of 64, so a key reused for another command
/// goes unnoticed once in 2^56 (against 2^64).
const FINGERPRINT_MASK: u64 = (1 << 56) - 1;

/// Which [`Outcome`] a [`Remembered`] holds, and so what its numbers mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum OutcomeKind {
    ApiKeyCreated,
    ApiKeyRevoked,
    MerchantCreated,
    BuyerCreated,
    SkuCreated,
    Restocked,
    ToppedUp,
    CampaignCreated,
    OrderPlaced,
    OrderPaid,
    OrderCancelled,
    OrderRefunded,
    Ticked,
    CouponCreated,
    CouponDisabled,
    RedPacketCreated,
    RedPacketClosed,
    RedPacketClaimed,
    ExperimentCreated,
    WarehouseCreated,
    CarrierCreated,
    AddressSet,
    SkuWarehouseSet,
    ShippingFeeSet,
    ShipmentDispatched,
    ShipmentCancelled,
    TrackingRecorded,
    LinesRefunded,
    ReturnRequested,
    ReturnDecided,
    ReturnReceived,
    ReturnRefunded,
    TicketOpened,
    TicketUpdated,
    SkuUpdated,
    CartChanged,
    CheckedOut,
    CategoryCreated,
    CategoryMoved,
    ProductCreated,
    VariantAdded,
    ProductMoved,
    CampaignUpdated,
    CampaignEnded,
    CampaignFeatured,
    TicketReplied,
    StoreZoneSet,
    OrderNoted,
}

/// Every kind, at the index of its byte.
const KINDS: [OutcomeKind; 48] = {
    use OutcomeKind as K;
    [
        K::ApiKeyCreated,
        K::ApiKeyRevoked,
        K::MerchantCreated,
        K::BuyerCreated,
        K::SkuCreated,
        K::Restocked,
        K::ToppedUp,
        K::CampaignCreated,
        K::OrderPlaced,
        K::OrderPaid,
        K::OrderCancelled,
        K::OrderRefunded,
        K::Ticked,
        K::CouponCreated,
        K::CouponDisabled,
        K::RedPacketCreated,
        K::RedPacketClosed,
        K::RedPacketClaimed,
        K::ExperimentCreated,
        K::WarehouseCreated,
        K::CarrierCreated,
        K::AddressSet,
        K::SkuWarehouseSet,
        K::ShippingFeeSet,
        K::ShipmentDispatched,
        K::ShipmentCancelled,
        K::TrackingRecorded,
        K::LinesRefunded,
        K::ReturnRequested,
        K::ReturnDecided,
        K::ReturnReceived,
        K::ReturnRefunded,
        K::TicketOpened,
        K::TicketUpdated,
        K::SkuUpdated,
        K::CartChanged,
        K::CheckedOut,
        K::CategoryCreated,
        K::CategoryMoved,
        K::ProductCreated,
        K::VariantAdded,
        K::ProductMoved,
        K::CampaignUpdated,
        K::CampaignEnded,
        K::CampaignFeatured,
        K::TicketReplied,
        K::StoreZoneSet,
        K::OrderNoted,
    ]
};

const _: () = assert!(std::mem::size_of::<Remembered>() == 28);

impl Remembered {
    /// The entry, and the outcome's second number if it has one.
    fn new(idempotency: Idempotency, outcome: &Outcome) -> (Remembered, Option<u64>) {
        use OutcomeKind as K;
        let (kind, a, b) = match *outcome {
            Outcome::ApiKeyCreated { key } => (K::ApiKeyCreated, key.0, None),
            Outcome::ApiKeyRevoked { key } => (K::ApiKeyRevoked, key.0, None),
            Outcome::MerchantCreated { merchant } => (K::MerchantCreated, merchant.0, None),
            Outcome::BuyerCreated { buyer } => (K::BuyerCreated, buyer.0, None),
            Outcome::SkuCreated { sku, initial_stock } => (K::SkuCreated, sku.0, Some(initial_stock)),
            Outcome::Restocked { sku, received } => (K::Restocked, sku.0, Some(received)),
            Outcome::ToppedUp { transfer, balance } => (K::ToppedUp, transfer.0, Some(balance as u64)),
            Outcome::CampaignCreated { campaign } => (K::CampaignCreated, campaign.0, None),
            // The rest of these is the order's, which never changes once written.
            Outcome::OrderPlaced { order, .. } => (K::OrderPlaced, order.0, None),
            Outcome::OrderPaid { order, .. } => (K::OrderPaid, order.0, None),
            Outcome::OrderRefunded { order, amount, .. } => (K::OrderRefunded, order.0, Some(amount.0)),
            Outcome::OrderCancelled { order } => (K::OrderCancelled, order.0, None),
            Outcome::Ticked { expired, closed, repromised, tickets } => (
                K::Ticked,
                u64::from(expired) << 32 | u64::from(closed),
                Some(u64::from(repromised) << 32 | u64::from(tickets)),
            ),
            Outcome::CouponCreated { coupon } => (K::CouponCreated, coupon.0, None),
            Outcome::CouponDisabled { coupon } => (K::CouponDisabled, coupon.0, None),
            Outcome::RedPacketCreated { packet } => (K::RedPacketCreated, packet.0, None),
            Outcome::RedPacketClosed { packet, returned } => (K::RedPacketClosed, packet.0, Some(returned.0)),
            // The packet and amount are the transfer's.
            Outcome::RedPacketClaimed { transfer, .. } => (K::RedPacketClaimed, transfer.0, None),
            Outcome::ExperimentCreated { experiment } => (K::ExperimentCreated, experiment.0, None),
            Outcome::WarehouseCreated { warehouse } => (K::WarehouseCreated, warehouse.0, None),
            Outcome::CarrierCreated { carrier } => (K::CarrierCreated, carrier.0, None),
            Outcome::AddressSet { buyer } => (K::AddressSet, buyer.0, None),
            Outcome::SkuWarehouseSet { sku, warehouse } => (K::SkuWarehouseSet, sku.0, Some(warehouse.0)),
            Outcome::ShippingFeeSet { merchant, fee } => (K::ShippingFeeSet, merchant.0, Some(fee.0)),
            Outcome::ShipmentDispatched { shipment } => (K::ShipmentDispatched, shipment.0, None),
            Outcome::ShipmentCancelled { shipment } => (K::ShipmentCancelled, shipment.0, None),
            Outcome::TrackingRecorded { recorded, duplicates } => {
                (K::TrackingRecorded, u64::from(recorded) << 32 | u64::from(duplicates), None)
            }
            Outcome::LinesRefunded { order, amount } => (K::LinesRefunded, order.0, Some(amount.0)),
            Outcome::ReturnRequested { ret } => (K::ReturnRequested, ret.0, None),
            // Return and ticket ids are below 2^40: the flag or status fits beside.
            Outcome::ReturnDecided { ret, approved } => {
                (K::ReturnDecided, ret.0 << 1 | u64::from(approved), None)
            }
            Outcome::ReturnReceived { ret } => (K::ReturnReceived, ret.0, None),
            Outcome::ReturnRefunded { ret, amount } => (K::ReturnRefunded, ret.0, Some(amount.0)),
            Outcome::TicketOpened { ticket } => (K::TicketOpened, ticket.0, None),
            Outcome::TicketUpdated { ticket, status, at } => {
                (K::TicketUpdated, ticket.0 << 3 | status as u64, Some(at.0))
            }
            Outcome::SkuUpdated { sku } => (K::SkuUpdated, sku.0, None),
            // Buyer ids are below 2^32 and a cart has at most 100 lines.
            Outcome::CartChanged { buyer, lines } => (K::CartChanged, buyer.0 << 8 | u64::from(lines), None),
            // Order ids are below 2^39 and a checkout places at most 20; the total is the
            // orders' (fixed once placed).
            Outcome::CheckedOut { first, orders, .. } => {
                (K::CheckedOut, first.0 << 8 | u64::from(orders), None)
            }
            Outcome::CategoryCreated { category } => (K::CategoryCreated, category.0, None),
            Outcome::CategoryMoved { category } => (K::CategoryMoved, category.0, None),
            Outcome::ProductCreated { product } => (K::ProductCreated, product.0, None),
            Outcome::VariantAdded { product, sku } => (K::VariantAdded, sku.0, Some(product.0)),
            Outcome::ProductMoved { product } => (K::ProductMoved, product.0, None),
            Outcome::CampaignUpdated { campaign } => (K::CampaignUpdated, campaign.0, None),
            Outcome::CampaignEnded { campaign } => (K::CampaignEnded, campaign.0, None),
            // 0 is no campaign (ids start at 1).
            Outcome::CampaignFeatured { campaign } => {
                (K::CampaignFeatured, campaign.map_or(0, |c| c.0), None)
            }
            Outcome::TicketReplied { ticket } => (K::TicketReplied, ticket.0, None),
            Outcome::StoreZoneSet { merchant } => (K::StoreZoneSet, merchant.0, None),
            Outcome::OrderNoted { order, note } => (K::OrderNoted, order.0, Some(u64::from(note))),
        };
        let key = kept_key(idempotency.key);
        let (key_low, key_high) = (key as u64, (key >> 64) as u32);
        let kind_fingerprint = u64::from(kind as u8) << 56 | idempotency.fingerprint & FINGERPRINT_MASK;
        (Remembered { key_low, key_high, kind_fingerprint, a }, b)
    }

    /// The key as kept ([`kept_key`]).
    pub fn key(&self) -> u128 {
        let (low, high) = (self.key_low, self.key_high);
        u128::from(high) << 64 | u128::from(low)
    }

    /// Whether a command with this fingerprint is the one remembered (to the bits kept).
    pub fn same_command(&self, fingerprint: u64) -> bool {
        self.kind_fingerprint & FINGERPRINT_MASK == fingerprint & FINGERPRINT_MASK
    }

    fn kind(&self) -> Option<OutcomeKind> {
        KINDS.get(usize::from((self.kind_fingerprint >> 56) as u8)).copied()
    }

    /// Whether the outcome has a second number (kept in the store's `extras`).
    fn has_extra(&self) -> bool {
        use OutcomeKind as K;
        matches!(
            self.kind(),
            Some(
                K::SkuCreated
                    | K::Restocked
                    | K::ToppedUp
                    | K::RedPacketClosed
                    | K::OrderRefunded
                    | K::Ticked
                    | K::SkuWarehouseSet
                    | K::ShippingFeeSet
                    | K::LinesRefunded
                    | K::ReturnRefunded
                    | K::TicketUpdated
                    | K::VariantAdded
                    | K::OrderNoted
            )
        )
    }

    /// The outcome as it was first returned, with its second number from `extra` and what it
    /// did not keep read back from `state`; `None` only if the store or the state lost what an
    /// outcome names (the audit checks every one).
    fn outcome(&self, extra: impl Fn() -> Option<u64>, state: &impl Written) -> Option<Outcome> {
        use OutcomeKind as K;
        let a = self.a;
        let order = || state.order_facts(OrderId(a));
        Some(match self.kind()? {
            K::ApiKeyCreated => Outcome::ApiKeyCreated { key: ApiKeyId(a) },
            K::ApiKeyRevoked => Outcome::ApiKeyRevoked { key: ApiKeyId(a) },
            K::MerchantCreated => Outcome::MerchantCreated { merchant: MerchantId(a) },
            K::BuyerCreated => Outcome::BuyerCreated { buyer: BuyerId(a) },
            K::SkuCreated => Outcome::SkuCreated { sku: SkuId(a), initial_stock: extra()? },
            K::Restocked => Outcome::Restocked { sku: SkuId(a), received: extra()? },
            K::ToppedUp => Outcome::ToppedUp { transfer: TransferId(a), balance: extra()? as i64 },
            K::CampaignCreated => Outcome::CampaignCreated { campaign: CampaignId(a) },
            K::OrderPlaced => {
                let o = order()?;
                Outcome::OrderPlaced { order: OrderId(a), total: o.total, expires_at: o.expires_at }
            }
            K::OrderPaid => {
                let o = order()?;
                Outcome::OrderPaid { order: OrderId(a), total: o.total, commission: o.commission }
            }
            K::OrderRefunded => {
                let o = order()?;
                Outcome::OrderRefunded { order: OrderId(a), amount: Amount(extra()?), restocked: o.restocked }
            }
            K::OrderCancelled => Outcome::OrderCancelled { order: OrderId(a) },
            K::Ticked => {
                let b = extra()?;
                let (repromised, tickets) = ((b >> 32) as u32, b as u32);
                Outcome::Ticked { expired: (a >> 32) as u32, closed: a as u32, repromised, tickets }
            }
            K::CouponCreated => Outcome::CouponCreated { coupon: CouponId(a) },
            K::CouponDisabled => Outcome::CouponDisabled { coupon: CouponId(a) },
            K::RedPacketCreated => Outcome::RedPacketCreated { packet: RedPacketId(a) },
            K::RedPacketClosed => {
                Outcome::RedPacketClosed { packet: RedPacketId(a), returned: Amount(extra()?) }
            }
            K::RedPacketClaimed => {
                let (packet, amount) = state.claim(TransferId(a))?;
                Outcome::RedPacketClaimed { packet, amount, transfer: TransferId(a) }
            }
            K::ExperimentCreated => Outcome::ExperimentCreated { experiment: ExperimentId(a) },
            K::WarehouseCreated => Outcome::WarehouseCreated { warehouse: WarehouseId(a) },
            K::CarrierCreated => Outcome::CarrierCreated { carrier: CarrierId(a) },
            K::AddressSet => Outcome::AddressSet { buyer: BuyerId(a) },
            K::SkuWarehouseSet => {
                Outcome::SkuWarehouseSet { sku: SkuId(a), warehouse: WarehouseId(extra()?) }
            }
            K::ShippingFeeSet => Outcome::ShippingFeeSet { merchant: MerchantId(a), fee: Amount(extra()?) },
            K::ShipmentDispatched => Outcome::ShipmentDispatched { shipment: ShipmentId(a) },
            K::ShipmentCancelled => Outcome::ShipmentCancelled { shipment: ShipmentId(a) },
            K::TrackingRecorded => {
                Outcome::TrackingRecorded { recorded: (a >> 32) as u32, duplicates: a as u32 }
            }
            K::LinesRefunded => Outcome::LinesRefunded { order: OrderId(a), amount: Amount(extra()?) },
            K::ReturnRequested => Outcome::ReturnRequested { ret: ReturnId(a) },
            K::ReturnDecided => Outcome::ReturnDecided { ret: ReturnId(a >> 1), approved: a & 1 == 1 },
            K::ReturnReceived => Outcome::ReturnReceived { ret: ReturnId(a) },
            K::ReturnRefunded => Outcome::ReturnRefunded { ret: ReturnId(a), amount: Amount(extra()?) },
            K::TicketOpened => Outcome::TicketOpened { ticket: TicketId(a) },
            K::TicketUpdated => {
                let status = *crate::logistics::TicketStatus::ALL.get((a & 7) as usize)?;
                Outcome::TicketUpdated { ticket: TicketId(a >> 3), status, at: Millis(extra()?) }
            }
            K::SkuUpdated => Outcome::SkuUpdated { sku: SkuId(a) },
            K::CategoryCreated => Outcome::CategoryCreated { category: CategoryId(a) },
            K::CategoryMoved => Outcome::CategoryMoved { category: CategoryId(a) },
            K::ProductCreated => Outcome::ProductCreated { product: ProductId(a) },
            K::VariantAdded => Outcome::VariantAdded { product: ProductId(extra()?), sku: SkuId(a) },
            K::ProductMoved => Outcome::ProductMoved { product: ProductId(a) },
            K::CampaignUpdated => Outcome::CampaignUpdated { campaign: CampaignId(a) },
            K::CampaignEnded => Outcome::CampaignEnded { campaign: CampaignId(a) },
            K::CampaignFeatured => Outcome::CampaignFeatured { campaign: (a != 0).then_some(CampaignId(a)) },
            K::TicketReplied => Outcome::TicketReplied { ticket: TicketId(a) },
            K::StoreZoneSet => Outcome::StoreZoneSet { merchant: MerchantId(a) },
            K::OrderNoted => Outcome::OrderNoted { order: OrderId(a), note: u32::try_from(extra()?).ok()? },
            K::CartChanged => Outcome::CartChanged { buyer: BuyerId(a >> 8), lines: (a & 0xff) as u32 },
            K::CheckedOut => {
                let (first, orders) = (a >> 8, (a & 0xff) as u32);
                let total = (first..first + u64::from(orders)).try_fold(Amount::ZERO, |sum, id| {
                    sum.checked_add(state.order_facts(OrderId(id))?.total)
                })?;
                Outcome::CheckedOut { first: OrderId(first), orders, total }
            }
        })
    }
}

/// An entry found by its key, with what its outcome needs from the store.
pub struct Recalled<'a> {
    entry: &'a Remembered,
    position: u64,
    store: &'a IdempotencyStore,
}

impl Recalled<'_> {
    /// Whether a command with this fingerprint is the one remembered (to the bits kept).
    pub fn same_command(&self, fingerprint: u64) -> bool {
        self.entry.same_command(fingerprint)
    }

    /// The outcome as it was first returned ([`Remembered::outcome`]).
    pub fn outcome(&self, state: &impl Written) -> Option<Outcome> {
        self.entry.outcome(|| self.store.extra(self.position), state)
    }
}

// The index holds positions wrapped to 32 bits ([`wrapped`]): the store's span must stay below.
const _: () = assert!(IDEMPOTENCY_KEYS_MAX < u32::MAX as usize / 2);

/// How many removals ahead [`IdempotencyStore::forget_old`] starts loading a key's index slot.
const FORGET_AHEAD: usize = 8;

/// Keys in the order they were first used (which is also command-time order), so forgetting the
/// oldest is a pop from the front.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdempotencyStore {
    entries: ChunkedDeque<Remembered>,
    /// The absolute position of `entries[0]`.
    first_position: u64,
    /// When the entries were remembered, by the second: each second that has entries, with the
    /// position of its first entry, oldest first (the front one holds `entries[0]`). Retention
    /// is a day, so a second is fine enough, and one record per second (at most ~86,400) costs
    /// less than a time in each entry. Seconds since the epoch, saturating: past 2106 keys are
    /// forgotten by count only.
    seconds: VecDeque<(u32, u64)>,
    /// The second numbers of the few outcomes that have one, by position, oldest first: a
    /// top-up's balance, a restock's count (orders' outcomes have none).
    extras: VecDeque<(u64, u64)>,
    /// Key to absolute position; sharded so that it never stops the sequencer to grow, and
    /// prefetchable (see `key_index`).
    #[serde(skip)]
    index: KeyIndex,
}

impl IdempotencyStore {
    /// Its tables' bytes (see [`crate::footprint`]).
    pub fn footprint(&self, footprint: &mut crate::Footprint) {
        use crate::footprint::deque;
        footprint
            .add("remembered outcomes", self.entries.bytes() + deque(&self.seconds) + deque(&self.extras));
        footprint.add("idempotency index", self.index.bytes());
    }

    pub(crate) fn rebuild_index(&mut self) {
        self.index =
            self.entries.iter().enumerate().map(|(i, e)| (e.key(), self.first_position + i as u64)).collect();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What is remembered for `key`.
    pub fn get(&self, key: u128) -> Option<Recalled<'_>> {
        let key = kept_key(key);
        let position = self.index.get(key, |p| self.at(p).map(Remembered::key))?;
        let entry = self.at(position)?;
        let position = self.first_position + u64::from(position.wrapping_sub(wrapped(self.first_position)));
        Some(Recalled { entry, position, store: self })
    }

    fn extra(&self, position: u64) -> Option<u64> {
        let i = self.extras.binary_search_by_key(&position, |&(p, _)| p).ok()?;
        Some(self.extras[i].1)
    }

    /// The entry at a [`wrapped`] position: the entries hold fewer than 2^32 consecutive
    /// positions, so the wrapped distance from the first is the distance.
    fn at(&self, position: u32) -> Option<&Remembered> {
        self.entries.get(position.wrapping_sub(wrapped(self.first_position)) as usize)
    }

    pub(crate) fn remember(&mut self, idempotency: Idempotency, at: Millis, outcome: &Outcome) {
        let position = self.first_position + self.entries.len() as u64;
        // Commands come in time order (the state's clock never goes back).
        let second = u32::try_from(at.0 / 1_000).unwrap_or(u32::MAX);
        if self.seconds.back().is_none_or(|&(last, _)| last != second) {
            self.seconds.push_back((second, position));
        }
        let (entry, extra) = Remembered::new(idempotency, outcome);
        let entry_key = entry.key();
        self.entries.push_back(entry);
        if let Some(extra) = extra {
            self.extras.push_back((position, extra));
        }
        self.index.insert_new(entry_key, position);
    }

    /// Starts loading where a lookup of `key` will look (a hint: changes nothing).
    pub fn prefetch(&self, key: u128) {
        self.index.prefetch(kept_key(key));
    }

    /// Forgets keys older than the retention window, and the oldest beyond the count bound.
    /// Steady in a full store: each new key forgets about one.
    pub(crate) fn forget_old(&mut self, now: Millis) {
        // In whole seconds, as kept: a key is remembered for the window and at most a second more.
        let horizon_s = now.0.saturating_sub(IDEMPOTENCY_RETENTION_MS) / 1_000;
        while let (Some(front), Some(&(second, _))) = (self.entries.front(), self.seconds.front()) {
            if u64::from(second) >= horizon_s && self.entries.len() <= IDEMPOTENCY_KEYS_MAX {
                break;
            }
            // The oldest keys leave in order: start loading the index slot of one a few removals
            // ahead, or each removal is a cache miss (5% of the sequencer once the store is full).
            if let Some(ahead) = self.entries.get(FORGET_AHEAD) {
                self.index.prefetch(ahead.key());
            }
            self.index.remove(front.key(), self.first_position);
            self.entries.drop_front();
            self.first_position += 1;
            if self.extras.front().is_some_and(|&(p, _)| p < self.first_position) {
                self.extras.pop_front();
            }
            // The front second is done when the next one starts here, or nothing is left.
            if self.entries.is_empty() || self.seconds.get(1).is_some_and(|&(_, p)| p == self.first_position)
            {
                self.seconds.pop_front();
            }
        }
    }

    /// Every indexed key points at an entry with that key, every entry is indexed, every
    /// entry's outcome can be read back from `state`, and the seconds cover the entries in order.
    pub(crate) fn is_consistent(&self, state: &impl Written) -> bool {
        // Each lookup is a cache miss; start each a few entries early, as the sequencer does.
        const AHEAD: usize = 8;
        let end = self.first_position + self.entries.len() as u64;
        let seconds_ok = match self.seconds.front() {
            None => self.entries.is_empty(),
            Some(&(_, first)) => {
                first <= self.first_position
                    && self
                        .seconds
                        .iter()
                        .zip(self.seconds.iter().skip(1))
                        .all(|(a, b)| a.0 < b.0 && a.1 < b.1)
                    && self.seconds.iter().skip(1).all(|&(_, p)| self.first_position < p && p < end)
            }
        };
        let extras_ok = self.extras.iter().zip(self.extras.iter().skip(1)).all(|(a, b)| a.0 < b.0)
            && self.extras.iter().all(|&(p, _)| self.first_position <= p && p < end)
            && self.extras.len() == self.entries.iter().filter(|e| e.has_extra()).count();
        seconds_ok
            && extras_ok
            && self.index.len() == self.entries.len()
            && self.entries.iter().enumerate().all(|(i, e)| {
                if let Some(ahead) = self.entries.get(i + AHEAD) {
                    self.index.prefetch(ahead.key());
                }
                self.get(e.key()).is_some_and(|r| {
                    r.position == self.first_position + i as u64 && r.outcome(state).is_some()
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Outcome;
    use crate::state::State;
    use crate::types::OrderId;

    /// Positions past 2^32, which the index holds wrapped: keys on both sides of the wrap are
    /// found at their own entries, and forgotten ones are not found.
    #[test]
    fn positions_wrap_past_32_bits() {
        let mut store = IdempotencyStore { first_position: u64::from(u32::MAX) - 100, ..Default::default() };
        let key = |n: u64| u128::from(n) << 64 | 7;
        let remember = |store: &mut IdempotencyStore, n: u64| {
            let outcome = Outcome::OrderCancelled { order: OrderId(n) };
            store.remember(Idempotency { key: key(n), fingerprint: n }, Millis(n * 1_000), &outcome);
        };
        for n in 0..300 {
            remember(&mut store, n);
        }
        store.rebuild_index();
        for n in 300..400 {
            remember(&mut store, n);
        }
        for n in 0..400 {
            assert!(store.get(key(n)).is_some_and(|r| r.same_command(n)), "key {n}");
        }
        // Forget the first 250 (by age), across the wrap.
        store.forget_old(Millis(IDEMPOTENCY_RETENTION_MS + 250_000));
        for n in 0..400 {
            assert_eq!(store.get(key(n)).is_some(), n >= 250, "key {n}");
        }
        assert!(store.is_consistent(&State::new()));
        store.forget_old(Millis(IDEMPOTENCY_RETENTION_MS + 1_000_000));
        assert!(store.is_empty() && store.seconds.is_empty());
    }

    fn outcome(n: u128) -> Outcome {
        match n % 3 {
            0 => Outcome::ToppedUp { transfer: TransferId(n as u64), balance: -(n as i64) },
            _ => Outcome::BuyerCreated { buyer: BuyerId(n as u64) },
        }
    }

    proptest::proptest! {
        /// Forgetting by age with the time kept per second, against a list of (key, time) that
        /// keeps a key while its second is within the window; the second numbers kept beside
        /// (every third outcome has one) are forgotten with their entries.
        #[test]
        fn forgets_by_age_as_a_list_does(
            steps in proptest::collection::vec((0u64..40_000_000, proptest::bool::ANY), 1..300)
        ) {
            let mut store = IdempotencyStore::default();
            let mut model: VecDeque<(u128, u64)> = VecDeque::new();
            let (mut now, mut next) = (0u64, 0u128);
            for (advance_ms, forget) in steps {
                now += advance_ms % 3 * advance_ms / 2; // Often the same second, sometimes hours on.
                if forget {
                    store.forget_old(Millis(now));
                    let horizon_s = now.saturating_sub(IDEMPOTENCY_RETENTION_MS) / 1_000;
                    while model.front().is_some_and(|&(_, at)| at / 1_000 < horizon_s) {
                        model.pop_front();
                    }
                } else {
                    next += 1;
                    store.remember(Idempotency { key: next, fingerprint: 0 }, Millis(now), &outcome(next));
                    model.push_back((next, now));
                }
                proptest::prop_assert_eq!(store.len(), model.len());
                proptest::prop_assert!(store.is_consistent(&State::new()));
            }
            for key in 1..=next {
                let live = model.iter().any(|&(k, _)| k == key);
                let recalled = store.get(key).map(|r| r.outcome(&State::new()));
                proptest::prop_assert_eq!(recalled, live.then(|| Some(outcome(key))));
            }
        }
    }

    /// Every kind's byte names it, and every outcome kept comes back as it went in (those read
    /// from the state are tested in the simulation).
    #[test]
    fn kinds_and_numbers_round_trip() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert_eq!(*kind as usize, i);
        }
        let state = State::new();
        let outcomes = [
            Outcome::SkuCreated { sku: SkuId(3), initial_stock: u64::MAX },
            Outcome::ToppedUp { transfer: TransferId(9), balance: i64::MIN },
            Outcome::Ticked { expired: u32::MAX, closed: 1, repromised: 3, tickets: u32::MAX },
            Outcome::RedPacketClosed { packet: RedPacketId(2), returned: Amount(77) },
            Outcome::ExperimentCreated { experiment: ExperimentId(u64::MAX) },
        ];
        for (n, outcome) in outcomes.into_iter().enumerate() {
            let idem = Idempotency { key: u128::MAX - n as u128, fingerprint: u64::MAX - n as u64 };
            let (r, extra) = Remembered::new(idem, &outcome);
            assert_eq!(extra.is_some(), r.has_extra());
            assert_eq!((r.key(), r.outcome(|| extra, &state)), (kept_key(idem.key), Some(outcome)));
            assert!(r.same_command(idem.fingerprint) && !r.same_command(idem.fingerprint ^ 1));
        }
    }

    #[test]
    fn a_key_one_bit_off_a_remembered_one_is_new() {
        // The high half is folded, not cut: embedders' keys may carry a namespace in their top
        // bits (the bench's in-process keys set bit 100), and a key that differs from a
        // remembered one in a single bit, wherever it is, is not taken for a repeat.
        let mut store = IdempotencyStore::default();
        let base = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        let outcome = Outcome::OrderCancelled { order: OrderId(1) };
        store.remember(Idempotency { key: base, fingerprint: 5 }, Millis(1_000), &outcome);
        assert!(store.get(base).is_some_and(|r| r.same_command(5)));
        for bit in 0..128 {
            assert_ne!(kept_key(base ^ 1 << bit), kept_key(base), "bit {bit}");
            assert!(store.get(base ^ 1 << bit).is_none(), "bit {bit}");
        }
    }
}
