//! elevens-journal: the durable truth of the engine.
//!
//! An append-only sequence of records, each with a sequence number and checksums, in segment
//! files; a batch of records is made durable by one `fdatasync` (group commit); snapshots of the
//! state bound the recovery time. This crate knows bytes, not orders: it never decodes a payload.
//!
//! Recovery tells a torn tail (the last write cut short by a crash: cut off, with a log line)
//! from corruption (a damaged record with valid data after it: start-up stops, naming the file
//! and the offset). It never skips a record silently.

mod record;
mod segment;
mod snapshot;
pub mod storage;

pub use record::{RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX};
pub use segment::{read_range, read_range_in, Journal, JournalOptions, Recovered, CLEAN_STOP_FILE};
pub use snapshot::{Snapshot, SnapshotFile, SnapshotStore};
pub use storage::{FileStorage, Storage};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("journal corrupt in {path} at byte offset {offset}: {why}")]
    Corrupt { path: PathBuf, offset: u64, why: String },
    #[error("record payload of {0} bytes exceeds the limit")]
    RecordTooLarge(usize),
    #[error("replaying record {seq} failed: {why}")]
    Replay { seq: u64, why: String },
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> JournalError {
    let path = path.into();
    move |source| JournalError::Io { path, source }
}
