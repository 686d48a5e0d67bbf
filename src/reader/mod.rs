//! Batched, read-ahead reads of SST file ranges for one compaction.
//!
//! A compaction merges several sorted runs ("streams"); each stream is a list of byte ranges
//! ([`ChunkPlan`]s) read in order. The merge runs on one thread and asks for a stream's chunks
//! one at a time, so the reader keeps up to `depth_per_stream` reads per stream in flight ahead
//! of it, inside a hard memory budget, and hands each chunk over once its bytes are in.
//!
//! Two backends do the reading, each owning its read path:
//! - io_uring (`uring`, the default): one ring per thread, reused across Readers, reads
//!   submitted in batches so one `io_uring_enter` carries many of them;
//! - pread (`pread`): synchronous reads when a chunk is asked for, used when io_uring is
//!   unavailable (seccomp, `kernel.io_uring_disabled`, old kernels) or forced with
//!   `RINGMERGE_IO=pread`.
//!
//! Both treat short reads, end of file and errors the same way, with RocksDB's wording: that
//! part, a read buffer ("slot") and the progress of the read into it, is `slot`. This module
//! keeps the public types and the Reader's streams: which plan goes into which slot, in what
//! order chunks are handed out and taken back.
//!
//! Read buffers come from a per-thread pool (`pool`) in size classes and go back to it when the
//! Reader is dropped, so a compaction thread reuses the same memory compaction after compaction
//! instead of growing, faulting in and zeroing fresh heap every time. They live on the heap, or
//! in the BPF merge program's arena (`arena`) so the program reads the blocks where they land.
//!
//! **Oversized plans.** The SST-Map coalesces blocks into chunks of at most the read size, but
//! a block can be larger than that (a value of several MiB is one block), and sizing every
//! buffer of its stream to it, times the read depth, would blow the budget or refuse the
//! compaction. So a plan longer than [`ReaderConfig::oversized_above`] is *oversized*:
//! - a stream's buffer class comes from its regular plans only, and only those count against
//!   the budget;
//! - an oversized plan is read into a buffer allocated for that read alone, from the Reader's
//!   [`Memory`] (heap or BPF arena), exactly its span long (O_DIRECT alignment included); the
//!   slot's regular buffer is set aside meanwhile and put back when the chunk is recycled, and
//!   the dedicated buffer is freed then, never pooled (its length is not a size class);
//! - it is not read ahead: its read is issued only once every earlier plan of its stream has
//!   been handed out, i.e. when it is the stream's next chunk (the regular plans after it are
//!   read ahead behind it as usual).
//!
//! While it is being read and lent out it takes one of its stream's slots, so the read depth,
//! and the merge's rule for holding chunks (merge/held.rs), are unchanged: a run can always get
//! its next chunk. A caller that keeps an oversized chunk after it is done with it (values
//! pinned in it) can give its slot back first ([`Reader::detach`]): the bytes stay, the stream
//! reads on at its full depth, and the buffer is freed when the chunk is recycled.
//!
//! The memory beyond the budget is the oversized buffers alive at once: per stream at most one
//! read in flight or ready (the rule above), the chunks lent out (at most the stream's depth),
//! and the detached chunks the caller still keeps, for the merge those some readable (or
//! made-ahead) batch may point into (merge/held.rs: the large blocks of the last few batches).
//! In practice: the few large blocks the merge is working through.
//! `ReaderStats::oversized_peak_bytes` measures it.
//!
//! A Reader is tied to the thread that made it (the ring is single-issuer and deferred task work
//! runs only on that thread), so it is deliberately not `Send`.

pub mod arena;
mod buffer;
pub(crate) mod pool;
mod pread;
mod setup;
mod slot;
mod uring;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
pub use buffer::Memory;
use buffer::{AlignedBuf, ALIGN};
pub use pool::set_cap as set_pool_cap;
use setup::{buffer_classes, choose_engine, fit_depth, lay_out_slots};
use slot::{Slot, SlotState};

/// One input file.
#[derive(Clone, Debug)]
pub struct FileSpec {
    pub path: PathBuf,
    /// Open with O_DIRECT: reads bypass the page cache and are done in 4096-aligned units.
    pub direct: bool,
}

/// One read: `len` bytes of file `file` (an index into the `FileSpec`s) starting at `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    pub file: usize,
    pub offset: u64,
    pub len: usize,
}

