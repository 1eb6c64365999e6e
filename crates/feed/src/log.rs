//! The feed's log on disk: segments of records `[len u32][crc32 u32][position u64][postcard
//! event]`, each segment named by its first position, dropped whole past the retention.
//!
//! One writer (the engine's feed thread) appends; any number of readers read by position
//! through their own reads of the files (`pread`), never blocking the writer but for the
//! moment it takes to clone the list of segments.

use crate::event::{FeedEvent, LOG_FORMAT, TYPES};
use parking_lot::RwLock;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes before each record's payload.
const HEADER_BYTES: usize = 16;
/// A record's payload is never larger (an order has at most 32 lines; a title 200 bytes).
pub const EVENT_BYTES_MAX: usize = 16 * 1024;
/// One position in the sparse index per this many events of a segment.
const INDEX_EVERY: u64 = 256;
/// Bytes read from a segment at a time.
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// The file that holds the last command whose events (if it had any) are all durable in the
/// log, written after each sync: commands without events (most of a catalogue's or a
/// merchant's set-up) leave nothing in the segments to say they were covered, and a restart
/// must not derive, or replay a snapshot's worth of journal for, what the feed already had.
const COVERED_FILE: &str = "covered";
/// The file that names the events' encoding in the segments ([`LOG_FORMAT`]).
const FORMAT_FILE: &str = "format";

/// How much of the feed is kept. The oldest segment goes once the others hold `bytes_max`.
/// Settable in the config file's `[feed]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// The most bytes of events kept on disk (one segment more while it fills).
    pub bytes_max: u64,
    /// A segment is closed and a new one begun past this size.
    pub segment_bytes: u64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention { bytes_max: 4 << 30, segment_bytes: 64 << 20 }
    }
}

impl Retention {
    /// A segment is 64 KiB to 4 GiB, and retention holds at least two of them.
    pub fn check(&self) -> Result<(), String> {
        if !(64 << 10..=4 << 30).contains(&self.segment_bytes) {
            return Err("segment_bytes is between 65536 and 4294967296".into());
        }
        if self.bytes_max < self.segment_bytes.saturating_mul(2) {
            return Err("bytes_max holds at least two segments (2 x segment_bytes)".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the feed's files: {0}")]
    Io(#[from] std::io::Error),
    #[error("the feed's segment {path} is damaged at byte {offset}")]
    Corrupt { path: String, offset: u64 },
    #[error(
        "the feed's log in {dir} is encoded as format {found}; this build reads format {LOG_FORMAT}: \
         run the build that wrote it, or move the directory aside (the feed is then derived again \
         from the journal)"
    )]
    Format { dir: String, found: String },
    /// The position asked for is older than what is kept.
    #[error("events up to position {oldest_kept} are no longer kept (retention); resume after {after}")]
    Expired { oldest_kept: u64, after: u64 },
}

/// Which events a read or a subscription wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Bit `i`: the type `TYPES[i]`.
    pub types: u64,
    /// Only this merchant's events.
    pub merchant: Option<u64>,
}

impl Filter {
    pub const ALL_TYPES: u64 = {
        assert!(TYPES.len() < 64, "a filter's mask has a bit per type");
        (1 << TYPES.len()) - 1
    };

    pub fn all() -> Filter {
        Filter { types: Filter::ALL_TYPES, merchant: None }
    }

    /// The mask of these type names; the first unknown name is the error.
    pub fn types_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<u64, &'a str> {
        names.into_iter().try_fold(0, |mask, name| {
            let i = TYPES.iter().position(|t| *t == name).ok_or(name)?;
            Ok(mask | 1u64 << i)
        })
    }

    pub fn matches(&self, event: &FeedEvent) -> bool {
        self.types & (1u64 << event.kind.type_index()) != 0
            && self.merchant.is_none_or(|m| event.merchant == Some(m))
    }
}

