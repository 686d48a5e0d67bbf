//! Page-aligned heap buffers for the read pool.
//!
//! O_DIRECT needs the destination aligned to the device's logical block size; 4096 covers every
//! device we meet, so every pool buffer uses it whether or not the file is opened O_DIRECT.

use super::arena::Arena;
use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Where a buffer's memory comes from.
#[derive(Clone, Copy, Default)]
pub enum Memory {
    /// The process heap.
    #[default]
    Heap,
    /// The BPF merge program's arena, so reads land where the program reads them.
    Arena(&'static Arena),
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Memory::Heap => "Heap",
            Memory::Arena(_) => "Arena",
        })
    }
}

/// Alignment of every pool buffer, and the unit O_DIRECT offsets and lengths are rounded to.
pub const ALIGN: usize = 4096;

pub fn align_down(x: u64, a: u64) -> u64 {
    x & !(a - 1)
}

pub fn align_up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

/// An owned, 4096-aligned, fixed-size byte buffer.
///
/// The memory never moves while the value exists (moving the handle moves only the pointer),
/// which is what lets the kernel write into it while the handle is shuffled between the pool
/// and a `Chunk`.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// Set for arena memory, which goes back to the arena's allocator instead of the heap.
    arena: Option<&'static Arena>,
}

// SAFETY: the buffer is uniquely owned heap or arena memory with no thread affinity (the arena
// allocator locks); whoever holds the handle is the only one that can reach it from Rust.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes; None when the allocator refuses.
    pub fn new(len: usize) -> Option<AlignedBuf> {
        if len == 0 {
            return Some(AlignedBuf {
                ptr: NonNull::dangling(),
                len: 0,
                arena: None,
            });
        }
        let layout = Layout::from_size_align(len, ALIGN).ok()?;
        // SAFETY: layout has a non-zero size (checked above).
        // Zeroed so that `as_slice` never exposes uninitialised memory, even past a short read.
        // Only fresh memory is zeroed: buffers reused through the thread's pool keep the bytes of
        // earlier reads, which are initialised too (see `pool` for why no Chunk can show them).
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        NonNull::new(ptr).map(|ptr| AlignedBuf {
            ptr,
            len,
            arena: None,
        })
    }

    /// Allocates `len` bytes from `memory`: the heap as [`AlignedBuf::new`], or the BPF arena
    /// (page-aligned, initialised, see `Arena::alloc`).
    pub fn new_in(len: usize, memory: Memory) -> Option<AlignedBuf> {
        match memory {
            Memory::Heap => AlignedBuf::new(len),
            Memory::Arena(_) if len == 0 => AlignedBuf::new(0),
            Memory::Arena(arena) => arena.alloc(len).map(|ptr| AlignedBuf {
                ptr,
                len,
                arena: Some(arena),
            }),
        }
    }

    /// Does this buffer come from `memory`?
    pub fn is_in(&self, memory: Memory) -> bool {
        match (memory, self.arena) {
            (Memory::Heap, None) => true,
            (Memory::Arena(a), Some(b)) => std::ptr::eq(a, b),
            _ => false,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Raw pointer for the kernel (an io_uring read) to write through.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The whole buffer, writable (for a pread into it).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`: ptr is valid for len initialised bytes (or dangling-but-aligned
        // with len 0), and no kernel read is in flight into a buffer its Reader lets anyone
        // touch. The handle is borrowed exclusively, so the slice is the only way to the bytes
        // while it lives.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialised bytes (zeroed at allocation, later only
        // overwritten by reads, possibly of earlier Readers when pooled), or dangling-but-aligned
        // with len 0. The handle is borrowed shared, so no Rust code writes meanwhile, and no
        // kernel read is in flight into a buffer its Reader lets anyone look at.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Some(arena) = self.arena {
            arena.free(self.ptr, self.len);
            return;
        }
        // SAFETY: allocated in `new` with exactly this layout (it was valid then, so it is now).
        unsafe {
            alloc::dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(self.len, ALIGN),
            )
        };
    }
}
