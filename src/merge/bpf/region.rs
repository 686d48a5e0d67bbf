//! The arena regions a BPF merge session owns, and the one place Rust looks into them as typed
//! values: the structs of bpf/merge_abi.h (abi.rs), the output entries, bytes.
//!
//! Rust and the program share these regions, so a Rust reference into one must never be alive
//! while the program runs. That holds by construction: the program only runs inside
//! `BpfBatcher::run_program` (session.rs), which takes the session by `&mut self`; every region the
//! program writes is an [`ArenaBox`] that session owns, and a reference into a region borrows
//! its box. So the borrow checker keeps references and program runs apart, and
//! [`ArenaBox::slice`] / [`ArenaBox::slice_mut`] can be safe.

use super::abi;
use crate::contract::BatchEntry;
use crate::error::{Error, Result};
use crate::reader::arena::{Arena, PAGE};
use crate::reader::pool::class_of;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;

/// Types Rust reads and writes in arena regions.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` initialised bytes must be a valid `Self` (integers,
/// and `#[repr(C)]` structs of integers: no bool, enum, reference or pointer), and
/// `align_of::<Self>()` must not exceed a page.
pub(super) unsafe trait Plain {}

// SAFETY: an integer: any bits are a valid value; alignment 1.
unsafe impl Plain for u8 {}
// SAFETY: #[repr(C)] of u64 and u32 fields only (rm_block); alignment 8.
unsafe impl Plain for abi::Block {}
// SAFETY: #[repr(C)] of u64 and u32 fields only (rm_run); alignment 8.
unsafe impl Plain for abi::Run {}
// SAFETY: #[repr(C)] of u64 and u32 fields only (rm_session); alignment 8.
unsafe impl Plain for abi::Session {}
// SAFETY: the contract's shared struct, #[repr(C)] of u32 and u64 fields only (the layout of
// rm_out_entry, asserted in abi.rs); alignment 8.
unsafe impl Plain for BatchEntry {}

/// A region of the arena owned by one session, given back when dropped. Page-aligned and
/// initialised from the start (see `Arena::alloc`).
pub(super) struct ArenaBox {
    ptr: NonNull<u8>,
    len: usize,
    arena: &'static Arena,
}

impl ArenaBox {
    /// At least `len` bytes: the size class of `len` (see `reader::pool`), so sizes repeat from
    /// one session to the next and the arena reuses its regions.
    pub(super) fn new(arena: &'static Arena, len: usize) -> Result<ArenaBox> {
        let len = class_of(len.max(1));
        let ptr = arena
            .alloc(len)
            .ok_or_else(|| Error::io(format!("BPF arena full: cannot allocate {len} bytes")))?;
        Ok(ArenaBox { ptr, len, arena })
    }

    /// The region's address, the same for Rust and the program (the arena is mapped at the same
    /// address in both).
    pub(super) fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Bytes in the region.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The first `n` values of type `T` in the region. Panics if they do not fit.
    pub(super) fn slice<T: Plain>(&self, n: usize) -> &[T] {
        let ptr = self.first::<T>(n);
        // SAFETY: `first`'s guarantees (n values of T fit, aligned, valid), read-only for as long
        // as `self` is borrowed shared: the box is the region's only owner and the program does
        // not run meanwhile (module docs).
        unsafe { std::slice::from_raw_parts(ptr, n) }
    }

    /// The first `n` values of type `T` in the region, writable. Panics if they do not fit.
    pub(super) fn slice_mut<T: Plain>(&mut self, n: usize) -> &mut [T] {
        let ptr = self.first::<T>(n);
        // SAFETY: `first`'s guarantees (n values of T fit, aligned, valid); exclusive for as long
        // as `self` is borrowed exclusively: the box is the region's only owner and the program
        // does not run meanwhile (module docs).
        unsafe { std::slice::from_raw_parts_mut(ptr, n) }
    }

    /// The value of type `T` at the start of the region.
    pub(super) fn get<T: Plain>(&self) -> &T {
        &self.slice(1)[0]
    }

    /// The value of type `T` at the start of the region, writable.
    pub(super) fn get_mut<T: Plain>(&mut self) -> &mut T {
        &mut self.slice_mut(1)[0]
    }

    /// The region's start as a pointer to `n` values of `T`, which are then in bounds (checked
    /// here: panics otherwise), aligned (the region is page-aligned, `T` at most page-aligned)
    /// and valid values (the region's bytes are initialised, and any bytes are a `T`: `Plain`).
    fn first<T: Plain>(&self, n: usize) -> *mut T {
        const { assert!(align_of::<T>() <= PAGE) };
        let fits = n
            .checked_mul(size_of::<T>())
            .is_some_and(|bytes| bytes <= self.len);
        assert!(
            fits,
            "{n} values of {} bytes do not fit a {} byte arena region",
            size_of::<T>(),
            self.len
        );
        let ptr = self.ptr.as_ptr().cast::<T>();
        debug_assert!(ptr.is_aligned());
        ptr
    }
}

impl Drop for ArenaBox {
    fn drop(&mut self) {
        self.arena.free(self.ptr, self.len);
    }
}
