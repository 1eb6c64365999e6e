//! Snapshots: the encoded state after record `seq`, so recovery replays only the tail.
//!
//! File `snapshot-{seq:020}.bin`: magic u32 | seq u64 | len u64 | crc32 u32, zeros to 4 KiB, then
//! the bytes (so that they can be written with `O_DIRECT`; the first layout, "ELS1", had them
//! right after the header and is still read). Written to a temporary file, fsync'd, renamed into
//! place and the directory fsync'd, so a snapshot is either whole or absent. A damaged snapshot
//! is skipped with a warning: the journal still holds every record, so an older snapshot (or
//! none) and a longer replay give the same state.

use crate::{io_error, JournalError};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const SNAPSHOT_MAGIC: u32 = 0x3253_4c45; // "ELS2"
/// The first layout: the bytes right after the header.
const SNAPSHOT_MAGIC_HEADER_ONLY: u32 = 0x3153_4c45; // "ELS1"
const SNAPSHOT_HEADER_BYTES: usize = 24;
/// Where the bytes start, and the alignment of `O_DIRECT` writes (address, length, offset).
const SNAPSHOT_BLOCK_BYTES: usize = 4096;
/// How many snapshots are kept; older ones are deleted after a new one is durable.
const SNAPSHOTS_KEPT: usize = 2;
/// The write buffer of a snapshot.
const SNAPSHOT_BUFFER_BYTES: usize = 1 << 20;
/// A snapshot is sent to the disk every this many bytes (see `Summed::write_back`).
const SNAPSHOT_FLUSH_BYTES: u64 = 8 << 20;

pub struct Snapshot {
    /// The state is the result of records 1..=seq.
    pub seq: u64,
    /// The whole file, mapped: a snapshot is gigabytes at ten million orders, and reading it
    /// into memory would fault in (and copy into) as many fresh pages again as the state needs.
    file: memmap2::Mmap,
    /// Where the encoded state starts in it.
    at: usize,
    /// What the writer kept beside it ([`SnapshotStore::publish_with`]): a replicated node's
    /// place in its stream.
    pub meta: Option<Vec<u8>>,
}

impl Snapshot {
    /// The encoded state.
    pub fn bytes(&self) -> &[u8] {
        &self.file[self.at..]
    }
}

#[derive(Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
    /// Snapshots are written with `O_DIRECT` ([`SnapshotStore::direct_io`]).
    direct_io: bool,
}

