//! The engine on a replicated journal: NATS JetStream carries the group commits, one node leads.
//!
//! ```text
//!  leader:   sequencer ──Durable──▶ writer ──frames, expected last seq──▶ JetStream (R=3)
//!                                     │                                      │ acks (quorum stored)
//!                                     └──pending frames──▶ acker ◀───────────┘ ──▶ replies
//!  follower: JetStream ──ordered consumer──▶ follower (checks the chain) ──Replicated──▶ sequencer
//!  both:     lease task: takes, renews or waits out the lease in the KV bucket
//! ```
//!
//! The leader's writer publishes each batch as frames without waiting, each expecting the
//! stream's last sequence to be the one before it; the acker waits for the acknowledgements in
//! order and only then answers (several group commits in flight, bounded by the channel between
//! them). The expected sequence is the fence: once another node has appended, this one's
//! appends fail, and it stops without answering (its memory holds commands that never became
//! durable, so it exits and comes back as a follower).
//!
//! A follower applies only frames that pass the chain's checks ([`elevens_replication::frame`]).
//! It takes the lease only when nobody holds it and it has applied the stream to its end; it then
//! publishes a fence frame (no commands) expecting the last sequence it applied, and leads once
//! that is stored: a deposed leader's late append makes the fence fail instead.

use crate::engine::{spawn_named, Control, Durable, EngineHandle, JournalOut, RecoveryReport, StartError};
use bytes::Bytes;
use elevens_core::{Envelope, State};
use elevens_journal::SnapshotStore;
use elevens_replication::nats::{acknowledged, Appended};
use elevens_replication::{frame, Chain, Encoder, Frame, Nats, Options, Position, Refused};
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The exit code of a node that lost the lead (EX_TEMPFAIL): its supervisor starts it again,
/// and it comes back as a follower.
pub const EXIT_DEPOSED: i32 = 75;
/// Batches published and waiting for their acknowledgements, at most.
const IN_FLIGHT_BATCHES_MAX: usize = 8;
/// How often a held lease is renewed, as a fraction of its time to live.
const RENEWALS_PER_TTL: u32 = 5;
/// How long a follower waits for the next message of a stream known to go further before it
/// reads the missing ones directly.
const FOLLOW_STALL: Duration = Duration::from_millis(300);
/// How often a leader makes sure its own NATS server leads none of the Raft groups on its path
/// (see `Nats::lead_elsewhere`), the first time one round after it took the lease: a Raft leader
/// elected a moment ago (the machine just lost led the group) counts a replica that died with
/// that machine as heard from at its election, and a step-down to it waits out NATS's election.
const PLACEMENT_EVERY: Duration = Duration::from_secs(2);
/// How often a standby looks whether the lease is free, at most: a lapsed lease is taken at
/// most this long after it lapses (plus the time to store the fence).
const LEASE_POLL: Duration = Duration::from_millis(100);
/// How long a publish whose acknowledgement failed waits before it is asked again, at most.
const REPUBLISH_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long a new leader keeps publishing its fence while the stream has no Raft leader (a
/// NATS election waits out 4 to 9 s), before it gives the lease up by stopping: a fence never
/// stored is sent again under the same id and expected sequence, so the retries cannot append
/// twice, and a stream another node moved refuses it at once.
const FENCE_RETRY_FOR: Duration = Duration::from_secs(10);
/// How long the lease's loop waits for the stream's last sequence: with the stream's Raft
/// leader lost the question goes unanswered, and a standby must still read the lease in time.
const LAST_SEQ_WAIT: Duration = Duration::from_millis(300);
/// How many times a follower reads a damaged message again before it refuses it: the copy it
/// got may be a minority replica's.
const DAMAGED_REREADS: u32 = 3;
/// A follower hands the engine the commands of the messages already received, up to this many
/// at a time: each hand-over wakes the sequencer's thread, so a catching-up node batches them.
const FOLLOW_BATCH_COMMANDS_MAX: usize = 4_096;
/// Messages a follower reads one by one when its consumer stalls, before it follows the stream
/// again from there with a new consumer: a direct read is a round trip each.
const DIRECT_READS_MAX: u64 = 64;

/// A replicated node's role and place, for `/v1/cluster`, `/metrics` and the gateway.
pub struct ReplicaStatus {
    /// The node's name in the lease: its HTTP address.
    pub node: String,
    leading: Arc<AtomicBool>,
    /// The leader's publishes fail (no quorum): new writes are refused until one succeeds.
    pub(crate) publish_stalled: AtomicBool,
    /// The leader could not renew its lease within its time to live.
    pub(crate) lease_stalled: AtomicBool,
    /// The lease's revision this node leads with.
    pub term: AtomicU64,
    /// The last stream message applied (or refused) here, and the stream's last as last seen.
    pub stream_applied: AtomicU64,
    pub stream_last: AtomicU64,
    /// Messages of the stream refused by the chain's checks.
    pub refused_frames: AtomicU64,
    /// Why this node stopped following, if it did.
    pub halted: Mutex<Option<String>>,
    /// The lease holder's address, as last read.
    pub leader: Mutex<Option<String>>,
}

impl ReplicaStatus {
    pub fn role(&self) -> &'static str {
        if self.leading.load(Ordering::Acquire) {
            "leader"
        } else if self.halted.lock().is_some() {
            "halted"
        } else {
            "follower"
        }
    }

    pub(crate) fn stalled(&self) -> bool {
        self.publish_stalled.load(Ordering::Acquire) || self.lease_stalled.load(Ordering::Acquire)
    }

    fn publish_metrics(&self) {
        let applied = self.stream_applied.load(Ordering::Relaxed);
        let last = self.stream_last.load(Ordering::Relaxed).max(applied);
        metrics::gauge!("elevens_replication_lag_messages").set((last - applied) as f64);
        metrics::gauge!("elevens_replication_leader").set(f64::from(u8::from(self.role() == "leader")));
        metrics::gauge!("elevens_replication_term").set(self.term.load(Ordering::Relaxed) as f64);
    }
}

