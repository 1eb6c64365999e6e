//! The gateway's side of admission control: puts each item in its class, asks the pure
//! [`Admission`] controller (behind a mutex, on the gateway's clock), and keeps the in-flight
//! count honest with a guard that completes on reply *or* when the request is dropped.
//!
//! Nothing here touches the sequencer: a refusal costs a lock and a few hash lookups.

use crate::engine::{Item, ItemResult};
use crate::seam::Commands;
use elevens_admission::{Admission, Class, Nanos, Refusal, Request, Rules, Stats};
use elevens_core::{Actor, Command};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How long a request shed by the gateway's own bounds (not the controller's) is told to wait.
pub const BOUND_RETRY: Nanos = 100_000_000;

/// The file in the data directory that keeps the rules an admin set at runtime.
pub const SAVED_RULES_FILE: &str = "admission-rules.json";

pub struct Gate {
    admission: Mutex<Admission>,
    origin: Instant,
    /// Where rules set at runtime are written before they take effect (none: not kept).
    saved: Option<std::path::PathBuf>,
    /// Serialises writing the file and setting the rules, so the file is the rules in force.
    replacing: Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetRulesError {
    #[error("{0}")]
    Invalid(String),
    #[error("the rules could not be written to the data directory: {0}")]
    NotKept(std::io::Error),
}

fn save_rules(path: &std::path::Path, rules: &Rules) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&serde_json::to_vec_pretty(rules).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The class of one item: what it does to an order decides how late it is shed.
pub fn classify(item: &Item) -> Class {
    match item {
        Item::Read { .. } => Class::Read,
        Item::Write { actor: Actor::Admin, .. } => Class::Operator,
        Item::Write { command, .. } => match command {
            Command::PayOrder { .. }
            | Command::CancelOrder { .. }
            | Command::RefundOrder { .. }
            | Command::Tick => Class::Pay,
            _ => Class::Order,
        },
    }
}

/// The buyer and SKUs an item names, for the per-buyer and hot-SKU limits. A buyer's own key
/// always counts against that buyer, whoever the command names, so nobody can spend another
/// buyer's quota.
fn keys(item: &Item, skus: &mut Vec<u64>) -> Option<u64> {
    skus.clear();
    let Item::Write { command, actor, .. } = item else { return None };
    let named = match command {
        Command::PlaceOrder { buyer, lines, .. } | Command::Checkout { buyer, lines, .. } => {
            skus.extend(lines.iter().map(|l| l.sku.0));
            skus.sort_unstable();
            skus.dedup();
            buyer.0
        }
        Command::ClaimRedPacket { buyer, .. } => buyer.0,
        _ => return None,
    };
    Some(match actor {
        Actor::Buyer(own) => own.0,
        _ => named,
    })
}

/// Commands admitted and not yet answered; completes them when dropped, so a client that hangs
/// up never leaks a place in the limit.
pub struct InFlight {
    gate: Arc<Gate>,
    commands: u64,
    admitted_at: Nanos,
    /// Whether the engine took the commands (only then is there a sample).
    reached_engine: bool,
    /// The engine's latency, as its journal thread last measured it. The sample is this, not the
    /// time until the request's task runs again: when the gateway's own CPU is the bottleneck,
    /// admitting less would only lower goodput.
    engine_latency: Arc<AtomicU64>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.commands > 0 {
            let now = self.gate.now();
            let latency = self
                .reached_engine
                .then(|| self.engine_latency.load(Ordering::Relaxed).min(now - self.admitted_at));
            self.gate.admission.lock().complete(self.commands, latency, now);
        }
    }
}

impl Gate {
    /// A gate with `rules` whose runtime changes are not kept.
    pub fn new(rules: Rules) -> Gate {
        let origin = Instant::now();
        let admission = Mutex::new(Admission::new(rules, 0, rand::random()));
        Gate { admission, origin, saved: None, replacing: Mutex::new(()) }
    }

