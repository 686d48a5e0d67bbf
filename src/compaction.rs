//! One (sub)compaction's merge session: the SST-Map, its reader and the merger, producing the
//! merged stream of every version in the inputs, in internal-key order, as batches the C++ side
//! walks through with an `InternalIterator`.
//!
//! Batches are double-buffered: the slices of batch N stay valid while the C++ side asks for batch
//! N+1, because RocksDB's `CompactionIterator` may still look at the previous entry right after it
//! advanced its input (the same contract a block iterator gives when it crosses a block).

use crate::block::key::{UserKeyOrder, INTERNAL_KEY_TRAILER_LEN};
use crate::error::{Error, Result};
use crate::merge::bpf::session::BpfBatcher;
use crate::merge::bpf::{self, Selection};
use crate::merge::cursor::Bounds;
use crate::merge::held::release_point;
use crate::merge::{RunMerger, LINEAR_MAX};
use crate::reader::{
    Backend, FaultSpec, Memory, ReadAccounting, ReadThrottle, Reader, ReaderConfig, ReaderStats,
};
use crate::sst_map::{largest_block_span, SortedRun, SstMap};
use std::time::{Duration, Instant};

pub use crate::merge::BATCH_BYTES;
/// Reads larger than this gain nothing on these disks and only take memory from other runs.
pub const MAX_CHUNK: usize = 4 << 20;
/// Most bytes a batch's `data` keeps from one batch to the next: a full batch plus the largest
/// entry a regular chunk can hold.
const BATCH_DATA_KEEP: usize = BATCH_BYTES + MAX_CHUNK;
/// Reads in flight per sorted run: one being merged, one or more landing.
pub const DEPTH_PER_RUN: usize = 2;
/// The native merge's depth: one more buffer per run, so a run can hold the chunk it just left
/// (its values pinned in the two readable batches) while it merges the next pinned chunk and the
/// one after lands (see merge/cursor.rs, pinned values).
pub const NATIVE_DEPTH_PER_RUN: usize = 3;

/// Which merge the session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeEngine {
    Native,
    /// The BPF program when it can be loaded (else native, with the reason in the summary);
    /// the selection is chosen by run count unless forced.
    Bpf(Option<Selection>),
}

#[derive(Clone, Debug)]
pub struct CompactionSpec {
    pub runs: Vec<SortedRun>,
    pub bounds: Bounds,
    pub direct: bool,
    pub memory_budget: usize,
    pub backend: Backend,
    pub merge: MergeEngine,
    /// The DB's read rate limit (`rate_limiter` limiting reads); None reads unthrottled.
    pub throttle: Option<ReadThrottle>,
    /// RocksDB's accounting of file reads (statistics, listeners); None accounts nothing.
    pub accounting: Option<ReadAccounting>,
    /// Bytes of reads in flight at once (`ReaderConfig::max_inflight_bytes`; 0: unbounded).
    pub max_inflight_bytes: usize,
    /// `ReaderConfig::io_priority`.
    pub io_priority: u16,
    /// TEST HOOK: injected read faults (`ReaderConfig::fault`); None in production.
    pub read_faults: Option<FaultSpec>,
    /// Bytes of minimum timestamp (zeros) appended to every user key handed over: files written
    /// with `persist_user_defined_timestamps` = false store keys without it, and RocksDB's
    /// readers add it back. 0 otherwise.
    pub pad_min_timestamp: usize,
}

pub use crate::contract::BatchEntry;

