//! Batched, read-ahead reads of SST file ranges for one compaction.
//!
//! A compaction merges several sorted runs ("streams"); each stream is a list of byte ranges
//! ([`ChunkPlan`]s) read in order. The merge runs on one thread and asks for a stream's chunks
//! one at a time, so the reader keeps up to `depth_per_stream` reads per stream in flight ahead
//! of it, inside a hard memory budget, and hands each chunk over once its bytes are in.
//!
//! Two backends do the reading:
//! - io_uring (the default): one ring per thread, reused across Readers, reads submitted in
//!   batches so one `io_uring_enter` carries many of them;
//! - pread: synchronous reads when a chunk is asked for, used when io_uring is unavailable
//!   (seccomp, `kernel.io_uring_disabled`, old kernels) or forced with `RINGMERGE_IO=pread`.
//!
//! Both treat short reads, end of file and errors the same way, with RocksDB's wording.
//!
//! Read buffers come from a per-thread pool (`pool`) in size classes and go back to it when the
//! Reader is dropped, so a compaction thread reuses the same memory compaction after compaction
//! instead of growing, faulting in and zeroing fresh heap every time.
//!
//! A Reader is tied to the thread that made it (the ring is single-issuer and deferred task work
//! runs only on that thread), so it is deliberately not `Send`.

mod buffer;
pub(crate) mod pool;
mod pread;
mod uring;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use io_uring::{opcode, types};

use crate::error::{Error, Result};
pub use buffer::Memory;
use buffer::{align_down, align_up, AlignedBuf, ALIGN};
pub use pool::set_cap as set_pool_cap;

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
    /// Always pread (`RINGMERGE_IO=pread`, read by the bridge).
    Pread,
}

/// The DB's read rate limit, as the Reader sees it: every read (a continuation of a short read
/// included) is announced with its length before it is submitted, and the call blocks until
/// those bytes may be read. RocksDB's `RandomAccessFileReader` passes compaction reads through
/// the DB's `rate_limiter` the same way (`RequestToken`, `OpType::kRead`, the compaction's
/// `rate_limiter_priority`); the bridge's `request_read` is that call.
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

/// Where finished reads are reported ([`ReadDone`]); the bridge's `account_read` is RocksDB's
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
}

impl Default for ReaderConfig {
    /// 64 MiB, depth 2, [`Backend::Auto`], no faults.
    fn default() -> Self {
        ReaderConfig {
            memory_budget: 64 << 20,
            depth_per_stream: 2,
            backend: Backend::Auto,
            fault: None,
            memory: Memory::Heap,
            throttle: None,
            accounting: None,
            max_inflight_bytes: 0,
            io_priority: 0,
        }
    }
}

