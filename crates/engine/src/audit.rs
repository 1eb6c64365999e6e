//! The audit of a running engine, off the sequencer.
//!
//! Checking every invariant scans the whole state: seconds at ten million orders, which on the
//! sequencer would hold up every order and payment behind it. So the audit rebuilds the state
//! as of the last durable record on a thread of its own, from the newest snapshot and the
//! journal after it (read only: the engine goes on appending to the same files), and audits that.
//! Replay is deterministic, so it is the state the engine had at that record, and it is what a
//! restart would recover: the audit checks the truth on disk, not only the memory.
//!
//! The cost: a second copy of the state in memory while the audit runs, and one core's time.
//! One audit runs at a time; another asked meanwhile is answered 429.

use crate::engine::StartError;
use elevens_core::{AuditReport, State};
use elevens_journal::SnapshotStore;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where the durable records are read from.
pub enum Source {
    /// The data directory's journal.
    Local,
    /// The replicated stream (snapshots still come from the data directory).
    Stream(Box<crate::replicated::StreamReader>),
}

pub struct Auditor {
    data_dir: PathBuf,
    source: Source,
    /// The last record made durable, stored by the journal thread before it answers.
    durable_seq: Arc<AtomicU64>,
    running: tokio::sync::Semaphore,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("an audit is already running")]
    Busy,
    /// The durable state cannot be read now (a replicated journal without a quorum): asked
    /// again later, the audit may run.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Read(StartError),
}

impl From<StartError> for AuditError {
    fn from(error: StartError) -> AuditError {
        match error {
            StartError::StreamUnavailable(why) => AuditError::Unavailable(why),
            error => AuditError::Read(error),
        }
    }
}

impl Auditor {
    pub fn new(data_dir: &Path, durable_seq: Arc<AtomicU64>, source: Source) -> Auditor {
        Auditor {
            data_dir: data_dir.to_path_buf(),
            source,
            durable_seq,
            running: tokio::sync::Semaphore::new(1),
        }
    }

    fn durable_state(&self, up_to: u64) -> Result<State, StartError> {
        match &self.source {
            Source::Local => durable_state(&self.data_dir, up_to),
            Source::Stream(reader) => reader.durable_state(&self.data_dir, up_to),
        }
    }

    /// Audits the state as of the last record durable now (so it includes every write already
    /// acknowledged to the caller), on a blocking thread.
    pub async fn audit(self: &Arc<Auditor>) -> Result<AuditReport, AuditError> {
        let _running = self.running.try_acquire().map_err(|_| AuditError::Busy)?;
        let up_to = self.durable_seq.load(Ordering::Acquire);
        let auditor = self.clone();
        tokio::task::spawn_blocking(move || Ok(auditor.durable_state(up_to)?.audit()))
            .await
            .map_err(|_| AuditError::Busy)?
    }

    /// The same, for a caller outside the runtime (the bench's end-of-run check).
    pub fn audit_blocking(&self) -> Result<AuditReport, AuditError> {
        let _running = self.running.try_acquire().map_err(|_| AuditError::Busy)?;
        Ok(self.durable_state(self.durable_seq.load(Ordering::Acquire))?.audit())
    }
}

/// The state after record `up_to`: the newest snapshot at or below it, then the journal.
pub fn durable_state(data_dir: &Path, up_to: u64) -> Result<State, StartError> {
    let snapshots = SnapshotStore::open(&data_dir.join("snapshots"))?;
    let mut state = State::new();
    if let Some(snapshot) = snapshots.latest()?.filter(|s| s.seq <= up_to) {
        // Another build's layout is only a longer replay, as at a start.
        if let Ok(decoded) = State::decode(snapshot.bytes()) {
            state = decoded;
        }
    }
    let after = state.applied();
    elevens_journal::read_range(&data_dir.join("journal"), after, up_to, |seq, payload| {
        let envelope = postcard::from_bytes(payload).map_err(|e| e.to_string())?;
        crate::engine::replay_record(&mut state, seq, &envelope).map(drop)
    })
    .map_err(StartError::from)?;
    Ok(state)
}