/// Entries of one native batch: `data` holds each entry's internal key, then its value when the
/// value is copied; a pinned value is referenced where it lies in an input chunk.
#[derive(Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub entries: Vec<BatchEntry>,
    /// Keys and values, pinned or not: what bounds a batch (and so how many chunks it spans).
    bytes: usize,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
        self.bytes = 0;
        // A batch stops once it holds BATCH_BYTES, so it only outgrows BATCH_DATA_KEEP when it
        // copied a value larger than a regular chunk (one in a compressed block, or in a chunk
        // its run could not pin). Batches are reused for the whole merge (and merge-ahead keeps
        // five), so give that memory back instead of keeping it for a value that may not recur.
        if self.data.capacity() > BATCH_DATA_KEEP {
            self.data.shrink_to(BATCH_DATA_KEEP);
        }
    }
    /// Appends an entry, with `pad` zero bytes (a minimum timestamp) between the internal key's
    /// user key and its trailer. A copied value goes into `data` (its `value_addr` holds its
    /// offset there until `seal`); a pinned one stays where it is, in an input chunk the run
    /// holds until this batch and the next are no longer readable.
    fn push(&mut self, key: &[u8], value: &[u8], pinned: bool, pad: usize) -> Result<()> {
        let too_big = || Error::not_supported("entry larger than 4 GiB");
        let key_offset = u32::try_from(self.data.len()).map_err(|_| too_big())?;
        let key_len = u32::try_from(key.len() + pad).map_err(|_| too_big())?;
        if pad == 0 {
            self.data.extend_from_slice(key);
        } else {
            // The cursor only hands over keys split_internal_key accepted (>= 8 bytes).
            let (user, trailer) = key.split_at(key.len().saturating_sub(INTERNAL_KEY_TRAILER_LEN));
            self.data.extend_from_slice(user);
            self.data.resize(self.data.len() + pad, 0);
            self.data.extend_from_slice(trailer);
        }
        let value_addr = if pinned {
            value.as_ptr() as u64
        } else {
            let offset = self.data.len() as u64;
            self.data.extend_from_slice(value);
            offset
        };
        u32::try_from(self.data.len()).map_err(|_| too_big())?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_big())?;
        self.bytes += key.len() + value.len();
        self.entries.push(BatchEntry {
            key_offset,
            key_len,
            value_len,
            pinned: u32::from(pinned),
            value_addr,
        });
        Ok(())
    }
    /// Entry `i` as (internal key, value).
    ///
    /// # Safety
    /// A pinned value's bytes must still be held by the session that made this batch: true
    /// while the batch is one of the consumer's two readable ones (see merge/held.rs).
    pub unsafe fn entry(&self, i: usize) -> (&[u8], &[u8]) {
        // SAFETY: the caller's promise, passed on.
        unsafe { entry_slices(&self.data, &self.entries[i]) }
    }

    /// Turns the copied values' offsets into addresses, once `data` stops growing.
    fn seal(&mut self) {
        let base = self.data.as_ptr() as u64;
        for e in &mut self.entries {
            if e.pinned == 0 {
                e.value_addr += base;
            }
        }
    }
}

/// A batch entry's (internal key, value): the key in `data`, the value at its address.
///
/// # Safety
/// `e.value_addr` must point at `e.value_len` bytes that stay allocated and unchanged for `'a`:
/// in `data` (a copied value, after `seal`) or in an input chunk the making session still holds
/// (a pinned value, see merge/held.rs).
unsafe fn entry_slices<'a>(data: &'a [u8], e: &BatchEntry) -> (&'a [u8], &'a [u8]) {
    let key = &data[e.key_offset as usize..][..e.key_len as usize];
    if e.value_len == 0 {
        return (key, &[]);
    }
    // SAFETY: the caller's promise.
    let value =
        unsafe { std::slice::from_raw_parts(e.value_addr as *const u8, e.value_len as usize) };
    (key, value)
}

/// What the LOG line and the `compaction_finished` event report.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub backend: &'static str,
    pub fallback_reason: Option<String>,
    pub runs: usize,
    pub files: usize,
    pub blocks: usize,
    /// Of `blocks`, those that were compressed (decoded in the run cursors).
    pub compressed_blocks: usize,
    pub entries: u64,
    pub reader: ReaderStats,
    pub wait: Duration,
    pub merge: Duration,
    /// "native", "bpf-linear" or "bpf-heap".
    pub merge_engine: &'static str,
    /// Why the BPF merge was asked for but not used.
    pub bpf_unavailable: Option<String>,
    /// Why the BPF merge, available, was not used for this merge (a block larger than its read
    /// size): a property of these inputs, not of the system.
    pub bpf_declined: Option<String>,
    /// BPF program runs (test_run calls); 0 for the native merge.
    pub bpf_calls: u64,
    /// The session ran on the compaction thread's companion (merge-ahead, ahead.rs).
    pub ahead: bool,
    /// Time the compaction thread waited for a batch made ahead.
    pub ahead_wait: Duration,
    /// CPU time of the companion thread for this merge.
    pub ahead_cpu: Duration,
    /// The compaction thread's scheduling attributes the companion could not take on.
    pub ahead_attrs_unapplied: Option<String>,
}

