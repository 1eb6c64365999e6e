//! The event feed: what the rest of a marketplace's systems read to learn what happened.
//!
//! Every command that changed the state yields its events (`event::derive`, a pure read of the
//! state just after the command, on the sequencer): the one derivation of what happened, which
//! the live figures (`elevens-analytics`) and the search index fold as well. They reach [`FeedWriter`] only once their
//! command is durable, and take the next positions in order: position `n` is the `n`-th event
//! since the first command, on every node and after every restart, because the derivation is
//! deterministic and a restart derives again the events of the commands the log had not yet
//! taken (`FeedWriter::last_record`). The log (`log.rs`) keeps them on disk in segments, drops
//! whole segments past its retention, and serves reads by position.

pub mod event;
pub mod log;

pub use event::{
    derive, experiment_created, order_lines, Attribute, Code, ExperimentVariant, FeedEvent, Kind, LineItem,
    Lines, Listed, StockReason, LOG_FORMAT, TYPES, VERSION,
};
pub use log::{Feed, FeedError, FeedWriter, Filter, Page, Retention};
