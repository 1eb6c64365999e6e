//! The global allocator: mimalloc, with large blocks of the threads that fill the state's
//! tables faulted in by a thread of their own.
//!
//! The big tables grow by fresh chunks (orders 8 MiB, transfers 3.5 MiB, remembered outcomes
//! 4 MiB at a time); left alone, the sequencer would take a page fault on every 4 KiB of them as
//! it filled them. Every allocation of at least
//! [`PREFAULT_BYTES_MIN`] by such a thread (the sequencer, a restart's decoders: the server
//! names them, [`elevens_http::engine::on_table_threads`]) is handed to a prefault thread,
//! which asks the kernel to map its pages writable (`MADV_POPULATE_WRITE`) while the sequencer
//! is still filling the first of them; the second core is mostly idle. Other threads' blocks
//! are left alone: a buffer that doubles (a search index's segment files) would have its unused
//! half made resident.
//!
//! Safe whatever happens to the block meanwhile: populating changes no byte (the pages of a
//! fresh block are zero either way, and pages already mapped are left alone), and a block freed
//! or unmapped before its turn costs an `madvise` that does nothing or fails, which is ignored.
//! The queue is a fixed array behind a mutex: code inside the allocator must not allocate.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
#[cfg(feature = "bench")]
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Condvar, Mutex};

/// Smaller blocks are left to fault in as they are used.
const PREFAULT_BYTES_MIN: usize = 1 << 20;
/// Blocks waiting for the prefault thread; past it, new ones are not prefaulted.
const QUEUE_MAX: usize = 64;
/// `MADV_POPULATE_WRITE` (Linux 5.14), not in the libc crate this builds with.
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// `mi_option_purge_delay` of `mimalloc.h` (v2 and v3; the -sys crate does not name it): how
/// long, in ms, freed pages are kept before they go back to the system.
#[cfg(any(feature = "bench", test))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// The purge delay before [`release_freed_memory`] changed it (`i64::MIN`: not changed).
#[cfg(feature = "bench")]
static PURGE_DELAY_DEFAULT: AtomicI64 = AtomicI64::new(i64::MIN);

/// Has mimalloc hand freed pages back to the system at once (`true`), or after its default
/// delay again (`false`). For memory measurements (`elevens bench`'s bytes per SKU): by default
/// the pages of a search index's merged segments stay in the process for a second or more.
#[cfg(feature = "bench")]
pub fn release_freed_memory(at_once: bool) {
    // SAFETY: an option is one aligned `long` in a static table; mimalloc's threads read the
    // old or the new value (an aligned 8-byte store on x86-64 and aarch64), and any delay is
    // valid. The index is checked against mimalloc's default by a test.
    unsafe {
        #[allow(clippy::useless_conversion)] // `c_long` is 32 bits on some targets.
        let current = i64::from(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY));
        let _ = PURGE_DELAY_DEFAULT.compare_exchange(i64::MIN, current, Ordering::AcqRel, Ordering::Acquire);
        let default = PURGE_DELAY_DEFAULT.load(Ordering::Acquire);
        let delay = if at_once { 0 } else { default };
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay as std::os::raw::c_long);
    }
}

pub struct Prefaulting;

struct Queue {
    blocks: [(usize, usize); QUEUE_MAX],
    len: usize,
    /// Whether the prefault thread runs; until then nothing is queued.
    running: bool,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue { blocks: [(0, 0); QUEUE_MAX], len: 0, running: false });
static QUEUED: Condvar = Condvar::new();

thread_local! {
    /// Whether this thread fills the state's tables ([`for_this_thread`]).
    static FILLING_TABLES: Cell<bool> = const { Cell::new(false) };
}

/// Prefaults this thread's large blocks from now on (`true`), or no longer (`false`).
pub fn for_this_thread(on: bool) {
    FILLING_TABLES.with(|f| f.set(on));
}

fn queue(ptr: *mut u8, size: usize) {
    if size < PREFAULT_BYTES_MIN || ptr.is_null() || !FILLING_TABLES.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    let Ok(mut queue) = QUEUE.lock() else { return };
    if queue.running && queue.len < QUEUE_MAX {
        let at = queue.len;
        queue.blocks[at] = (ptr as usize, size);
        queue.len += 1;
        QUEUED.notify_one();
    }
}

/// Starts the prefault thread (before it, large blocks fault in as they are used).
pub fn start() {
    let spawned = std::thread::Builder::new().name("prefault".into()).spawn(|| loop {
        let (start, size) = {
            let Ok(mut queue) = QUEUE.lock() else { return };
            while queue.len == 0 {
                queue = match QUEUED.wait(queue) {
                    Ok(queue) => queue,
                    Err(_) => return,
                };
            }
            queue.len -= 1;
            let at = queue.len;
            queue.blocks[at]
        };
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let first = start & !(page - 1);
        // SAFETY: madvise only maps pages of this process's own address space; populating
        // changes no memory contents (see the module documentation). Failures are ignored.
        unsafe { libc::madvise(first as *mut libc::c_void, start + size - first, MADV_POPULATE_WRITE) };
    });
    if spawned.is_ok() {
        if let Ok(mut queue) = QUEUE.lock() {
            queue.running = true;
        }
    }
}

// SAFETY: every call is passed to mimalloc unchanged; queueing only records the block.
unsafe impl GlobalAlloc for Prefaulting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { MiMalloc.alloc(layout) };
        queue(ptr, layout.size());
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { MiMalloc.alloc_zeroed(layout) };
        queue(ptr, layout.size());
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        queue(grown, new_size);
        grown
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_named() {
        // mimalloc's default purge delay: 10 ms in v2, 1,000 ms in v3 (unless the environment
        // sets MIMALLOC_PURGE_DELAY).
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads an option.
            let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
            assert!(delay == 10 || delay == 1_000, "option {} is {delay}", super::MI_OPTION_PURGE_DELAY);
        }
    }
}