/// The native merge with its double-buffered batches.
struct NativeBatcher {
    merger: RunMerger,
    batches: [Batch; 2],
    current: usize,
    done: bool,
    entries: u64,
    /// Batches begun so far; the runs' held chunks are given back by it.
    generation: u64,
    /// `CompactionSpec::pad_min_timestamp`.
    pad_min_timestamp: usize,
}

impl NativeBatcher {
    /// Starts the next batch; `consumer`: the batch a consumer on another thread asked for last
    /// (merge-ahead), None in line (see merge/held.rs).
    fn begin(&mut self, reader: &mut Reader, consumer: Option<u64>) {
        self.generation += 1;
        let release_point = release_point(self.generation, consumer);
        self.merger
            .begin_batch(reader, self.generation, release_point);
    }

    fn next_batch(&mut self, map: &SstMap, reader: &mut Reader, bounds: &Bounds) -> Result<bool> {
        self.begin(reader, None);
        self.current ^= 1;
        let mut batch = std::mem::take(&mut self.batches[self.current]);
        let filled = self.fill(&mut batch, map, reader, bounds);
        self.batches[self.current] = batch;
        filled
    }

    /// Merges about [`BATCH_BYTES`] of entries into `batch` (cleared first).
    fn fill(
        &mut self,
        batch: &mut Batch,
        map: &SstMap,
        reader: &mut Reader,
        bounds: &Bounds,
    ) -> Result<bool> {
        batch.clear();
        while !self.done && batch.bytes < BATCH_BYTES {
            let Some(c) = self.merger.current() else {
                self.done = true;
                break;
            };
            batch.push(
                c.key(),
                c.value(),
                c.value_pinnable(),
                self.pad_min_timestamp,
            )?;
            self.entries += 1;
            self.merger.next(map, reader, bounds)?;
        }
        batch.seal();
        Ok(!batch.is_empty())
    }
}

/// What fills the batches: the native merge, or the BPF program.
enum Batcher {
    Native(NativeBatcher),
    Bpf(BpfBatcher),
}

/// What either merge has done so far.
struct Counts {
    blocks: usize,
    compressed_blocks: usize,
    entries: u64,
}

impl Batcher {
    fn counts(&self) -> Counts {
        match self {
            Batcher::Native(n) => {
                let (blocks, compressed_blocks) =
                    n.merger.cursors().iter().fold((0, 0), |(b, c), cur| {
                        (
                            b + cur.blocks_decoded as usize,
                            c + cur.blocks_decompressed as usize,
                        )
                    });
                Counts {
                    blocks,
                    compressed_blocks,
                    entries: n.entries,
                }
            }
            Batcher::Bpf(b) => Counts {
                blocks: b.blocks as usize,
                compressed_blocks: b.compressed_blocks as usize,
                entries: b.entries(),
            },
        }
    }
}

pub struct CompactionSession {
    // Field order is drop order: the batcher's chunks go back before the reader closes.
    batcher: Batcher,
    reader: Reader,
    map: SstMap,
    bounds: Bounds,
    bytes_read_reported: u64,
    busy: Duration,
    bpf_unavailable: Option<String>,
    bpf_declined: Option<String>,
}

