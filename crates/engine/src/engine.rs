//! The sequencer and the journal writer: the only two threads that touch the state and the disk.
//!
//! ```text
//! gateway ──Submission──▶ sequencer thread ──Durable──▶ journal thread ──replies──▶ gateway
//!          (bounded)      stamps time, applies          writes the batch, one
//!                         commands in order,            fdatasync, then sends
//!                         renders replies               every reply of the batch
//! ```
//!
//! With a replicated journal, `replicated.rs` takes the journal thread's place (a writer and an
//! acker on the stream) and feeds a follower's sequencer from the stream ([`Control`]).
//!
//! The state machine runs on one thread, the disk on the other, so applying batch N+1 overlaps
//! the fsync of batch N (2 cores: one each). A reply leaves only after its batch is durable, and
//! reads wait with the writes of their batch, so nothing is ever seen before it is durable.
//!
//! The read models (analytics, search) are fed by a third thread from each durable batch's
//! events, off the path of the replies; a reader of the figures first waits until the batches
//! made durable before its request are folded ([`EngineHandle::read_models_caught_up`]), so a
//! client still reads its own orders in the figures.

use crate::auth::KeyCache;
use crate::config::Config;
use crate::snapshotter::{self, WritingChild};
use elevens_analytics::Analytics;
use elevens_core::{
    Actor, Applied, Command, CoreError, EncodedState, Envelope, Idempotency, Millis, Outcome, State,
};
use elevens_feed::{Feed, FeedEvent, FeedWriter};
use elevens_journal::{Journal, JournalError, JournalOptions, Recovered, SnapshotStore};
use elevens_replication::Position;
use elevens_search::owners::Owners;
use elevens_search::Search;
use elevens_views::{self as views, Query, View};
use parking_lot::{Mutex, RwLock};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A batch or an fsync slower than this is logged: it is what shows as a p99.9 stall.
const SLOW: Duration = Duration::from_millis(50);
/// A batch takes no further submission once it has run this long: with commands of uneven
/// weight (a carrier's 5,000 tracking events are one command) a count alone let a batch run
/// past the brief's 50 ms. Checked between submissions (one clock read each), so a batch ends
/// within one submission's work of it.
const BATCH_TIME_MAX: Duration = Duration::from_millis(20);
/// How many commands ahead the sequencer prefetches idempotency slots: enough to cover a miss
/// (~100 ns) with the commands in between (~1 µs each), few enough that the lines stay cached.
const PREFETCH_AHEAD: usize = 4;
/// How long a start waits for the data directory's lock (see `lock_data_dir`).
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long a reader of the figures waits for the read models to catch up.
const READ_MODELS_WAIT: Duration = Duration::from_secs(1);
/// Durable batches of feed events waiting for the feed thread; past it the journal thread waits.
const FEED_QUEUE_MAX: usize = 32;
/// How often the feed thread makes what it appended durable.
const FEED_SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// Durable batches of events waiting for the read-model thread; past it the journal thread waits.
/// 32 batches are up to 524,288 events, ~200 ms of the flash workload at its fastest. At 256, a
/// catalogue import (slow to index) queued up to 2.56 M events, and the allocator kept their
/// memory after: 4 M SKUs read 130-150 bytes per SKU, 110-111 at 32 (`elevens bench --skus
/// 4000000 --duration 1`); flash in-process unchanged (A/B, 8 s: 1,495,715 / 1,583,386 orders/s
/// at 256, 1,555,675 / 1,577,637 at 32).
const READ_MODEL_QUEUE_MAX: usize = 32;

/// One request for the sequencer.
pub enum Item {
    Write { actor: Actor, idempotency: Option<Idempotency>, command: Command, reply: ReplyWith },
    Read { actor: Actor, query: Query },
}

/// How a write is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyWith {
    /// The entity as the JSON API shows it, rendered on the sequencer from the state.
    View,
    /// The outcome alone (the binary batch, in-process callers): nothing rendered on the
    /// sequencer, a few fixed fields to send.
    Outcome,
}

/// A read's view, or a write's view or outcome (as its item asked). The view is boxed: it is
/// six times an outcome's size, and every result of a batch took its size (192 bytes; 2,000
/// results written on the sequencer per submission, most of them outcomes).
#[derive(Debug)]
pub enum Reply {
    View(Box<View>),
    Outcome(Outcome),
}

pub type ItemResult = Result<Reply, CoreError>;

/// Items that are applied together, in order, with one reply once they are durable.
pub struct Submission {
    pub items: Vec<Item>,
    pub reply: tokio::sync::oneshot::Sender<Vec<ItemResult>>,
    enqueued: std::time::Instant,
    /// What the replication shell asks of the sequencer (never a client).
    control: Option<Control>,
}

/// The replication shell's requests, queued in order with the clients' submissions.
pub(crate) enum Control {
    /// Commands the leader made durable in the stream, to apply as they are: a follower's
    /// part. `position` is the chain's place after them.
    Replicated { envelopes: Vec<Envelope>, position: Position },
    /// This node holds the lease as of `term`: the journal's writer fences the stream, then
    /// the node leads.
    Promote { term: u64 },
}

/// The encoded records of a batch, back to back in one buffer (no allocation per command).
/// Encoded on the journal thread, which waits on the disk most of the time, rather than on the
/// sequencer, which is the engine's bottleneck.
#[derive(Default)]
pub(crate) struct Records {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Records {
    pub(crate) fn push(&mut self, envelope: &Envelope) {
        // Encoding plain data into a Vec cannot fail.
        let bytes = std::mem::take(&mut self.bytes);
        self.bytes = postcard::to_extend(envelope, bytes).unwrap_or_default();
        self.ends.push(self.bytes.len());
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(start, end)| &self.bytes[start..end])
    }
}

