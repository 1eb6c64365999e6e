//! elevens-engine: the sequencer and everything that keeps its state: the journal thread and
//! group commit, recovery, snapshots written by a forked child, replication on NATS JetStream,
//! the audit, the read models' and the feed's threads, and the configuration of every bound.
//!
//! Below it: the pure state machine (`elevens-core`) and what the sequencer renders
//! (`elevens-views`). Above it: the HTTP floor (`elevens-http`), which talks to it through
//! [`engine::EngineHandle`]. It never decides a business rule (those are in the core, so replay
//! sees them too) and never speaks HTTP.

pub mod audit;
pub mod auth;
pub mod config;
pub mod engine;
pub mod offline;
pub mod replicated;
pub mod seam;
mod snapshotter;

use std::io::Write;
use std::path::Path;

/// Writes a secret to a file only its owner may read (mode 0600), durably.
pub fn write_private(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}