impl CompactionSession {
    /// Plans the reads, starts them, and positions every run on its first entry. Everything that
    /// can make the accelerated path refuse a compaction happens here, before any output exists.
    pub fn open(spec: CompactionSpec) -> Result<CompactionSession> {
        let t0 = Instant::now();
        let nruns = spec.runs.len().max(1);
        // The read size: the largest chunk whose buffers, `depth` per run, fit the budget.
        let read_size = |depth: usize| {
            Reader::max_chunk_len(spec.memory_budget, nruns, depth, spec.direct).min(MAX_CHUNK)
        };
        // The BPF merge needs its program loaded (once per process); without it, merge natively
        // and say why. It also takes blocks only in pooled reader buffers: a block larger than
        // the read size would need an arena buffer of its own, and arena memory is never given
        // back to the kernel (reader/arena.rs), so a one-off multi-MiB value would stay resident
        // for the life of the process. Such a compaction merges natively, saying so.
        // That is reported apart from the program being unavailable (`bpf_declined`, not
        // `bpf_unavailable`): it says nothing about the system, and the suites fail a bpf run
        // on the latter.
        let (bpf_engine, bpf_unavailable, bpf_declined) = match spec.merge {
            MergeEngine::Native => (None, None, None),
            // Keys read with an ingested file's global seqno in place of their own.
            MergeEngine::Bpf(_)
                if spec
                    .runs
                    .iter()
                    .flat_map(|r| &r.files)
                    .any(|f| f.global_seqno != 0) =>
            {
                (
                    None,
                    None,
                    Some(
                        "the BPF merge reads keys as stored, without an ingested file's global \
                         seqno"
                            .to_owned(),
                    ),
                )
            }
            // Keys to hand over with a minimum timestamp appended (not persisted timestamps).
            MergeEngine::Bpf(_) if spec.pad_min_timestamp > 0 => (
                None,
                None,
                Some(
                    "the BPF merge hands keys over as stored, without the minimum timestamp \
                     RocksDB's readers append to them"
                        .to_owned(),
                ),
            ),
            // The program compares user keys bytewise only.
            MergeEngine::Bpf(_) if spec.bounds.order != UserKeyOrder::Bytewise => (
                None,
                None,
                Some(format!(
                    "the BPF merge orders user keys bytewise, not as {:?}",
                    spec.bounds.order
                )),
            ),
            MergeEngine::Bpf(sel) => match bpf::engine() {
                Ok(e) => {
                    let largest = largest_block_span(&spec.runs);
                    let read = read_size(DEPTH_PER_RUN);
                    if largest > read as u64 {
                        let why = format!(
                            "a data block of {largest} bytes is larger than the read size of \
                             {read} bytes; the BPF merge reads blocks into pooled arena buffers \
                             only, so blocks larger than the read size are merged natively"
                        );
                        (None, None, Some(why))
                    } else {
                        (Some((e, sel)), None, None)
                    }
                }
                Err(why) => (None, Some(why.to_owned()), None),
            },
        };
        let depth = if bpf_engine.is_some() {
            DEPTH_PER_RUN
        } else {
            NATIVE_DEPTH_PER_RUN
        };
        let chunk = read_size(depth);
        if chunk == 0 {
            // Every block would be oversized, each in a buffer of its own: the budget would
            // bound nothing. (Before oversized blocks were read, the first block refused it.)
            return Err(Error::not_supported(format!(
                "{nruns} sorted runs read {depth} deep leave no room for a 4 KiB read per buffer \
                 in the memory budget of {} bytes",
                spec.memory_budget
            )));
        }
        // A block larger than `chunk` is a chunk of its own, which the reader reads into a
        // buffer of its own (reader/mod.rs, "Oversized plans").
        let map = SstMap::build(spec.runs, chunk)?;
        let cfg = ReaderConfig {
            memory_budget: spec.memory_budget,
            depth_per_stream: depth,
            backend: spec.backend,
            // The program reads the blocks where the reads land: in its arena.
            memory: bpf_engine.map_or(Memory::Heap, |(e, _)| Memory::Arena(e.arena())),
            throttle: spec.throttle,
            accounting: spec.accounting,
            max_inflight_bytes: spec.max_inflight_bytes,
            io_priority: spec.io_priority,
            fault: spec.read_faults,
            oversized_above: chunk,
        };
        let mut reader = Reader::new(map.file_specs(spec.direct), map.chunk_plans(), cfg)?;
        let batcher = match bpf_engine {
            Some((e, sel)) => {
                let sel = sel.unwrap_or(if map.runs.len() <= LINEAR_MAX {
                    Selection::Linear
                } else {
                    Selection::Heap
                });
                Batcher::Bpf(BpfBatcher::new(e, sel, &map, &mut reader, &spec.bounds)?)
            }
            None => Batcher::Native(NativeBatcher {
                merger: RunMerger::new(&map, &mut reader, &spec.bounds)?,
                batches: [Batch::default(), Batch::default()],
                current: 0,
                done: false,
                entries: 0,
                generation: 0,
                pad_min_timestamp: spec.pad_min_timestamp,
            }),
        };
        Ok(CompactionSession {
            batcher,
            reader,
            map,
            bounds: spec.bounds,
            bytes_read_reported: 0,
            busy: t0.elapsed(),
            bpf_unavailable,
            bpf_declined,
        })
    }

    /// Fills the next batch; false once the merged stream is exhausted. The previous batch stays
    /// readable until the call after this one.
    pub fn next_batch(&mut self) -> Result<bool> {
        let t0 = Instant::now();
        let more = match &mut self.batcher {
            Batcher::Native(n) => n.next_batch(&self.map, &mut self.reader, &self.bounds),
            Batcher::Bpf(b) => b.next_batch(&self.map, &mut self.reader, None),
        };
        self.busy += t0.elapsed();
        more
    }

