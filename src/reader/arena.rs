//! User-space allocator over the BPF arena's mapping: the memory reads land in when the BPF
//! merge runs (`Memory::Arena`), and where its session keeps the state it shares with the
//! program (merge/bpf/session.rs). The reader only allocates from it; loading the program and
//! mapping the arena is the BPF merge's business (merge/bpf/mod.rs).
//!
//! The arena is one 4 GiB window that user space and the BPF program address identically. Only
//! user space allocates in it (the program never calls `bpf_arena_alloc_pages`), and every fresh
//! region is zeroed from user space before anyone else sees it: that faults its pages in, which
//! matters because a program store to an arena page nobody has touched yet is silently dropped
//! (seen on the kernels this was developed on: the store is lost without an error, while a
//! user-space touch allocates the page).
//!
//! Fresh arena pages are slow (measured: memcpy into them runs at ~1.5 GiB/s vs ~9 GiB/s warm),
//! so freed regions are kept on per-size free lists and handed out again, never returned to the
//! kernel: callers ask for size classes (`reader::pool::class_of`) so sizes repeat from one
//! compaction to the next. Memory held is bounded by what live sessions and thread pools hold at
//! their peak.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::ptr::NonNull;

pub const PAGE: usize = 4096;

pub struct Arena {
    base: usize,
    size: usize,
    state: Mutex<State>,
}

struct State {
    /// Bytes from `base` handed out at least once.
    bump: usize,
    /// Free regions by length (offsets from `base`).
    free: HashMap<usize, Vec<usize>>,
    /// Bytes currently handed out.
    live: usize,
}

impl Arena {
    /// An allocator over `[base, base + size)`.
    ///
    /// # Safety
    /// The range must be a readable and writable mapping that outlives the `Arena` and that no
    /// one else allocates from.
    pub unsafe fn new(base: *mut u8, size: usize) -> Arena {
        Arena {
            base: base as usize,
            size,
            state: Mutex::new(State {
                bump: 0,
                free: HashMap::new(),
                live: 0,
            }),
        }
    }

    /// `len` bytes (rounded up to whole pages), page-aligned and initialised (zeroed when fresh,
    /// stale bytes of an earlier user when reused). None when the arena is full.
    pub fn alloc(&self, len: usize) -> Option<NonNull<u8>> {
        let len = len.max(1).checked_next_multiple_of(PAGE)?;
        let mut st = self.state.lock();
        if let Some(off) = st.free.get_mut(&len).and_then(Vec::pop) {
            st.live += len;
            return NonNull::new((self.base + off) as *mut u8);
        }
        let off = st.bump;
        if off.checked_add(len)? > self.size {
            return None;
        }
        st.bump += len;
        st.live += len;
        drop(st);
        let ptr = (self.base + off) as *mut u8;
        // SAFETY: [ptr, ptr + len) lies inside the mapping (checked against `size` above) and
        // was never handed out before (the bump pointer only grows), so nothing else refers to
        // it. The write faults the pages in, which the BPF program's stores depend on.
        unsafe { std::ptr::write_bytes(ptr, 0, len) };
        NonNull::new(ptr)
    }

    /// Returns a region from [`Arena::alloc`] with the same `len`.
    ///
    /// The caller guarantees nothing (the kernel, the program, Rust) still uses it.
    pub fn free(&self, ptr: NonNull<u8>, len: usize) {
        let Some(len) = len.max(1).checked_next_multiple_of(PAGE) else {
            return;
        };
        let off = ptr.as_ptr() as usize - self.base;
        debug_assert!(off + len <= self.size && off % PAGE == 0);
        let mut st = self.state.lock();
        st.live -= len;
        st.free.entry(len).or_default().push(off);
    }

    /// Does `[ptr, ptr + len)` lie inside the arena?
    pub fn contains(&self, ptr: *const u8, len: usize) -> bool {
        let p = ptr as usize;
        p >= self.base && p.saturating_add(len) <= self.base + self.size
    }

    /// (bytes handed out now, bytes ever touched).
    pub fn usage(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.live, st.bump)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_freed_regions_of_the_same_length() {
        let mut backing = vec![0u64; 64 * PAGE / 8];
        // SAFETY: the Vec outlives the Arena in this test and nothing else uses it.
        let a = unsafe { Arena::new(backing.as_mut_ptr().cast(), 64 * PAGE) };
        let x = a.alloc(3 * PAGE).unwrap();
        let y = a.alloc(100).unwrap();
        assert_eq!(y.as_ptr() as usize - x.as_ptr() as usize, 3 * PAGE);
        a.free(x, 3 * PAGE);
        assert_eq!(a.usage(), (PAGE, 4 * PAGE));
        let z = a.alloc(3 * PAGE - 5).unwrap();
        assert_eq!(z, x, "same length class comes back");
        assert!(a.alloc(61 * PAGE).is_none(), "past the end");
        assert!(a.alloc(60 * PAGE).is_some());
        assert!(a.contains(y.as_ptr(), PAGE));
        assert!(!a.contains(y.as_ptr(), 64 * PAGE));
    }
}
