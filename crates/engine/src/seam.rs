//! The one seam where commands go: what the HTTP floor, the admission gate and the bench talk
//! to. Submit items (writes with their idempotency keys, reads) and get their results once the
//! writes are durable; read at a position (`durable_seq`, `wait_durable`); follow the feed.
//!
//! [`EngineHandle`] implements it for one sequencer, whichever journal is below it (the data
//! directory's, or a NATS JetStream stream: replication happens under the sequencer, so a
//! replicated node takes commands exactly as an embedded one does and refuses them while it
//! does not lead). A shard router, routing each command to the engine that owns its keys, is
//! another implementation; nothing above this trait changes for it.

use crate::engine::{EngineHandle, Item, ItemResult, Overloaded};
use elevens_feed::Feed;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// A future the seam returns (boxed, so the trait stays object-safe).
pub type Waiting<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where commands go and reads are answered. See the module documentation.
pub trait Commands: Send + Sync + 'static {
    /// Queues items without waiting; the receiver yields their results, in order, once the
    /// writes among them are durable. Gives the items back when the queue is full.
    fn submit_or_return(
        &self,
        items: Vec<Item>,
    ) -> Result<tokio::sync::oneshot::Receiver<Vec<ItemResult>>, Vec<Item>>;

    /// [`Commands::submit_or_return`] for a caller that answers a full queue with 503.
    fn submit(
        &self,
        items: Vec<Item>,
    ) -> Result<tokio::sync::oneshot::Receiver<Vec<ItemResult>>, Overloaded> {
        self.submit_or_return(items).map_err(|_| Overloaded)
    }

    /// Whether writes are taken here now.
    fn writable(&self) -> bool;

    /// The position a read here sees: the last record durable and applied.
    fn durable_seq(&self) -> u64;

    /// Waits at most `wait` for position `seq`; whether it was reached.
    fn wait_durable(&self, seq: u64, wait: Duration) -> Waiting<'_, bool>;

    /// Submissions waiting, and how many may wait: the gate sheds before the queue is full.
    fn queue_len(&self) -> usize;
    fn queue_capacity(&self) -> usize;

    /// The slowest submission of the last group commit, in ns (the gate's latency sample).
    fn latency(&self) -> Arc<AtomicU64>;

    /// The event feed's readers.
    fn feed(&self) -> &Feed;

    /// Waits (bounded) until the feed holds the events of every command answered before it.
    fn feed_caught_up(&self) -> Waiting<'_, ()>;
}

impl Commands for EngineHandle {
    fn submit_or_return(
        &self,
        items: Vec<Item>,
    ) -> Result<tokio::sync::oneshot::Receiver<Vec<ItemResult>>, Vec<Item>> {
        self.enqueue(items)
    }

    fn writable(&self) -> bool {
        EngineHandle::writable(self)
    }

    fn durable_seq(&self) -> u64 {
        EngineHandle::durable_seq(self)
    }

    fn wait_durable(&self, seq: u64, wait: Duration) -> Waiting<'_, bool> {
        Box::pin(EngineHandle::wait_durable(self, seq, wait))
    }

    fn queue_len(&self) -> usize {
        EngineHandle::queue_len(self)
    }

    fn queue_capacity(&self) -> usize {
        EngineHandle::queue_capacity(self)
    }

    fn latency(&self) -> Arc<AtomicU64> {
        EngineHandle::latency(self)
    }

    fn feed(&self) -> &Feed {
        &self.feed
    }

    fn feed_caught_up(&self) -> Waiting<'_, ()> {
        Box::pin(EngineHandle::feed_caught_up(self))
    }
}