/// A group commit: what the journal thread makes durable before it sends the replies.
pub(crate) struct Durable {
    /// The commands that changed the state, in order: the journal's records once encoded.
    pub(crate) changes: Vec<Envelope>,
    /// What the event feed, then the read models, take once the batch is durable.
    feed: Vec<FeedEvent>,
    replies: Vec<(tokio::sync::oneshot::Sender<Vec<ItemResult>>, Vec<ItemResult>, std::time::Instant)>,
    /// A snapshot being written by a forked child, to publish once this batch is durable.
    snapshot: Option<WritingChild>,
    /// Replicated: the stream's place after the frames this batch applied (they are durable
    /// already), and a lease to lead with.
    pub(crate) followed: Option<Position>,
    pub(crate) promote: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot use the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("the data directory {0} is in use by another elevens process")]
    Locked(String),
    #[error("building the search index: {0}")]
    Search(#[from] elevens_search::SearchError),
    #[error("the replicated journal: {0}")]
    Replication(String),
    /// The stream's servers cannot answer a read now (no quorum, or a leader being elected):
    /// asked again later, it may succeed; nothing read was wrong.
    #[error("the replicated journal cannot be read now: {0}")]
    StreamUnavailable(String),
    #[error("the event feed: {0}")]
    Feed(#[from] elevens_feed::FeedError),
}

/// Takes the data directory's lock file for as long as the returned file lives, so that two
/// processes never write one journal.
pub fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StartError> {
    let error = |source| StartError::DataDir { path: data_dir.display().to_string(), source };
    std::fs::create_dir_all(data_dir).map_err(error)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join("LOCK"))
        .map_err(error)?;
    // A process killed with SIGKILL releases its lock only after the kernel has unmapped its
    // memory (gigabytes: a second or more), so a supervisor's immediate restart would find the
    // directory still locked: wait a bounded time for it.
    let waiting_since = std::time::Instant::now();
    let mut waited = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if waiting_since.elapsed() < LOCK_WAIT => {
                if !std::mem::replace(&mut waited, true) {
                    tracing::info!("the data directory is locked; waiting for its last user to exit");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StartError::Locked(data_dir.display().to_string()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(error(e)),
        }
    }
}

/// What recovery found, for the start-up log.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    pub snapshot_seq: Option<u64>,
    pub journal: Recovered,
    /// Where a start's time went: loading the snapshot, the journal (checking it and replaying
    /// its tail), rebuilding the read models (API keys, analytics, search).
    pub snapshot_time: Duration,
    pub journal_time: Duration,
    pub read_models_time: Duration,
}

pub fn now_ms() -> Millis {
    Millis(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
}

/// What runs on a thread as it starts (`true`) and stops (`false`) filling the state's large
/// tables: the sequencer, and a restart's decoding and replay. Set once by the binary, whose
/// allocator prefaults large blocks for those threads only (elsewhere, e.g. a search index's
/// growing buffers, prefaulting made unused capacity resident: 40 bytes more per SKU).
static TABLE_THREAD_HOOK: OnceLock<fn(bool)> = OnceLock::new();

/// Sets [`TABLE_THREAD_HOOK`]; once per process, later calls are ignored.
pub fn on_table_threads(hook: fn(bool)) {
    let _ = TABLE_THREAD_HOOK.set(hook);
}

/// This thread fills the state's tables until the guard drops.
fn filling_tables() -> impl Drop {
    struct Filling;
    impl Drop for Filling {
        fn drop(&mut self) {
            if let Some(hook) = TABLE_THREAD_HOOK.get() {
                hook(false);
            }
        }
    }
    if let Some(hook) = TABLE_THREAD_HOOK.get() {
        hook(true);
    }
    Filling
}

/// Rebuilds the state from the data directory: the latest sound snapshot (unless
/// `use_snapshot` is false, then from empty) and the journal after it.
pub fn recover(
    data_dir: &Path,
    options: JournalOptions,
    use_snapshot: bool,
) -> Result<(State, Journal, RecoveryReport), StartError> {
    recover_feeding(data_dir, options, use_snapshot, None)
}

/// [`recover`], deriving the events of every replayed command the feed does not have yet
/// (from a snapshot no newer than the feed's last command, so that none is missing).
pub(crate) fn recover_feeding(
    data_dir: &Path,
    options: JournalOptions,
    use_snapshot: bool,
    feed: Option<&mut FeedWriter>,
) -> Result<(State, Journal, RecoveryReport), StartError> {
    let _filling = filling_tables();
    let snapshots = SnapshotStore::open(&data_dir.join("snapshots"))?;
    let mut report = RecoveryReport::default();
    let started = std::time::Instant::now();
    let mut state = State::new();
    if use_snapshot {
        let up_to = feed.as_ref().map_or(u64::MAX, |f| f.last_record());
        if let Some(snapshot) = snapshots.latest_at_most(up_to)? {
            // A snapshot is a cache of the journal, which keeps every record: one this build
            // cannot read (another version's layout of the state) costs a longer replay, never
            // the start.
            match decode_on_two_cores(snapshot.bytes()) {
                Ok(decoded) => {
                    state = decoded;
                    report.snapshot_seq = Some(snapshot.seq);
                }
                Err(error) => tracing::warn!(
                    seq = snapshot.seq,
                    %error,
                    "the snapshot does not decode with this version; replaying the whole journal"
                ),
            }
        }
    }
    let after = state.applied();
    report.snapshot_time = started.elapsed();
    let (journal, recovered) =
        replay_on_two_cores(&data_dir.join("journal"), options, after, &mut state, feed)?;
    report.journal = recovered;
    report.journal_time = started.elapsed() - report.snapshot_time;
    Ok((state, journal, report))
}

/// Records decoded ahead of the replay, per hand-over.
const REPLAY_CHUNK_RECORDS: usize = 4_096;

/// Opens the journal and applies its records after `after` to `state`: one thread reads,
/// checks and decodes the records, this one applies them (a third of a replay's time is the
/// reading and decoding; a tail of millions of records follows a snapshot taken under load).
fn replay_on_two_cores(
    dir: &Path,
    options: JournalOptions,
    after: u64,
    state: &mut State,
    mut feed: Option<&mut FeedWriter>,
) -> Result<(Journal, Recovered), StartError> {
    let mut events = Vec::new();
    std::thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::bounded::<Vec<(u64, Envelope)>>(8);
        let reader = scope.spawn(move || {
            let mut chunk = Vec::with_capacity(REPLAY_CHUNK_RECORDS);
            let opened = Journal::open(dir, options, after, |seq, payload| {
                chunk.push((seq, postcard::from_bytes(payload).map_err(|e| e.to_string())?));
                if chunk.len() == REPLAY_CHUNK_RECORDS {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(REPLAY_CHUNK_RECORDS));
                    tx.send(full).map_err(|_| "the replay stopped".to_string())?;
                }
                Ok(())
            });
            if opened.is_ok() && !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            opened
        });
        let mut diverged = None;
        'chunks: for chunk in rx.iter() {
            for (i, (seq, envelope)) in chunk.iter().enumerate() {
                // As on the sequencer: start the lookups' misses a few records early.
                if let Some((_, ahead)) = chunk.get(i + PREFETCH_AHEAD) {
                    state.prefetch(ahead.idempotency.as_ref(), &ahead.command);
                }
                let outcome = match replay_record(state, *seq, envelope) {
                    Ok(outcome) => outcome,
                    Err(why) => {
                        diverged = Some(JournalError::Replay { seq: *seq, why }.into());
                        break 'chunks;
                    }
                };
                if let Some(feed) = feed.as_deref_mut().filter(|f| *seq > f.last_record()) {
                    elevens_feed::derive(state, envelope, &outcome, &mut events);
                    if events.len() >= REPLAY_CHUNK_RECORDS {
                        if let Err(error) = feed.append(&events) {
                            diverged = Some(error.into());
                            break 'chunks;
                        }
                        events.clear();
                    }
                }
            }
        }
        drop(rx); // a reader still sending stops
        let opened = joined(reader);
        if let Some(error) = diverged {
            return Err(error);
        }
        if let Some(feed) = feed {
            feed.append(&events)?;
            feed.cover(state.applied());
            feed.sync()?;
        }
        Ok(opened?)
    })
}