    /// Fills `out` with the next batch for a consumer on another thread (merge-ahead), which
    /// asked for batch `consumer_asked` last: values stay pinned in input chunks until that
    /// consumer is two batches past them, however far ahead this session runs. A BPF batch's
    /// keys and copied values are copied out of the program's (double-buffered) output area;
    /// its pinned values stay where they are, in arena chunks held the same way. False (and
    /// `out` empty) once the stream is exhausted.
    pub fn next_batch_into(&mut self, out: &mut Batch, consumer_asked: u64) -> Result<bool> {
        let t0 = Instant::now();
        let more = match &mut self.batcher {
            Batcher::Native(n) => {
                n.begin(&mut self.reader, Some(consumer_asked));
                n.fill(out, &self.map, &mut self.reader, &self.bounds)
            }
            Batcher::Bpf(b) => b.next_batch(&self.map, &mut self.reader, Some(consumer_asked)),
        };
        self.busy += t0.elapsed();
        let more = more?;
        if let Batcher::Bpf(_) = self.batcher {
            out.clear();
            for i in 0..self.batch_entries().len() {
                let (key, value) = self.batch_entry(i);
                // No padding: the BPF merge is never used when keys need it (open).
                out.push(key, value, self.batch_entries()[i].pinned != 0, 0)?;
            }
            out.seal();
        }
        Ok(more)
    }

    /// The current batch's key bytes (and, for the native merge, its values).
    pub fn batch_data(&self) -> &[u8] {
        match &self.batcher {
            Batcher::Native(n) => &n.batches[n.current].data,
            Batcher::Bpf(b) => b.batch_data(),
        }
    }

    /// The current batch's entries (see [`BatchEntry`]).
    pub fn batch_entries(&self) -> &[BatchEntry] {
        match &self.batcher {
            Batcher::Native(n) => &n.batches[n.current].entries,
            Batcher::Bpf(b) => b.batch_entries(),
        }
    }

    /// Entry `i` of the current batch as (internal key, value).
    pub fn batch_entry(&self, i: usize) -> (&[u8], &[u8]) {
        // SAFETY: every entry's value address was written by this session's merge and points at
        // value_len bytes that stay allocated and unchanged while the batch is current: in the
        // batch's own data (copied values) or in an input chunk a run holds (pinned values,
        // merge/held.rs). `&self` keeps next_batch from running meanwhile.
        unsafe { entry_slices(self.batch_data(), &self.batch_entries()[i]) }
    }

    /// Bytes read since the last call, for RocksDB's per-thread IOSTATS (`bytes_read`), which
    /// feeds `rocksdb.compact.read.bytes` and the per-level read statistics.
    pub fn take_bytes_read(&mut self) -> u64 {
        let total = self.reader.stats().bytes_read;
        let delta = total - self.bytes_read_reported;
        self.bytes_read_reported = total;
        delta
    }

    pub fn summary(&self) -> Summary {
        let reader = self.reader.stats();
        let wait = Duration::from_nanos(reader.wait_ns);
        let throttle_wait = Duration::from_nanos(reader.throttle_wait_ns);
        let counts = self.batcher.counts();
        Summary {
            backend: self.reader.backend_name(),
            fallback_reason: self.reader.fallback_reason().map(str::to_owned),
            runs: self.map.runs.len(),
            files: self.map.files.len(),
            blocks: counts.blocks,
            compressed_blocks: counts.compressed_blocks,
            entries: counts.entries,
            reader,
            wait,
            // Neither waiting for reads nor for the read rate limit is merging.
            merge: self.busy.saturating_sub(wait).saturating_sub(throttle_wait),
            merge_engine: match &self.batcher {
                Batcher::Native(_) => "native",
                Batcher::Bpf(b) => match b.selection() {
                    Selection::Linear => "bpf-linear",
                    Selection::Heap => "bpf-heap",
                },
            },
            bpf_unavailable: self.bpf_unavailable.clone(),
            bpf_declined: self.bpf_declined.clone(),
            bpf_calls: match &self.batcher {
                Batcher::Native(_) => 0,
                Batcher::Bpf(b) => b.calls,
            },
            ..Summary::default()
        }
    }
}
