//! Commands (what changes state), their envelope, and outcomes (what a success returns).

use crate::logistics::{ReturnReason, TicketStatus, TrackingStatus};
use crate::types::*;
use serde::{Deserialize, Serialize};

/// One command as the sequencer hands it to the state machine, and as the journal stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub actor: Actor,
    /// `None` only for commands the engine issues itself (reservation expiry, bootstrap).
    pub idempotency: Option<Idempotency>,
    /// The sequencer's clock when it took the command. The state machine never reads a clock.
    pub at: Millis,
    pub command: Command,
}

/// An idempotency key, already scoped to its actor and hashed by the gateway, and a fingerprint
/// of the command it was first used with (so a reuse with another command is caught).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Idempotency {
    pub key: u128,
    pub fingerprint: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Service,
    Merchant,
    Buyer,
    Carrier,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineRequest {
    pub sku: SkuId,
    pub quantity: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewSku {
    pub merchant: MerchantId,
    pub title: String,
    pub description: String,
    pub price: Amount,
    pub currency: Currency,
    pub initial_stock: u64,
    /// Where it ships from: one of the merchant's warehouses; without one, the merchant's
    /// first warehouse (once it has one).
    pub warehouse: Option<WarehouseId>,
}

/// What a SKU edit changes: each field given replaces the SKU's; absent ones stay.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkuEdit {
    pub sku: SkuId,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The price of orders placed from now on; placed orders keep theirs.
    pub price: Option<Amount>,
}

/// A merchant's warehouse, as created.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewWarehouse {
    pub merchant: MerchantId,
    pub name: String,
    pub region: String,
    pub capacity_per_day: u32,
    pub cutoff_minute: u16,
    pub utc_offset_minutes: i16,
    /// Bit 0 Monday .. bit 6 Sunday.
    pub closed_weekdays: u8,
    /// Day numbers (days since 1970-01-01) without dispatch.
    pub closed_days: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewLane {
    pub from: String,
    pub to: String,
    pub p50_days: u16,
    pub p90_days: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewCarrier {
    pub name: String,
    pub lanes: Vec<NewLane>,
}

/// One carrier event for one shipment. `key` identifies the event (the carrier's event id,
/// hashed by the gateway): the same key twice is recorded once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewTrackingEvent {
    pub shipment: ShipmentId,
    pub key: u64,
    pub status: TrackingStatus,
    pub occurred_at: Millis,
}

/// A flash sale: `quantity` units of `sku` at `flash_price` during `[starts_at, ends_at)`, at
/// most `per_buyer_limit` units per buyer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewCampaign {
    pub sku: SkuId,
    pub flash_price: Amount,
    pub currency: Currency,
    pub quantity: u64,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub per_buyer_limit: u32,
}

