//! Snapshots written by a forked child, so the sequencer never stops to encode the state.
//!
//! Encoding the state takes seconds at millions of orders and grows with it, so the sequencer
//! never does it: it forks between two batches, and the child gets a copy-on-write image of the
//! state as it stands and writes it to the snapshot file while the parent goes on (Redis's
//! `BGSAVE`). The sequencer pays only for
//! the fork (copying the page tables: tens of ms for gigabytes) and for the pages it writes
//! while the child runs (each copied once).
//!
//! A forked child of a threaded process has only the forking thread; a lock another thread held
//! at the fork (the allocator's, stderr's) stays held forever. So the child allocates nothing:
//! the file and its buffer are made before the fork, the encoding streams into them
//! ([`State::write_to`]), and the child ends with `_exit`. It closes every other descriptor
//! (the listening socket, the data directory's lock) and dies with its parent thread
//! (`PR_SET_PDEATHSIG`), so a killed server leaves nothing holding its port or its lock.
//!
//! The snapshot is published (renamed into place) only once the child succeeded **and** the
//! journal is durable up to the snapshot's record: the state the child wrote includes the batch
//! being applied at the fork, which is not on disk yet.

use elevens_core::State;
use elevens_journal::{SnapshotFile, SnapshotStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A child that has not finished in this long is killed (it could only be stuck); the journal
/// still has every record, and the next snapshot starts afresh.
pub(crate) const CHILD_TIME_MAX: Duration = Duration::from_secs(600);
/// How often the waiting thread checks on the child.
const CHILD_POLL: Duration = Duration::from_millis(20);

/// A snapshot being written by a child process.
#[derive(Debug)]
pub(crate) struct WritingChild {
    pid: libc::pid_t,
    seq: u64,
    forked: Instant,
    /// Kept beside the snapshot once written: a replicated node's place in its stream.
    pub(crate) meta: Option<Vec<u8>>,
}

/// Forks a child that writes `state` to `file` and exits. Returns at once in the parent.
pub(crate) fn fork(state: &State, mut file: SnapshotFile) -> std::io::Result<WritingChild> {
    let seq = file.seq();
    let keep = file.raw_fd();
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: fork is safe to call; what follows in the child only writes to memory it owns
    // and makes system calls: no allocation, no lock (see the module documentation).
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            // SAFETY: prctl, getppid, close_range and _exit are plain system calls.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(3); // the parent died before the line above
                }
                if keep > 3 {
                    libc::close_range(3, keep as u32 - 1, 0);
                }
                libc::close_range(keep as u32 + 1, u32::MAX, 0);
            }
            let written = state.write_to(file.out()).is_ok() && file.finish().is_ok();
            // SAFETY: ends the child without running the parent's destructors or atexit hooks.
            unsafe { libc::_exit(if written { 0 } else { 1 }) }
        }
        pid => {
            // The parent's copy of the file has nothing buffered (`SnapshotStore::create`);
            // dropping it closes the parent's descriptor, not the child's.
            drop(file);
            Ok(WritingChild { pid, seq, forked: Instant::now(), meta: None })
        }
    }
}

/// The thread that waits for each child, after the journal thread has made the snapshot's
/// record durable, and publishes the snapshot. Clears `busy` so the sequencer may fork again.
pub(crate) fn run(
    snapshots: SnapshotStore,
    children: crossbeam_channel::Receiver<WritingChild>,
    busy: Arc<AtomicBool>,
) {
    while let Ok(child) = children.recv() {
        match wait(&child) {
            Ok(()) => match snapshots.publish_with(child.seq, child.meta.as_deref()) {
                Ok(()) => tracing::info!(
                    seq = child.seq,
                    ms = child.forked.elapsed().as_millis() as u64,
                    "snapshot written"
                ),
                Err(error) => {
                    snapshots.discard(child.seq);
                    tracing::warn!(%error, "snapshot not published; the journal still has every record");
                }
            },
            Err(why) => {
                snapshots.discard(child.seq);
                tracing::warn!(seq = child.seq, why, "snapshot failed; the journal still has every record");
            }
        }
        busy.store(false, Ordering::Release);
    }
}

fn wait(child: &WritingChild) -> Result<(), String> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid pointer for the status.
        let rc = unsafe { libc::waitpid(child.pid, &mut status, libc::WNOHANG) };
        if rc == child.pid {
            return match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
                Some(0) => Ok(()),
                Some(code) => Err(format!("the writer exited with {code}")),
                None => Err(format!("the writer was stopped by signal {}", libc::WTERMSIG(status))),
            };
        }
        if rc < 0 {
            return Err(format!("waiting for the writer: {}", std::io::Error::last_os_error()));
        }
        if child.forked.elapsed() > CHILD_TIME_MAX {
            // SAFETY: kill of our own child, which has not been reaped yet.
            unsafe { libc::kill(child.pid, libc::SIGKILL) };
        }
        std::thread::sleep(CHILD_POLL);
    }
}