/// Which reader backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// io_uring when the kernel allows it, pread otherwise.
    Auto,
    /// Always pread (`RINGMERGE_IO=pread`, read by config.rs).
    Pread,
}

/// The DB's read rate limit, as the Reader sees it: every read (a continuation of a short read
/// included) is announced with its length before it is submitted, and the call blocks until
/// those bytes may be read. RocksDB's `RandomAccessFileReader` passes compaction reads through
/// the DB's `rate_limiter` the same way (`RequestToken`, `OpType::kRead`, the compaction's
/// `rate_limiter_priority`); the contract's `request_read` is that call.
#[derive(Clone)]
pub struct ReadThrottle(Arc<dyn Fn(u64) + Send + Sync>);

impl ReadThrottle {
    pub fn new(request: impl Fn(u64) + Send + Sync + 'static) -> Self {
        ReadThrottle(Arc::new(request))
    }

    /// Blocks until `bytes` may be read.
    fn request(&self, bytes: u64) {
        (self.0)(bytes)
    }
}

impl fmt::Debug for ReadThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadThrottle")
    }
}

/// One read of an input file that finished: what RocksDB's `RandomAccessFileReader` accounts
/// for each of stock's reads (statistics, per-level read latency, listeners' `OnFileReadFinish`
/// and `OnIOError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadDone {
    /// Index of the file in the Reader's `FileSpec`s.
    pub file: usize,
    /// File offset the read started at.
    pub offset: u64,
    /// Bytes it returned (0 for a failed read).
    pub len: usize,
    /// When it started (after any rate-limit wait, as stock's `start_ts`) and how long it took.
    pub start: SystemTime,
    pub duration: Duration,
    /// The errno of a failed read; None when it returned bytes or end of file. Interrupted
    /// reads that are retried are not reported.
    pub errno: Option<i32>,
}

/// Where finished reads are reported ([`ReadDone`]); the contract's `account_read` is RocksDB's
/// read accounting. Called on the thread that reads, right after each read completes.
#[derive(Clone)]
pub struct ReadAccounting(Arc<dyn Fn(&ReadDone) + Send + Sync>);

impl ReadAccounting {
    pub fn new(account: impl Fn(&ReadDone) + Send + Sync + 'static) -> Self {
        ReadAccounting(Arc::new(account))
    }
}

impl fmt::Debug for ReadAccounting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadAccounting")
    }
}

/// Default bound on one Reader's buffers (and so on one compaction's read memory).
pub const DEFAULT_MEMORY_BUDGET: usize = 64 << 20;

/// Reader settings.
#[derive(Clone, Debug)]
pub struct ReaderConfig {
    /// Upper bound on the bytes of all read buffers together.
    pub memory_budget: usize,
    /// Reads kept in flight (or ready) ahead of the consumer, per stream. Lowered for all
    /// streams when the budget cannot hold that many buffers.
    pub depth_per_stream: usize,
    pub backend: Backend,
    /// Fault injection for tests; see [`FaultSpec`].
    pub fault: Option<FaultSpec>,
    /// Where read buffers live (the BPF arena for the BPF merge).
    pub memory: Memory,
    /// The DB's read rate limit; None reads unthrottled.
    pub throttle: Option<ReadThrottle>,
    /// Told of every finished read; None accounts nothing.
    pub accounting: Option<ReadAccounting>,
    /// Bytes of reads submitted to the kernel at once (0: no bound beyond the buffers). Every
    /// byte in flight sits in the device's queue ahead of foreground reads and flushes (one
    /// request per read: the disk takes 4 MiB requests whole), so the bound is what a
    /// foreground read can find queued before it; reads past it wait in the Reader's own queue,
    /// oldest first. At least one read is always in flight.
    pub max_inflight_bytes: usize,
    /// I/O priority of every io_uring read (the SQE's `ioprio`, as ioprio_set takes it); 0: the
    /// submitting thread's. The pread fallback keeps its thread's.
    pub io_priority: u16,
    /// Plans longer than this are oversized (0: none are): read into a buffer of their own,
    /// outside the budget, and not read ahead (see the module docs). The compaction passes its
    /// read size, so only a block larger than the read size, which the SST-Map makes a chunk of
    /// its own, is oversized.
    pub oversized_above: usize,
}