/// What a read found.
#[derive(Debug, Default)]
pub struct Page {
    /// Matching events, by position.
    pub events: Vec<(u64, FeedEvent)>,
    /// Where the next read begins (`after=next`): past every event this read looked at,
    /// matching or not.
    pub next: u64,
    /// The newest position written.
    pub head: u64,
}

struct Segment {
    first: u64,
    path: PathBuf,
    file: File,
    /// Bytes of whole records.
    len: AtomicU64,
    /// The last position in it (`first - 1` while empty).
    last: AtomicU64,
    /// (position, byte offset) of every `INDEX_EVERY`-th event, from the first; `None` for a
    /// closed segment until it is first read.
    index: RwLock<Option<Vec<(u64, u64)>>>,
}

struct Shared {
    dir: PathBuf,
    segments: RwLock<Vec<Arc<Segment>>>,
    /// The newest position written (0: none yet).
    head: AtomicU64,
    /// The last command whose events are all written.
    last_record: AtomicU64,
    head_tx: tokio::sync::watch::Sender<u64>,
}

/// The readers' side; cheap to clone.
#[derive(Clone)]
pub struct Feed {
    shared: Arc<Shared>,
}

/// The one appender.
pub struct FeedWriter {
    shared: Arc<Shared>,
    retention: Retention,
    file: File,
    buf: Vec<u8>,
    next: u64,
    last_record: u64,
    /// The last command handed over with its events ([`FeedWriter::cover`]), and the last one
    /// written to [`COVERED_FILE`].
    covered: u64,
    covered_durable: u64,
    /// The command of the last event appended by this writer (0: none yet).
    appended_through: u64,
    dirty: bool,
}

/// Refuses a log written in another encoding; names this one in a new log. A log from before
/// the format file existed is format 1.
fn check_format(dir: &Path, has_segments: bool) -> Result<(), FeedError> {
    let path = dir.join(FORMAT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(found) if found.trim() == LOG_FORMAT.to_string() => Ok(()),
        Ok(found) => {
            Err(FeedError::Format { dir: dir.display().to_string(), found: found.trim().to_string() })
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        Err(_) if has_segments => {
            Err(FeedError::Format { dir: dir.display().to_string(), found: "1".into() })
        }
        Err(_) => Ok(replace_durably(dir, FORMAT_FILE, format!("{LOG_FORMAT}\n").as_bytes())?),
    }
}

/// Writes `name` in `dir` whole or not at all, durably: a temporary file, synced, renamed.
fn replace_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = dir.join(format!("{name}.tmp"));
    let file = File::create(&temporary)?;
    file.write_all_at(bytes, 0)?;
    file.sync_data()?;
    std::fs::rename(&temporary, dir.join(name))?;
    File::open(dir)?.sync_all()
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.events"))
}

/// Reads a segment's records from `offset`, calling `each(position, offset, payload)` until it
/// returns false; returns the offset after the last whole, sound record.
fn scan(
    file: &File,
    mut offset: u64,
    end: u64,
    mut each: impl FnMut(u64, u64, &[u8]) -> bool,
) -> std::io::Result<(u64, bool)> {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let (mut have, mut start) = (0usize, 0usize);
    let mut at = offset; // file offset of buf[have]
    loop {
        // A whole record in the buffer?
        let whole = |start: usize, have: usize, buf: &[u8]| -> Option<(usize, u64, u32)> {
            if have - start < HEADER_BYTES {
                return None;
            }
            let h = &buf[start..start + HEADER_BYTES];
            let len = u32::from_le_bytes(h[0..4].try_into().ok()?) as usize;
            let crc = u32::from_le_bytes(h[4..8].try_into().ok()?);
            let pos = u64::from_le_bytes(h[8..16].try_into().ok()?);
            (have - start >= HEADER_BYTES + len).then_some((len, pos, crc))
        };
        match whole(start, have, &buf) {
            Some((len, pos, crc)) => {
                let payload = &buf[start + HEADER_BYTES..start + HEADER_BYTES + len];
                if len > EVENT_BYTES_MAX || crc32fast::hash(payload) != crc {
                    return Ok((offset, false));
                }
                if !each(pos, offset, payload) {
                    return Ok((offset, true));
                }
                start += HEADER_BYTES + len;
                offset += (HEADER_BYTES + len) as u64;
            }
            None => {
                if at >= end {
                    return Ok((offset, start == have));
                }
                buf.copy_within(start..have, 0);
                (have, start) = (have - start, 0);
                if buf.len() - have < HEADER_BYTES + EVENT_BYTES_MAX {
                    buf.resize(buf.len() * 2, 0);
                }
                let want = (buf.len() - have).min((end - at) as usize);
                let n = file.read_at(&mut buf[have..have + want], at)?;
                if n == 0 {
                    return Ok((offset, false));
                }
                have += n;
                at += n as u64;
            }
        }
    }
}

