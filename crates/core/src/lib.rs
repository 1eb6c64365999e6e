//! elevens-core: the domain and the state machine of the elevens marketplace engine.
//!
//! A command goes in as a plain value ([`Envelope`]), an [`Outcome`] or a [`CoreError`] comes
//! out. This crate must never do I/O, read a clock, spawn a thread or use async: time and ids
//! come in with the command, so that replaying the same commands gives the same state, bit for
//! bit ([`State::digest`]).

// `ok_or_else(|| CoreError::…)` where clippy would take `ok_or(…)`: an eager error is built and
// dropped (drop glue: some variants hold a `String`) on every lookup that succeeds, the hot path's
// common case (`bench/budget.py` counts it).
#![allow(clippy::unnecessary_lazy_evaluations)]

pub mod audit;
pub mod catalogue;
pub mod checkout;
pub mod chunked;
pub mod command;
pub mod error;
pub mod footprint;
mod hint;
pub mod idempotency;
pub mod key_index;
pub mod keys;
pub mod ledger;
pub mod limits;
pub mod logistics;
pub mod orders;
pub mod products;
pub mod promotions;
mod reservations;
mod runs;
pub mod state;
mod texts;
pub mod types;

pub use audit::{AuditReport, Check};
pub use catalogue::Sku;
pub use command::{
    CampaignEdit, Command, DiscountRule, Envelope, Idempotency, LineRequest, NamedCampaign, NewCampaign,
    NewCarrier, NewCoupon, NewExperiment, NewLane, NewRedPacket, NewSku, NewTrackingEvent, NewWarehouse,
    Outcome, Role, SkuEdit, Variant,
};
pub use error::{CoreError, ErrorKind};
pub use footprint::Footprint;
pub use idempotency::IdempotencyStore;
pub use ledger::{Owner, TransferKind};
pub use orders::{Order, OrderDiscount, OrderLine, OrderStatus};
pub use promotions::Campaign;
pub use promotions::{Coupon, RedPacket};
pub use state::{Applied, EncodedState, State, TickNotice};
pub use types::*;