impl Default for ReaderConfig {
    /// 64 MiB, depth 2, [`Backend::Auto`], no fault injection. Reads no environment: the
    /// configuration layer decides every setting, fault injection included
    /// ([`FaultSpec::parse`]).
    fn default() -> Self {
        ReaderConfig {
            memory_budget: DEFAULT_MEMORY_BUDGET,
            depth_per_stream: 2,
            backend: Backend::Auto,
            fault: None,
            memory: Memory::Heap,
            throttle: None,
            accounting: None,
            max_inflight_bytes: 0,
            io_priority: 0,
            oversized_above: 0,
        }
    }
}

/// TEST HOOK: injected read faults, so the error paths can be exercised end to end (including
/// from the C++ side, through the environment: see [`FaultSpec::parse`]). Never set it in
/// production; [`ReaderConfig::default`] has none.
#[derive(Clone, Debug, Default)]
pub struct FaultSpec {
    /// Every read of a file whose path contains this substring fails with EIO...
    pub eio_path_contains: Option<String>,
    /// ...when the read's chunk starts at or after this file offset (0: every read), so a
    /// failure can be placed mid-compaction, after the merge has opened and output exists.
    pub eio_from_offset: u64,
    /// Every read asks for half of what it should (at least 1 byte; at least 4096 for O_DIRECT,
    /// which cannot do less), so the short-read continuation runs on every chunk.
    pub short_reads: bool,
}

impl FaultSpec {
    /// TEST HOOK. The faults asked for by the values of `RINGMERGE_FAULT_EIO` and
    /// `RINGMERGE_FAULT_SHORT_READS` (None: the variable is not set), as the configuration
    /// layer reads them; the reader itself reads no environment.
    ///
    /// `RINGMERGE_FAULT_EIO=<substring>[@<offset>]`: EIO for the reads of files whose path
    /// contains the substring, from that file offset on (0 when absent or not a number; an
    /// empty value is not set). `RINGMERGE_FAULT_SHORT_READS=1`: halve every read. None when
    /// neither asks for a fault; otherwise the faults are logged as a warning.
    pub fn parse(eio: Option<&str>, short_reads: Option<&str>) -> Option<FaultSpec> {
        let spec = eio.filter(|s| !s.is_empty());
        let (eio, eio_from_offset) = match spec.map(|s| s.split_once('@')) {
            Some(Some((needle, off))) => (Some(needle.to_owned()), off.parse().unwrap_or(0)),
            Some(None) => (spec.map(str::to_owned), 0),
            None => (None, 0),
        };
        let short = short_reads == Some("1");
        if eio.is_none() && !short {
            return None;
        }
        log::warn!("ringmerge reader: fault injection on (eio: {eio:?}, short reads: {short})");
        Some(FaultSpec {
            eio_path_contains: eio,
            eio_from_offset,
            short_reads: short,
        })
    }
}

/// The bytes of one [`ChunkPlan`], in a pool buffer. Give it back with [`Reader::recycle`] so the
/// buffer can take the next read (dropping it instead frees the buffer, rather than returning it
/// to the thread's buffer pool, and shrinks the stream's read-ahead by one for the rest of the
/// Reader's life).
pub struct Chunk {
    buf: AlignedBuf,
    start: usize,
    reader: u64,
    slot: usize,
    pub plan: ChunkPlan,
}

/// `Chunk::slot` of a chunk whose read slot went back to its stream ([`Reader::detach`]).
const DETACHED: usize = usize::MAX;

impl Chunk {
    /// Exactly `plan.len` bytes: the file's bytes at `[plan.offset, plan.offset + plan.len)`.
    pub fn bytes(&self) -> &[u8] {
        &self.buf.as_slice()[self.start..self.start + self.plan.len]
    }

    /// Whether the chunk still takes one of its stream's reads (see [`Reader::depth_of`]); an
    /// oversized chunk given back with [`Reader::detach`] does not.
    pub fn holds_a_read(&self) -> bool {
        self.slot != DETACHED
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk").field("plan", &self.plan).finish()
    }
}