/// The replicated journal of a starting engine: the connection, its runtime, where the state
/// recovered from the snapshot stands in the stream.
pub struct Replication {
    /// Always set but while it is being dropped.
    runtime: Option<tokio::runtime::Runtime>,
    nats: Nats,
    position: Position,
    pub status: Arc<ReplicaStatus>,
    tasks: Vec<tokio::task::AbortHandle>,
    /// The lease's revision while this node holds it, for a clean stop to give it up.
    held: Arc<AtomicU64>,
}

/// The state from the newest snapshot that knows its place in the stream (from empty if none),
/// and a connection to the stream. The stream after that place is applied by the follower.
pub fn recover(
    data_dir: &Path,
    options: &Options,
    node: String,
    leading: Arc<AtomicBool>,
    feed_from: u64,
) -> Result<(State, Replication, RecoveryReport), StartError> {
    let started = Instant::now();
    // Every command after the feed's last is applied by the sequencer, which derives its
    // events: start from a snapshot no newer than that.
    let (state, position) = snapshot_state(data_dir, feed_from)?;
    let mut report = RecoveryReport { snapshot_time: started.elapsed(), ..RecoveryReport::default() };
    report.snapshot_seq = (position.applied > 0).then_some(position.applied);
    // On a thread of its own: a start may be called from within another runtime (the server's),
    // where a runtime can be neither blocked on nor dropped.
    let connected = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("replication")
                    .enable_all()
                    .build()
                    .map_err(|e| StartError::Replication(format!("starting its runtime: {e}")))?;
                let failed = |e: elevens_replication::NatsError| StartError::Replication(e.to_string());
                let nats = runtime.block_on(Nats::connect(options.clone())).map_err(failed)?;
                let last = runtime.block_on(nats.last_seq()).map_err(failed)?;
                Ok::<_, StartError>((runtime, nats, last))
            })
            .join()
    });
    let (runtime, nats, stream_last) =
        connected.map_err(|_| StartError::Replication("connecting panicked".into()))??;
    let status = Arc::new(ReplicaStatus {
        node,
        leading,
        publish_stalled: AtomicBool::new(false),
        lease_stalled: AtomicBool::new(false),
        term: AtomicU64::new(0),
        stream_applied: AtomicU64::new(position.stream_seq),
        stream_last: AtomicU64::new(stream_last),
        refused_frames: AtomicU64::new(0),
        halted: Mutex::new(None),
        leader: Mutex::new(None),
    });
    let replication = Replication {
        runtime: Some(runtime),
        nats,
        position,
        status,
        tasks: Vec::new(),
        held: Arc::new(AtomicU64::new(0)),
    };
    Ok((state, replication, report))
}

