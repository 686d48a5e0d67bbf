//! One read buffer ("slot") and the progress of the read into it, shared by both backends:
//! where a plan's bytes go in the buffer, what the next read (or the continuation of a short
//! one) asks for, and what a finished read means (done, again, or an error in RocksDB's
//! wording). The backends only differ in how a read is carried out: `uring` submits it and
//! reaps its completion later, `pread` makes it on the spot.

use std::io;
use std::time::{Instant, SystemTime};

use super::buffer::{align_down, align_up, AlignedBuf, Memory, ALIGN};
use super::{
    errno_text, pool, ChunkPlan, OpenFile, ReadAccounting, ReadDone, ReadThrottle, ReaderStats,
};
use crate::error::{Error, Result};

/// One read is at most this long; a longer span is read in pieces (the SQE length is 32-bit).
const MAX_IO: usize = 1 << 30;
/// Consecutive EINTR/EAGAIN on one read before giving up on it.
pub(super) const MAX_RETRIES: u32 = 1000;

#[derive(Debug)]
pub(super) enum SlotState {
    /// Buffer idle, owned by the pool.
    Free,
    /// Needs a read submitted from `done` on (new, or the rest after a short read).
    Pending,
    /// In the SQ or in the kernel: the buffer must not be touched or freed.
    InFlight,
    Ready,
    Failed(Error),
    /// Buffer lent to the consumer inside a Chunk.
    Lent,
}

/// One pool buffer and the read it is doing. `user_data` of an SQE is the slot's index.
///
/// For an oversized plan (see the module docs of `reader`) `buf` is a buffer allocated for that
/// read alone (`dedicated`), and the slot's regular buffer, if it had one yet, waits in `aside`
/// until the chunk comes back ([`Slot::restore_regular`]). The slot still counts as one of its
/// stream's reads, so the read depth, and every rule built on it (merge/held.rs), is unchanged.
pub(super) struct Slot {
    pub(super) stream: usize,
    /// Bytes of the regular buffer: the size class of the stream's largest regular span (see
    /// `pool`).
    pub(super) size: usize,
    pub(super) buf: Option<AlignedBuf>,
    /// `buf` is an oversized plan's own buffer: freed, never pooled, when the read is over.
    pub(super) dedicated: bool,
    /// The regular buffer, set aside while `buf` is a dedicated one. No read ever goes into it
    /// meanwhile.
    pub(super) aside: Option<AlignedBuf>,
    pub(super) state: SlotState,
    /// Index of the plan in its stream.
    pub(super) plan: usize,
    /// File offset of `buf[0]` (the plan's offset, aligned down for O_DIRECT).
    pub(super) base: u64,
    /// Where the plan's bytes start in `buf`.
    pub(super) lead: usize,
    /// `lead + plan.len`: the read is complete once `done` reaches it.
    pub(super) target: usize,
    /// Bytes to ask for in all: `target`, rounded up to ALIGN for O_DIRECT.
    pub(super) span: usize,
    /// Bytes of `buf` filled so far.
    pub(super) done: usize,
    /// The read in flight: buffer offset and length.
    pub(super) ask_off: usize,
    pub(super) ask: usize,
    /// What the read in flight would ask without the short-read fault: returning fewer bytes
    /// than this is a short read.
    pub(super) want: usize,
    pub(super) retries: u32,
    /// When the read in flight started (wall clock, monotonic); kept only for accounting.
    pub(super) started: Option<(SystemTime, Instant)>,
}

impl Slot {
    /// A free slot of stream `stream` whose buffer (not allocated yet) will be `size` bytes.
    pub(super) fn new(stream: usize, size: usize) -> Slot {
        Slot {
            stream,
            size,
            buf: None,
            dedicated: false,
            aside: None,
            state: SlotState::Free,
            plan: 0,
            base: 0,
            lead: 0,
            target: 0,
            span: 0,
            done: 0,
            ask_off: 0,
            ask: 0,
            want: 0,
            retries: 0,
            started: None,
        }
    }

