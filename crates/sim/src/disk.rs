//! A simulated disk for the journal: files in memory, what was appended but not synced kept
//! apart, and faults drawn from the simulation's seed.
//!
//! - A crash keeps a random prefix of each file's unsynced bytes (none, some: a torn write, or
//!   all), and may garble the kept part: nothing that was not synced is promised.
//! - An operation may be the one the crash happens in: an append lands partly, a sync does not
//!   happen; every later operation fails until the simulator restarts.
//! - A read may fail (a latent sector error); reading again may succeed.
//! - A synced byte may rot (flipped at rest), which recovery must refuse by name.

use elevens_journal::Storage;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{Error, ErrorKind};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
struct File {
    /// Bytes that survive a crash.
    synced: Vec<u8>,
    /// Appended since the last sync: visible to reads, at the crash's mercy.
    unsynced: Vec<u8>,
}

impl File {
    fn bytes(&self) -> Vec<u8> {
        [self.synced.as_slice(), self.unsynced.as_slice()].concat()
    }
}

/// How often faults happen, per operation, in parts per million.
#[derive(Clone, Copy, Debug)]
pub struct FaultRates {
    /// The operation is the one a crash interrupts.
    pub crash_ppm: u32,
    /// A read fails once.
    pub read_error_ppm: u32,
}

#[derive(Debug)]
struct Inner {
    files: BTreeMap<String, File>,
    rng: StdRng,
    rates: FaultRates,
    /// Set when a crash happened: every operation fails until [`SimDisk::restart`].
    crashed: bool,
    read_errors: u64,
}

/// The simulator keeps one handle and gives the journal another (both see the same files).
#[derive(Clone, Debug)]
pub struct SimDisk(Arc<Mutex<Inner>>);

fn crashed() -> Error {
    Error::other("simulated crash")
}

impl SimDisk {
    pub fn new(seed: u64, rates: FaultRates) -> SimDisk {
        SimDisk(Arc::new(Mutex::new(Inner {
            files: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed),
            rates,
            crashed: false,
            read_errors: 0,
        })))
    }

    pub fn storage(&self) -> Box<dyn Storage> {
        Box::new(self.clone())
    }

    /// Crashes now, if not already: from here on every operation fails.
    pub fn crash(&self) {
        self.0.lock().crashed = true;
    }

    pub fn has_crashed(&self) -> bool {
        self.0.lock().crashed
    }

    /// The power comes back: each file keeps its synced bytes and a random prefix of the rest,
    /// which may be garbled. Returns the unsynced bytes lost.
    pub fn restart(&self) -> u64 {
        let mut inner = self.0.lock();
        let Inner { files, rng, .. } = &mut *inner;
        let mut lost = 0;
        for file in files.values_mut() {
            let pending = std::mem::take(&mut file.unsynced);
            let kept = rng.random_range(0..=pending.len());
            let mut survivor = pending[..kept].to_vec();
            if !survivor.is_empty() && rng.random_ratio(1, 4) {
                let at = rng.random_range(0..survivor.len());
                survivor[at] ^= rng.random_range(1..=255u8);
            }
            lost += (pending.len() - kept) as u64;
            file.synced.extend_from_slice(&survivor);
        }
        inner.crashed = false;
        lost
    }

    /// Flips one synced byte of a file at rest; returns where, to undo it with [`SimDisk::repair`].
    pub fn rot(&self, name: &str) -> Option<(String, usize, u8)> {
        let mut inner = self.0.lock();
        let Inner { files, rng, .. } = &mut *inner;
        let file = files.get_mut(name).filter(|f| !f.synced.is_empty())?;
        let at = rng.random_range(0..file.synced.len());
        let mask = rng.random_range(1..=255u8);
        file.synced[at] ^= mask;
        Some((name.to_owned(), at, mask))
    }

    /// Undoes [`SimDisk::rot`] (the byte restored from a replica or a backup).
    pub fn repair(&self, (name, at, mask): &(String, usize, u8)) {
        if let Some(byte) = self.0.lock().files.get_mut(name).and_then(|f| f.synced.get_mut(*at)) {
            *byte ^= mask;
        }
    }

    /// The names of the journal's segments, in order.
    pub fn segments(&self) -> Vec<String> {
        self.0.lock().files.keys().filter(|n| n.ends_with(".journal")).cloned().collect()
    }

    pub fn read_errors(&self) -> u64 {
        self.0.lock().read_errors
    }

    /// Whether this operation is the one a crash happens in.
    fn crash_here(inner: &mut Inner) -> bool {
        let ppm = inner.rates.crash_ppm;
        if !inner.crashed && ppm > 0 && inner.rng.random_ratio(ppm, 1_000_000) {
            inner.crashed = true;
        }
        inner.crashed
    }
}