/// Applies a record read back from a journal (the file's or the stream's): replay is
/// deterministic, so it must change the state and be its `seq`-th command, as it was first.
pub(crate) fn replay_record(state: &mut State, seq: u64, envelope: &Envelope) -> Result<Outcome, String> {
    match state.apply(envelope) {
        Ok(Applied::Changed(outcome)) if state.applied() == seq => Ok(outcome),
        other => Err(format!("replay diverged from the journal at record {seq}: {other:?}")),
    }
}

/// Starts one of the engine's threads. Failing to is a start that cannot go on (the process
/// is out of threads or memory), so it panics.
pub(crate) fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .unwrap_or_else(|error| panic!("spawning the {name} thread: {error}"))
}

/// A scoped thread's result, its panic carried on to the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Decodes a snapshot's two parts side by side (the idempotency store, with its key index, is
/// about half of the work).
pub(crate) fn decode_on_two_cores(bytes: &[u8]) -> Result<State, postcard::Error> {
    let parts = EncodedState::split(bytes)?;
    let (main, idempotency) = std::thread::scope(|scope| {
        let idempotency = scope.spawn(|| {
            let _filling = filling_tables();
            parts.decode_idempotency()
        });
        (parts.decode_main(), joined(idempotency))
    });
    Ok(main?.with_idempotency(idempotency?))
}

/// The running engine. Dropping every clone of `handle` stops the threads.
pub struct Engine {
    pub handle: EngineHandle,
    threads: Vec<JoinHandle<()>>,
    /// The replicated journal's connection and tasks, if the journal is on NATS.
    replication: Option<Box<crate::replicated::Replication>>,
    _lock: std::fs::File,
}

/// Where a start found its state, and what carries its journal on.
enum Origin {
    Local(Journal),
    Replicated(Box<crate::replicated::Replication>),
}

#[derive(Clone)]
pub struct EngineHandle {
    tx: crossbeam_channel::Sender<Submission>,
    pub keys: Arc<KeyCache>,
    /// The slowest submission of the last group commit, from queueing to durable reply, in ns:
    /// the engine's own latency, without the gateway's scheduling.
    latency: Arc<AtomicU64>,
    /// What the sequencer has done: the bottleneck's own cost per command, for the bench.
    work: Arc<SequencerWork>,
    /// The live figures and product search, fed from each batch's events once it is durable.
    read_models: Arc<ReadModels>,
    pub analytics: Arc<Mutex<Analytics>>,
    pub search: Arc<Search>,
    /// Whose orders, parcels, returns and tickets are whose: the lists' candidates.
    pub owners: Arc<RwLock<Owners>>,
    /// Audits the durable state off the sequencer.
    pub auditor: Arc<crate::audit::Auditor>,
    /// Whether this node may write: always with the local journal; with a replicated one,
    /// only the lease holder once it has fenced the stream.
    leading: Arc<AtomicBool>,
    /// The last record durable and applied here (what a read sees, what a write was given),
    /// and its waiters, woken each time it moves.
    durable_seq: Arc<AtomicU64>,
    durable_advanced: Arc<tokio::sync::Notify>,
    /// Replicated mode: the node's role, its place in the stream, the leader.
    pub replica: Option<Arc<crate::replicated::ReplicaStatus>>,
    /// The event feed's readers.
    pub feed: Feed,
    /// The last command whose events were handed to the feed ([`EngineHandle::feed_caught_up`]).
    feed_published: Arc<AtomicU64>,
}

/// Time the sequencer spent applying batches, and the items it applied (reads and writes).
#[derive(Debug, Default)]
pub struct SequencerWork {
    pub busy_ns: AtomicU64,
    pub items: AtomicU64,
    /// The longest batch since the engine started, in ns: how long one batch held up the
    /// commands behind it.
    pub worst_batch_ns: AtomicU64,
}

/// The sequencer's queue is full: answer 503 with Retry-After.
#[derive(Debug)]
pub struct Overloaded;

impl EngineHandle {
    /// Queues a request of the replication shell, waiting while the queue is full (a
    /// follower's backpressure). `false` once the engine is gone.
    pub(crate) fn control(&self, control: Control) -> bool {
        self.tx.send(Self::controlling(control)).is_ok()
    }