/// The newest snapshot at or below `up_to` with its place in the stream, decoded.
fn snapshot_state(data_dir: &Path, up_to: u64) -> Result<(State, Position), StartError> {
    let snapshots = SnapshotStore::open(&data_dir.join("snapshots"))?;
    if let Some(snapshot) = snapshots.latest_at_most(up_to)? {
        let position = snapshot.meta.as_deref().and_then(Position::from_bytes);
        match (position, crate::engine::decode_on_two_cores(snapshot.bytes())) {
            (Some(position), Ok(state)) if state.applied() == position.applied => return Ok((state, position)),
            _ => tracing::warn!(seq = snapshot.seq, "the snapshot has no place in the stream or does not decode; following the stream from its start"),
        }
    }
    Ok((State::new(), Position::default()))
}

impl Drop for Replication {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background(); // may be in an async context
        }
    }
}

impl Replication {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until the replication is dropped")
    }

    /// The writer and the acker: the journal thread's part, on the stream.
    pub(crate) fn spawn_threads(
        &self,
        rx: crossbeam_channel::Receiver<Durable>,
        out: JournalOut,
    ) -> Vec<std::thread::JoinHandle<()>> {
        let (acks_tx, acks_rx) = crossbeam_channel::bounded(IN_FLIGHT_BATCHES_MAX);
        let writer = Writer {
            runtime: self.runtime().handle().clone(),
            nats: self.nats.clone(),
            status: self.status.clone(),
            position: self.position,
            term: 0,
        };
        let acker = Acker {
            runtime: self.runtime().handle().clone(),
            nats: self.nats.clone(),
            status: self.status.clone(),
            in_doubt: false,
        };
        vec![
            spawn_named("stream-writer", move || writer.run(rx, acks_tx)),
            spawn_named("stream-acker", move || acker.run(acks_rx, out)),
        ]
    }

    /// The follower and the lease's task, once the engine runs.
    pub(crate) fn start_tasks(&mut self, engine: EngineHandle) {
        let follower = Follower {
            nats: self.nats.clone(),
            engine: engine.clone(),
            status: self.status.clone(),
            chain: Chain::at(self.position),
        };
        let following = self.runtime().spawn(follower.run());
        self.tasks.push(following.abort_handle());
        let lease = Lease {
            nats: self.nats.clone(),
            engine,
            status: self.status.clone(),
            held: self.held.clone(),
            following: Some(following),
        };
        self.tasks.push(self.runtime().spawn(lease.run()).abort_handle());
    }

    /// Stops the tasks (they hold the engine's queue open): first part of a clean stop.
    pub(crate) fn stop_tasks(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }

    /// Gives the lease up once the last batch is acknowledged: last part of a clean stop.
    pub(crate) fn release(mut self) {
        let revision = self.held.load(Ordering::Acquire);
        let Some(runtime) = self.runtime.take() else { return };
        if revision > 0 {
            let released = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), self.nats.release_lease(revision)).await
            });
            match released {
                Ok(Ok(())) => tracing::info!("lease given up"),
                _ => tracing::warn!("could not give the lease up; a standby takes it when it lapses"),
            }
        }
        runtime.shutdown_timeout(Duration::from_secs(1));
    }

    /// A reader of the stream, for the auditor.
    pub(crate) fn reader(&self) -> StreamReader {
        StreamReader { runtime: self.runtime().handle().clone(), nats: self.nats.clone() }
    }
}

/// Stops this process because another node leads now; nothing more is answered from here.
fn deposed(why: &str) -> ! {
    tracing::error!(why, "no longer the leader: stopping without answering (a restart follows the stream)");
    std::process::exit(EXIT_DEPOSED)
}

/// A frame published, waiting for its acknowledgement.
struct Pending {
    bytes: Bytes,
    id: String,
    expected_last: u64,
    /// `None` if the publish itself failed: the acker publishes it again.
    ack: Option<async_nats::jetstream::context::PublishAckFuture>,
}

/// A batch whose frames are published: answered once they are all acknowledged.
struct Acking {
    batch: Durable,
    frames: Vec<Pending>,
    /// The chain's place after the batch.
    position: Position,
}

struct Writer {
    runtime: tokio::runtime::Handle,
    nats: Nats,
    status: Arc<ReplicaStatus>,
    /// Where the chain stands after the last batch handed to the acker.
    position: Position,
    term: u64,
}

