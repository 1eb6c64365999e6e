//! Segment files and the journal that appends to them.
//!
//! A segment is named after the sequence number of its first record (`{seq:020}.journal`), so the
//! names sort in journal order. Batches never span segments; a new segment starts when the
//! current one passes `segment_bytes_max`.

use crate::record::{self, Decoded, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX};
use crate::storage::{FileStorage, Storage};
use crate::{io_error, JournalError};
use std::path::Path;

#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// A new segment starts once the current one is at least this large.
    pub segment_bytes_max: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions { segment_bytes_max: 256 << 20 }
    }
}

/// What recovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Records handed to the caller (those after the snapshot).
    pub records_replayed: u64,
    /// The sequence number of the last record in the journal (0 if empty).
    pub last_seq: u64,
    /// Bytes cut off the end of the last segment: a torn write of an unacknowledged batch.
    pub torn_bytes_cut: u64,
}

/// The file a clean stop leaves in the journal's directory: the sequence number of the last
/// record, every one of them acknowledged. Damage at or below it is corruption, never a torn
/// tail; the first append after a start removes it (what follows is not covered by it).
pub const CLEAN_STOP_FILE: &str = "clean-stop";

pub struct Journal {
    storage: Box<dyn Storage>,
    /// A clean-stop marker is on disk and must go before the next record does.
    clean_marker: bool,
    options: JournalOptions,
    /// The segment being appended to.
    file: String,
    file_bytes: u64,
    next_seq: u64,
    buffer: Vec<u8>,
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.journal")
}