    /// Queues a request of the replication shell if the queue has room: `Ok(false)` once the
    /// engine is gone, `Err` with the request when the queue is full.
    pub(crate) fn try_control(&self, control: Control) -> Result<bool, Control> {
        match self.tx.try_send(Self::controlling(control)) {
            Ok(()) => Ok(true),
            Err(crossbeam_channel::TrySendError::Full(submission)) => {
                Err(submission.control.expect("a control submission"))
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Ok(false),
        }
    }

    fn controlling(control: Control) -> Submission {
        let (reply, _) = tokio::sync::oneshot::channel();
        Submission { items: Vec::new(), reply, enqueued: std::time::Instant::now(), control: Some(control) }
    }

    /// Queues items for the sequencer ([`crate::seam::Commands::submit_or_return`]).
    pub(crate) fn enqueue(
        &self,
        items: Vec<Item>,
    ) -> Result<tokio::sync::oneshot::Receiver<Vec<ItemResult>>, Vec<Item>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let submission = Submission { items, reply, enqueued: std::time::Instant::now(), control: None };
        match self.tx.try_send(submission) {
            Ok(()) => Ok(rx),
            Err(e) => {
                metrics::counter!("elevens_overloaded_total").increment(1);
                Err(e.into_inner().items)
            }
        }
    }

    /// Whether writes are taken here now (see [`EngineHandle::replica`] for why not).
    pub fn writable(&self) -> bool {
        self.leading.load(Ordering::Acquire) && self.replica.as_ref().is_none_or(|replica| !replica.stalled())
    }

