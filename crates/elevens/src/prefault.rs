//! The global allocator: mimalloc, with large blocks faulted in by a thread of their own.
//!
//! The big tables grow by fresh chunks (orders 8 MiB, transfers 3.5 MiB, remembered outcomes
//! 4 MiB at a time), and the sequencer used to take a page fault on every 4 KiB of them as it
//! filled them: 9% of its time (`perf record -t <sequencer>` on the in-process flash bench: 84% of
//! its faults in `Chunked::push` and `ChunkedDeque::push_back`). Every allocation of at least
//! [`PREFAULT_BYTES_MIN`] is now handed to a prefault thread, which asks the kernel to map its
//! pages writable (`MADV_POPULATE_WRITE`) while the sequencer is still filling the first of them;
//! the second core is mostly idle.
//!
//! Safe whatever happens to the block meanwhile: populating changes no byte (the pages of a
//! fresh block are zero either way, and pages already mapped are left alone), and a block freed
//! or unmapped before its turn costs an `madvise` that does nothing or fails, which is ignored.
//! The queue is a fixed array behind a mutex: code inside the allocator must not allocate.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::{Condvar, Mutex};

/// Smaller blocks are left to fault in as they are used.
const PREFAULT_BYTES_MIN: usize = 1 << 20;
/// Blocks waiting for the prefault thread; past it, new ones are not prefaulted.
const QUEUE_MAX: usize = 64;
/// `MADV_POPULATE_WRITE` (Linux 5.14), not in the libc crate this builds with.
const MADV_POPULATE_WRITE: libc::c_int = 23;

pub struct Prefaulting;

struct Queue {
    blocks: [(usize, usize); QUEUE_MAX],
    len: usize,
    /// Whether the prefault thread runs; until then nothing is queued.
    running: bool,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue { blocks: [(0, 0); QUEUE_MAX], len: 0, running: false });
static QUEUED: Condvar = Condvar::new();

fn queue(ptr: *mut u8, size: usize) {
    if size < PREFAULT_BYTES_MIN || ptr.is_null() {
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