/// Counters since the Reader was made.
#[derive(Clone, Debug, Default)]
pub struct ReaderStats {
    /// SQEs submitted (io_uring) or pread calls, continuations of short reads included.
    pub reads_submitted: u64,
    /// Bytes the kernel returned (for O_DIRECT this includes the alignment slack).
    pub bytes_read: u64,
    /// io_uring_enter calls (submit, submit-and-wait, reap); 0 for pread.
    pub enter_calls: u64,
    /// Time the consumer spent blocked on reads: in io_uring_enter waiting for completions, or
    /// inside pread.
    pub wait_ns: u64,
    /// Reads that returned fewer bytes than asked (before end of file) and were continued.
    pub short_reads: u64,
    /// Time spent waiting for the read rate limit ([`ReadThrottle`]); not part of `wait_ns`.
    pub throttle_wait_ns: u64,
    /// Oversized plans read, each into a buffer of its own (see the module docs).
    pub oversized_reads: u64,
    /// The most bytes of such buffers alive at once: the memory used beyond the budget. A
    /// chunk dropped instead of recycled still counts as alive.
    pub oversized_peak_bytes: u64,
}

static NEXT_READER_ID: AtomicU64 = AtomicU64::new(1);

/// An input file, open for the Reader's lifetime.
struct OpenFile {
    file: File,
    path: String,
    direct: bool,
    /// TEST HOOK: reads of chunks starting at or after this offset fail with EIO.
    fault_eio_from: Option<u64>,
}

struct Stream {
    plans: Vec<ChunkPlan>,
    /// Next plan to start a read for.
    next_issue: usize,
    /// Slots holding this stream's issued, not yet returned plans, oldest first.
    order: VecDeque<usize>,
    free: Vec<usize>,
    nslots: usize,
    /// Sticky: once a read of the stream failed, every later call reports it.
    failed: Option<Error>,
}

/// The backend doing the reads, with its state.
enum Engine {
    Uring(uring::Uring),
    Pread,
}

/// Reads the chunks of several streams ahead of a single consumer thread. See the module docs.
pub struct Reader {
    id: u64,
    files: Vec<OpenFile>,
    streams: Vec<Stream>,
    slots: Vec<Slot>,
    engine: Engine,
    /// A ring-level failure: the Reader cannot go on.
    fatal: Option<Error>,
    stats: ReaderStats,
    fallback_reason: Option<String>,
    short_fault: bool,
    memory: Memory,
    throttle: Option<ReadThrottle>,
    accounting: Option<ReadAccounting>,
    /// `ReaderConfig::oversized_above`.
    oversized_above: usize,
    /// Bytes of oversized plans' buffers allocated and not yet freed.
    oversized_live: usize,
    _not_send: PhantomData<*const ()>,
}

impl Reader {
    /// Opens the files (O_DIRECT where `FileSpec::direct`), chooses the backend and starts
    /// reading ahead.
    ///
    /// Errors: a file that cannot be opened -> `Error::Io` with path and errno text; a regular
    /// chunk (not oversized) larger than the budget allows (even with one read per stream), or a
    /// plan naming a file that is not in `files` -> `Error::NotSupported`.
    pub fn new(
        files: Vec<FileSpec>,
        streams: Vec<Vec<ChunkPlan>>,
        cfg: ReaderConfig,
    ) -> Result<Reader> {
        let ReaderConfig {
            memory_budget,
            depth_per_stream,
            backend,
            fault,
            memory,
            throttle,
            accounting,
            max_inflight_bytes,
            io_priority,
            oversized_above,
        } = cfg;
        // Validate and size everything before opening files or taking the ring.
        let buf_sizes = buffer_classes(&files, &streams, oversized_above)?;
        let depth = fit_depth(&streams, &buf_sizes, depth_per_stream, memory_budget)?;
        let fault = fault.unwrap_or_default();
        let files = files
            .into_iter()
            .map(|spec| OpenFile::open(spec, &fault))
            .collect::<Result<Vec<_>>>()?;
        let (streams, slots) = lay_out_slots(streams, buf_sizes, depth);
        let (engine, fallback_reason) =
            choose_engine(backend, slots.len(), max_inflight_bytes, io_priority);
        let mut reader = Reader {
            id: NEXT_READER_ID.fetch_add(1, Ordering::Relaxed),
            files,
            streams,
            slots,
            engine,
            fatal: None,
            stats: ReaderStats::default(),
            fallback_reason,
            short_fault: fault.short_reads,
            memory,
            throttle,
            accounting,
            oversized_above,
            oversized_live: 0,
            _not_send: PhantomData,
        };
        reader.start_reading()?;
        Ok(reader)
    }