/// TEST HOOK: injected read faults, so the error paths can be exercised end to end (including
/// from the C++ side, through the environment). Never set it in production.
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
    /// TEST HOOK. `eio`: `<substring>[@<offset>]` (EIO for files whose path contains it, from
    /// that offset on); `short_reads`: "1" halves every read. None when neither is set.
    pub fn parse(eio: Option<&str>, short_reads: Option<&str>) -> Option<FaultSpec> {
        let spec = eio.filter(|s| !s.is_empty()).map(str::to_owned);
        let (eio, eio_from_offset) = match spec.as_deref().map(|s| s.split_once('@')) {
            Some(Some((needle, off))) => (Some(needle.to_owned()), off.parse().unwrap_or(0)),
            Some(None) => (spec.clone(), 0),
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

impl Chunk {
    /// Exactly `plan.len` bytes: the file's bytes at `[plan.offset, plan.offset + plan.len)`.
    pub fn bytes(&self) -> &[u8] {
        &self.buf.as_slice()[self.start..self.start + self.plan.len]
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
}

/// One read is at most this long; a longer span is read in pieces (the SQE length is 32-bit).
const MAX_IO: usize = 1 << 30;
/// Consecutive EINTR/EAGAIN on one read before giving up on it.
const MAX_RETRIES: u32 = 1000;

static NEXT_READER_ID: AtomicU64 = AtomicU64::new(1);

struct OpenFile {
    file: File,
    path: String,
    direct: bool,
    /// TEST HOOK: reads of chunks starting at or after this offset fail with EIO.
    fault_eio_from: Option<u64>,
}

#[derive(Debug)]
enum SlotState {
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
struct Slot {
    stream: usize,
    /// Bytes of the buffer: the size class of the stream's largest span (see `pool`).
    size: usize,
    buf: Option<AlignedBuf>,
    state: SlotState,
    /// Index of the plan in its stream.
    plan: usize,
    /// File offset of `buf[0]` (the plan's offset, aligned down for O_DIRECT).
    base: u64,
    /// Where the plan's bytes start in `buf`.
    lead: usize,
    /// `lead + plan.len`: the read is complete once `done` reaches it.
    target: usize,
    /// Bytes to ask for in all: `target`, rounded up to ALIGN for O_DIRECT.
    span: usize,
    /// Bytes of `buf` filled so far.
    done: usize,
    /// The read in flight: buffer offset and length.
    ask_off: usize,
    ask: usize,
    /// What the read in flight would ask without the short-read fault: returning fewer bytes
    /// than this is a short read.
    want: usize,
    retries: u32,
    /// When the read in flight started (wall clock, monotonic); kept only for accounting.
    started: Option<(SystemTime, Instant)>,
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

enum Engine {
    Uring(uring::Ring),
    Pread,
}

enum Step {
    Done,
    Again,
    Fail(Error),
}

/// Reads the chunks of several streams ahead of a single consumer thread. See the module docs.
pub struct Reader {
    id: u64,
    files: Vec<OpenFile>,
    streams: Vec<Stream>,
    slots: Vec<Slot>,
    engine: Engine,
    /// Slots waiting to be put in the SQ, oldest first.
    pending: VecDeque<usize>,
    /// Reads in the SQ or the kernel.
    inflight: usize,
    /// Keeps completions from overflowing the CQ.
    max_inflight: usize,
    /// Bytes asked by the reads in flight, and their bound (`ReaderConfig::max_inflight_bytes`;
    /// usize::MAX when unbounded).
    inflight_bytes: usize,
    max_inflight_bytes: usize,
    io_priority: u16,
    /// Pending reads are submitted without waiting once this many have piled up.
    submit_batch: usize,
    cqes: Vec<(u64, i32)>,
    /// A ring-level failure: the Reader cannot go on.
    fatal: Option<Error>,
    stats: ReaderStats,
    fallback_reason: Option<String>,
    short_fault: bool,
    memory: Memory,
    throttle: Option<ReadThrottle>,
    accounting: Option<ReadAccounting>,
    _not_send: PhantomData<*const ()>,
}

impl Reader {
    /// Opens the files (O_DIRECT where `FileSpec::direct`), chooses the backend and starts
    /// reading ahead.
    ///
    /// Errors: a file that cannot be opened -> `Error::Io` with path and errno text; a chunk
    /// larger than the budget allows (even with one read per stream), or a plan naming a file
    /// that is not in `files` -> `Error::NotSupported`.
    pub fn new(
        files: Vec<FileSpec>,
        streams: Vec<Vec<ChunkPlan>>,
        cfg: ReaderConfig,
    ) -> Result<Reader> {
        // Validate and size everything before opening files or taking the ring.
        let mut buf_sizes = Vec::with_capacity(streams.len());
        for (s, plans) in streams.iter().enumerate() {
            let mut size = 0usize;
            for p in plans {
                let Some(f) = files.get(p.file) else {
                    return Err(Error::not_supported(format!(
                        "reader: stream {s} plans a read of file {} but only {} files were given",
                        p.file,
                        files.len()
                    )));
                };
                size = size.max(span_of(p, f.direct));
            }
            // Buffers come in size classes (so they can be pooled across Readers): the budget
            // is charged with what is really allocated.
            buf_sizes.push(pool::class_of(size));
        }
        let budget = cfg.memory_budget;
        let total_for = |d: usize| -> usize {
            streams
                .iter()
                .zip(&buf_sizes)
                .fold(0usize, |acc, (plans, &size)| {
                    acc.saturating_add(size.saturating_mul(d.min(plans.len())))
                })
        };
        let mut depth = cfg.depth_per_stream.max(1);
        while depth > 1 && total_for(depth) > budget {
            depth -= 1;
        }
        if total_for(depth) > budget {
            let largest = streams.iter().flatten().map(|p| p.len).max().unwrap_or(0);
            return Err(Error::not_supported(format!(
                "reader: {} streams need {} bytes of buffers with one read each, over the memory \
                 budget of {budget} bytes (largest chunk {largest} bytes; Reader::max_chunk_len \
                 gives the limit)",
                streams.len(),
                total_for(1)
            )));
        }
        if depth < cfg.depth_per_stream {
            log::debug!(
                "ringmerge reader: depth lowered from {} to {depth} to fit {budget} bytes",
                cfg.depth_per_stream
            );
        }

        let fault = cfg.fault.unwrap_or_default();
        let mut open = Vec::with_capacity(files.len());
        for spec in files {
            let mut opts = OpenOptions::new();
            opts.read(true);
            if spec.direct {
                opts.custom_flags(libc::O_DIRECT);
            }
            let path = spec.path.display().to_string();
            let file = opts.open(&spec.path).map_err(|e| {
                Error::io(format!(
                    "While open a file for random read: {path}: {}",
                    errno_text(&e)
                ))
            })?;
            let fault_eio_from = fault
                .eio_path_contains
                .as_deref()
                .is_some_and(|needle| path.contains(needle))
                .then_some(fault.eio_from_offset);
            open.push(OpenFile {
                file,
                path,
                direct: spec.direct,
                fault_eio_from,
            });
        }

        // `RINGMERGE_IO=pread` reaches here as `Backend::Pread` (the bridge reads it): the
        // reader itself reads no environment, so `Backend::Auto` always tries io_uring.
        let (engine, fallback_reason) = if cfg.backend == Backend::Pread {
            (Engine::Pread, None)
        } else {
            match uring::Ring::acquire() {
                Ok(ring) => (Engine::Uring(ring), None),
                Err(reason) => (Engine::Pread, Some(reason)),
            }
        };

        let mut slots = Vec::new();
        let mut stream_states = Vec::with_capacity(streams.len());
        for (s, (plans, size)) in streams.into_iter().zip(buf_sizes).enumerate() {
            let nslots = depth.min(plans.len());
            let first = slots.len();
            for _ in 0..nslots {
                slots.push(Slot {
                    stream: s,
                    size,
                    buf: None,
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
                });
            }
            stream_states.push(Stream {
                plans,
                next_issue: 0,
                order: VecDeque::with_capacity(nslots),
                // Reversed so that pop() hands out the lowest slot first.
                free: (first..first + nslots).rev().collect(),
                nslots,
                failed: None,
            });
        }
        let max_inflight = match &engine {
            Engine::Uring(r) => r.ring.params().cq_entries() as usize,
            Engine::Pread => 0,
        };
        let nslots = slots.len();
        let mut reader = Reader {
            id: NEXT_READER_ID.fetch_add(1, Ordering::Relaxed),
            files: open,
            streams: stream_states,
            slots,
            engine,
            pending: VecDeque::with_capacity(nslots),
            inflight: 0,
            max_inflight,
            inflight_bytes: 0,
            max_inflight_bytes: match cfg.max_inflight_bytes {
                0 => usize::MAX,
                n => n,
            },
            io_priority: cfg.io_priority,
            submit_batch: (nslots / 4).max(1),
            cqes: Vec::with_capacity(max_inflight),
            fatal: None,
            stats: ReaderStats::default(),
            fallback_reason,
            short_fault: fault.short_reads,
            memory: cfg.memory,
            throttle: cfg.throttle,
            accounting: cfg.accounting,
            _not_send: PhantomData,
        };
        if matches!(reader.engine, Engine::Uring(_)) {
            // Under a read rate limit every read waits for its bytes before it is submitted:
            // start with each stream's first read, so the merge can begin as soon as those
            // are in, and queue the rest as the streams are consumed.
            let first = if reader.throttle.is_some() {
                1
            } else {
                usize::MAX
            };
            for s in 0..reader.streams.len() {
                reader.issue(s, first)?;
            }
            // Every stream's first reads go out in one enter (more only past the SQ's size).
            // (The in-flight byte bound may hold some back; they go out as reads complete.)
            while !reader.pending.is_empty() && reader.inflight < reader.max_inflight {
                if reader.submit(false)? == 0 {
                    break;
                }
            }
        }
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
    pub fn recycle(&mut self, chunk: Chunk) {
        if chunk.reader != self.id {
            log::warn!("ringmerge reader: chunk from another Reader recycled; dropping it");
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
        let s = slot.stream;
        self.streams[s].free.push(chunk.slot);
        // Queue the next read now; it goes out with the next enter, batched with others.
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
            Engine::Uring(r) => Some(r.flags),
            Engine::Pread => None,
        }
    }

    /// Starts reads for the stream's next plans into its free buffers (queued, not submitted),
    /// at most `limit` of them.
    fn issue(&mut self, s: usize, limit: usize) -> Result<()> {
        let st = &mut self.streams[s];
        let mut issued = 0;
        while st.next_issue < st.plans.len() && issued < limit {
            issued += 1;
            let Some(id) = st.free.pop() else { break };
            let plan = &st.plans[st.next_issue];
            let slot = &mut self.slots[id];
            if let Err(e) = start_slot(
                slot,
                st.next_issue,
                plan,
                self.files[plan.file].direct,
                self.memory,
            ) {
                st.free.push(id);
                return Err(e);
            }
            if plan.len == 0 {
                slot.state = SlotState::Ready;
            } else {
                slot.state = SlotState::Pending;
                self.pending.push_back(id);
            }
            st.order.push_back(id);
            st.next_issue += 1;
        }
        Ok(())
    }

    fn next_uring(&mut self, s: usize) -> Result<Option<Chunk>> {
        self.issue(s, usize::MAX)?;
        loop {
            let st = &self.streams[s];
            let Some(&id) = st.order.front() else {
                if st.next_issue == st.plans.len() {
                    return Ok(None);
                }
                return Err(all_lent(s, st.nslots));
            };
            match self.slots[id].state {
                SlotState::Ready => break,
                SlotState::Failed(_) => {
                    let slot = &mut self.slots[id];
                    let SlotState::Failed(e) = std::mem::replace(&mut slot.state, SlotState::Free)
                    else {
                        unreachable!()
                    };
                    let st = &mut self.streams[s];
                    st.order.pop_front();
                    st.free.push(id);
                    st.failed = Some(e.clone());
                    return Err(e);
                }
                SlotState::Pending | SlotState::InFlight => {
                    // A plain ring posts completions by itself: look before blocking.
                    let before = self.inflight;
                    self.reap();
                    if self.inflight == before || !self.pending.is_empty() {
                        self.submit(true)?;
                    }
                }
                SlotState::Free | SlotState::Lent => {
                    return Err(Error::io(format!(
                        "reader: internal error, stream {s} slot {id} queued in state {:?}",
                        self.slots[id].state
                    )));
                }
            }
        }
        // The device should not idle while the consumer works through ready chunks: once enough
        // reads are queued, send them (this also reaps whatever completed meanwhile).
        if self.pending.len() >= self.submit_batch {
            self.submit(false)?;
        }
        let id = self.streams[s]
            .order
            .pop_front()
            .expect("front checked above");
        Ok(Some(self.lend(id)))
    }

    fn next_pread(&mut self, s: usize) -> Result<Option<Chunk>> {
        let st = &mut self.streams[s];
        if st.next_issue == st.plans.len() {
            return Ok(None);
        }
        let Some(id) = st.free.pop() else {
            return Err(all_lent(s, st.nslots));
        };
        let plan = st.plans[st.next_issue].clone();
        let file = &self.files[plan.file];
        let slot = &mut self.slots[id];
        if let Err(e) = start_slot(slot, st.next_issue, &plan, file.direct, self.memory) {
            st.free.push(id);
            return Err(e);
        }
        while slot.done < slot.target {
            let (off, len) = next_ask(slot, file.direct, self.short_fault);
            ask_throttle(&self.throttle, len, &mut self.stats);
            mark_start(slot, &self.accounting);
            let buf = slot
                .buf
                .as_mut()
                .expect("start_slot allocates")
                .as_mut_ptr();
            let t0 = Instant::now();
            // SAFETY: off + len <= span <= buffer size (start_slot sizes the read to the buffer).
            let res = pread::pread(
                file.file.as_raw_fd(),
                unsafe { buf.add(off) },
                len,
                slot.base + off as u64,
            );
            self.stats.wait_ns += t0.elapsed().as_nanos() as u64;
            self.stats.reads_submitted += 1;
            match finish_read(slot, res, file, &plan, &mut self.stats, &self.accounting) {
                Step::Done => break,
                Step::Again => {}
                Step::Fail(e) => {
                    slot.state = SlotState::Free;
                    st.free.push(id);
                    st.failed = Some(e.clone());
                    return Err(e);
                }
            }
        }
        st.next_issue += 1;
        Ok(Some(self.lend(id)))
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

    /// Puts pending reads in the SQ, enters the kernel once (blocking for a completion with
    /// `wait`), and reaps every completion. Retries EINTR/EAGAIN/EBUSY; anything else is fatal.
    /// Returns how many reads it put in the SQ.
    fn submit(&mut self, wait: bool) -> Result<usize> {
        let pushed = self.push_pending();
        let wait = wait && self.inflight > 0;
        let mut tries = 0u32;
        loop {
            match self.enter(wait) {
                Ok(()) => break,
                Err(e) if is_retryable(&e) && tries < MAX_RETRIES => {
                    tries += 1;
                    // EBUSY/EAGAIN mean the kernel wants completions consumed first.
                    self.reap();
                    if tries > 10 {
                        std::thread::sleep(std::time::Duration::from_micros(100));
                    }
                }
                Err(e) => {
                    let err = Error::io(format!("io_uring_enter: {}", errno_text(&e)));
                    self.fatal = Some(err.clone());
                    return Err(err);
                }
            }
        }
        self.reap();
        Ok(pushed)
    }

    fn enter(&mut self, wait: bool) -> io::Result<()> {
        let Engine::Uring(ring) = &mut self.engine else {
            return Ok(());
        };
        self.stats.enter_calls += 1;
        if wait {
            let t0 = Instant::now();
            let r = ring.enter(true);
            self.stats.wait_ns += t0.elapsed().as_nanos() as u64;
            r.map(drop)
        } else {
            ring.enter(false).map(drop)
        }
    }

    fn push_pending(&mut self) -> usize {
        let Engine::Uring(ring) = &mut self.engine else {
            return 0;
        };
        let mut sq = ring.ring.submission();
        let mut pushed = 0;
        while self.inflight < self.max_inflight && !sq.is_full() {
            // Under a read rate limit, one read per submission: a read's bytes are granted just
            // before it goes out, not while it waits behind others in the SQ.
            if self.throttle.is_some() && pushed > 0 {
                break;
            }
            let Some(id) = self.pending.pop_front() else {
                break;
            };
            let slot = &mut self.slots[id];
            let plan = &self.streams[slot.stream].plans[slot.plan];
            let file = &self.files[plan.file];
            let (off, len) = next_ask(slot, file.direct, self.short_fault);
            if self.inflight > 0
                && self.inflight_bytes.saturating_add(len) > self.max_inflight_bytes
            {
                // Over the in-flight bound: it goes out when a read in flight completes
                // (next_ask recomputes the same ask then).
                self.pending.push_front(id);
                break;
            }
            ask_throttle(&self.throttle, len, &mut self.stats);
            mark_start(slot, &self.accounting);
            let buf = slot
                .buf
                .as_mut()
                .expect("a pending slot holds its buffer")
                .as_mut_ptr();
            // SAFETY: off + len <= span <= buffer size, so the pointer stays inside the buffer.
            let ptr = unsafe { buf.add(off) };
            let sqe = opcode::Read::new(types::Fd(file.file.as_raw_fd()), ptr, len as u32)
                .offset(slot.base + off as u64)
                .ioprio(self.io_priority)
                .build()
                .user_data(id as u64);
            // SAFETY: the buffer is owned by the slot, which stays InFlight (so the buffer is
            // neither lent nor freed: Drop waits for all InFlight slots) until this read's
            // completion is reaped; the file stays open for the Reader's lifetime.
            if unsafe { sq.push(&sqe) }.is_err() {
                self.pending.push_front(id);
                break;
            }
            slot.state = SlotState::InFlight;
            self.inflight += 1;
            self.inflight_bytes += len;
            self.stats.reads_submitted += 1;
            pushed += 1;
        }
        pushed
    }

    /// Takes every completion off the CQ (no syscall) and advances the slots they belong to.
    fn reap(&mut self) {
        let Engine::Uring(ring) = &mut self.engine else {
            return;
        };
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(ring.ring.completion().map(|c| (c.user_data(), c.result())));
        for &(user_data, res) in &cqes {
            let id = user_data as usize;
            let Some(slot) = self.slots.get_mut(id) else {
                log::warn!("ringmerge reader: completion for unknown slot {user_data}");
                continue;
            };
            if !matches!(slot.state, SlotState::InFlight) {
                log::warn!(
                    "ringmerge reader: completion for slot {id} in state {:?}",
                    slot.state
                );
                continue;
            }
            self.inflight -= 1;
            self.inflight_bytes = self.inflight_bytes.saturating_sub(slot.ask);
            let plan = &self.streams[slot.stream].plans[slot.plan];
            let file = &self.files[plan.file];
            let res = if res < 0 { Err(-res) } else { Ok(res as usize) };
            match finish_read(slot, res, file, plan, &mut self.stats, &self.accounting) {
                Step::Done => slot.state = SlotState::Ready,
                Step::Again => {
                    slot.state = SlotState::Pending;
                    self.pending.push_back(id);
                }
                Step::Fail(e) => slot.state = SlotState::Failed(e),
            }
        }
        self.cqes = cqes;
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Engine::Uring(_) = self.engine {
            // The kernel may still be writing into buffers: wait for every read before they go.
            // Pending reads were never submitted and are simply dropped.
            self.pending.clear();
            let mut tries = 0u32;
            while self.inflight > 0 {
                match self.enter(true) {
                    Ok(()) => {}
                    Err(e) if is_retryable(&e) && tries < MAX_RETRIES => tries += 1,
                    Err(e) => {
                        log::error!(
                            "ringmerge reader: cannot wait for {} reads in flight ({}); leaking their buffers",
                            self.inflight,
                            errno_text(&e)
                        );
                        break;
                    }
                }
                self.reap();
                self.pending.clear();
            }
        }
        let engine = std::mem::replace(&mut self.engine, Engine::Pread);
        // Pread never has reads in flight; for io_uring, 0 means every submitted read was reaped.
        let drained = self.inflight == 0;
        if drained {
            if let Engine::Uring(ring) = engine {
                ring.release();
            }
        }
        for slot in &mut self.slots {
            let Some(buf) = slot.buf.take() else {
                // Never allocated, or lent out in a Chunk (the caller frees that one).
                continue;
            };
            if matches!(slot.state, SlotState::InFlight) {
                // The kernel may still write into it: leak it, never free or pool it.
                std::mem::forget(buf);
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

/// Bytes of buffer a plan needs.
fn span_of(p: &ChunkPlan, direct: bool) -> usize {
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
fn start_slot(
    slot: &mut Slot,
    index: usize,
    plan: &ChunkPlan,
    direct: bool,
    memory: Memory,
) -> Result<()> {
    if slot.buf.is_none() {
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
    // It holds by construction (the buffer is the class of the stream's largest span); checked
    // anyway because a violation would be memory corruption, not just a wrong answer.
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
    Ok(())
}

/// Waits for the read rate limit to grant a read of `len` bytes, if there is one; the wait is
/// counted in `stats.throttle_wait_ns`. (A free function over the two fields, so both backends
/// can call it while they hold a slot and, for io_uring, the SQ.)
fn ask_throttle(throttle: &Option<ReadThrottle>, len: usize, stats: &mut ReaderStats) {
    if let Some(t) = throttle {
        let t0 = Instant::now();
        t.request(len as u64);
        stats.throttle_wait_ns += t0.elapsed().as_nanos() as u64;
    }
}

/// Notes when a slot's read starts, if reads are accounted.
fn mark_start(slot: &mut Slot, accounting: &Option<ReadAccounting>) {
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
fn next_ask(slot: &mut Slot, direct: bool, short_fault: bool) -> (usize, usize) {
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
fn finish_read(
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

fn all_lent(s: usize, n: usize) -> Error {
    Error::io(format!(
        "reader: stream {s} has all {n} of its buffers out with the caller; recycle a chunk \
         before asking for the next"
    ))
}

fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
    )
}

/// strerror text without std's " (os error N)" suffix, as RocksDB prints it.
fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