impl Writer {
    fn run(mut self, rx: crossbeam_channel::Receiver<Durable>, acks: crossbeam_channel::Sender<Acking>) {
        let mut records = crate::engine::Records::default();
        while let Ok(mut batch) = rx.recv() {
            if let Some(followed) = batch.followed {
                self.position = followed;
            }
            if let Some(term) = batch.promote.take() {
                self.fence(term);
            }
            let mut frames = Vec::new();
            if !batch.changes.is_empty() {
                records.clear();
                for envelope in &batch.changes {
                    records.push(envelope);
                }
                let mut encoder = Encoder::new(self.term, &self.position);
                for sealed in encoder.frames(records.iter(), false) {
                    frames.push(self.publish(sealed));
                }
            }
            let acking = Acking { batch, frames, position: self.position };
            if acks.send(acking).is_err() {
                break;
            }
        }
    }

    /// Publishes one frame after the last, without waiting for its acknowledgement.
    fn publish(&mut self, sealed: frame::Sealed) -> Pending {
        let expected_last = self.position.stream_seq;
        let id = msg_id(&sealed.hash);
        let bytes = Bytes::from(sealed.bytes);
        let ack = match self.runtime.block_on(self.nats.publish(bytes.clone(), &id, expected_last)) {
            Ok(ack) => Some(ack),
            Err(error) => {
                tracing::warn!(%error, "publishing a frame failed; it is published again");
                None
            }
        };
        self.position = Position {
            stream_seq: expected_last + 1,
            applied: self.position.applied + u64::from(sealed.count),
            head: sealed.hash,
        };
        Pending { bytes, id, expected_last, ack }
    }

    /// Publishes a fence frame expecting the last message this node applied, and leads once it
    /// is stored. Anything else means the stream moved on without this node: it stops.
    fn fence(&mut self, term: u64) {
        let sealed = Encoder::new(term, &self.position).frames(std::iter::empty(), true).remove(0);
        let id = msg_id(&sealed.hash);
        let expected_last = self.position.stream_seq;
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        let fenced = loop {
            let attempt = self.runtime.block_on(async {
                let ack = self.nats.publish(Bytes::from(sealed.bytes.clone()), &id, expected_last).await?;
                acknowledged(ack).await
            });
            match attempt {
                Err(error) if started.elapsed() < FENCE_RETRY_FOR => {
                    tracing::warn!(%error, "the fence is not stored yet; publishing it again");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(REPUBLISH_BACKOFF_MAX);
                }
                done => break done,
            }
        };
        match fenced {
            Ok(Appended::At(seq)) => {
                self.position = Position { stream_seq: seq, head: sealed.hash, ..self.position };
                self.term = term;
                self.status.term.store(term, Ordering::Release);
                self.status.stream_applied.store(seq, Ordering::Release);
                self.status.leading.store(true, Ordering::Release);
                tracing::info!(term, stream_seq = seq, applied = self.position.applied, "leading");
            }
            Ok(Appended::Fenced) => deposed("the stream moved on between the lease and the fence"),
            Err(error) => deposed(&format!("the fence was not stored: {error}")),
        }
    }
}

/// The message id that makes a publish idempotent: the frame's hash names it exactly.
fn msg_id(hash: &frame::Hash) -> String {
    hex::encode(&hash[..16])
}

struct Acker {
    runtime: tokio::runtime::Handle,
    nats: Nats,
    status: Arc<ReplicaStatus>,
    /// An acknowledgement failed since the last one that came on the first try: a later
    /// frame's refusal for the wrong last sequence may be that earlier frame stored late.
    in_doubt: bool,
}

impl Acker {
    fn run(mut self, rx: crossbeam_channel::Receiver<Acking>, out: JournalOut) {
        while let Ok(first) = rx.recv() {
            let mut slowest = Duration::ZERO;
            let mut next = Some(first);
            while let Some(Acking { batch, frames, position }) = next {
                for frame in frames {
                    self.confirm(frame);
                }
                out.durable_seq.store(position.applied, Ordering::Release);
                self.status.stream_applied.store(position.stream_seq, Ordering::Release);
                out.deliver(batch, position.applied, Some(&position), &mut slowest);
                next = rx.try_recv().ok();
            }
        }
    }