impl FeedWriter {
    /// Opens (or creates) the feed in `dir`. Only the last segment is read through: its
    /// damaged tail is cut, and so are the events of its last command (a crash may have written
    /// only some of them), and the engine derives again every event of the commands after
    /// [`FeedWriter::last_record`]. The others are indexed when first read.
    pub fn open(dir: &Path, retention: Retention) -> Result<(FeedWriter, Feed), FeedError> {
        std::fs::create_dir_all(dir)?;
        let mut firsts: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".events")?.parse().ok())
            .collect();
        firsts.sort_unstable();
        check_format(dir, !firsts.is_empty())?;
        // An empty segment after others (a stop right after a roll) holds nothing: the one
        // before it is reopened instead.
        while let [.., _, last] = firsts[..] {
            let path = segment_path(dir, last);
            if std::fs::metadata(&path)?.len() > 0 {
                break;
            }
            std::fs::remove_file(path)?;
            firsts.pop();
        }
        let mut segments = Vec::with_capacity(firsts.len().max(1));
        for pair in firsts.windows(2) {
            let (first, following) = (pair[0], pair[1]);
            let path = segment_path(dir, first);
            let file = OpenOptions::new().read(true).open(&path)?;
            let len = file.metadata()?.len();
            let last = AtomicU64::new(following - 1);
            segments.push(Arc::new(Segment {
                first,
                path,
                file,
                len: AtomicU64::new(len),
                last,
                index: RwLock::new(None),
            }));
        }
        let covered = read_covered(dir);
        let (last, last_record) = match firsts.last() {
            Some(&first) => reopen_last(dir, first, covered)?,
            None => (new_segment(dir, 1)?, 0),
        };
        let last_record = last_record.max(covered);
        let next = last.last.load(Ordering::Acquire) + 1;
        segments.push(Arc::new(last));
        let current = segments.last().map(|s| s.file.try_clone()).transpose()?;
        let file = current.ok_or_else(|| std::io::Error::other("no segment"))?;
        let head = next - 1;
        let (head_tx, _) = tokio::sync::watch::channel(head);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segments: RwLock::new(segments),
            head: AtomicU64::new(head),
            last_record: AtomicU64::new(last_record),
            head_tx,
        });
        let writer = FeedWriter {
            shared: shared.clone(),
            retention,
            file,
            buf: Vec::new(),
            next,
            last_record,
            covered: last_record,
            covered_durable: covered,
            appended_through: 0,
            dirty: false,
        };
        Ok((writer, Feed { shared }))
    }

    /// The last command whose events are all in the log (0: none).
    pub fn last_record(&self) -> u64 {
        self.last_record
    }

    /// Appends the events of durable commands, in order; those of commands the log already
    /// has are passed over. Readers see them at once (the page cache); [`FeedWriter::sync`]
    /// makes them durable.
    pub fn append(&mut self, events: &[FeedEvent]) -> Result<(), FeedError> {
        let segment = self.current();
        let mut offset = segment.len.load(Ordering::Acquire);
        self.buf.clear();
        let mut index = Vec::new();
        let mut newest = self.last_record;
        for event in events.iter().filter(|e| e.record > self.last_record) {
            let start = self.buf.len();
            self.buf.extend_from_slice(&[0u8; HEADER_BYTES]);
            let buf = std::mem::take(&mut self.buf);
            self.buf = postcard::to_extend(event, buf).map_err(std::io::Error::other)?;
            let len = self.buf.len() - start - HEADER_BYTES;
            let crc = crc32fast::hash(&self.buf[start + HEADER_BYTES..]);
            let header = &mut self.buf[start..start + HEADER_BYTES];
            header[0..4].copy_from_slice(&(len as u32).to_le_bytes());
            header[4..8].copy_from_slice(&crc.to_le_bytes());
            header[8..16].copy_from_slice(&self.next.to_le_bytes());
            if (self.next - segment.first).is_multiple_of(INDEX_EVERY) {
                index.push((self.next, offset + start as u64));
            }
            self.next += 1;
            newest = newest.max(event.record);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(&self.buf, offset)?;
        offset += self.buf.len() as u64;
        segment.index.write().get_or_insert_default().extend(index);
        segment.len.store(offset, Ordering::Release);
        segment.last.store(self.next - 1, Ordering::Release);
        self.last_record = newest;
        self.appended_through = newest;
        self.dirty = true;
        self.shared.last_record.store(newest, Ordering::Release);
        self.shared.head.store(self.next - 1, Ordering::Release);
        self.shared.head_tx.send_replace(self.next - 1);
        if offset >= self.retention.segment_bytes {
            self.roll()?;
        }
        Ok(())
    }

    /// Says that every command up to `record` has had its events (if any) appended: the
    /// next [`FeedWriter::sync`] makes that durable, so a restart takes them as covered.
    pub fn cover(&mut self, record: u64) {
        self.covered = self.covered.max(record);
        if record > self.last_record {
            self.last_record = record;
            self.shared.last_record.store(record, Ordering::Release);
        }
    }

    /// Makes what was appended durable, then how far it covers. [`COVERED_FILE`] is written
    /// only when commands without events trail the last event: when the last covered command
    /// has events, the segment says how far the feed goes (its last command's events are cut
    /// on a restart unless covered, and derived again: one command's work), and under a
    /// stream of orders that spares a file's create, rename and two fsyncs per sync.
    pub fn sync(&mut self) -> Result<(), FeedError> {
        if std::mem::take(&mut self.dirty) {
            self.file.sync_data()?;
        }
        if self.covered > self.covered_durable && self.covered > self.appended_through {
            replace_durably(&self.shared.dir, COVERED_FILE, &self.covered.to_le_bytes())?;
            self.covered_durable = self.covered;
        }
        Ok(())
    }

    fn current(&self) -> Arc<Segment> {
        self.shared.segments.read().last().cloned().expect("the feed always has a segment")
    }

    /// Closes the full segment, begins the next, and drops the oldest past the retention.
    fn roll(&mut self) -> Result<(), FeedError> {
        self.file.sync_data()?;
        self.dirty = false;
        let segment = new_segment(&self.shared.dir, self.next)?;
        self.file = segment.file.try_clone()?;
        let mut segments = self.shared.segments.write();
        segments.push(Arc::new(segment));
        let mut kept: u64 = segments.iter().map(|s| s.len.load(Ordering::Acquire)).sum();
        // The segment just closed stays with the new, empty one: a restart reopens it to learn
        // where the feed stands.
        while segments.len() > 2 && kept > self.retention.bytes_max {
            let oldest = segments.remove(0);
            kept -= oldest.len.load(Ordering::Acquire);
            // Readers holding it keep reading their descriptor.
            std::fs::remove_file(&oldest.path)?;
        }
        Ok(())
    }
}