/// How a coupon takes money off the amount it applies to. Rounding: always down, to the minor
/// unit (a 15% coupon on 999 fen takes 149 fen off), and never more than that amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DiscountRule {
    Fixed {
        amount: Amount,
    },
    /// `bps` basis points off (1,000 = 10%), at most `cap` if set.
    Percent {
        bps: u16,
        cap: Option<Amount>,
    },
    /// The platform's discount across stores, applied at checkout: `off` for every `every`
    /// spent over the checkout's orders (after the stores' coupons, before shipping), at most
    /// `cap` a checkout, apportioned to each store's order by its share of the spend. Paid by
    /// the platform, or by each store on its own order's share if `merchants_fund`.
    CrossStore {
        every: Amount,
        off: Amount,
        cap: Option<Amount>,
        merchants_fund: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewCoupon {
    pub sponsor: Sponsor,
    pub rule: DiscountRule,
    pub currency: Currency,
    /// The order's subtotal (after campaign prices) must reach this.
    pub min_spend: Amount,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub per_buyer_limit: u32,
    /// The most money all uses together may take off.
    pub budget_amount: Option<Amount>,
    /// The most orders that may use it.
    pub budget_uses: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewRedPacket {
    pub sponsor: Sponsor,
    pub amount: Amount,
    pub count: u32,
    pub currency: Currency,
    pub starts_at: Millis,
    pub ends_at: Millis,
    /// Drawn by the gateway; the shares follow from it, so replay pays the same shares.
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    /// Register an API key acting as `acts_as`. Only the SHA-256 of the secret is stored.
    CreateApiKey {
        acts_as: Actor,
        secret_sha256: [u8; 32],
    },
    RevokeApiKey {
        key: ApiKeyId,
    },
    CreateMerchant {
        name: String,
        commission_bps: u16,
    },
    CreateBuyer {
        name: String,
    },
    /// Boxed, as is `CreateCoupon`: rare commands, and inline they made every command (and every
    /// queued item and journaled envelope) 104 bytes instead of 72.
    CreateSku(Box<NewSku>),
    Restock {
        sku: SkuId,
        quantity: u64,
    },
    /// Move money from the external funding account into a buyer's wallet.
    TopUp {
        buyer: BuyerId,
        amount: Amount,
        currency: Currency,
    },
    CreateCampaign(NewCampaign),
    /// Reserve stock for the lines; the reservation expires `reservation_ttl_ms` after `at`.
    PlaceOrder {
        buyer: BuyerId,
        lines: Vec<LineRequest>,
        /// At most one platform and one merchant coupon.
        coupons: Vec<CouponId>,
        reservation_ttl_ms: u64,
    },
    PayOrder {
        order: OrderId,
    },
    CancelOrder {
        order: OrderId,
    },
    /// Return the money of a paid order; `restock` puts the units back on sale.
    RefundOrder {
        order: OrderId,
        restock: bool,
    },
    /// Time-driven work up to the envelope's time: release due reservations, close ended red
    /// packets. The sequencer sends it when something is due; it is journaled like any command.
    Tick,
    CreateCoupon(Box<NewCoupon>),
    /// No new orders may use the coupon; orders that hold it keep it.
    DisableCoupon {
        coupon: CouponId,
    },
    /// Moves the pool from the sponsor into the pool's escrow account.
    CreateRedPacket(NewRedPacket),
    /// Ends the pool now; unclaimed money returns to the sponsor.
    CloseRedPacket {
        packet: RedPacketId,
    },
    ClaimRedPacket {
        packet: RedPacketId,
        buyer: BuyerId,
    },
    /// Defines an A/B experiment (admin). Buyers are assigned by a stable hash, not stored.
    CreateExperiment(NewExperiment),
    CreateWarehouse(Box<NewWarehouse>),
    /// A carrier and its lanes (admin).
    CreateCarrier(Box<NewCarrier>),
    SetAddress {
        buyer: BuyerId,
        region: String,
        text: String,
    },
    SetSkuWarehouse {
        sku: SkuId,
        warehouse: WarehouseId,
    },
    /// The merchant's fee per order in a currency (0 for free shipping).
    SetShippingFee {
        merchant: MerchantId,
        currency: Currency,
        fee: Amount,
    },
    DispatchShipment {
        shipment: ShipmentId,
    },
    /// Cancels a shipment not yet dispatched, freeing its booked slot.
    CancelShipment {
        shipment: ShipmentId,
    },
    /// Carrier events, one or thousands; refused whole if one is refused.
    RecordTracking {
        events: Vec<NewTrackingEvent>,
    },
    /// Refunds some units of some lines and some of the shipping fee.
    RefundLines {
        order: OrderId,
        lines: Vec<LineRequest>,
        shipping: Amount,
        restock: bool,
    },
    RequestReturn {
        order: OrderId,
        lines: Vec<LineRequest>,
        reason: ReturnReason,
    },
    DecideReturn {
        ret: ReturnId,
        approve: bool,
    },
    ReceiveReturn {
        ret: ReturnId,
        restock: bool,
    },
    RefundReturn {
        ret: ReturnId,
        shipping: Amount,
    },
    OpenTicket {
        order: OrderId,
        subject: String,
    },
    UpdateTicket {
        ticket: TicketId,
        status: TicketStatus,
    },
    /// Boxed as `CreateSku` is (rare, and its texts are long).
    UpdateSku(Box<SkuEdit>),
    // New commands go last: the journal encodes a command by its place in this list.
    /// Sets a line of the buyer's cart (0 units take it out).
    SetCartLine {
        buyer: BuyerId,
        sku: SkuId,
        quantity: u32,
    },
    /// A node of the category tree (admin), under `parent` or at the root.
    CreateCategory {
        name: String,
        parent: Option<CategoryId>,
    },
    /// Moves a category and its subtree (admin).
    MoveCategory {
        category: CategoryId,
        parent: Option<CategoryId>,
    },
    CreateProduct(Box<crate::products::NewProduct>),
    /// Makes a SKU of the product's merchant a variant, with its option values.
    AddVariant {
        product: ProductId,
        sku: SkuId,
        options: Vec<String>,
    },
    MoveProduct {
        product: ProductId,
        category: CategoryId,
    },
    /// One order per merchant of the lines (the cart's if none), paid at once from the
    /// buyer's wallet: all or none.
    Checkout {
        buyer: BuyerId,
        lines: Vec<LineRequest>,
        /// The stores' coupons, at most one per store.
        coupons: Vec<CouponId>,
    },
    /// A flash sale with the name merchants and the big screen know it by. (`CreateCampaign`,
    /// without a name, is what journals written before names hold: kept so they replay.)
    CreateNamedCampaign(Box<NamedCampaign>),
    /// Changes a sale's terms: any before it starts; once it runs, its name, its quantity (never
    /// below the units taken) and its end (never before now).
    UpdateCampaign(Box<CampaignEdit>),
    /// Before it starts, cancels the sale; while it runs, ends it now.
    EndCampaign {
        campaign: CampaignId,
    },
    /// The sale the big screen features (the operator's choice), or none: the screen then
    /// follows the live sale with the most GMV.
    FeatureCampaign {
        campaign: Option<CampaignId>,
    },
    /// A message in a service ticket's conversation, by its store or its buyer.
    ReplyTicket {
        ticket: TicketId,
        body: String,
    },
    /// An API key with the operator's label for it. (`CreateApiKey`, without one, is what
    /// journals written before labels hold, and what the engine registers at first start.)
    CreateLabelledApiKey {
        acts_as: Actor,
        secret_sha256: [u8; 32],
        label: String,
    },
    /// The store's time zone, as its offset from UTC: its day (the dashboard's "today") and
    /// the times its console shows and takes.
    SetStoreZone {
        merchant: MerchantId,
        utc_offset_minutes: i16,
    },
    /// A note the store keeps on an order, for its own people (never shown to the buyer).
    NoteOrder {
        order: OrderId,
        body: String,
    },
}

/// A flash sale's terms with its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NamedCampaign {
    pub name: String,
    pub terms: NewCampaign,
}

/// The terms of a sale to change; an absent field is left as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CampaignEdit {
    pub campaign: CampaignId,
    pub name: Option<String>,
    pub flash_price: Option<Amount>,
    pub quantity: Option<u64>,
    pub starts_at: Option<Millis>,
    pub ends_at: Option<Millis>,
    pub per_buyer_limit: Option<u32>,
}