    /// Frees the dedicated buffer of an oversized plan and puts the regular buffer back (a no-op
    /// for a slot holding its regular buffer); returns the bytes freed. Only call once no read
    /// can be writing into `buf`: the chunk came back, or the read failed.
    ///
    /// The buffer is freed, not pooled: its length is the block's, not a size class, so it would
    /// only crowd the pool out of buffers later Readers ask for.
    pub(super) fn restore_regular(&mut self) -> usize {
        if !self.dedicated {
            return 0;
        }
        self.dedicated = false;
        let freed = self.buf.take().map_or(0, |b| b.len());
        self.buf = self.aside.take();
        freed
    }
}

/// What a finished read leaves its slot with.
pub(super) enum Step {
    /// Every byte of the plan is in.
    Done,
    /// More to read: the rest after a short read, or a retry after EINTR/EAGAIN.
    Again,
    Fail(Error),
}

/// Bytes of buffer a plan needs.
pub(super) fn span_of(p: &ChunkPlan, direct: bool) -> usize {
    if direct && p.len > 0 {
        let lead = (p.offset % ALIGN as u64) as usize;
        align_up(lead.saturating_add(p.len), ALIGN)
    } else {
        p.len
    }
}

/// Points a free slot at a plan, taking its buffer from the thread's pool (or allocating it) on
/// first use. The buffer is `slot.size` bytes (a size class), which can be more than the plan's
/// span: reads ask for exactly `span` bytes, and a Chunk exposes exactly `plan.len`.
///
/// An `oversized` plan gets a buffer of exactly its span from `memory` instead, outside the
/// pool and the budget, and the regular buffer is set aside (see [`Slot`]). Returns the bytes
/// of that dedicated buffer (0 for a regular plan).
pub(super) fn start_slot(
    slot: &mut Slot,
    index: usize,
    plan: &ChunkPlan,
    direct: bool,
    memory: Memory,
    oversized: bool,
) -> Result<usize> {
    // Every path that frees a slot restores its regular buffer; should one not have, the
    // dedicated buffer goes now (the slot is free: no read is in flight into it).
    slot.restore_regular();
    let mut dedicated = 0;
    if oversized {
        let span = span_of(plan, direct);
        // Zeroed like every fresh buffer (see `AlignedBuf::new`): the read overwrites what the
        // chunk shows, but the whole buffer stays initialised memory.
        let buf = AlignedBuf::new_in(span, memory).ok_or_else(|| {
            Error::io(format!(
                "reader: cannot allocate a {span} byte read buffer for a block larger than the \
                 read size"
            ))
        })?;
        dedicated = buf.len();
        slot.aside = slot.buf.take();
        slot.buf = Some(buf);
        slot.dedicated = true;
    } else if slot.buf.is_none() {
        slot.buf = Some(pool::take(slot.size, memory).ok_or_else(|| {
            Error::io(format!(
                "reader: cannot allocate a {} byte read buffer",
                slot.size
            ))
        })?);
    }
    // A zero-length plan reads nothing, so it needs no alignment either.
    let base = if direct && plan.len > 0 {
        align_down(plan.offset, ALIGN as u64)
    } else {
        plan.offset
    };
    slot.plan = index;
    slot.base = base;
    slot.lead = (plan.offset - base) as usize;
    slot.target = slot.lead + plan.len;
    slot.span = span_of(plan, direct);
    // Every read writes inside [0, span), so this is what keeps the kernel inside the buffer.
    // It holds by construction (the buffer is the class of the stream's largest regular span,
    // or the oversized plan's own span); checked anyway because a violation would be memory
    // corruption, not just a wrong answer.
    let cap = slot.buf.as_ref().map_or(0, AlignedBuf::len);
    if slot.span > cap {
        return Err(Error::io(format!(
            "reader: internal error, a {} byte read does not fit its {cap} byte buffer",
            slot.span
        )));
    }
    slot.done = 0;
    slot.ask_off = 0;
    slot.ask = 0;
    slot.retries = 0;
    Ok(dedicated)
}