/// The covered command written by [`FeedWriter::sync`] (0: none, or not readable).
fn read_covered(dir: &Path) -> u64 {
    std::fs::read(dir.join(COVERED_FILE))
        .ok()
        .and_then(|bytes| Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)))
        .unwrap_or(0)
}

/// The last segment, read through: a damaged tail and its last command's events cut (unless
/// that command is `covered`: its events were made durable whole). Returns it and the last
/// command whose events it holds whole (0: none).
fn reopen_last(dir: &Path, first: u64, covered: u64) -> Result<(Segment, u64), FeedError> {
    let path = segment_path(dir, first);
    let file = OpenOptions::new().read(true).write(true).open(&path)?;
    let end = file.metadata()?.len();
    let mut index = Vec::new();
    // (offset, record) of the events of the last command seen.
    let mut tail: Vec<(u64, u64)> = Vec::new();
    let mut expected = first;
    let (scanned, _) = scan(&file, 0, end, |pos, offset, payload| {
        if pos != expected {
            return false;
        }
        if (pos - first).is_multiple_of(INDEX_EVERY) {
            index.push((pos, offset));
        }
        let record = postcard::from_bytes::<FeedEvent>(payload).map_or(0, |e| e.record);
        if tail.last().is_some_and(|&(_, r)| r != record) {
            tail.clear();
        }
        tail.push((offset, record));
        expected += 1;
        true
    })?;
    let whole = tail.first().is_some_and(|&(_, record)| record <= covered);
    let (len, last_record) = match tail.first() {
        Some(&(_, record)) if whole => (scanned, record),
        Some(&(offset, record)) => (offset, record.saturating_sub(1)),
        None => (0, 0),
    };
    if !whole {
        expected -= tail.len() as u64;
    }
    index.retain(|&(pos, _)| pos < expected);
    if len != end {
        file.set_len(len)?;
        file.sync_data()?;
    }
    let segment = Segment {
        first,
        path,
        file,
        len: AtomicU64::new(len),
        last: AtomicU64::new(expected - 1),
        index: RwLock::new(Some(index)),
    };
    Ok((segment, last_record))
}