    /// Waits until the frame is stored, publishing it again (same id, same expected last
    /// sequence) while the quorum does not answer; stops the process if another node appended.
    fn confirm(&mut self, mut frame: Pending) {
        let mut backoff = Duration::from_millis(50);
        for attempt in 0u64.. {
            let outcome = match frame.ack.take() {
                Some(ack) => self.runtime.block_on(acknowledged(ack)),
                None => {
                    Err(elevens_replication::NatsError::Call { what: "publishing", why: "not sent".into() })
                }
            };
            match outcome {
                Ok(Appended::At(_)) => {
                    if attempt == 0 {
                        self.in_doubt = false;
                    }
                    self.status.publish_stalled.store(false, Ordering::Release);
                    return;
                }
                Ok(Appended::Fenced) if attempt == 0 && self.in_doubt => {}
                Ok(Appended::Fenced) => deposed("another node appended to the stream"),
                Err(error) => {
                    self.in_doubt = true;
                    self.status.publish_stalled.store(true, Ordering::Release);
                    metrics::counter!("elevens_replication_publish_retries_total").increment(1);
                    tracing::warn!(%error, attempt, "a frame is not acknowledged; publishing it again");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(REPUBLISH_BACKOFF_MAX);
                }
            }
            frame.ack = self
                .runtime
                .block_on(self.nats.publish(frame.bytes.clone(), &frame.id, frame.expected_last))
                .ok();
        }
    }
}

struct Follower {
    nats: Nats,
    engine: EngineHandle,
    status: Arc<ReplicaStatus>,
    chain: Chain,
}

impl Follower {
    async fn run(mut self) {
        loop {
            let messages = match self.nats.follow(self.chain.position.stream_seq).await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(%error, "cannot follow the stream; trying again");
                    // No consumer to be had (JetStream's meta leader may be electing): read
                    // what is there meanwhile.
                    if !self.catch_up_directly(u64::MAX).await {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            tracing::debug!(after = self.chain.position.stream_seq, "following the stream");
            let mut messages = std::pin::pin!(messages);
            loop {
                let message = match tokio::time::timeout(FOLLOW_STALL, messages.next()).await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    // Nothing comes though the stream is known to go further: the consumer may
                    // be on a server that died. What is missing is read directly, from any
                    // replica, and the stream followed again from there.
                    Err(_)
                        if self.status.stream_last.load(Ordering::Acquire)
                            > self.chain.position.stream_seq =>
                    {
                        if !self.catch_up_directly(DIRECT_READS_MAX).await {
                            return;
                        }
                        break;
                    }
                    Err(_) => continue,
                };
                let (seq, bytes) = match message {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%error, "following the stream failed; following it again");
                        break;
                    }
                };
                // With the messages already received: one hand-over for all of them.
                let mut envelopes = Vec::new();
                let mut next = Some((seq, bytes));
                let mut failed = false;
                while let Some((seq, bytes)) = next.take() {
                    if seq > self.chain.position.stream_seq {
                        match self.take(seq, bytes).await {
                            Some(commands) => envelopes.extend(commands),
                            None => {
                                self.hand_over(envelopes);
                                return;
                            }
                        }
                    }
                    if envelopes.len() >= FOLLOW_BATCH_COMMANDS_MAX {
                        break;
                    }
                    match messages.next().now_or_never() {
                        Some(Some(Ok(message))) => next = Some(message),
                        Some(Some(Err(error))) => {
                            tracing::warn!(%error, "following the stream failed; following it again");
                            failed = true;
                        }
                        Some(None) => failed = true,
                        None => {}
                    }
                }
                if !self.hand_over(envelopes) {
                    return;
                }
                if failed {
                    break;
                }
            }
        }
    }

    /// Applies the message at `seq` (or skips it, refused); `false` when this node stops
    /// following (the chain cannot go on, or the engine stopped).
    async fn apply(&mut self, seq: u64, bytes: Bytes) -> bool {
        match self.take(seq, bytes).await {
            Some(envelopes) => self.hand_over(envelopes),
            None => false,
        }
    }

    /// Hands commands the chain accepted to the engine, with the chain's place after them
    /// (which moves even without commands: a fence, a refused message); `false` once the
    /// engine is gone.
    fn hand_over(&self, envelopes: Vec<Envelope>) -> bool {
        let control = Control::Replicated { envelopes, position: self.chain.position };
        match self.engine.try_control(control) {
            Ok(sent) => sent,
            // The engine's queue is full: wait for it, off the runtime's worker.
            Err(control) => tokio::task::block_in_place(|| self.engine.control(control)),
        }
    }

    /// Reads and applies, one by one, the messages between the chain's place and the stream's
    /// last as last seen, at most `max` of them; stops at the first that cannot be read (`true`:
    /// go on following).
    async fn catch_up_directly(&mut self, max: u64) -> bool {
        let last = self
            .status
            .stream_last
            .load(Ordering::Acquire)
            .min(self.chain.position.stream_seq.saturating_add(max));
        while self.chain.position.stream_seq < last {
            let seq = self.chain.position.stream_seq + 1;
            let bytes = match self.nats.get(seq).await {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::debug!(seq, %error, "a message could not be read directly");
                    return true;
                }
            };
            if !self.apply(seq, bytes).await {
                return false;
            }
        }
        true
    }

    /// The commands of the message at `seq` if it is the chain's next frame, none if it is
    /// refused (the chain then skips it); `None` when the chain cannot go on.
    async fn take(&mut self, seq: u64, mut bytes: Bytes) -> Option<Vec<Envelope>> {
        let mut rereads = 0;
        loop {
            match self.chain.accept(seq, &bytes) {
                Ok(frame) => match envelopes(&frame) {
                    Ok(envelopes) => return Some(envelopes),
                    Err(why) => {
                        self.halt(format!("stream message {seq}: {why}"));
                        return None;
                    }
                },
                Err(Refused::Damaged(_)) if rereads < DAMAGED_REREADS => {
                    rereads += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Ok(again) = self.nats.get(seq).await {
                        bytes = again;
                    }
                }
                Err(refused @ Refused::Gap { .. }) => {
                    self.halt(format!("stream message {seq}: {refused}"));
                    return None;
                }
                Err(refused) => {
                    self.status.refused_frames.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("elevens_replication_refused_frames_total").increment(1);
                    tracing::error!(seq, %refused, "a stream message fails elevens' checks; not applied");
                    self.chain.position.stream_seq = seq;
                    return Some(Vec::new());
                }
            }
        }
    }

    fn halt(&self, why: String) {
        tracing::error!(why, "the stream cannot be applied past here; this node stops following");
        *self.status.halted.lock() = Some(why);
    }
}

