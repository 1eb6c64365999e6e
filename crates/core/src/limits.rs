//! Every bound of the state machine, as a named constant with its unit in the name.

/// The largest amount of money one command may carry: 10^15 minor units (10 trillion yuan).
/// Far above any real price, far below `i64::MAX`, so sums of a few amounts cannot overflow.
pub const AMOUNT_MAX: u64 = 1_000_000_000_000_000;
/// The largest amount one top-up may bring in: 10^12 minor units (10 billion yuan). A funding
/// source (a payment provider's confirmed deposit, an operator) moves at most this per command.
pub const TOP_UP_AMOUNT_MAX: u64 = 1_000_000_000_000;
/// The most money that may ever be brought in from outside, per currency, net of what went
/// back: 2^62 minor units. Every other balance is non-negative and all of them sum to zero, so
/// no balance anywhere can come within a factor of two of `i64`'s range: no sum overflows, and
/// a funding source that reaches the bound is refused by name (`issuance_limit_reached`).
pub const EXTERNAL_ISSUED_MAX: u64 = 1 << 62;
/// The largest stock one command may add to a SKU.
pub const STOCK_QUANTITY_MAX: u64 = 1_000_000_000;
/// The largest quantity of one order line.
pub const LINE_QUANTITY_MAX: u32 = 10_000;
/// The most orders ever placed: 2^39 - 1 (half a trillion), so that a transfer stores an
/// order's id in five bytes and a shipment's slot tells an order's id from a record's position
/// by its top bit. The most ledger transfers ever posted: 2^40 - 1. At 40 bytes a transfer that
/// is 44 TB.
pub const ORDERS_MAX: u64 = (1 << 39) - 1;
pub const TRANSFERS_MAX: u64 = (1 << 40) - 1;
/// The most merchants, so that an order names its merchant in four bytes.
pub const MERCHANTS_MAX: u64 = u32::MAX as u64;
/// The most buyers, so that an order names its buyer in four bytes.
pub const BUYERS_MAX: u64 = u32::MAX as u64;
/// The most flash-sale campaigns ever created, so that an order line names one in four bytes.
pub const CAMPAIGNS_MAX: u64 = u32::MAX as u64;
/// The most lines one order may have.
pub const ORDER_LINES_MAX: usize = 32;
/// The most lines of a cart, and of a checkout.
pub const CART_LINES_MAX: usize = 100;
/// How long a cart is kept after its last change.
pub const CART_TTL_MS: u64 = 30 * 24 * 3_600_000;
/// The most stores (so orders) one checkout spans.
pub const CHECKOUT_MERCHANTS_MAX: usize = 20;
/// The category tree: at most this many nodes, this many levels deep.
pub const CATEGORIES_MAX: usize = 10_000;
pub const CATEGORY_DEPTH_MAX: usize = 6;
/// The most products; a product's attributes, options and variants, at most.
pub const PRODUCTS_MAX: usize = 100_000_000;
pub const PRODUCT_ATTRIBUTES_MAX: usize = 16;
pub const PRODUCT_OPTIONS_MAX: usize = 3;
pub const PRODUCT_VARIANTS_MAX: usize = 100;
/// An attribute's or an option's name or value, in bytes.
pub const ATTRIBUTE_BYTES_MAX: usize = 64;
/// Names and titles, in bytes.
pub const NAME_BYTES_MAX: usize = 200;
/// SKU descriptions, in bytes.
pub const DESCRIPTION_BYTES_MAX: usize = 4_000;
/// Commission, in basis points (10,000 = 100%).
pub const COMMISSION_BPS_MAX: u16 = 10_000;
/// How long a reservation may be held before it expires.
pub const RESERVATION_TTL_MS_MIN: u64 = 1_000;
pub const RESERVATION_TTL_MS_MAX: u64 = 7 * 24 * 3_600_000;
/// How long a campaign may last.
pub const CAMPAIGN_DURATION_MS_MAX: u64 = 31 * 24 * 3_600_000;
/// How long an idempotency key is remembered, in command time.
pub const IDEMPOTENCY_RETENTION_MS: u64 = 24 * 3_600_000;
/// The most idempotency keys remembered at once; the oldest are forgotten first beyond it.
pub const IDEMPOTENCY_KEYS_MAX: usize = 20_000_000;
/// The most reservations one `ExpireReservations` command releases (bounded work per command).
pub const EXPIRE_BATCH_MAX: usize = 10_000;
/// The most ledger entries one wallet query returns.
pub const WALLET_ENTRIES_MAX: usize = 1_000;
/// How long a coupon or a red packet may run.
pub const PROMOTION_DURATION_MS_MAX: u64 = 93 * 24 * 3_600_000;
/// At most one platform and one merchant coupon on an order.
pub const COUPONS_PER_ORDER_MAX: usize = 2;
/// How many times one buyer may use one coupon, at most.
pub const COUPON_USES_PER_BUYER_MAX: u32 = 1_000;
/// The most variants of one A/B experiment.
pub const EXPERIMENT_VARIANTS_MAX: usize = 8;
/// A variant's weight, at most (weights are relative).
pub const EXPERIMENT_WEIGHT_MAX: u32 = 10_000;
/// The most shares one red packet may be split into.
pub const RED_PACKET_SHARES_MAX: u32 = 10_000_000;