impl Segment {
    /// Where to begin reading for position `from`: the indexed position at or before it.
    fn offset_before(&self, from: u64) -> Result<u64, FeedError> {
        if self.index.read().is_none() {
            self.build_index()?;
        }
        let index = self.index.read();
        let index = index.as_deref().unwrap_or_default();
        let i = index.partition_point(|&(pos, _)| pos <= from);
        Ok(if i == 0 { 0 } else { index[i - 1].1 })
    }

    /// Indexes a closed segment, checking every record.
    fn build_index(&self) -> Result<(), FeedError> {
        let end = self.len.load(Ordering::Acquire);
        let (mut index, mut expected) = (Vec::new(), self.first);
        let (good, clean) = scan(&self.file, 0, end, |pos, offset, _| {
            if pos != expected {
                return false;
            }
            if (pos - self.first).is_multiple_of(INDEX_EVERY) {
                index.push((pos, offset));
            }
            expected += 1;
            true
        })?;
        if !clean || good != end || expected - 1 != self.last.load(Ordering::Acquire) {
            return Err(FeedError::Corrupt { path: self.path.display().to_string(), offset: good });
        }
        *self.index.write() = Some(index);
        Ok(())
    }
}

fn new_segment(dir: &Path, first: u64) -> Result<Segment, FeedError> {
    let path = segment_path(dir, first);
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
    File::open(dir)?.sync_all()?;
    Ok(Segment {
        first,
        path,
        file,
        len: AtomicU64::new(0),
        last: AtomicU64::new(first - 1),
        index: RwLock::new(Some(Vec::new())),
    })
}

impl Feed {
    /// The newest position written (0: none).
    pub fn head(&self) -> u64 {
        self.shared.head.load(Ordering::Acquire)
    }

