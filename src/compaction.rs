//! One (sub)compaction's merge session: the SST-Map, its reader and the merger, producing the
//! merged stream of every version in the inputs, in internal-key order, as batches the C++ side
//! walks through with an `InternalIterator`.
//!
//! Batches are double-buffered: the slices of batch N stay valid while the C++ side asks for batch
//! N+1, because RocksDB's `CompactionIterator` may still look at the previous entry right after it
//! advanced its input (the same contract a block iterator gives when it crosses a block).

use crate::error::{Error, Result};
use crate::merge::cursor::Bounds;
use crate::merge::Merger;
use crate::reader::{Backend, Reader, ReaderConfig, ReaderStats};
use crate::sst_map::{SortedRun, SstMap};
use std::time::{Duration, Instant};

/// A batch's target size: about 1 MiB of keys and values, so each FFI round trip carries many
/// entries while staying small next to the read buffers.
pub const BATCH_BYTES: usize = 1 << 20;
/// Reads larger than this gain nothing on these disks and only take memory from other runs.
pub const MAX_CHUNK: usize = 4 << 20;
/// Default bound on read buffers per compaction.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 << 20;
/// Reads in flight per sorted run: one being merged, one or more landing.
pub const DEPTH_PER_RUN: usize = 2;

#[derive(Clone, Debug)]
pub struct CompactionSpec {
    pub runs: Vec<SortedRun>,
    pub bounds: Bounds,
    pub direct: bool,
    pub memory_budget: usize,
    pub backend: Backend,
}

/// Entries of one batch: `data` holds each entry's internal key then its value; `index` holds
/// four u32 per entry: key offset, key length, value offset, value length.
#[derive(Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub index: Vec<u32>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.index.len() / 4
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    pub fn key(&self, i: usize) -> &[u8] {
        let e = &self.index[i * 4..i * 4 + 4];
        &self.data[e[0] as usize..(e[0] + e[1]) as usize]
    }
    pub fn value(&self, i: usize) -> &[u8] {
        let e = &self.index[i * 4..i * 4 + 4];
        &self.data[e[2] as usize..(e[2] + e[3]) as usize]
    }
    fn clear(&mut self) {
        self.data.clear();
        self.index.clear();
    }
    fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let too_big = || Error::not_supported("entry larger than 4 GiB");
        let key_off = u32::try_from(self.data.len()).map_err(|_| too_big())?;
        self.data.extend_from_slice(key);
        let value_off = u32::try_from(self.data.len()).map_err(|_| too_big())?;
        self.data.extend_from_slice(value);
        u32::try_from(self.data.len()).map_err(|_| too_big())?;
        self.index
            .extend_from_slice(&[key_off, key.len() as u32, value_off, value.len() as u32]);
        Ok(())
    }
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
}

pub struct MergeSession {
    map: SstMap,
    reader: Reader,
    merger: Merger,
    bounds: Bounds,
    batches: [Batch; 2],
    current: usize,
    done: bool,
    entries: u64,
    bytes_read_reported: u64,
    busy: Duration,
}

impl MergeSession {
    /// Plans the reads, starts them, and positions every run on its first entry. Everything that
    /// can make the accelerated path refuse a compaction happens here, before any output exists.
    pub fn open(spec: CompactionSpec) -> Result<MergeSession> {
        let t0 = Instant::now();
        let nruns = spec.runs.len().max(1);
        let chunk = Reader::max_chunk_len(spec.memory_budget, nruns, DEPTH_PER_RUN, spec.direct)
            .min(MAX_CHUNK);
        let map = SstMap::build(spec.runs, chunk)?;
        let cfg = ReaderConfig {
            memory_budget: spec.memory_budget,
            depth_per_stream: DEPTH_PER_RUN,
            backend: spec.backend,
            ..ReaderConfig::default()
        };
        let mut reader = Reader::new(map.file_specs(spec.direct), map.chunk_plans(), cfg)?;
        let merger = Merger::new(&map, &mut reader, &spec.bounds)?;
        Ok(MergeSession {
            map,
            reader,
            merger,
            bounds: spec.bounds,
            batches: [Batch::default(), Batch::default()],
            current: 0,
            done: false,
            entries: 0,
            bytes_read_reported: 0,
            busy: t0.elapsed(),
        })
    }

    /// Fills the next batch; false once the merged stream is exhausted. The previous batch stays
    /// readable until the call after this one.
    pub fn next_batch(&mut self) -> Result<bool> {
        let t0 = Instant::now();
        self.current ^= 1;
        let batch = &mut self.batches[self.current];
        batch.clear();
        while !self.done && batch.data.len() < BATCH_BYTES {
            let Some(c) = self.merger.current() else {
                self.done = true;
                break;
            };
            batch.push(c.key(), c.value())?;
            self.entries += 1;
            self.merger
                .next(&self.map, &mut self.reader, &self.bounds)?;
        }
        self.busy += t0.elapsed();
        Ok(!batch.is_empty())
    }

    pub fn batch(&self) -> &Batch {
        &self.batches[self.current]
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
        Summary {
            backend: self.reader.backend_name(),
            fallback_reason: self.reader.fallback_reason().map(str::to_owned),
            runs: self.map.runs.len(),
            files: self.map.files.len(),
            blocks: self
                .merger
                .cursors()
                .iter()
                .map(|c| c.blocks_decoded as usize)
                .sum(),
            compressed_blocks: self
                .merger
                .cursors()
                .iter()
                .map(|c| c.blocks_decompressed as usize)
                .sum(),
            entries: self.entries,
            reader,
            wait,
            merge: self.busy.saturating_sub(wait),
        }
    }
}