/// The segments, by first sequence number, in journal order.
fn list_segments(storage: &dyn Storage) -> Result<Vec<(u64, String)>, JournalError> {
    let mut segments = Vec::new();
    for name in storage.list().map_err(io_error(storage.path("")))? {
        if let Some(seq) = name.strip_suffix(".journal").and_then(|s| s.parse::<u64>().ok()) {
            segments.push((seq, name));
        }
    }
    segments.sort();
    Ok(segments)
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, checking every record of the segments that hold
    /// records after `after_seq` (those before are the snapshot's; their segments' names must
    /// still follow on). Records with a sequence number above `after_seq` are handed to
    /// `on_record` in order (the replay of the tail after a snapshot). A torn tail is cut off
    /// with a warning; corruption anywhere else is an error.
    pub fn open(
        dir: &Path,
        options: JournalOptions,
        after_seq: u64,
        on_record: impl FnMut(u64, &[u8]) -> Result<(), String>,
    ) -> Result<(Journal, Recovered), JournalError> {
        let storage = FileStorage::open(dir).map_err(io_error(dir))?;
        Journal::open_in(Box::new(storage), options, after_seq, on_record)
    }

    /// [`Journal::open`] on any storage (the simulator's disk).
    pub fn open_in(
        mut storage: Box<dyn Storage>,
        options: JournalOptions,
        after_seq: u64,
        mut on_record: impl FnMut(u64, &[u8]) -> Result<(), String>,
    ) -> Result<(Journal, Recovered), JournalError> {
        let clean_stop = read_clean_stop(storage.as_ref())?;
        let segments = list_segments(storage.as_ref())?;
        let mut recovered = Recovered::default();
        let mut expected_seq = 1u64;
        // The last segment read, and its length once recovered.
        let mut last: Option<(String, u64)> = None;
        for (i, (first_seq, name)) in segments.iter().enumerate() {
            let path = &storage.path(name);
            let is_last = i + 1 == segments.len();
            if *first_seq != expected_seq {
                return Err(JournalError::Corrupt {
                    path: path.to_path_buf(),
                    offset: 0,
                    why: format!("segment starts at record {first_seq}, expected {expected_seq}"),
                });
            }
            // A segment wholly covered by the snapshot is not read: its records are in the state
            // already (a gigabyte of them at ten million orders, 1.7 s of a restart).
            // `elevens audit` replays every segment from empty and checks them all.
            if let Some((next_first_seq, _)) = segments.get(i + 1) {
                if next_first_seq.saturating_sub(1) <= after_seq && *next_first_seq > *first_seq {
                    expected_seq = *next_first_seq;
                    recovered.last_seq = next_first_seq - 1;
                    continue;
                }
            }
            let bytes = storage.read(name).map_err(io_error(path))?;
            let mut offset = 0usize;
            while offset < bytes.len() {
                match record::decode(&bytes[offset..]) {
                    Decoded::Record { seq, payload, len, .. } => {
                        if seq != expected_seq {
                            return Err(JournalError::Corrupt {
                                path: path.to_path_buf(),
                                offset: offset as u64,
                                why: format!("record {seq} where record {expected_seq} was expected"),
                            });
                        }
                        if seq > after_seq {
                            on_record(seq, payload).map_err(|why| JournalError::Replay { seq, why })?;
                            recovered.records_replayed += 1;
                        }
                        recovered.last_seq = seq;
                        expected_seq += 1;
                        offset += len;
                    }
                    damage => {
                        if let Some(clean) = clean_stop.filter(|&clean| expected_seq <= clean) {
                            return Err(JournalError::Corrupt {
                                path: path.to_path_buf(),
                                offset: offset as u64,
                                why: format!(
                                    "{damage:?} at record {expected_seq}, below the clean stop at record \
                                     {clean}: every record up to it was acknowledged"
                                ),
                            });
                        }
                        let torn = is_last && is_torn(&bytes[offset..], expected_seq);
                        if !torn {
                            return Err(JournalError::Corrupt {
                                path: path.to_path_buf(),
                                offset: offset as u64,
                                why: format!(
                                    "{damage:?} at record {expected_seq}, with acknowledged data after it"
                                ),
                            });
                        }
                        let cut = (bytes.len() - offset) as u64;
                        tracing::warn!(
                            path = %path.display(),
                            offset,
                            bytes = cut,
                            "journal: cutting a torn tail (a write cut short by a crash; never acknowledged)"
                        );
                        storage.truncate(name, offset as u64).map_err(io_error(path))?;
                        recovered.torn_bytes_cut = cut;
                        break;
                    }
                }
            }
            last = Some((name.clone(), offset as u64));
        }
        if let Some(clean) = clean_stop.filter(|&clean| recovered.last_seq < clean) {
            return Err(JournalError::Corrupt {
                path: storage.path(""),
                offset: 0,
                why: format!(
                    "the journal ends at record {} but stopped cleanly at record {clean}",
                    recovered.last_seq
                ),
            });
        }
        if recovered.last_seq < after_seq {
            return Err(JournalError::Corrupt {
                path: storage.path(""),
                offset: 0,
                why: format!(
                    "the snapshot covers record {after_seq} but the journal ends at record {}",
                    recovered.last_seq
                ),
            });
        }
        let (file, file_bytes) = match last {
            Some(last) => last,
            None => {
                let name = segment_name(1);
                storage.create(&name).map_err(io_error(storage.path(&name)))?;
                (name, 0)
            }
        };
        let journal = Journal {
            storage,
            clean_marker: clean_stop.is_some(),
            options,
            file,
            file_bytes,
            next_seq: recovered.last_seq + 1,
            buffer: Vec::with_capacity(1 << 20),
        };
        Ok((journal, recovered))
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends a batch of records and makes it durable with one `fdatasync` (group commit).
    /// Returns the sequence number of the last record. When this returns `Err`, what reached
    /// the disk is unknown: the caller must stop (and recover on restart), never carry on.
    pub fn append_batch<'a>(
        &mut self,
        payloads: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<u64, JournalError> {
        if self.file_bytes >= self.options.segment_bytes_max {
            self.start_segment()?;
        }
        self.buffer.clear();
        let batch_first_seq = self.next_seq;
        let mut seq = self.next_seq;
        for payload in payloads {
            if payload.len() > RECORD_PAYLOAD_BYTES_MAX {
                return Err(JournalError::RecordTooLarge(payload.len()));
            }
            record::encode(&mut self.buffer, seq, batch_first_seq, payload);
            seq += 1;
        }
        if seq == batch_first_seq {
            return Ok(seq - 1);
        }
        if self.clean_marker {
            self.storage.remove(CLEAN_STOP_FILE).map_err(io_error(self.storage.path(CLEAN_STOP_FILE)))?;
            self.clean_marker = false;
        }
        let appended = self.storage.append(&self.file, &self.buffer);
        let synced = appended.and_then(|()| self.storage.sync(&self.file));
        synced.map_err(|e| io_error(self.storage.path(&self.file))(e))?;
        self.file_bytes += self.buffer.len() as u64;
        self.next_seq = seq;
        Ok(seq - 1)
    }

    /// Records that the journal stopped cleanly after its last record (every record written is
    /// durable and was acknowledged): the next start refuses damage below it by name instead of
    /// cutting it as a torn tail. Written to a temporary file, fsync'd, renamed, the directory
    /// fsync'd.
    pub fn close_clean(mut self) -> Result<(), JournalError> {
        let last_seq = self.next_seq - 1;
        let text = format!("{last_seq}\n");
        self.storage
            .replace(CLEAN_STOP_FILE, text.as_bytes())
            .map_err(io_error(self.storage.path(CLEAN_STOP_FILE)))
    }

    /// The storage back, with the journal's files as they are (the simulator's crash).
    pub fn into_storage(self) -> Box<dyn Storage> {
        self.storage
    }

    fn start_segment(&mut self) -> Result<(), JournalError> {
        let name = segment_name(self.next_seq);
        self.storage.create(&name).map_err(io_error(self.storage.path(&name)))?;
        self.file = name;
        self.file_bytes = 0;
        Ok(())
    }
}

/// Reads records `after_seq + 1 ..= up_to_seq` of the journal in `dir`, in order, without writing
/// anything: for a reader beside the running engine (the online audit), which appends to the
/// same files. Every record up to `up_to_seq` is durable and acknowledged, so any damage or gap
/// before it is corruption; what lies past it is not looked at.
pub fn read_range(
    dir: &Path,
    after_seq: u64,
    up_to_seq: u64,
    on_record: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<(), JournalError> {
    let storage = FileStorage::open(dir).map_err(io_error(dir))?;
    read_range_in(&storage, after_seq, up_to_seq, on_record)
}

/// [`read_range`] on any storage.
pub fn read_range_in(
    storage: &dyn Storage,
    after_seq: u64,
    up_to_seq: u64,
    mut on_record: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<(), JournalError> {
    let segments = list_segments(storage)?;
    let mut expected_seq = after_seq + 1;
    for (i, (first_seq, name)) in segments.iter().enumerate() {
        let path = &storage.path(name);
        let next_first = segments.get(i + 1).map_or(u64::MAX, |(next, _)| *next);
        if next_first <= expected_seq {
            continue; // wholly before the range
        }
        if *first_seq > up_to_seq || expected_seq > up_to_seq {
            break;
        }
        let bytes = storage.read(name).map_err(io_error(path))?;
        let mut offset = 0usize;
        while offset < bytes.len() && expected_seq <= up_to_seq {
            let Decoded::Record { seq, payload, len, .. } = record::decode(&bytes[offset..]) else {
                break;
            };
            if seq >= expected_seq {
                if seq != expected_seq {
                    break;
                }
                on_record(seq, payload).map_err(|why| JournalError::Replay { seq, why })?;
                expected_seq += 1;
            }
            offset += len;
        }
    }
    if expected_seq <= up_to_seq {
        return Err(JournalError::Corrupt {
            path: storage.path(""),
            offset: 0,
            why: format!("record {expected_seq} is missing or damaged, below the durable record {up_to_seq}"),
        });
    }
    Ok(())
}

/// The last record of a clean stop, if the journal stopped cleanly and nothing came after.
fn read_clean_stop(storage: &dyn Storage) -> Result<Option<u64>, JournalError> {
    let marker = storage.path(CLEAN_STOP_FILE);
    match storage.read(CLEAN_STOP_FILE) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            text.trim().parse::<u64>().map(Some).map_err(|_| JournalError::Corrupt {
                path: marker.clone(),
                offset: 0,
                why: format!("the clean-stop marker holds {text:?}, not a record number"),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&marker)(e)),
    }
}

/// Damage at the start of `rest` is a torn tail when no sound record of a later batch follows:
/// everything after it belongs to the last batch, which was never acknowledged. A later batch
/// after the damage means the damaged records had been acknowledged: corruption.
fn is_torn(rest: &[u8], damaged_seq: u64) -> bool {
    (1..rest.len().saturating_sub(RECORD_HEADER_BYTES - 1)).all(|at| {
        match record::sound_header(&rest[at..]) {
            Some((_, batch_first_seq)) => batch_first_seq <= damaged_seq,
            None => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::PathBuf;

    fn write(dir: &Path, batches: &[&[&[u8]]]) {
        let (mut journal, _) = Journal::open(dir, JournalOptions::default(), 0, |_, _| Ok(())).unwrap();
        for batch in batches {
            journal.append_batch(batch.iter().copied()).unwrap();
        }
    }

    type Replayed = (Vec<(u64, Vec<u8>)>, Recovered);

    fn replay(dir: &Path) -> Result<Replayed, JournalError> {
        let mut seen = Vec::new();
        let (_, recovered) = Journal::open(dir, JournalOptions::default(), 0, |seq, p| {
            seen.push((seq, p.to_vec()));
            Ok(())
        })?;
        Ok((seen, recovered))
    }

    fn only_segment(dir: &Path) -> PathBuf {
        dir.join(segment_name(1))
    }

    fn segments_of(dir: &Path) -> Vec<(u64, PathBuf)> {
        let storage = FileStorage::open(dir).unwrap();
        list_segments(&storage).unwrap().into_iter().map(|(seq, name)| (seq, dir.join(name))).collect()
    }

    #[test]
    fn appends_and_replays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[&[b"a", b"bb"], &[b"ccc"]]);
        write(dir.path(), &[&[b"dddd"]]);
        let (seen, recovered) = replay(dir.path()).unwrap();
        let payloads: Vec<&[u8]> = seen.iter().map(|(_, p)| p.as_slice()).collect();
        assert_eq!(payloads, vec![&b"a"[..], b"bb", b"ccc", b"dddd"]);
        assert_eq!(recovered.last_seq, 4);
        assert_eq!(recovered.torn_bytes_cut, 0);
    }

    /// Ten records of 40 bytes in segments of 100: a few records per segment.
    fn ten_records_in_small_segments(dir: &Path) -> JournalOptions {
        let options = JournalOptions { segment_bytes_max: 100 };
        let (mut journal, _) = Journal::open(dir, options.clone(), 0, |_, _| Ok(())).unwrap();
        for i in 0..10u8 {
            journal.append_batch([&[i; 40][..]]).unwrap();
        }
        options
    }

    #[test]
    fn rotates_segments_and_replays_after_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let options = ten_records_in_small_segments(dir.path());
        assert!(segments_of(dir.path()).len() > 3);
        let mut seqs = Vec::new();
        Journal::open(dir.path(), options, 6, |seq, _| {
            seqs.push(seq);
            Ok(())
        })
        .unwrap();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
    }

    /// A restart reads only the segments with records after the snapshot; a replay from empty
    /// (the audit's) still checks every record.
    #[test]
    fn segments_the_snapshot_covers_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let options = ten_records_in_small_segments(dir.path());
        let segments = segments_of(dir.path());
        // The snapshot covers the first two segments; damage the first.
        let (next, _) = segments[2];
        let path = &segments[0].1;
        let mut bytes = std::fs::read(path).unwrap();
        bytes[RECORD_HEADER_BYTES + 1] ^= 1;
        std::fs::write(path, bytes).unwrap();
        let mut seqs = Vec::new();
        let (_, recovered) = Journal::open(dir.path(), options.clone(), next - 1, |seq, _| {
            seqs.push(seq);
            Ok(())
        })
        .unwrap();
        assert_eq!(seqs.first(), Some(&next));
        assert_eq!(recovered.last_seq, 10);
        let from_empty = Journal::open(dir.path(), options, 0, |_, _| Ok(()));
        assert!(matches!(from_empty, Err(JournalError::Corrupt { .. })), "the audit's replay finds it");
    }

    #[test]
    fn torn_last_record_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[&[b"first"], &[b"second", b"third"]]);
        let path = only_segment(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let (seen, recovered) = replay(dir.path()).unwrap();
        assert_eq!(seen.len(), 2, "the torn record is dropped, the rest kept");
        assert!(recovered.torn_bytes_cut > 0);
        // The journal is usable again after the cut.
        write(dir.path(), &[&[b"fourth"]]);
        let (seen, _) = replay(dir.path()).unwrap();
        assert_eq!(seen.last().unwrap(), &(3, b"fourth".to_vec()));
    }

    #[test]
    fn damage_inside_the_last_batch_is_torn() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[&[b"first"], &[b"second", b"third"]]);
        let path = only_segment(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        // Damage "second" (the first record of the last batch); "third" after it is intact.
        let second_at = RECORD_HEADER_BYTES + 5;
        bytes[second_at + RECORD_HEADER_BYTES] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (seen, recovered) = replay(dir.path()).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(recovered.last_seq, 1);
    }

    #[test]
    fn regression_a_damaged_byte_in_the_last_batch_after_a_clean_stop_drops_acknowledged_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) =
            Journal::open(dir.path(), JournalOptions::default(), 0, |_, _| Ok(())).unwrap();
        journal.append_batch([&b"first"[..]]).unwrap();
        journal.append_batch([&b"second"[..], b"third"]).unwrap();
        journal.close_clean().unwrap();
        let path = only_segment(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let second_at = RECORD_HEADER_BYTES + 5;
        bytes[second_at + RECORD_HEADER_BYTES] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        match replay(dir.path()) {
            Err(JournalError::Corrupt { offset, why, .. }) => {
                assert_eq!(offset, second_at as u64);
                assert!(why.contains("clean stop at record 3"), "{why}");
            }
            other => panic!("expected corruption below the clean stop, got {other:?}"),
        }
        // Cut short after a clean stop: records are missing, not torn.
        std::fs::write(&path, &bytes[..second_at]).unwrap();
        assert!(matches!(replay(dir.path()), Err(JournalError::Corrupt { .. })));
    }

    #[test]
    fn a_range_is_read_without_writing_and_damage_inside_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = ten_records_in_small_segments(dir.path());
        let mut seqs = Vec::new();
        read_range(dir.path(), 3, 8, |seq, payload| {
            assert_eq!(payload, &[(seq - 1) as u8; 40][..]);
            seqs.push(seq);
            Ok(())
        })
        .unwrap();
        assert_eq!(seqs, (4..=8).collect::<Vec<_>>());
        assert!(read_range(dir.path(), 0, 11, |_, _| Ok(())).is_err(), "past the end is missing");
        let (_, recovered) = Journal::open(dir.path(), options, 0, |_, _| Ok(())).unwrap();
        assert_eq!(recovered.last_seq, 10);
        // A flipped byte inside the range: refused; outside it: not looked at.
        let (_, last) = segments_of(dir.path()).pop().unwrap();
        let mut bytes = std::fs::read(&last).unwrap();
        let end = bytes.len() - 1;
        bytes[end] ^= 0xff;
        std::fs::write(&last, &bytes).unwrap();
        assert!(read_range(dir.path(), 0, 10, |_, _| Ok(())).is_err());
        assert!(read_range(dir.path(), 0, 9, |_, _| Ok(())).is_ok());
    }

    #[test]
    fn a_clean_stop_covers_nothing_written_after_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) =
            Journal::open(dir.path(), JournalOptions::default(), 0, |_, _| Ok(())).unwrap();
        journal.append_batch([&b"first"[..]]).unwrap();
        journal.close_clean().unwrap();
        // Opened and closed without appending (an offline audit): the marker stays.
        replay(dir.path()).unwrap();
        assert!(dir.path().join(CLEAN_STOP_FILE).exists());
        // The first append removes it: a later batch torn by a crash is torn again.
        write(dir.path(), &[&[b"second", b"third"]]);
        assert!(!dir.path().join(CLEAN_STOP_FILE).exists());
        let path = only_segment(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let (seen, recovered) = replay(dir.path()).unwrap();
        assert_eq!((seen.len(), recovered.last_seq), (2, 2));
    }

    #[test]
    fn a_flipped_byte_in_the_middle_stops_recovery() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[&[b"first"], &[b"second"], &[b"third"]]);
        let path = only_segment(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let second_at = RECORD_HEADER_BYTES + 5;
        bytes[second_at + RECORD_HEADER_BYTES + 2] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        match replay(dir.path()) {
            Err(JournalError::Corrupt { path: p, offset, .. }) => {
                assert_eq!(p, path);
                assert_eq!(offset, second_at as u64);
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        // A flipped bit in a length field is caught by the header checksum, not taken as torn.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[second_at + RECORD_HEADER_BYTES + 2] ^= 0x01;
        bytes[second_at + 4] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(replay(dir.path()), Err(JournalError::Corrupt { .. })));
    }

    #[test]
    fn zeros_at_the_end_are_torn() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[&[b"first"]]);
        let path = only_segment(dir.path());
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[0u8; 4096]).unwrap();
        let (seen, recovered) = replay(dir.path()).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(recovered.torn_bytes_cut, 4096);
    }
}