    /// The last command whose events are all written (0: none).
    pub fn last_record(&self) -> u64 {
        self.shared.last_record.load(Ordering::Acquire)
    }

    /// Waits (at most `wait`) until the events of command `record` are written: a client that
    /// had the answer to a command reads its events.
    pub async fn caught_up(&self, record: u64, wait: std::time::Duration) {
        let mut watch = self.watch();
        let written = async {
            while self.last_record() < record {
                if watch.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(wait, written).await;
    }

    /// The oldest position kept (the head + 1 while the feed is empty).
    pub fn oldest(&self) -> u64 {
        self.shared.segments.read().first().map_or(1, |s| s.first)
    }

    /// Woken each time the head moves.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.head_tx.subscribe()
    }

    /// Up to `limit` events after position `after` that match `filter`, looking at no more
    /// than `scan_max` events (a sparse filter costs a bounded read; `next` says where to go
    /// on). Blocking: file reads.
    pub fn read(&self, after: u64, limit: usize, scan_max: u64, filter: &Filter) -> Result<Page, FeedError> {
        let segments: Vec<Arc<Segment>> = self.shared.segments.read().clone();
        let head = self.head();
        let oldest = segments.first().map_or(1, |s| s.first);
        // A cursor at the largest number reads nothing (and never overflows).
        if after.saturating_add(1) < oldest {
            return Err(FeedError::Expired { oldest_kept: oldest, after: oldest - 1 });
        }
        let mut page = Page { events: Vec::new(), next: after.min(head), head };
        let stop = head.min(after.saturating_add(scan_max));
        let start = after.saturating_add(1);
        let first_segment = segments.partition_point(|s| s.last.load(Ordering::Acquire) < start);
        for segment in &segments[first_segment..] {
            if page.next >= stop || page.events.len() >= limit {
                break;
            }
            let from = page.next + 1;
            let offset = segment.offset_before(from)?;
            let end = segment.len.load(Ordering::Acquire);
            let mut failed = None;
            let (_, _) = scan(&segment.file, offset, end, |pos, _, payload| {
                if pos < from {
                    return true;
                }
                if pos > stop || page.events.len() >= limit {
                    return false;
                }
                match postcard::from_bytes::<FeedEvent>(payload) {
                    Ok(event) => {
                        if filter.matches(&event) {
                            page.events.push((pos, event));
                        }
                        page.next = pos;
                        true
                    }
                    Err(_) => {
                        failed = Some(pos);
                        false
                    }
                }
            })?;
            if failed.is_some() {
                let path = segment.path.display().to_string();
                return Err(FeedError::Corrupt { path, offset });
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Code, Kind};
    use elevens_core::Currency;

    fn event(record: u64, merchant: u64) -> FeedEvent {
        let currency = Code(Currency::parse("CNY").unwrap());
        FeedEvent {
            record,
            at: record * 10,
            merchant: Some(merchant),
            buyer: Some(7),
            kind: Kind::OrderPaid {
                order: record,
                currency,
                total: 100,
                commission: 5,
                lines: Default::default(),
            },
        }
    }

    fn all(feed: &Feed, after: u64) -> Vec<u64> {
        let page = feed.read(after, usize::MAX, u64::MAX, &Filter::all()).unwrap();
        page.events.iter().map(|(p, _)| *p).collect()
    }

    /// Commands without events are covered across a restart once synced; a command whose
    /// events were written but not covered is still cut and derived again, and one covered
    /// keeps its events whole.
    #[test]
    fn a_quiet_feed_made_every_restart_replay_from_the_start_covered_commands_stay_covered() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = FeedWriter::open(dir.path(), Retention::default()).unwrap();
        writer.append(&[event(3, 1), event(3, 2)]).unwrap();
        writer.cover(10);
        writer.sync().unwrap();
        drop(writer);
        let (writer, feed) = FeedWriter::open(dir.path(), Retention::default()).unwrap();
        assert_eq!(writer.last_record(), 10, "commands 4..=10 had no events and are covered");
        assert_eq!(all(&feed, 0), vec![1, 2], "the covered command's events are whole");
        drop(writer);

        // Written, never covered (a crash before the sync): cut, to be derived again.
        let (mut writer, _) = FeedWriter::open(dir.path(), Retention::default()).unwrap();
        writer.append(&[event(12, 1)]).unwrap();
        writer.sync().unwrap();
        drop(writer);
        let (mut writer, feed) = FeedWriter::open(dir.path(), Retention::default()).unwrap();
        assert_eq!(writer.last_record(), 11);
        assert_eq!(all(&feed, 0), vec![1, 2]);
        writer.append(&[event(12, 1)]).unwrap();
        assert_eq!(all(&feed, 0), vec![1, 2, 3], "derived again, once");

        // Covered with events of its own: the file is left as it is (a stream of orders writes
        // it no more), and a restart derives that last command's events again.
        writer.cover(12);
        writer.sync().unwrap();
        assert_eq!(read_covered(dir.path()), 10, "commands with events do not rewrite the file");
        drop(writer);
        let (writer, feed) = FeedWriter::open(dir.path(), Retention::default()).unwrap();
        assert_eq!((writer.last_record(), all(&feed, 0)), (11, vec![1, 2]));
    }

    /// Postcard is not self-describing: a log of an older encoding would be misread (or read
    /// as damaged), so it is refused by name, and a new log says its format.
    #[test]
    fn a_log_of_another_format_is_refused_at_open_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = FeedWriter::open(dir.path(), Retention::default()).unwrap();
        writer.append(&[event(1, 1)]).unwrap();
        drop(writer);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap().trim(),
            LOG_FORMAT.to_string()
        );
        assert!(FeedWriter::open(dir.path(), Retention::default()).is_ok(), "its own format");

        std::fs::remove_file(dir.path().join(FORMAT_FILE)).unwrap();
        let Err(refused) = FeedWriter::open(dir.path(), Retention::default()) else {
            panic!("segments without a format file are format 1")
        };
        assert!(matches!(&refused, FeedError::Format { found, .. } if found == "1"), "{refused}");
        std::fs::write(dir.path().join(FORMAT_FILE), format!("{}\n", LOG_FORMAT + 1)).unwrap();
        assert!(matches!(FeedWriter::open(dir.path(), Retention::default()), Err(FeedError::Format { .. })));
    }

