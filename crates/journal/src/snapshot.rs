//! Snapshots: the encoded state after record `seq`, so recovery replays only the tail.
//!
//! File `snapshot-{seq:020}.bin`: magic u32 | seq u64 | len u64 | crc32 u32 | bytes. Written to a
//! temporary file, fsync'd, renamed into place and the directory fsync'd, so a snapshot is either
//! whole or absent. A damaged snapshot is skipped with a warning: the journal still holds every
//! record, so an older snapshot (or none) and a longer replay give the same state.

use crate::{io_error, JournalError};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const SNAPSHOT_MAGIC: u32 = 0x3153_4c45; // "ELS1"
const SNAPSHOT_HEADER_BYTES: usize = 24;
/// How many snapshots are kept; older ones are deleted after a new one is durable.
const SNAPSHOTS_KEPT: usize = 2;

pub struct Snapshot {
    /// The state is the result of records 1..=seq.
    pub seq: u64,
    /// The whole file, header included: a snapshot is gigabytes at ten million orders, and
    /// cutting the header off would copy all of it.
    file: Vec<u8>,
}

impl Snapshot {
    /// The encoded state.
    pub fn bytes(&self) -> &[u8] {
        &self.file[SNAPSHOT_HEADER_BYTES..]
    }
}

pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    pub fn open(dir: &Path) -> Result<SnapshotStore, JournalError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        Ok(SnapshotStore { dir: dir.to_path_buf() })
    }

    fn list(&self) -> Result<Vec<(u64, PathBuf)>, JournalError> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let path = entry.map_err(io_error(&self.dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let seq = name
                .strip_prefix("snapshot-")
                .and_then(|n| n.strip_suffix(".bin"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(seq) = seq {
                found.push((seq, path));
            }
        }
        found.sort();
        Ok(found)
    }

    /// The newest snapshot that reads back whole.
    pub fn latest(&self) -> Result<Option<Snapshot>, JournalError> {
        for (seq, path) in self.list()?.into_iter().rev() {
            let bytes = std::fs::read(&path).map_err(io_error(&path))?;
            match decode(&bytes, seq) {
                Some(_) => return Ok(Some(Snapshot { seq, file: bytes })),
                None => tracing::warn!(path = %path.display(), "snapshot damaged; skipping it"),
            }
        }
        Ok(None)
    }

    pub fn write(&self, seq: u64, state: &[u8]) -> Result<(), JournalError> {
        let path = self.dir.join(format!("snapshot-{seq:020}.bin"));
        let tmp = self.dir.join(format!("snapshot-{seq:020}.tmp"));
        let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
        let mut header = Vec::with_capacity(SNAPSHOT_HEADER_BYTES);
        header.extend_from_slice(&SNAPSHOT_MAGIC.to_le_bytes());
        header.extend_from_slice(&seq.to_le_bytes());
        header.extend_from_slice(&(state.len() as u64).to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(state).to_le_bytes());
        file.write_all(&header).map_err(io_error(&tmp))?;
        file.write_all(state).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_error(&path))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_error(&self.dir))?;
        let all = self.list()?;
        for (_, old) in all.iter().take(all.len().saturating_sub(SNAPSHOTS_KEPT)) {
            std::fs::remove_file(old).map_err(io_error(old))?;
        }
        Ok(())
    }
}

fn decode(bytes: &[u8], seq: u64) -> Option<&[u8]> {
    let header = bytes.get(..SNAPSHOT_HEADER_BYTES)?;
    let word = |at: usize, n: usize| -> u64 {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&header[at..at + n]);
        u64::from_le_bytes(b)
    };
    let len = usize::try_from(word(12, 8)).ok()?;
    let payload = bytes.get(SNAPSHOT_HEADER_BYTES..)?;
    let sound = word(0, 4) == u64::from(SNAPSHOT_MAGIC)
        && word(4, 8) == seq
        && payload.len() == len
        && u64::from(crc32fast::hash(payload)) == word(20, 4);
    sound.then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_whole_snapshot_wins_and_old_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        assert!(store.latest().unwrap().is_none());
        for seq in [10, 20, 30] {
            store.write(seq, format!("state {seq}").as_bytes()).unwrap();
        }
        assert_eq!(store.list().unwrap().len(), SNAPSHOTS_KEPT);
        let latest = store.latest().unwrap().unwrap();
        assert_eq!((latest.seq, latest.bytes()), (30, &b"state 30"[..]));
        // Damage the newest: the one before it is used.
        let newest = store.list().unwrap().pop().unwrap().1;
        let mut bytes = std::fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&newest, bytes).unwrap();
        assert_eq!(store.latest().unwrap().unwrap().seq, 20);
    }
}