impl Storage for SimDisk {
    fn list(&self) -> std::io::Result<Vec<String>> {
        let inner = self.0.lock();
        if inner.crashed {
            return Err(crashed());
        }
        Ok(inner.files.keys().cloned().collect())
    }

    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        let mut inner = self.0.lock();
        if inner.crashed {
            return Err(crashed());
        }
        if !inner.files.contains_key(name) {
            return Err(Error::from(ErrorKind::NotFound));
        }
        let ppm = inner.rates.read_error_ppm;
        if ppm > 0 && inner.rng.random_ratio(ppm, 1_000_000) {
            inner.read_errors += 1;
            return Err(Error::other("simulated latent sector error"));
        }
        Ok(inner.files[name].bytes())
    }

    fn create(&mut self, name: &str) -> std::io::Result<()> {
        let mut inner = self.0.lock();
        if SimDisk::crash_here(&mut inner) {
            return Err(crashed());
        }
        if inner.files.contains_key(name) {
            return Err(Error::from(ErrorKind::AlreadyExists));
        }
        inner.files.insert(name.to_owned(), File::default());
        Ok(())
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut inner = self.0.lock();
        if inner.crashed {
            return Err(crashed());
        }
        if SimDisk::crash_here(&mut inner) {
            // The crash lands mid-write: part of it reached the page cache.
            let part = inner.rng.random_range(0..=bytes.len());
            if let Some(file) = inner.files.get_mut(name) {
                file.unsynced.extend_from_slice(&bytes[..part]);
            }
            return Err(crashed());
        }
        let file = inner.files.get_mut(name).ok_or_else(|| Error::from(ErrorKind::NotFound))?;
        file.unsynced.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> std::io::Result<()> {
        let mut inner = self.0.lock();
        if SimDisk::crash_here(&mut inner) {
            return Err(crashed());
        }
        let file = inner.files.get_mut(name).ok_or_else(|| Error::from(ErrorKind::NotFound))?;
        let pending = std::mem::take(&mut file.unsynced);
        file.synced.extend_from_slice(&pending);
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> std::io::Result<()> {
        let mut inner = self.0.lock();
        if SimDisk::crash_here(&mut inner) {
            return Err(crashed());
        }
        let file = inner.files.get_mut(name).ok_or_else(|| Error::from(ErrorKind::NotFound))?;
        let mut bytes = file.bytes();
        bytes.truncate(len as usize);
        *file = File { synced: bytes, unsynced: Vec::new() };
        Ok(())
    }

    fn replace(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut inner = self.0.lock();
        if SimDisk::crash_here(&mut inner) {
            return Err(crashed());
        }
        inner.files.insert(name.to_owned(), File { synced: bytes.to_vec(), unsynced: Vec::new() });
        Ok(())
    }

    fn remove(&mut self, name: &str) -> std::io::Result<()> {
        let mut inner = self.0.lock();
        if SimDisk::crash_here(&mut inner) {
            return Err(crashed());
        }
        inner.files.remove(name).map(drop).ok_or_else(|| Error::from(ErrorKind::NotFound))
    }

    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from("sim").join(name)
    }
}