    #[test]
    fn positions_are_gap_free_across_segments_and_reads_resume_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention { bytes_max: u64::MAX, segment_bytes: 2_000 };
        let (mut writer, feed) = FeedWriter::open(dir.path(), retention).unwrap();
        for record in 1..=500 {
            writer.append(&[event(record, record % 3), event(record, 9)]).unwrap();
        }
        assert!(feed.shared.segments.read().len() > 5, "it rolled");
        assert_eq!(feed.head(), 1_000);
        assert_eq!(all(&feed, 0), (1..=1_000).collect::<Vec<_>>());
        for after in [0, 1, 255, 256, 257, 999, 1_000] {
            assert_eq!(all(&feed, after), (after + 1..=1_000).collect::<Vec<_>>(), "after {after}");
        }
        // Past the head, up to the largest number: nothing, the head unchanged.
        for after in [1_001, u64::MAX - 1, u64::MAX] {
            let page = feed.read(after, 10, 100, &Filter::all()).unwrap();
            assert_eq!((page.events.len(), page.head), (0, 1_000), "after {after}");
        }
        let only = Filter { types: Filter::ALL_TYPES, merchant: Some(1) };
        let page = feed.read(0, 1_000, 100, &only).unwrap();
        assert_eq!(page.next, 100, "a sparse filter stops at the scan bound");
        assert!(page.events.iter().all(|(_, e)| e.merchant == Some(1)));
        assert_eq!(page.events.len(), 17);
        let page = feed.read(0, 10, 1_000, &only).unwrap();
        assert_eq!(page.events.len(), 10);
        assert_eq!(page.next, page.events[9].0, "a full page resumes after its last event");
    }

    /// Closed segments are not read at a start, only when a reader first needs them; damage
    /// in one is then refused by name.
    #[test]
    fn a_reopened_feed_indexes_closed_segments_when_read_and_refuses_their_damage() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention { bytes_max: u64::MAX, segment_bytes: 2_000 };
        let (mut writer, _) = FeedWriter::open(dir.path(), retention).unwrap();
        for record in 1..=300 {
            writer.append(&[event(record, 1)]).unwrap();
        }
        drop(writer);
        let (writer, feed) = FeedWriter::open(dir.path(), retention).unwrap();
        assert_eq!(writer.last_record(), 299, "the last command's events are derived again");
        assert!(feed.shared.segments.read().iter().rev().skip(1).all(|s| s.index.read().is_none()));
        assert_eq!(all(&feed, 0), (1..=299).collect::<Vec<_>>());
        assert_eq!(all(&feed, 150), (151..=299).collect::<Vec<_>>());
        drop((writer, feed));
        let first = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&first).unwrap();
        bytes[40] ^= 0xff;
        std::fs::write(&first, bytes).unwrap();
        let (_, feed) = FeedWriter::open(dir.path(), retention).unwrap();
        assert!(matches!(feed.read(0, 10, 10, &Filter::all()), Err(FeedError::Corrupt { .. })));
        assert!(feed.read(200, 10, 10, &Filter::all()).is_ok(), "other segments still read");
    }

    #[test]
    fn a_reopened_feed_cuts_its_last_command_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = FeedWriter::open(dir.path(), Retention::default()).unwrap();
        writer.append(&[event(1, 1), event(1, 2), event(2, 1), event(2, 2)]).unwrap();
        writer.sync().unwrap();
        drop(writer);
        let path = segment_path(dir.path(), 1);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let (mut writer, feed) = FeedWriter::open(dir.path(), Retention::default()).unwrap();
        assert_eq!(writer.last_record(), 1, "record 2's events are cut, the torn one with them");
        assert_eq!(all(&feed, 0), vec![1, 2]);
        writer.append(&[event(1, 1), event(2, 1), event(2, 2), event(3, 1)]).unwrap();
        let page = feed.read(0, usize::MAX, u64::MAX, &Filter::all()).unwrap();
        let records: Vec<u64> = page.events.iter().map(|(_, e)| e.record).collect();
        assert_eq!(records, vec![1, 1, 2, 2, 3], "record 1 is not written twice");
        assert_eq!(all(&feed, 0), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn past_the_retention_the_oldest_segments_go_and_old_positions_are_expired() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention { bytes_max: 5_000, segment_bytes: 1_000 };
        let (mut writer, feed) = FeedWriter::open(dir.path(), retention).unwrap();
        for record in 1..=1_000 {
            writer.append(&[event(record, 1)]).unwrap();
        }
        let oldest = feed.oldest();
        assert!(oldest > 1);
        let kept: u64 = feed.shared.segments.read().iter().map(|s| s.len.load(Ordering::Acquire)).sum();
        assert!(kept <= 6_000, "{kept} bytes kept");
        assert!(matches!(feed.read(0, 10, 10, &Filter::all()), Err(FeedError::Expired { .. })));
        assert_eq!(all(&feed, oldest - 1).first(), Some(&oldest));
        drop(writer);
        let (_, feed) = FeedWriter::open(dir.path(), retention).unwrap();
        assert_eq!(feed.oldest(), oldest);
    }

    #[test]
    fn type_names_make_masks_and_unknown_ones_are_named() {
        assert_eq!(Filter::types_of(["order.placed", "order.paid"]), Ok(0b11));
        assert_eq!(Filter::types_of(["order.placed", "order.shipped"]), Err("order.shipped"));
    }
}