    /// The stream's next chunk in plan order, waiting for its read if needed; Ok(None) when the
    /// stream is done. After an error the stream keeps reporting it.
    pub fn next_chunk(&mut self, stream: usize) -> Result<Option<Chunk>> {
        let Some(st) = self.streams.get(stream) else {
            return Err(Error::io(format!(
                "reader: no stream {stream} (there are {})",
                self.streams.len()
            )));
        };
        if let Some(e) = &st.failed {
            return Err(e.clone());
        }
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        match self.engine {
            Engine::Uring(_) => self.next_uring(stream),
            Engine::Pread => self.next_pread(stream),
        }
    }

    /// Gives a chunk's buffer back so more reads can be issued (call it when done decoding).
    /// A detached chunk's buffer (see [`Reader::detach`]) is freed.
    pub fn recycle(&mut self, chunk: Chunk) {
        if chunk.reader != self.id {
            log::warn!("ringmerge reader: chunk from another Reader recycled; dropping it");
            return;
        }
        if chunk.slot == DETACHED {
            // An oversized chunk's own buffer, its slot long back with its stream: freed here.
            self.oversized_freed(chunk.buf.len());
            return;
        }
        let Some(slot) = self.slots.get_mut(chunk.slot) else {
            return;
        };
        if !matches!(slot.state, SlotState::Lent) {
            log::warn!("ringmerge reader: recycled chunk's slot is not lent out; dropping it");
            return;
        }
        slot.buf = Some(chunk.buf);
        slot.state = SlotState::Free;
        let freed = slot.restore_regular();
        let s = slot.stream;
        self.oversized_freed(freed);
        self.streams[s].free.push(chunk.slot);
        self.read_on(s);
    }

    /// Gives the read slot of an oversized chunk back to its stream while the caller keeps the
    /// chunk: the chunk's buffer is its own (see the module docs), so the slot can take its
    /// regular buffer back and the stream read on at its full depth. The caller holds on to
    /// the bytes (values pinned in them) without costing its stream a read; the buffer is freed
    /// when the chunk is recycled (or dropped). False, and nothing changes, for a regular chunk
    /// (its buffer is the slot's), a detached one, or one of another Reader.
    pub fn detach(&mut self, chunk: &mut Chunk) -> bool {
        if chunk.reader != self.id || chunk.slot == DETACHED {
            return false;
        }
        let Some(slot) = self.slots.get_mut(chunk.slot) else {
            return false;
        };
        if !slot.dedicated || !matches!(slot.state, SlotState::Lent) {
            return false;
        }
        // The lent slot holds no buffer (it is in the chunk): only the regular one comes back.
        slot.dedicated = false;
        slot.buf = slot.aside.take();
        slot.state = SlotState::Free;
        let s = slot.stream;
        self.streams[s].free.push(chunk.slot);
        chunk.slot = DETACHED;
        self.read_on(s);
        true
    }

    /// Queues stream `s`'s next reads into its free slots now (io_uring; pread reads when
    /// asked): they go out with the next enter, batched with others.
    fn read_on(&mut self, s: usize) {
        if matches!(self.engine, Engine::Uring(_))
            && self.streams[s].failed.is_none()
            && self.fatal.is_none()
        {
            if let Err(e) = self.issue(s, usize::MAX) {
                log::warn!("ringmerge reader: {e}");
            }
        }
    }

    /// How many buffers `stream` has (its read depth): at most that many of its chunks can be
    /// lent out at once, and one more needs one of them back.
    pub fn depth_of(&self, stream: usize) -> usize {
        self.streams.get(stream).map_or(0, |s| s.nslots)
    }

    /// Counters since the Reader was made.
    pub fn stats(&self) -> ReaderStats {
        self.stats.clone()
    }