/// An A/B experiment: from `starts_at` to `ends_at`, each buyer sees one variant, chosen by a
/// stable hash of the experiment and the buyer in proportion to the weights. The first variant
/// is the control.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewExperiment {
    pub name: String,
    pub variants: Vec<Variant>,
    pub starts_at: Millis,
    pub ends_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Variant {
    pub name: String,
    pub weight: u32,
}

impl Command {
    /// A short, stable name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateApiKey { .. } => "create_api_key",
            Command::RevokeApiKey { .. } => "revoke_api_key",
            Command::CreateMerchant { .. } => "create_merchant",
            Command::CreateBuyer { .. } => "create_buyer",
            Command::CreateSku(_) => "create_sku",
            Command::Restock { .. } => "restock",
            Command::TopUp { .. } => "top_up",
            Command::CreateCampaign(_) => "create_campaign",
            Command::PlaceOrder { .. } => "place_order",
            Command::PayOrder { .. } => "pay_order",
            Command::CancelOrder { .. } => "cancel_order",
            Command::RefundOrder { .. } => "refund_order",
            Command::Tick => "tick",
            Command::CreateCoupon(_) => "create_coupon",
            Command::DisableCoupon { .. } => "disable_coupon",
            Command::CreateRedPacket(_) => "create_red_packet",
            Command::CloseRedPacket { .. } => "close_red_packet",
            Command::ClaimRedPacket { .. } => "claim_red_packet",
            Command::CreateExperiment(_) => "create_experiment",
            Command::CreateWarehouse(_) => "create_warehouse",
            Command::CreateCarrier(_) => "create_carrier",
            Command::SetAddress { .. } => "set_address",
            Command::SetSkuWarehouse { .. } => "set_sku_warehouse",
            Command::SetShippingFee { .. } => "set_shipping_fee",
            Command::DispatchShipment { .. } => "dispatch_shipment",
            Command::CancelShipment { .. } => "cancel_shipment",
            Command::RecordTracking { .. } => "record_tracking",
            Command::RefundLines { .. } => "refund_lines",
            Command::RequestReturn { .. } => "request_return",
            Command::DecideReturn { .. } => "decide_return",
            Command::ReceiveReturn { .. } => "receive_return",
            Command::RefundReturn { .. } => "refund_return",
            Command::OpenTicket { .. } => "open_ticket",
            Command::UpdateTicket { .. } => "update_ticket",
            Command::UpdateSku(_) => "update_sku",
            Command::SetCartLine { .. } => "set_cart_line",
            Command::Checkout { .. } => "checkout",
            Command::CreateNamedCampaign(_) => "create_campaign",
            Command::UpdateCampaign(_) => "update_campaign",
            Command::EndCampaign { .. } => "end_campaign",
            Command::FeatureCampaign { .. } => "feature_campaign",
            Command::ReplyTicket { .. } => "reply_ticket",
            Command::CreateLabelledApiKey { .. } => "create_api_key",
            Command::SetStoreZone { .. } => "set_store_zone",
            Command::NoteOrder { .. } => "note_order",
            Command::CreateCategory { .. } => "create_category",
            Command::MoveCategory { .. } => "move_category",
            Command::CreateProduct(_) => "create_product",
            Command::AddVariant { .. } => "add_variant",
            Command::MoveProduct { .. } => "move_product",
        }
    }
}

