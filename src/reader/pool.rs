//! The per-thread pool of read buffers, kept across Readers.
//!
//! A compaction thread runs many compactions, each with its own Reader. Allocating a Reader's
//! buffers afresh every time (up to the whole memory budget, zeroed) costs heap growth
//! (`mprotect`/`mmap`), page faults and page zeroing on the compaction thread, so buffers outlive
//! the Reader: a Reader takes them from its thread's pool when a slot first needs one and gives
//! them back when it is dropped.
//!
//! **Size classes.** Buffer sizes vary between compactions (chunk size = budget / (runs x
//! depth), and a run's largest span depends on its files), so every buffer is rounded up to a
//! class and only a buffer of exactly the same class is reused:
//! - below [`CLASS_STEP`] (256 KiB): the next power of two, at least [`ALIGN`] (4 KiB);
//! - from [`CLASS_STEP`] on: the next multiple of [`CLASS_STEP`].
//!
//! The Reader charges its budget with the class size (the memory really held), and
//! [`class_floor`] lets `Reader::max_chunk_len` hand out chunk lengths whose worst-case span is
//! exactly a class, so callers that size plans by it land on the same classes compaction after
//! compaction.
//!
//! **Bound.** The pool keeps at most [`cap`] bytes per thread ([`POOL_CAP`], 64 MiB, unless the
//! process set another with [`set_cap`]: `RINGMERGE_POOL_CAP`, read by config.rs); giving back
//! a buffer that does not fit evicts the oldest pooled buffers first (sizes drift, so the newest
//! classes are the likeliest to be asked for again), and a buffer larger than the cap is freed.
//! A thread therefore holds at most the cap in idle bytes plus the budgets of its live Readers,
//! and a process at most (threads that ran a merge) x cap idle: an operator with many
//! compaction threads trades the allocation a smaller cap brings back for that memory.
//!
//! **Who gives buffers back.** Only a Reader, from its own `Drop`, and only buffers no read can
//! still be writing into (see `impl Drop for Reader`: after a failed drain nothing goes to the
//! pool and in-flight buffers are leaked). Chunks the caller drops instead of recycling simply
//! free their buffer: a `Chunk` is `Send` and may be dropped on another thread, and keeping the
//! pool strictly thread-local (a buffer never moves between threads' pools) keeps this simple.
//!
//! **No re-zeroing.** Fresh buffers are zeroed (so every byte is initialised memory from the
//! start), pooled ones are not: a pooled buffer holds stale bytes of earlier reads, but a Chunk
//! only ever exposes `[lead, lead + plan.len)`, and a chunk is only handed out once its read
//! reached `done >= target = lead + plan.len`, where `[0, done)` is filled by this plan's reads
//! (reads start at buffer offset 0 and each continuation starts at or below `done`, so the
//! filled region is contiguous). Short reads, EOF and errors fail the chunk before it is handed
//! out. So no stale byte is ever visible through `Chunk::bytes`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::buffer::{AlignedBuf, Memory, ALIGN};

/// Most bytes of idle buffers one thread keeps, by default (the default memory budget).
pub const POOL_CAP: usize = 64 << 20;

/// The per-thread cap in force (a process-wide setting).
static CAP: AtomicUsize = AtomicUsize::new(POOL_CAP);

/// Sets the most bytes of idle buffers each thread keeps from now on (0: none are kept).
/// Pools already over it shrink as buffers are next given back.
pub fn set_cap(bytes: usize) {
    CAP.store(bytes, Ordering::Relaxed);
}

/// The per-thread cap in force.
pub fn cap() -> usize {
    CAP.load(Ordering::Relaxed)
}

/// Size classes are multiples of this from here on, powers of two below it.
pub const CLASS_STEP: usize = 256 << 10;

struct Pool {
    /// Oldest first; taken from the back (most recently returned, likeliest still cached).
    bufs: VecDeque<AlignedBuf>,
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            bufs: VecDeque::new(),
            bytes: 0,
        })
    };
    /// Fresh (not pooled) allocations made on this thread, for tests and diagnostics.
    static FRESH: Cell<u64> = const { Cell::new(0) };
}

/// The size class of a buffer that must hold `size` bytes (0 for 0, `usize::MAX` if the class
/// would overflow, which no budget admits and no allocator grants).
pub fn class_of(size: usize) -> usize {
    if size == 0 {
        0
    } else if size <= CLASS_STEP {
        size.max(ALIGN).next_power_of_two()
    } else {
        size.checked_next_multiple_of(CLASS_STEP)
            .unwrap_or(usize::MAX)
    }
}

/// The largest size class not above `x` (0 when `x < ALIGN`).
pub fn class_floor(x: usize) -> usize {
    if x >= CLASS_STEP {
        x - x % CLASS_STEP
    } else if x >= ALIGN {
        1 << x.ilog2()
    } else {
        0
    }
}

/// A buffer of exactly `len` bytes (a size class) from `memory`: a pooled one of that length
/// and origin if this thread has one, else a fresh zeroed one. None when the allocator refuses.
pub fn take(len: usize, memory: Memory) -> Option<AlignedBuf> {
    if len == 0 {
        return AlignedBuf::new(0);
    }
    let pooled = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let i = p
                .bufs
                .iter()
                .rposition(|b| b.len() == len && b.is_in(memory))?;
            let buf = p.bufs.remove(i)?;
            p.bytes -= buf.len();
            Some(buf)
        })
        .ok()
        .flatten();
    if pooled.is_some() {
        return pooled;
    }
    let _ = FRESH.try_with(|c| c.set(c.get() + 1));
    AlignedBuf::new_in(len, memory)
}

/// Keeps `buf` for a later [`take`] on this thread, within [`cap`] (evicting the oldest
/// buffers to make room); frees it if it is larger than the cap or the thread is exiting.
///
/// The caller guarantees nothing (no kernel read in particular) can still write into `buf`.
pub fn give(buf: AlignedBuf) {
    let len = buf.len();
    let cap = cap();
    // If thread-local storage is already gone the closure (and the buffer it owns) is dropped.
    let _ = POOL.try_with(move |p| {
        let mut p = p.borrow_mut();
        if len == 0 || len > cap {
            // Not kept; still brings a pool left over a lowered cap back under it.
            p.shrink_to(cap);
            return;
        }
        p.shrink_to(cap - len);
        p.bytes += len;
        p.bufs.push_back(buf);
    });
}

impl Pool {
    /// Frees the oldest buffers until at most `bytes` are kept.
    fn shrink_to(&mut self, bytes: usize) {
        while self.bytes > bytes {
            let Some(old) = self.bufs.pop_front() else {
                break;
            };
            self.bytes -= old.len();
        }
    }
}

/// Fresh buffer allocations made on this thread so far.
#[cfg(test)]
pub fn fresh_allocations() -> u64 {
    FRESH.try_with(Cell::get).unwrap_or(0)
}

/// (buffers, bytes) idle in this thread's pool.
#[cfg(test)]
pub fn pooled() -> (usize, usize) {
    POOL.with(|p| {
        let p = p.borrow();
        (p.bufs.len(), p.bytes)
    })
}

/// Empties this thread's pool (tests start from a known state).
#[cfg(test)]
pub fn clear() {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.bufs.clear();
        p.bytes = 0;
    })
}