// ---- logistics and after-sales ----

/// A warehouse's dispatch capacity, in parcels per day.
pub const WAREHOUSE_CAPACITY_PER_DAY_MAX: u32 = 10_000_000;
/// Warehouses per merchant (a SKU names its warehouse in one byte).
pub const WAREHOUSES_PER_MERCHANT_MAX: usize = 255;
/// Warehouses in all.
pub const WAREHOUSES_MAX: u64 = u32::MAX as u64;
/// Carriers (a shipment names its carrier in two bytes; 0 is none).
pub const CARRIERS_MAX: usize = u16::MAX as usize - 1;
/// Lanes of one carrier.
pub const LANES_PER_CARRIER_MAX: usize = 1_024;
/// Distinct region codes (interned in two bytes; the last value means "none").
pub const REGIONS_MAX: usize = u16::MAX as usize - 1;
/// A region code, in bytes.
pub const REGION_BYTES_MAX: usize = 32;
/// A delivery address, in bytes.
pub const ADDRESS_BYTES_MAX: usize = 500;
/// Closed dates (holidays) of one warehouse.
pub const CLOSED_DAYS_MAX: usize = 366;
/// The longest transit time a lane may state, in days.
pub const TRANSIT_DAYS_MAX: u16 = 60;
/// How far ahead a dispatch slot is searched for, in days; a warehouse booked solid that far
/// refuses payments for its SKUs (`no_dispatch_capacity`).
pub const BOOKING_HORIZON_DAYS: u32 = 365;
/// A shipping fee, in minor units.
pub const SHIPPING_FEE_MAX: u64 = 1_000_000_000;
/// The farthest a store's or a warehouse's clock is from UTC, in minutes either way (UTC+14:00
/// is the world's earliest zone; 14 hours covers UTC-12:00 too).
pub const UTC_OFFSET_MINUTES_MAX: u16 = 14 * 60;
/// Tracking events in one command (a carrier's feed sends them in batches).
pub const TRACKING_EVENTS_PER_COMMAND_MAX: usize = 5_000;
/// History records (tracking events and re-promises) of one shipment.
pub const HISTORY_PER_SHIPMENT_MAX: usize = 64;
/// How far in the future a carrier's event time may be, for clock skew.
pub const TRACKING_CLOCK_SKEW_MS: u64 = 3_600_000;
/// Return requests ever made.
pub const RETURNS_MAX: u64 = (1 << 40) - 1;
/// Service tickets ever opened.
pub const TICKETS_MAX: u64 = (1 << 40) - 1;
/// Tickets a buyer may open on one order.
pub const TICKETS_PER_ORDER_MAX: u32 = 8;
/// A ticket's subject, in bytes.
pub const TICKET_SUBJECT_BYTES_MAX: usize = 500;
/// The longest message of a ticket's conversation, in bytes.
pub const TICKET_MESSAGE_BYTES_MAX: usize = 2_000;
/// The most messages a ticket's conversation holds (so a ticket is at most ~100 KB).
pub const TICKET_MESSAGES_MAX: usize = 50;
/// A note a store keeps on an order, in bytes.
pub const ORDER_NOTE_BYTES_MAX: usize = 1_000;
/// The most notes one order keeps (so an order's notes are at most ~20 KB).
pub const ORDER_NOTES_MAX: usize = 20;
/// How long a merchant has to answer a new ticket.
pub const TICKET_FIRST_RESPONSE_MS: u64 = 24 * 3_600_000;