impl SnapshotStore {
    /// Opens the directory, removing what a writer left unfinished (a crash mid-snapshot).
    pub fn open(dir: &Path) -> Result<SnapshotStore, JournalError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
        Ok(SnapshotStore { dir: dir.to_path_buf(), direct_io: false })
    }

    /// Writes snapshots around the page cache (`O_DIRECT`) where the file system allows it:
    /// the writer costs an engine under load less (see [`SnapshotFile`]), and a restart reads
    /// the snapshot from the disk instead of the cache.
    pub fn direct_io(mut self, direct_io: bool) -> SnapshotStore {
        self.direct_io = direct_io;
        self
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
        self.latest_at_most(u64::MAX)
    }

    /// The newest snapshot of the state after at most `up_to` records that reads back whole.
    pub fn latest_at_most(&self, up_to: u64) -> Result<Option<Snapshot>, JournalError> {
        for (seq, path) in self.list()?.into_iter().rev().filter(|(seq, _)| *seq <= up_to) {
            let file = File::open(&path).map_err(io_error(&path))?;
            // SAFETY: a published snapshot is never written again (written under another name,
            // renamed into place, fsync'd); the data directory's lock keeps other writers out.
            let map = match unsafe { memmap2::Mmap::map(&file) } {
                Ok(map) => map,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "snapshot unreadable; skipping it");
                    continue;
                }
            };
            if let Ok(file) = file.try_clone() {
                // Beside the check below, which reads the two halves on two cores.
                std::thread::spawn(move || read_ahead(&file));
            }
            match decode(&map, seq) {
                Some(at) => {
                    let meta = std::fs::read(self.meta_path(seq)).ok();
                    return Ok(Some(Snapshot { seq, file: map, at, meta }));
                }
                None => tracing::warn!(path = %path.display(), "snapshot damaged; skipping it"),
            }
        }
        Ok(None)
    }

    /// Starts the snapshot of the state after record `seq`: a temporary file with room for
    /// the header. Write the state to [`SnapshotFile::out`], then [`SnapshotFile::finish`] it,
    /// then [`SnapshotStore::publish`] it once the journal is durable up to `seq`.
    pub fn create(&self, seq: u64) -> Result<SnapshotFile, JournalError> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.tmp_path(seq);
        let open = |flags| {
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).custom_flags(flags).open(&tmp)
        };
        // Straight from the buffer to the disk if asked and the file system allows it (not tmpfs).
        let direct_file = if self.direct_io { open(libc::O_DIRECT).ok() } else { None };
        let direct = direct_file.is_some();
        let mut file = match direct_file {
            Some(file) => file,
            None => open(0).map_err(io_error(&tmp))?,
        };
        file.seek(SeekFrom::Start(SNAPSHOT_BLOCK_BYTES as u64)).map_err(io_error(&tmp))?;
        let summed = Summed { file, crc: crc32fast::Hasher::new(), len: 0, flushed: 0, direct };
        let storage = vec![0; SNAPSHOT_BUFFER_BYTES + SNAPSHOT_BLOCK_BYTES];
        let start = storage.as_ptr().align_offset(SNAPSHOT_BLOCK_BYTES);
        Ok(SnapshotFile { seq, out: Blocks { summed, storage, start, len: 0 } })
    }

    /// Moves a finished snapshot into place (it is what the next start reads) and deletes the
    /// oldest beyond [`SNAPSHOTS_KEPT`].
    pub fn publish(&self, seq: u64) -> Result<(), JournalError> {
        self.publish_with(seq, None)
    }

    /// [`SnapshotStore::publish`], with `meta` kept beside the snapshot (written and synced
    /// before the snapshot is moved into place, so a published snapshot always has it).
    pub fn publish_with(&self, seq: u64, meta: Option<&[u8]>) -> Result<(), JournalError> {
        if let Some(meta) = meta {
            let path = self.meta_path(seq);
            let mut file = File::create(&path).map_err(io_error(&path))?;
            file.write_all(meta).and_then(|()| file.sync_all()).map_err(io_error(&path))?;
        }
        let (tmp, path) = (self.tmp_path(seq), self.dir.join(format!("snapshot-{seq:020}.bin")));
        std::fs::rename(&tmp, &path).map_err(io_error(&path))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_error(&self.dir))?;
        let all = self.list()?;
        for (old_seq, old) in all.iter().take(all.len().saturating_sub(SNAPSHOTS_KEPT)) {
            std::fs::remove_file(old).map_err(io_error(old))?;
            let _ = std::fs::remove_file(self.meta_path(*old_seq));
        }
        Ok(())
    }

    fn meta_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("snapshot-{seq:020}.meta"))
    }

    /// Deletes an unfinished snapshot (its writer failed).
    pub fn discard(&self, seq: u64) {
        let _ = std::fs::remove_file(self.tmp_path(seq));
    }

    fn tmp_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("snapshot-{seq:020}.tmp"))
    }

    /// Writes and publishes a snapshot of encoded bytes in one go.
    pub fn write(&self, seq: u64, state: &[u8]) -> Result<(), JournalError> {
        let mut file = self.create(seq)?;
        let tmp = self.tmp_path(seq);
        file.out().write_all(state).map_err(io_error(&tmp))?;
        file.finish().map_err(io_error(&tmp))?;
        self.publish(seq)
    }
}

/// A snapshot being written. Nothing here allocates once it is created (the buffer is
/// allocated up front), so it can be written by a forked child process, where allocating could
/// wait forever on a lock some other thread of the parent held at the fork.
///
/// With [`SnapshotStore::direct_io`], whole buffers go to the disk with `O_DIRECT`: through the
/// page cache, a forked writer of 1.6 GB spent 35% of its time in the kernel copying into the
/// cache and took 6.8-7.1 s on an idle engine; written directly, 3.4 s. Under load the writer
/// shares the two cores with the engine, which did 874 k / 834 k orders/s while snapshotting
/// every 1 M commands, and 1,034 k / 967 k with the writer's copies gone. The price is a
/// restart that finds the snapshot on the disk, not in the cache ([`read_ahead`]): after a
/// `kill -9` at ~11-12 M orders, ready in 4.6-5.4 s instead of 3.3-4.4 s. So it is a choice,
/// buffered by default.
pub struct SnapshotFile {
    seq: u64,
    out: Blocks,
}