    /// The last record durable and applied on this node.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq.load(Ordering::Acquire)
    }

    /// Waits at most `wait` for record `seq` to be durable and applied here; whether it is.
    pub async fn wait_durable(&self, seq: u64, wait: Duration) -> bool {
        let reached = async {
            loop {
                let advanced = self.durable_advanced.notified();
                if self.durable_seq() >= seq {
                    return;
                }
                advanced.await;
            }
        };
        tokio::time::timeout(wait, reached).await.is_ok()
    }

    pub fn latency(&self) -> Arc<AtomicU64> {
        self.latency.clone()
    }

    /// The longest sequencer batch since the engine started.
    pub fn worst_batch(&self) -> Duration {
        Duration::from_nanos(self.work.worst_batch_ns.load(Ordering::Relaxed))
    }

    /// The sequencer's busy time and items so far.
    pub fn sequencer_work(&self) -> (Duration, u64) {
        let busy = Duration::from_nanos(self.work.busy_ns.load(Ordering::Relaxed));
        (busy, self.work.items.load(Ordering::Relaxed))
    }

    /// Waits until every batch made durable before this call is folded into the read models
    /// (at most [`READ_MODELS_WAIT`]: a stalled read model answers a moment stale rather than
    /// never).
    pub async fn read_models_caught_up(&self) {
        let models = &self.read_models;
        let target = models.published.load(Ordering::Acquire);
        let caught_up = async {
            loop {
                let notified = models.folded_notify.notified();
                if models.folded.load(Ordering::Acquire) >= target {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(READ_MODELS_WAIT, caught_up).await;
    }

    /// Waits (at most a second) until the feed holds the events of every command answered
    /// before this call.
    pub async fn feed_caught_up(&self) {
        self.feed.caught_up(self.feed_published.load(Ordering::Acquire), READ_MODELS_WAIT).await;
    }

    /// Submissions waiting for the sequencer.
    pub fn queue_len(&self) -> usize {
        self.tx.len()
    }

    pub fn queue_capacity(&self) -> usize {
        self.tx.capacity().unwrap_or(usize::MAX)
    }
}

impl Engine {
    pub fn start(config: &Config) -> Result<(Engine, RecoveryReport), StartError> {
        let lock = lock_data_dir(&config.data_dir)?;
        let options = JournalOptions { segment_bytes_max: config.engine.segment_bytes_max };
        let leading = Arc::new(AtomicBool::new(false));
        let (mut feed_writer, feed) = FeedWriter::open(&config.data_dir.join("feed"), config.feed)?;
        let (state, origin, mut report) = match &config.journal {
            crate::config::JournalTarget::Local => {
                let (state, journal, report) =
                    recover_feeding(&config.data_dir, options, true, Some(&mut feed_writer))?;
                leading.store(true, Ordering::Release);
                (state, Origin::Local(journal), report)
            }
            crate::config::JournalTarget::Nats(options) => {
                let node = config.advertise.clone().unwrap_or_else(|| format!("http://{}", config.listen));
                let (state, replication, report) = crate::replicated::recover(
                    &config.data_dir,
                    options,
                    node,
                    leading.clone(),
                    feed_writer.last_record(),
                )?;
                (state, Origin::Replicated(Box::new(replication)), report)
            }
        };
        let started = std::time::Instant::now();
        let snapshots = SnapshotStore::open(&config.data_dir.join("snapshots"))?
            .direct_io(config.engine.snapshot_direct_io);
        let keys = Arc::new(KeyCache::from_state(&state));
        // Two cores: the analytics fold over every order, in halves, beside the search index's
        // build (at ~12 M orders the read models took 0.93-0.99 s with the fold on one core, 0.67-0.71 s in halves).
        let (analytics, search) = std::thread::scope(|scope| {
            let (state, orders) = (&state, state.orders().len());
            let later = scope.spawn(move || Analytics::of_orders(state, orders / 2..orders));
            let search = scope.spawn(|| (Search::from_state(state), Owners::from_state(state)));
            let mut analytics = Analytics::catalogue_of(state);
            analytics.absorb(Analytics::of_orders(state, 0..orders / 2));
            analytics.absorb(joined(later));
            (analytics, joined(search))
        });
        let (search, owners) = search;
        let analytics = Arc::new(Mutex::new(analytics));
        let owners = Arc::new(RwLock::new(owners));
        let search = Arc::new(search?);
        report.read_models_time = started.elapsed();
        let committer_search = Arc::downgrade(&search);
        let read_models = Arc::new(ReadModels {
            analytics: analytics.clone(),
            search: search.clone(),
            owners: owners.clone(),
            published: AtomicU64::new(0),
            folded: AtomicU64::new(0),
            folded_notify: tokio::sync::Notify::new(),
        });
        let (models_tx, models_rx) = crossbeam_channel::bounded(READ_MODEL_QUEUE_MAX);
        let folding_models = read_models.clone();
        let (tx, rx) = crossbeam_channel::bounded(config.engine.sequencer_queue_max);
        // Two batches in flight at most: one being applied, one being fsync'd.
        let (durable_tx, durable_rx) = crossbeam_channel::bounded(2);
        // The journal thread hands each batch's emptied list of changes back, and the read-model
        // thread its list of events, so the sequencer never grows one again (a doubling `Vec`
        // costs the sequencer its copies and fresh pages faulted in).
        let (spare_tx, spare_rx) = crossbeam_channel::bounded(4);
        let (feed_tx, feed_rx) = crossbeam_channel::bounded(FEED_QUEUE_MAX);
        let feed_published = Arc::new(AtomicU64::new(0));
        let (spare_feed_tx, spare_feed_rx) = crossbeam_channel::bounded(4);
        let work = Arc::new(SequencerWork::default());
        // One snapshot written at a time: the sequencer forks only when the last one is done.
        let (children_tx, children_rx) = crossbeam_channel::bounded(1);
        let snapshot_busy = Arc::new(AtomicBool::new(false));
        let state_applied = state.applied();
        let sequencer = Sequencer {
            work: work.clone(),
            counts: BatchCounts::default(),
            state,
            keys: keys.clone(),
            group_commit_commands_max: config.engine.group_commit_commands_max,
            snapshot_every_commands: config.engine.snapshot_every_commands,
            snapshots: snapshots.clone(),
            snapshot_busy: snapshot_busy.clone(),
            recovered_from: report.snapshot_seq.unwrap_or(0),
            leading: leading.clone(),
        };
        let latency = Arc::new(AtomicU64::new(0));
        let durable_seq = Arc::new(AtomicU64::new(match &origin {
            Origin::Local(journal) => journal.next_seq() - 1,
            Origin::Replicated(_) => state_applied,
        }));
        let source = match &origin {
            Origin::Local(_) => crate::audit::Source::Local,
            Origin::Replicated(replication) => crate::audit::Source::Stream(Box::new(replication.reader())),
        };
        let auditor = Arc::new(crate::audit::Auditor::new(&config.data_dir, durable_seq.clone(), source));
        let durable_advanced = Arc::new(tokio::sync::Notify::new());
        let out = JournalOut {
            latency: latency.clone(),
            durable_seq: durable_seq.clone(),
            durable_advanced: durable_advanced.clone(),
            models: read_models.clone(),
            feed: feed_tx,
            feed_published: feed_published.clone(),
            spare: spare_tx,
            snapshots: children_tx,
        };

        let mut threads = vec![
            spawn_named("sequencer", move || {
                let _filling = filling_tables();
                let spares = Spares { changes: spare_rx, feed: spare_feed_rx };
                sequencer.run(rx, durable_tx, spares)
            }),
            spawn_named("feed", {
                let spare = spare_feed_tx.clone();
                move || run_feed(feed_writer, feed_rx, models_tx, spare)
            }),
            spawn_named("snapshots", move || snapshotter::run(snapshots, children_rx, snapshot_busy)),
            spawn_named("read-models", move || folding_models.run(models_rx, spare_feed_tx)),
            spawn_named("search-commit", move || commit_search(committer_search)),
        ];
        let (replication, replica) = match origin {
            Origin::Local(journal) => {
                let journal = spawn_named("journal", move || run_journal(journal, durable_rx, out));
                threads.push(journal);
                (None, None)
            }
            Origin::Replicated(replication) => {
                threads.extend(replication.spawn_threads(durable_rx, out));
                let replica = replication.status.clone();
                (Some(replication), Some(replica))
            }
        };
        let handle = EngineHandle {
            tx,
            keys,
            latency,
            work,
            read_models,
            analytics,
            search,
            owners,
            auditor,
            leading,
            durable_seq,
            durable_advanced,
            replica,
            feed,
            feed_published,
        };
        let mut engine = Engine { handle, threads, replication, _lock: lock };
        if let Some(replication) = engine.replication.as_mut() {
            replication.start_tasks(engine.handle.clone());
        }
        Ok((engine, report))
    }

    /// Stops accepting work, lets the last batch become durable, and joins the threads (a
    /// replicated leader then gives its lease up).
    pub fn shutdown(mut self) {
        if let Some(replication) = self.replication.as_mut() {
            replication.stop_tasks();
        }
        drop(self.handle);
        for thread in self.threads {
            let _ = thread.join();
        }
        if let Some(replication) = self.replication {
            replication.release();
        }
    }
}

/// Counts of one batch, flushed to the metrics recorder once per batch (not per command: the
/// recorder's lookups would cost the sequencer a few percent).
#[derive(Default)]
struct BatchCounts {
    changed: u64,
    repeated: u64,
    refused: std::collections::BTreeMap<&'static str, u64>,
}

impl BatchCounts {
    fn flush(&mut self, applied: u64) {
        metrics::counter!("elevens_commands_total", "result" => "changed").increment(self.changed);
        metrics::counter!("elevens_commands_total", "result" => "repeated").increment(self.repeated);
        for (code, n) in std::mem::take(&mut self.refused) {
            metrics::counter!("elevens_refusals_total", "code" => code).increment(n);
        }
        metrics::histogram!("elevens_batch_commands").record((self.changed + self.repeated) as f64);
        metrics::gauge!("elevens_applied_commands").set(applied as f64);
        (self.changed, self.repeated) = (0, 0);
    }
}

/// Emptied lists handed back to the sequencer to fill again.
struct Spares {
    changes: crossbeam_channel::Receiver<Vec<Envelope>>,
    feed: crossbeam_channel::Receiver<Vec<FeedEvent>>,
}

struct Sequencer {
    work: Arc<SequencerWork>,
    counts: BatchCounts,
    state: State,
    keys: Arc<KeyCache>,
    group_commit_commands_max: usize,
    snapshot_every_commands: u64,
    snapshots: SnapshotStore,
    snapshot_busy: Arc<AtomicBool>,
    /// The record of the snapshot the state was recovered from (0 if none).
    recovered_from: u64,
    /// Writes are applied only while this is set ([`EngineHandle::writable`]); a follower
    /// applies the stream and nothing else, and makes no ticks of its own.
    leading: Arc<AtomicBool>,
}

impl Sequencer {
    fn run(
        mut self,
        rx: crossbeam_channel::Receiver<Submission>,
        durable: crossbeam_channel::Sender<Durable>,
        spare: Spares,
    ) {
        // Counted from the snapshot this start read, so a start that replayed a long tail (a
        // crash while a snapshot was being written, under load) snapshots at once: the next
        // start would replay it all again.
        let mut last_snapshot = self.recovered_from;
        loop {
            // Wake at least every 250 ms, so reservations expire on an idle engine too.
            let first = match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(submission) => Some(submission),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            };
            let started = std::time::Instant::now();
            let mut tick_took = Duration::ZERO;
            let mut fork_took = Duration::ZERO;
            let at = now_ms().max(self.state.clock());
            let changes = spare.changes.try_recv().unwrap_or_default();
            let feed = spare.feed.try_recv().unwrap_or_default();
            let mut batch =
                Durable { changes, feed, replies: Vec::new(), snapshot: None, followed: None, promote: None };
            let leading = self.leading.load(Ordering::Acquire);
            if leading && self.state.next_due().is_some_and(|due| due <= at) {
                let tick = Envelope { actor: Actor::Admin, idempotency: None, at, command: Command::Tick };
                if let Err(error) = self.write(tick, &mut batch) {
                    tracing::error!(%error, "reservation expiry refused");
                }
                tick_took = started.elapsed();
            }
            let mut commands = 0;
            let mut next = first;
            while let Some(mut submission) = next {
                if let Some(control) = submission.control.take() {
                    commands += self.control(control, &mut batch);
                    next = rx.try_recv().ok();
                    continue;
                }
                if !leading && submission.items.iter().any(|item| matches!(item, Item::Write { .. })) {
                    // A write that raced a loss of the lease: never applied here. Its reply is
                    // dropped, which the gateway answers 503.
                    metrics::counter!("elevens_writes_refused_not_leader_total").increment(1);
                    next = rx.try_recv().ok();
                    continue;
                }
                commands += submission.items.len();
                let mut results = Vec::with_capacity(submission.items.len());
                let mut items = submission.items.into_iter();
                loop {
                    // The lookup of a key a few commands ahead is a cache miss; start it now, so
                    // it overlaps the commands in between.
                    if let Some(Item::Write { idempotency, command, .. }) =
                        items.as_slice().get(PREFETCH_AHEAD)
                    {
                        self.state.prefetch(idempotency.as_ref(), command);
                    }
                    let Some(item) = items.next() else { break };
                    results.push(self.execute(item, at, &mut batch));
                }
                batch.replies.push((submission.reply, results, submission.enqueued));
                if commands >= self.group_commit_commands_max || started.elapsed() >= BATCH_TIME_MAX {
                    break;
                }
                next = rx.try_recv().ok();
            }
            if self.state.applied() - last_snapshot >= self.snapshot_every_commands
                && !self.snapshot_busy.load(Ordering::Acquire)
            {
                last_snapshot = self.state.applied();
                let forking = std::time::Instant::now();
                batch.snapshot = self.fork_snapshot();
                fork_took = forking.elapsed();
            }
            if batch.changes.is_empty()
                && batch.replies.is_empty()
                && batch.snapshot.is_none()
                && batch.followed.is_none()
                && batch.promote.is_none()
            {
                continue;
            }
            let took = started.elapsed();
            self.work.busy_ns.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
            self.work.items.fetch_add(commands as u64, Ordering::Relaxed);
            self.work.worst_batch_ns.fetch_max(took.as_nanos() as u64, Ordering::Relaxed);
            if took > SLOW {
                tracing::warn!(
                    ms = took.as_millis() as u64,
                    commands,
                    tick_ms = tick_took.as_millis() as u64,
                    fork_ms = fork_took.as_millis() as u64,
                    "slow batch on the sequencer"
                );
            }
            self.counts.flush(self.state.applied());
            if durable.send(batch).is_err() {
                break;
            }
        }
        // A snapshot still being written dies with this thread (`PR_SET_PDEATHSIG`): on a clean
        // stop, let it finish, so the next start reads it instead of replaying its records.
        drop(durable);
        let waiting_since = std::time::Instant::now();
        while self.snapshot_busy.load(Ordering::Acquire)
            && waiting_since.elapsed() < snapshotter::CHILD_TIME_MAX
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Applies what the replication shell hands over; returns the commands applied.
    fn control(&mut self, control: Control, batch: &mut Durable) -> usize {
        match control {
            Control::Replicated { envelopes, position } => {
                for envelope in &envelopes {
                    let seq = self.state.applied() + 1;
                    match replay_record(&mut self.state, seq, envelope) {
                        Ok(outcome) => self.changed(envelope, &outcome, batch),
                        Err(why) => {
                            // A command that does not apply as it did on the leader means this
                            // state is not the leader's: stop before answering anything from it.
                            tracing::error!(why, "replication diverged from the stream; stopping");
                            std::process::abort();
                        }
                    }
                }
                batch.followed = Some(position);
                envelopes.len()
            }
            Control::Promote { term } => {
                batch.promote = Some(term);
                0
            }
        }
    }

    /// Starts a snapshot of the state as it stands (see `snapshotter`).
    fn fork_snapshot(&self) -> Option<WritingChild> {
        let started = std::time::Instant::now();
        let forked = self
            .snapshots
            .create(self.state.applied())
            .map_err(|e| e.to_string())
            .and_then(|file| snapshotter::fork(&self.state, file).map_err(|e| e.to_string()));
        metrics::histogram!("elevens_snapshot_fork_seconds").record(started.elapsed().as_secs_f64());
        match forked {
            Ok(child) => {
                self.snapshot_busy.store(true, Ordering::Release);
                tracing::debug!(ms = started.elapsed().as_millis() as u64, "snapshot writer forked");
                Some(child)
            }
            Err(error) => {
                tracing::warn!(%error, "could not start a snapshot; the journal still has every record");
                None
            }
        }
    }

    fn execute(&mut self, item: Item, at: Millis, batch: &mut Durable) -> ItemResult {
        match item {
            Item::Read { actor, query } => {
                views::query(&self.state, actor, &query, at).map(|v| Reply::View(Box::new(v)))
            }
            Item::Write { actor, idempotency, command, reply } => {
                let envelope = Envelope { actor, idempotency, at, command };
                let outcome = self.write(envelope, batch)?;
                match reply {
                    ReplyWith::View => {
                        views::outcome(&self.state, &outcome).map(|v| Reply::View(Box::new(v)))
                    }
                    ReplyWith::Outcome => Ok(Reply::Outcome(outcome)),
                }
            }
        }
    }

    /// What follows a change of the state: the keys' cache, and its events (for the feed and
    /// the read models).
    fn changed(&mut self, envelope: &Envelope, outcome: &Outcome, batch: &mut Durable) {
        self.counts.changed += 1;
        self.keys.observe(&self.state, outcome);
        derive_events(&self.state, envelope, outcome, &mut batch.feed);
    }

    fn write(&mut self, envelope: Envelope, batch: &mut Durable) -> Result<Outcome, CoreError> {
        let applied = self.state.apply(&envelope).inspect_err(|e| {
            *self.counts.refused.entry(e.code()).or_default() += 1;
        })?;
        if applied.changed() {
            self.changed(&envelope, applied.outcome(), batch);
            batch.changes.push(envelope);
        } else {
            self.counts.repeated += 1;
        }
        Ok(match applied {
            Applied::Changed(o) | Applied::Repeated(o) => o,
        })
    }
}

/// What the sequencer derives from a command that changed the state, after applying it: its
/// events, which the feed keeps and the read models fold. Public for the budget
/// (`elevens bench --workload budget`), which counts the sequencer's work per order.
pub fn derive_events(state: &State, envelope: &Envelope, outcome: &Outcome, feed: &mut Vec<FeedEvent>) {
    elevens_feed::derive(state, envelope, outcome, feed);
}

/// The read side, fed from durable events on a thread of its own.
struct ReadModels {
    analytics: Arc<Mutex<Analytics>>,
    search: Arc<Search>,
    owners: Arc<RwLock<Owners>>,
    /// Batches of events handed over by the journal thread, and folded by the read-model thread.
    published: AtomicU64,
    folded: AtomicU64,
    folded_notify: tokio::sync::Notify,
}

impl ReadModels {
    fn run(
        &self,
        rx: crossbeam_channel::Receiver<(u64, Vec<FeedEvent>)>,
        spare: crossbeam_channel::Sender<Vec<FeedEvent>>,
    ) {
        while let Ok((seq, mut events)) = rx.recv() {
            self.fold(&events);
            self.folded.store(seq, Ordering::Release);
            self.folded_notify.notify_waiters();
            events.clear();
            let _ = spare.try_send(events);
        }
    }

    fn fold(&self, events: &[FeedEvent]) {
        let mut analytics = self.analytics.lock();
        let mut owners = self.owners.write();
        for event in events {
            analytics.fold(event);
            owners.fold(event);
            if let Err(error) = self.search.fold(event.merchant, &event.kind) {
                tracing::warn!(%error, record = event.record, "an event could not be folded into the search index");
            }
        }
    }

    /// Counts a durable batch's events as handed over, before its replies leave, so a reader
    /// who saw a reply waits for the fold; the feed thread hands them on once written.
    fn publish(&self) -> u64 {
        let seq = self.published.load(Ordering::Relaxed) + 1;
        self.published.store(seq, Ordering::Release);
        seq
    }
}

/// A durable batch for the feed thread: its events, the last command it covers, and its place
/// in the read models' order (0: nothing for them).
struct FeedBatch {
    events: Vec<FeedEvent>,
    through: u64,
    fold: u64,
}

/// Appends durable batches' events to the feed, and makes them durable at least every
/// [`FEED_SYNC_INTERVAL`] (a crash loses nothing of them: a restart derives them again).
fn run_feed(
    mut writer: FeedWriter,
    rx: crossbeam_channel::Receiver<FeedBatch>,
    models: crossbeam_channel::Sender<(u64, Vec<FeedEvent>)>,
    spare: crossbeam_channel::Sender<Vec<FeedEvent>>,
) {
    let mut synced = std::time::Instant::now();
    loop {
        match rx.recv_timeout(FEED_SYNC_INTERVAL) {
            Ok(FeedBatch { mut events, through, fold }) => {
                if let Err(error) = writer.append(&events) {
                    // The feed's disk is failing: stop before a consumer misses an event.
                    tracing::error!(%error, "the event feed could not be written; stopping");
                    std::process::abort();
                }
                writer.cover(through);
                metrics::counter!("elevens_feed_events_total").increment(events.len() as u64);
                if fold > 0 {
                    // Waits when the read models are behind, and so the journal thread does.
                    let _ = models.send((fold, events));
                } else {
                    events.clear();
                    let _ = spare.try_send(events);
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if synced.elapsed() >= FEED_SYNC_INTERVAL {
            if let Err(error) = writer.sync() {
                tracing::warn!(%error, "the event feed could not be synced; a restart derives its tail again");
            }
            synced = std::time::Instant::now();
        }
    }
    let _ = writer.sync();
}

/// Makes newly indexed SKUs searchable, every 200 ms, until the engine is gone.
fn commit_search(search: std::sync::Weak<Search>) {
    while let Some(search) = search.upgrade() {
        if let Err(error) = search.commit_if_dirty() {
            tracing::warn!(%error, "search commit failed");
        }
        drop(search);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the journal thread hands on once a batch is durable.
pub(crate) struct JournalOut {
    /// The slowest reply of the last group commit ([`EngineHandle::latency`]).
    latency: Arc<AtomicU64>,
    /// The last durable record, stored before the replies leave.
    pub(crate) durable_seq: Arc<AtomicU64>,
    durable_advanced: Arc<tokio::sync::Notify>,
    models: Arc<ReadModels>,
    /// Durable batches' feed events, to the feed thread, with the last durable command: every
    /// command up to it has had its events handed over.
    feed: crossbeam_channel::Sender<FeedBatch>,
    /// The last command whose events were handed to the feed thread.
    feed_published: Arc<AtomicU64>,
    /// Emptied lists of changes, back to the sequencer.
    spare: crossbeam_channel::Sender<Vec<Envelope>>,
    /// Snapshots written by forked children, published once their last record is durable.
    snapshots: crossbeam_channel::Sender<WritingChild>,
}

impl JournalOut {
    /// Hands on batches that are durable now: their events to the read models, their replies,
    /// their snapshot (with `meta`, the replicated stream's place after it). `slowest` is the
    /// slowest reply's time since it was queued, over the batches of one write.
    /// `through` is the batch's last command.
    pub(crate) fn deliver(
        &self,
        batch: Durable,
        through: u64,
        meta: Option<&Position>,
        slowest: &mut Duration,
    ) {
        let now = std::time::Instant::now();
        let Durable { mut changes, feed, replies, snapshot, .. } = batch;
        changes.clear();
        let _ = self.spare.try_send(changes);
        // Durable now: the feed may show it, the read models may count it. Counted before the
        // replies leave, so a reader who saw one waits for its events.
        let mut fold = 0;
        if let Some(last) = feed.last() {
            self.feed_published.fetch_max(last.record, Ordering::Release);
            fold = self.models.publish();
        }
        // Waits when the feed thread is behind: the feed is never missing an event. Sent
        // without events too: the feed learns how far it covers.
        let _ = self.feed.send(FeedBatch { events: feed, through, fold });
        self.durable_advanced.notify_waiters();
        for (reply, results, enqueued) in replies {
            *slowest = (*slowest).max(now - enqueued);
            let _ = reply.send(results);
        }
        self.latency.store(slowest.as_nanos() as u64, Ordering::Relaxed);
        // The snapshot's last record is durable now: it may be published once written.
        if let Some(mut child) = snapshot {
            child.meta = meta.map(|position| position.to_bytes().to_vec());
            let _ = self.snapshots.send(child);
        }
    }
}

fn run_journal(mut journal: Journal, rx: crossbeam_channel::Receiver<Durable>, out: JournalOut) {
    let mut records = Records::default();
    while let Ok(first) = rx.recv() {
        // If the disk fell behind, fold every waiting batch into this fsync.
        let mut batches = vec![first];
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
        }
        records.clear();
        for envelope in batches.iter().flat_map(|b| &b.changes) {
            records.push(envelope);
        }
        let started = std::time::Instant::now();
        let appended = journal.append_batch(records.iter());
        let took = started.elapsed();
        metrics::histogram!("elevens_journal_write_fsync_seconds").record(took.as_secs_f64());
        if took > SLOW {
            tracing::warn!(
                ms = took.as_millis() as u64,
                batches = batches.len(),
                "slow journal write + fsync"
            );
        }
        let last = match appended {
            Ok(last) => {
                out.durable_seq.store(last, Ordering::Release);
                last
            }
            Err(error) => {
                // What reached the disk is unknown and the state is ahead of it: stop now,
                // unacknowledged, and let recovery decide on restart.
                tracing::error!(%error, "journal write failed; stopping");
                std::process::abort();
            }
        };
        let mut slowest = Duration::ZERO;
        // Each batch's last record: the fsync's last, less the records of the batches after it.
        let mut through = last - batches.iter().map(|b| b.changes.len() as u64).sum::<u64>();
        for batch in batches {
            through += batch.changes.len() as u64;
            out.deliver(batch, through, None, &mut slowest);
        }
    }
    // Every batch is durable and answered: a start may hold damage below here for corruption.
    if let Err(error) = journal.close_clean() {
        tracing::warn!(%error, "could not record the clean stop; the next start takes a damaged tail for torn");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seam::Commands;
    use elevens_core::Command;

    fn admin(command: Command) -> Item {
        Item::Write { actor: Actor::Admin, idempotency: None, command, reply: ReplyWith::Outcome }
    }

    /// A data directory where five merchants were created (commands without feed events) with a
    /// snapshot every two commands, the engine stopped; and its configuration.
    fn five_merchants_snapshot_every_two() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().to_path_buf(), "127.0.0.1:0".parse().unwrap());
        config.engine.snapshot_every_commands = 2;
        let (engine, _) = Engine::start(&config).unwrap();
        for m in 0..5 {
            let command = Command::CreateMerchant { name: format!("merchant {m}"), commission_bps: 100 };
            let rx = engine.handle.submit(vec![admin(command)]).map_err(|_| "overloaded").unwrap();
            assert!(rx.blocking_recv().unwrap()[0].is_ok());
        }
        engine.shutdown();
        (dir, config)
    }

    /// Commands without feed events (merchants, a catalogue's set-up) left nothing in the feed
    /// to say they were covered, so a start never took a snapshot newer than the feed's last
    /// event and replayed (in replicated mode: followed from the stream) everything after it.
    #[test]
    fn a_quiet_feed_made_every_restart_replay_from_the_start() {
        let (_dir, config) = five_merchants_snapshot_every_two();
        let (engine, report) = Engine::start(&config).unwrap();
        assert!(report.snapshot_seq.is_some_and(|seq| seq >= 2), "no snapshot used: {report:?}");
        assert_eq!(engine.handle.durable_seq(), 5);
        engine.shutdown();
    }

    /// A snapshot of another layout (an older or newer build's) is passed over: the state comes
    /// from the whole journal instead, the same as with the snapshot this build would write.
    #[test]
    fn a_snapshot_of_another_layout_costs_a_replay_not_the_start() {
        let (dir, _) = five_merchants_snapshot_every_two();
        let options = JournalOptions::default();
        let (from_snapshot, _, report) = recover(dir.path(), options.clone(), true).unwrap();
        let seq = report.snapshot_seq.expect("a snapshot was written");
        let (from_journal, _, _) = recover(dir.path(), options.clone(), false).unwrap();
        assert_eq!(from_snapshot.digest(), from_journal.digest());

        let mut foreign = b"ELSTATE1".to_vec();
        foreign.extend_from_slice(&from_snapshot.encode()[State::LAYOUT.len()..]);
        SnapshotStore::open(&dir.path().join("snapshots")).unwrap().write(seq + 1, &foreign).unwrap();
        let (recovered, _, report) = recover(dir.path(), options, true).unwrap();
        assert_eq!(report.snapshot_seq, None, "the foreign snapshot was used");
        assert_eq!(recovered.digest(), from_journal.digest());
        assert_eq!(recovered.applied(), 5);
    }
}