    /// A gate that keeps its runtime changes in `data_dir`'s [`SAVED_RULES_FILE`]: starts with
    /// the rules saved there if any (an admin's last word wins over the config file's), else
    /// with `configured`.
    pub fn kept_in(data_dir: &std::path::Path, configured: Rules) -> anyhow::Result<Gate> {
        use anyhow::Context;
        let path = data_dir.join(SAVED_RULES_FILE);
        let rules = match std::fs::read(&path) {
            Ok(bytes) => {
                let rules: Rules = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{}: not admission rules; fix or delete it", path.display()))?;
                rules.check().map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
                tracing::info!(path = %path.display(), "admission rules as last set at runtime (delete the file for the config file's)");
                rules
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => configured,
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Gate { saved: Some(path), ..Gate::new(rules) })
    }

    pub fn now(&self) -> Nanos {
        self.origin.elapsed().as_nanos() as Nanos
    }

    /// Admits what it can of `items`: returns the admitted items (in order), a result slot per
    /// item (`Some(refusal)` where refused), and the guard holding the admitted ones in flight.
    /// `ticket` is a waiting-room ticket carried by a single order.
    pub fn admit(
        self: &Arc<Gate>,
        engine: &dyn Commands,
        items: Vec<Item>,
        ticket: Option<u64>,
    ) -> (Vec<Item>, Vec<Option<Refusal>>, InFlight) {
        let now = self.now();
        // The sequencer's queue is the last bound: past three quarters, only payments and the
        // operator's writes enter.
        let queue_nearly_full = engine.queue_len() * 4 >= engine.queue_capacity() * 3;
        let mut skus = Vec::new();
        let mut admitted = Vec::with_capacity(items.len());
        let mut refusals = Vec::with_capacity(items.len());
        let mut admission = self.admission.lock();
        // A submission that finds nothing in flight is admitted whole (`admit_in_batch`).
        let arrived_idle = admission.in_flight() == 0;
        for item in items {
            let class = classify(&item);
            let buyer = keys(&item, &mut skus);
            let key = match &item {
                Item::Write { idempotency, .. } => idempotency.map(|i| i.key),
                Item::Read { .. } => None,
            };
            let request = Request { class, buyer, skus: &skus, ticket, key };
            let result = if queue_nearly_full && !matches!(class, Class::Pay | Class::Operator) {
                Err(Refusal::Overloaded { retry_after: BOUND_RETRY })
            } else {
                admission.admit_in_batch(&request, arrived_idle, now)
            };
            match result {
                Ok(()) => {
                    admitted.push(item);
                    refusals.push(None);
                }
                Err(refusal) => refusals.push(Some(refusal)),
            }
        }
        drop(admission);
        let guard = InFlight {
            gate: self.clone(),
            commands: admitted.len() as u64,
            admitted_at: now,
            reached_engine: false,
            engine_latency: engine.latency(),
        };
        (admitted, refusals, guard)
    }

    pub fn rules(&self) -> Rules {
        self.admission.lock().rules().clone()
    }

    /// Replaces the rules at runtime, after checking them and, for a gate that keeps them,
    /// writing them durably (a temporary file, fsync'd, renamed): they are in force only once
    /// kept, so a restart never goes back on an answered change. Blocks on the disk.
    pub fn set_rules(&self, rules: Rules) -> Result<(), SetRulesError> {
        rules.check().map_err(SetRulesError::Invalid)?;
        let _one_at_a_time = self.replacing.lock();
        if let Some(path) = &self.saved {
            save_rules(path, &rules).map_err(SetRulesError::NotKept)?;
        }
        self.admission.lock().set_rules(rules);
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        self.admission.lock().stats()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Admission, Nanos) -> R) -> R {
        let now = self.now();
        f(&mut self.admission.lock(), now)
    }

    /// Copies the counts to the metrics recorder (on each scrape, so admission pays nothing
    /// per request for metrics).
    pub fn publish_metrics(&self) {
        let stats = self.stats();
        metrics::gauge!("elevens_admission_limit").set(stats.limit as f64);
        metrics::gauge!("elevens_admission_in_flight").set(stats.in_flight as f64);
        metrics::gauge!("elevens_waiting_room_waiting").set(stats.waiting_room_tickets_waiting as f64);
        for (class, counts) in [
            (Class::Pay, &stats.pay),
            (Class::Order, &stats.order),
            (Class::Read, &stats.read),
            (Class::Operator, &stats.operator),
        ] {
            metrics::counter!("elevens_admission_admitted_total", "class" => class.name())
                .absolute(counts.admitted);
            for (&reason, &n) in &counts.shed {
                metrics::counter!("elevens_admission_shed_total", "class" => class.name(), "reason" => reason)
                    .absolute(n);
            }
        }
    }
}

/// Submits admitted items and waits for their replies; the guard completes them either way.
pub async fn submit_admitted(
    engine: &dyn Commands,
    items: Vec<Item>,
    mut guard: InFlight,
) -> Result<Vec<ItemResult>, SubmitError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    if !engine.writable() && items.iter().any(|item| matches!(item, Item::Write { .. })) {
        return Err(SubmitError::NotLeader);
    }
    let rx = engine.submit(items).map_err(|_| SubmitError::Overloaded)?;
    guard.reached_engine = true;
    let results = rx.await.map_err(|_| SubmitError::ShuttingDown);
    drop(guard);
    results
}

#[derive(Debug)]
pub enum SubmitError {
    Overloaded,
    ShuttingDown,
    /// A replicated node that does not lead now (a follower, or a leader without a quorum).
    NotLeader,
}