/// A buffered writer whose buffer is aligned for `O_DIRECT` and written out only when full
/// (and last at [`SnapshotFile::finish`]). The encoder writes small blocks into it from a buffer
/// of its own that stays in the first-level cache: when the encoder wrote into this one
/// directly, its lines, just read by the disk's DMA, missed on every store (65% of the writer's
/// time with `O_DIRECT`).
struct Blocks {
    summed: Summed,
    /// The buffer is `storage[start..][..SNAPSHOT_BUFFER_BYTES]`.
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Blocks {
    fn write_out(&mut self) -> std::io::Result<()> {
        let Blocks { summed, storage, start, len } = self;
        summed.write_all(&storage[*start..][..*len])?;
        *len = 0;
        Ok(())
    }
}

impl Write for Blocks {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.len == SNAPSHOT_BUFFER_BYTES {
            self.write_out()?;
        }
        let n = bytes.len().min(SNAPSHOT_BUFFER_BYTES - self.len);
        self.storage[self.start + self.len..][..n].copy_from_slice(&bytes[..n]);
        self.len += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.write_out()
    }
}

impl Summed {
    /// Writes what is dirty to the disk and waits for it. A gigabyte of dirty snapshot pages left
    /// to the final fsync queued the journal's group commits behind it on the disk (fsyncs of
    /// up to 589 ms during the snapshots, `elevens bench --snapshot-every 1000000`); written back
    /// a few megabytes at a time, a group commit waits behind at most that much. (Nothing is
    /// dirty while writing with `O_DIRECT`.)
    fn write_back(&mut self) -> std::io::Result<()> {
        let (from, len) = (self.flushed as libc::off64_t, (self.len - self.flushed) as libc::off64_t);
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: a plain system call on a descriptor this owns.
        if unsafe { libc::sync_file_range(self.file.as_raw_fd(), from, len, flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.flushed = self.len;
        Ok(())
    }

    /// From here on through the page cache: for a write `O_DIRECT` cannot take (the last, short
    /// one; an unaligned one) and for the header.
    fn buffered(&mut self) -> std::io::Result<()> {
        if self.direct {
            let fd = self.file.as_raw_fd();
            // SAFETY: fcntl on a descriptor this owns.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            // SAFETY: as above.
            if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            self.direct = false;
            self.flushed = self.len;
        }
        Ok(())
    }
}

impl SnapshotFile {
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Where the encoded state goes.
    pub fn out(&mut self) -> &mut impl Write {
        &mut self.out
    }

    /// Writes out the buffer and the header (the length and CRC of what went through
    /// [`SnapshotFile::out`]) and makes the file durable.
    pub fn finish(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.out.write_out()?;
        let summed = &mut self.out.summed;
        summed.buffered()?;
        let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
        header[..4].copy_from_slice(&SNAPSHOT_MAGIC.to_le_bytes());
        header[4..12].copy_from_slice(&self.seq.to_le_bytes());
        header[12..20].copy_from_slice(&summed.len.to_le_bytes());
        header[20..].copy_from_slice(&summed.crc.clone().finalize().to_le_bytes());
        summed.file.write_all_at(&header, 0)?;
        summed.file.sync_all()
    }

    /// The file descriptor, which a forked writer keeps when it closes every other.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.out.summed.file.as_raw_fd()
    }
}

/// A file that counts and checksums what is written to it, and sends it to the disk as it goes.
struct Summed {
    file: File,
    crc: crc32fast::Hasher,
    len: u64,
    /// Bytes already on their way to the disk (`sync_file_range`).
    flushed: u64,
    /// Opened with `O_DIRECT`, and every write so far whole blocks from an aligned address.
    direct: bool,
}

impl Write for Summed {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let aligned = |n: usize| n.is_multiple_of(SNAPSHOT_BLOCK_BYTES);
        if self.direct && !(aligned(bytes.len()) && aligned(bytes.as_ptr() as usize)) {
            self.buffered()?;
        }
        let n = self.file.write(bytes)?;
        self.crc.update(&bytes[..n]);
        self.len += n as u64;
        if !self.direct && self.len - self.flushed >= SNAPSHOT_FLUSH_BYTES {
            self.write_back()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Asks the kernel to read a whole snapshot into the page cache at once. Written around the
/// cache, the snapshot a restart reads is on the disk only, and faulted in through the mapping a
/// readahead window at a time it added 1.1-1.4 s to a start at 1.1-1.6 GB (reading it back
/// after each snapshot instead slowed the engine under load, 1,013 k -> 783 k orders/s). One
/// `readahead` call is capped at a few megabytes (`POSIX_FADV_WILLNEED` on the whole file read
/// 8 MB of it); 8 MiB at a time, 1.1 GB was in the cache in 0.28 s. Only a hint: if it fails,
/// the pages are read as they are touched.
fn read_ahead(file: &File) {
    const PIECE_BYTES: u64 = 8 << 20;
    let len = file.metadata().map_or(0, |m| m.len());
    let half = len / 2;
    // A piece of each half in turn, as the check reads them (`crc_on_two_cores`).
    for at in (0..half.max(1)).step_by(PIECE_BYTES as usize) {
        for from in [at, half + at] {
            // SAFETY: a plain system call on a descriptor this owns.
            let asked =
                unsafe { libc::readahead(file.as_raw_fd(), from as libc::off64_t, PIECE_BYTES as usize) };
            if asked != 0 {
                return;
            }
        }
    }
}

/// Where the encoded state starts in a snapshot file, if the file is whole.
fn decode(bytes: &[u8], seq: u64) -> Option<usize> {
    let header = bytes.get(..SNAPSHOT_HEADER_BYTES)?;
    let word = |at: usize, n: usize| -> u64 {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&header[at..at + n]);
        u64::from_le_bytes(b)
    };
    let at = match u32::try_from(word(0, 4)).ok()? {
        SNAPSHOT_MAGIC => SNAPSHOT_BLOCK_BYTES,
        SNAPSHOT_MAGIC_HEADER_ONLY => SNAPSHOT_HEADER_BYTES,
        _ => return None,
    };
    let len = usize::try_from(word(12, 8)).ok()?;
    let payload = bytes.get(at..)?;
    let sound =
        word(4, 8) == seq && payload.len() == len && u64::from(crc_on_two_cores(payload)) == word(20, 4);
    sound.then_some(at)
}

/// The CRC32 of a snapshot of gigabytes, each half on a core (which also maps its pages in).
fn crc_on_two_cores(bytes: &[u8]) -> u32 {
    let (front, back) = bytes.split_at(bytes.len() / 2);
    let crc = |part: &[u8]| {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(part);
        hasher
    };
    std::thread::scope(|scope| {
        let back = scope.spawn(|| crc(back));
        let mut whole = crc(front);
        whole.combine(&back.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        whole.finalize()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_of_many_buffers_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        // Whole buffers (straight to the disk where it allows), then a short last one; written
        // in pieces that do not line up with the buffer.
        let bytes: Vec<u8> = (0..3 * SNAPSHOT_BUFFER_BYTES + 12_345).map(|i| (i * 7 % 251) as u8).collect();
        for (seq, direct_io) in [(7, true), (8, false)] {
            let store = SnapshotStore::open(dir.path()).unwrap().direct_io(direct_io);
            let mut file = store.create(seq).unwrap();
            for piece in bytes.chunks(5_000) {
                file.out().write_all(piece).unwrap();
            }
            file.finish().unwrap();
            store.publish(seq).unwrap();
            let latest = store.latest().unwrap().unwrap();
            assert_eq!(latest.seq, seq);
            assert!(latest.bytes() == bytes.as_slice());
            let path = dir.path().join(format!("snapshot-{seq:020}.bin"));
            assert_eq!(std::fs::metadata(path).unwrap().len(), (SNAPSHOT_BLOCK_BYTES + bytes.len()) as u64);
        }
    }

    #[test]
    fn a_snapshot_of_the_first_layout_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let payload = b"state of the first layout";
        let mut crc = crc32fast::Hasher::new();
        crc.update(payload);
        let mut file = SNAPSHOT_MAGIC_HEADER_ONLY.to_le_bytes().to_vec();
        file.extend(9u64.to_le_bytes());
        file.extend((payload.len() as u64).to_le_bytes());
        file.extend(crc.finalize().to_le_bytes());
        file.extend(payload);
        std::fs::write(dir.path().join("snapshot-00000000000000000009.bin"), file).unwrap();
        let latest = SnapshotStore::open(dir.path()).unwrap().latest().unwrap().unwrap();
        assert_eq!((latest.seq, latest.bytes()), (9, &payload[..]));
    }

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
        // An empty file (nothing to map) is skipped too; a writer's leftover goes at open.
        std::fs::write(&newest, b"").unwrap();
        assert_eq!(store.latest().unwrap().unwrap().seq, 20);
        std::fs::write(dir.path().join("snapshot-00000000000000000040.tmp"), b"half").unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        assert!(std::fs::read_dir(dir.path())
            .unwrap()
            .all(|e| e.unwrap().path().extension().unwrap() == "bin"));
        assert_eq!(store.latest().unwrap().unwrap().seq, 20);
    }
}