struct Lease {
    nats: Nats,
    engine: EngineHandle,
    status: Arc<ReplicaStatus>,
    held: Arc<AtomicU64>,
    following: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    async fn run(mut self) {
        let ttl = self.nats.options.lease_ttl;
        let renew_every = ttl / RENEWALS_PER_TTL;
        let holder = Bytes::from(self.status.node.clone());
        let mut renewed = Instant::now();
        let mut placed: Option<Instant> = None;
        let mut placement: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let held = self.held.load(Ordering::Acquire) > 0;
            // On a task of its own: its calls (a stream's info, a step-down) must never hold up
            // the lease's renewals.
            let placing = placement.as_ref().is_some_and(|task| !task.is_finished());
            if held && placed.is_none() {
                placed = Some(Instant::now());
            }
            if held && !placing && placed.is_some_and(|at| at.elapsed() >= PLACEMENT_EVERY) {
                placed = Some(Instant::now());
                placement = Some(tokio::spawn(place(self.nats.clone())));
            }
            tokio::time::sleep(if held { renew_every } else { renew_every.min(LEASE_POLL) }).await;
            match tokio::time::timeout(LAST_SEQ_WAIT, self.nats.last_seq()).await {
                Ok(Ok(last)) => self.status.stream_last.store(last, Ordering::Release),
                Ok(Err(error)) => tracing::debug!(%error, "the stream's last sequence is not known"),
                Err(_) => tracing::debug!("the stream's last sequence is not known in time"),
            }
            self.status.publish_metrics();
            let revision = self.held.load(Ordering::Acquire);
            if revision > 0 {
                match self.nats.renew_lease(holder.clone(), revision).await {
                    Ok(Some(next)) => {
                        self.held.store(next, Ordering::Release);
                        renewed = Instant::now();
                        self.status.lease_stalled.store(false, Ordering::Release);
                    }
                    Ok(None) => deposed("the lease is held by another node"),
                    Err(error) => {
                        tracing::warn!(%error, "the lease was not renewed");
                        if renewed.elapsed() >= ttl {
                            self.status.lease_stalled.store(true, Ordering::Release);
                        }
                    }
                }
                continue;
            }
            match self.nats.lease().await {
                Ok(Some((value, revision))) => {
                    tracing::debug!(
                        revision,
                        holder = %String::from_utf8_lossy(&value),
                        applied = self.status.stream_applied.load(Ordering::Acquire),
                        last = self.status.stream_last.load(Ordering::Acquire),
                        "the lease is held"
                    );
                    *self.status.leader.lock() = Some(String::from_utf8_lossy(&value).into_owned());
                }
                Ok(None) => self.try_to_lead(holder.clone()).await,
                Err(error) => tracing::warn!(%error, "the lease cannot be read"),
            }
            if self.held.load(Ordering::Acquire) > 0 {
                renewed = Instant::now();
            }
        }
    }

    /// Takes the free lease if this node has applied the whole stream, then asks the writer
    /// to fence it.
    async fn try_to_lead(&mut self, holder: Bytes) {
        if self.status.halted.lock().is_some() {
            return;
        }
        let last = self.status.stream_last.load(Ordering::Acquire);
        let applied = self.status.stream_applied.load(Ordering::Acquire);
        if applied < last {
            tracing::debug!(applied, last, "the lease is free; this node has not applied the whole stream");
            return;
        }
        let term = match self.nats.take_lease(holder).await {
            Ok(Some(term)) => term,
            Ok(None) => {
                tracing::debug!("the free lease was taken by another node first");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "the lease could not be taken");
                return;
            }
        };
        self.held.store(term, Ordering::Release);
        *self.status.leader.lock() = Some(self.status.node.clone());
        // Frames the follower read but has not handed over are lost to this node: the fence,
        // which expects the last one it applied, then fails, and the node starts again.
        if let Some(following) = self.following.take() {
            following.abort();
            let _ = following.await;
        }
        tracing::info!(term, "lease taken; fencing the stream");
        tokio::task::block_in_place(|| self.engine.control(Control::Promote { term }));
    }
}