/// What a successful command returns. Stored with its idempotency key, so a repeat returns
/// exactly this, whatever happened to the entities since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    ApiKeyCreated {
        key: ApiKeyId,
    },
    ApiKeyRevoked {
        key: ApiKeyId,
    },
    MerchantCreated {
        merchant: MerchantId,
    },
    BuyerCreated {
        buyer: BuyerId,
    },
    SkuCreated {
        sku: SkuId,
        initial_stock: u64,
    },
    Restocked {
        sku: SkuId,
        received: u64,
    },
    ToppedUp {
        transfer: TransferId,
        balance: i64,
    },
    CampaignCreated {
        campaign: CampaignId,
    },
    OrderPlaced {
        order: OrderId,
        total: Amount,
        expires_at: Millis,
    },
    OrderPaid {
        order: OrderId,
        total: Amount,
        commission: Amount,
    },
    OrderCancelled {
        order: OrderId,
    },
    OrderRefunded {
        order: OrderId,
        amount: Amount,
        restocked: bool,
    },
    Ticked {
        expired: u32,
        closed: u32,
        /// Parcels booked again because they missed their day, and tickets opened.
        repromised: u32,
        tickets: u32,
    },
    CouponCreated {
        coupon: CouponId,
    },
    CouponDisabled {
        coupon: CouponId,
    },
    RedPacketCreated {
        packet: RedPacketId,
    },
    RedPacketClosed {
        packet: RedPacketId,
        returned: Amount,
    },
    /// The buyer is the transfer's credit side (kept out of here: outcomes are remembered per
    /// idempotency key, so every byte counts).
    RedPacketClaimed {
        packet: RedPacketId,
        amount: Amount,
        transfer: TransferId,
    },
    ExperimentCreated {
        experiment: ExperimentId,
    },
    WarehouseCreated {
        warehouse: WarehouseId,
    },
    CarrierCreated {
        carrier: CarrierId,
    },
    AddressSet {
        buyer: BuyerId,
    },
    SkuWarehouseSet {
        sku: SkuId,
        warehouse: WarehouseId,
    },
    ShippingFeeSet {
        merchant: MerchantId,
        fee: Amount,
    },
    ShipmentDispatched {
        shipment: ShipmentId,
    },
    ShipmentCancelled {
        shipment: ShipmentId,
    },
    TrackingRecorded {
        recorded: u32,
        duplicates: u32,
    },
    LinesRefunded {
        order: OrderId,
        amount: Amount,
    },
    ReturnRequested {
        ret: ReturnId,
    },
    ReturnDecided {
        ret: ReturnId,
        approved: bool,
    },
    ReturnReceived {
        ret: ReturnId,
    },
    ReturnRefunded {
        ret: ReturnId,
        amount: Amount,
    },
    TicketOpened {
        ticket: TicketId,
    },
    /// `at`: when, so the answer shows the ticket as of this change.
    TicketUpdated {
        ticket: TicketId,
        status: TicketStatus,
        at: Millis,
    },
    SkuUpdated {
        sku: SkuId,
    },
    /// The cart has `lines` lines now.
    CartChanged {
        buyer: BuyerId,
        lines: u32,
    },
    CategoryCreated {
        category: CategoryId,
    },
    CategoryMoved {
        category: CategoryId,
    },
    ProductCreated {
        product: ProductId,
    },
    VariantAdded {
        product: ProductId,
        sku: SkuId,
    },
    ProductMoved {
        product: ProductId,
    },
    /// Orders `first` to `first + orders - 1`, placed and paid; `total` is their sum.
    CheckedOut {
        first: OrderId,
        orders: u32,
        total: Amount,
    },
    CampaignUpdated {
        campaign: CampaignId,
    },
    /// Cancelled before it started, or ended early.
    CampaignEnded {
        campaign: CampaignId,
    },
    CampaignFeatured {
        campaign: Option<CampaignId>,
    },
    TicketReplied {
        ticket: TicketId,
    },
    StoreZoneSet {
        merchant: MerchantId,
    },
    /// The note's place among the order's notes (from 1).
    OrderNoted {
        order: OrderId,
        note: u32,
    },
}