/// Waits for the read rate limit to grant a read of `len` bytes, if there is one; the wait is
/// counted in `stats.throttle_wait_ns`. (A free function over the two fields, so both backends
/// can call it while they hold a slot and, for io_uring, the SQ.)
pub(super) fn ask_throttle(throttle: &Option<ReadThrottle>, len: usize, stats: &mut ReaderStats) {
    if let Some(t) = throttle {
        let t0 = Instant::now();
        t.request(len as u64);
        stats.throttle_wait_ns += t0.elapsed().as_nanos() as u64;
    }
}

/// Notes when a slot's read starts, if reads are accounted.
pub(super) fn mark_start(slot: &mut Slot, accounting: &Option<ReadAccounting>) {
    slot.started = accounting
        .as_ref()
        .map(|_| (SystemTime::now(), Instant::now()));
}

/// Reports a slot's finished read (`res`: bytes, or errno) to the accounting, if any.
fn account(
    slot: &Slot,
    res: std::result::Result<usize, i32>,
    plan: &ChunkPlan,
    accounting: &Option<ReadAccounting>,
) {
    let (Some(a), Some((start, t0))) = (accounting, slot.started) else {
        return;
    };
    (a.0)(&ReadDone {
        file: plan.file,
        offset: slot.base + slot.ask_off as u64,
        len: res.map_or(0, |n| n.min(slot.ask)),
        start,
        duration: t0.elapsed(),
        errno: res.err(),
    });
}

/// The next read for a slot: (buffer offset, length). O_DIRECT restarts from an aligned offset,
/// re-reading a few bytes if a short read stopped mid-block.
pub(super) fn next_ask(slot: &mut Slot, direct: bool, short_fault: bool) -> (usize, usize) {
    let from = if direct {
        align_down(slot.done as u64, ALIGN as u64) as usize
    } else {
        slot.done
    };
    let mut len = (slot.span - from).min(MAX_IO);
    slot.want = len;
    if short_fault {
        let half = len / 2;
        len = if direct {
            match align_down(half as u64, ALIGN as u64) as usize {
                0 => len,
                h => h,
            }
        } else {
            half.max(1)
        };
    }
    slot.ask_off = from;
    slot.ask = len;
    (from, len)
}

/// Applies one read's result (bytes, or errno) to its slot.
pub(super) fn finish_read(
    slot: &mut Slot,
    res: std::result::Result<usize, i32>,
    file: &OpenFile,
    plan: &ChunkPlan,
    stats: &mut ReaderStats,
    accounting: &Option<ReadAccounting>,
) -> Step {
    let res = match file.fault_eio_from {
        Some(from) if plan.offset >= from => Err(libc::EIO),
        _ => res,
    };
    if matches!(res, Err(e) if (e == libc::EINTR || e == libc::EAGAIN) && slot.retries < MAX_RETRIES)
    {
        slot.retries += 1;
        return Step::Again;
    }
    // A finished read (not one that is simply retried) is accounted, failed or not.
    account(slot, res, plan, accounting);
    let n = match res {
        Ok(n) => n.min(slot.ask),
        Err(e) => {
            return Step::Fail(Error::io(format!(
                "While reading {} at offset {} len {}: {}",
                file.path,
                plan.offset,
                plan.len,
                errno_text(&io::Error::from_raw_os_error(e))
            )))
        }
    };
    slot.retries = 0;
    stats.bytes_read += n as u64;
    let end = slot.ask_off + n;
    // An O_DIRECT continuation re-reads from a block boundary, so only bytes past the old
    // high-water mark are progress; none at all means end of file.
    let progress = end > slot.done;
    if progress {
        slot.done = end;
    }
    if slot.done >= slot.target {
        return Step::Done;
    }
    if n == 0 || !progress {
        return Step::Fail(Error::corruption(format!(
            "truncated block read from {} offset {}, expected {} bytes, got {}",
            file.path,
            plan.offset,
            plan.len,
            slot.done.saturating_sub(slot.lead)
        )));
    }
    if n < slot.want {
        stats.short_reads += 1;
    }
    Step::Again
}