/// Moves the Raft leaders of the journal and the lease off this node's NATS server, so the loss
/// of this machine costs a lease's time to live, not a NATS election too.
async fn place(nats: Nats) {
    match nats.lead_elsewhere().await {
        Ok(placement) if !placement.moved.is_empty() => {
            tracing::info!(server = placement.server, moved = ?placement.moved, "Raft leaders moved off this node's server");
            metrics::counter!("elevens_replication_leaders_moved_total")
                .increment(placement.moved.len() as u64);
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "the Raft leaders' placement could not be checked"),
    }
}

/// A frame's commands, decoded.
fn envelopes(frame: &Frame<'_>) -> Result<Vec<Envelope>, String> {
    frame
        .commands()
        .map(|command| postcard::from_bytes(command).map_err(|e| format!("a command does not decode: {e}")))
        .collect()
}

/// Reads the stream from a blocking thread: the audit's rebuild of the durable state.
#[derive(Clone)]
pub struct StreamReader {
    runtime: tokio::runtime::Handle,
    nats: Nats,
}

impl StreamReader {
    /// The state after command `up_to`: the newest snapshot below it, then the stream's frames,
    /// checked as a follower checks them.
    pub fn durable_state(&self, data_dir: &Path, up_to: u64) -> Result<State, StartError> {
        let (mut state, position) = snapshot_state(data_dir, up_to)?;
        let mut chain = Chain::at(position);
        let mut seq = position.stream_seq;
        while state.applied() < up_to {
            seq += 1;
            let bytes = self
                .runtime
                .block_on(self.nats.get_from_leader(seq))
                .map_err(|e| StartError::StreamUnavailable(format!("reading message {seq}: {e}")))?;
            // As a follower does: a message refused by the chain's checks is not applied.
            let Ok(frame) = chain.accept(seq, &bytes) else { continue };
            let failed = |why| StartError::Replication(format!("stream message {seq}: {why}"));
            let wanted = (up_to - state.applied()) as usize;
            for envelope in envelopes(&frame).map_err(failed)?.iter().take(wanted) {
                let next = state.applied() + 1;
                crate::engine::replay_record(&mut state, next, envelope).map_err(failed)?;
            }
        }
        Ok(state)
    }
}