    /// "io_uring" or "pread".
    pub fn backend_name(&self) -> &'static str {
        match self.engine {
            Engine::Uring(_) => "io_uring",
            Engine::Pread => "pread",
        }
    }

    /// Why io_uring was not used: None when it is, or when pread was asked for.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The largest plan length `Reader::new` is guaranteed to accept for `streams` streams read
    /// `depth` deep within `budget` bytes, whatever the plans' offsets (O_DIRECT reads can need
    /// up to 4096 bytes of alignment slack on top of the rounded-up length). 0 when nothing fits.
    ///
    /// Buffers are allocated in size classes (see `pool`), so this is the largest length whose
    /// worst-case span is a whole class within `budget / (streams x depth)`: plans sized by it
    /// reuse the same pooled buffers from one compaction to the next.
    pub fn max_chunk_len(budget: usize, streams: usize, depth: usize, direct: bool) -> usize {
        let per = budget / streams.max(1).saturating_mul(depth.max(1));
        // Every class is a multiple of ALIGN, so a len of `class - ALIGN` at the worst offset
        // (4095) spans exactly `class` bytes.
        let class = pool::class_floor(per);
        if direct {
            class.saturating_sub(ALIGN)
        } else {
            class
        }
    }

    /// Which ring setup flags the kernel accepted: "SINGLE_ISSUER|DEFER_TASKRUN" or "plain"
    /// (None on pread). For logs and diagnostics.
    pub fn ring_flags(&self) -> Option<&'static str> {
        match &self.engine {
            Engine::Uring(u) => Some(u.flags()),
            Engine::Pread => None,
        }
    }

    /// Notes a dedicated buffer of `bytes` freed (0: none).
    fn oversized_freed(&mut self, bytes: usize) {
        self.oversized_live = self.oversized_live.saturating_sub(bytes);
    }

    fn lend(&mut self, id: usize) -> Chunk {
        let slot = &mut self.slots[id];
        slot.state = SlotState::Lent;
        let plan = self.streams[slot.stream].plans[slot.plan].clone();
        Chunk {
            buf: slot.buf.take().expect("a ready slot holds its buffer"),
            start: slot.lead,
            reader: self.id,
            slot: id,
            plan,
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The kernel may still be writing into buffers: wait for every read before they go.
        let drained = self.drain_reads();
        let engine = std::mem::replace(&mut self.engine, Engine::Pread);
        if drained {
            if let Engine::Uring(u) = engine {
                u.release();
            }
        }
        for slot in &mut self.slots {
            // A regular buffer set aside for an oversized read: no read went into it meanwhile.
            if let Some(aside) = slot.aside.take() {
                if drained {
                    pool::give(aside);
                }
            }
            let Some(buf) = slot.buf.take() else {
                // Never allocated, or lent out in a Chunk (the caller frees that one).
                continue;
            };
            if matches!(slot.state, SlotState::InFlight) {
                // The kernel may still write into it: leak it, never free or pool it.
                std::mem::forget(buf);
            } else if slot.dedicated {
                // An oversized plan's own buffer: freed, never pooled (see `restore_regular`).
                drop(buf);
            } else if drained {
                // No read is in flight on this Reader's ring, so nothing can write into the
                // buffer any more: it may serve the thread's next Reader.
                pool::give(buf);
            }
            // Otherwise (a failed drain) the buffer is freed here, not pooled: it is not in the
            // kernel's hands, but this path is rare enough to stay conservative.
        }
        // With reads left in flight, closing the ring (dropped here) makes the kernel cancel
        // them; their buffers stay leaked, so whatever it still writes lands in memory nobody
        // else owns.
    }
}

/// Notes a dedicated buffer of `bytes` allocated for an oversized plan (0: none) in the stats
/// and the live count. (A free function over the two fields, so the backends can call it while
/// they hold a stream.)
fn oversized_allocated(stats: &mut ReaderStats, live: &mut usize, bytes: usize) {
    if bytes > 0 {
        stats.oversized_reads += 1;
        *live += bytes;
        stats.oversized_peak_bytes = stats.oversized_peak_bytes.max(*live as u64);
    }
}

/// Whether `plan` is longer than `oversized_above` (0: no plan is oversized).
fn oversized(plan: &ChunkPlan, oversized_above: usize) -> bool {
    oversized_above > 0 && plan.len > oversized_above
}

fn all_lent(s: usize, n: usize) -> Error {
    Error::io(format!(
        "reader: stream {s} has all {n} of its buffers out with the caller; recycle a chunk \
         before asking for the next"
    ))
}

/// strerror text without std's " (os error N)" suffix, as RocksDB prints it.
fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
