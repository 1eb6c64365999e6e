//! elevens-replication: the journal carried by NATS JetStream.
//!
//! One node leads: it publishes each group commit as one frame ([`frame`]) to a replicated
//! stream, fenced by the stream's expected last sequence, and answers only once the quorum has
//! stored it. The others follow the stream and apply it. Leadership is a lease in a NATS KV
//! bucket ([`nats`]). No consensus is written here: the stream's own (JetStream's Raft) orders
//! and keeps the frames, and elevens checks every frame it reads back.

pub mod frame;
pub mod nats;

pub use frame::{Chain, Encoder, Frame, Hash, Position, Refused, Sealed};
pub use nats::{Appended, Nats, NatsError, Options};
