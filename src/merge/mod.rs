//! The native merge of sorted runs into one stream in RocksDB's internal-key order: user key
//! bytewise ascending, then the packed (sequence << 8 | type) trailer descending. That is the
//! order of `BytewiseComparator` wrapped in `InternalKeyComparator`, which is the only comparator
//! ringmerge accepts.
//!
//! Selection is a linear scan over the cursors for few runs and a binary heap for many; the
//! crossover measured on this project's 2-core test machines (Linux 6.x) is between 4 and 8
//! inputs, so the heap takes over above [`LINEAR_MAX`].

pub mod bpf;
pub mod cursor;
pub mod held;

use crate::block::key::UserKeyOrder;
use crate::error::Result;
use crate::reader::Reader;
use crate::sst_map::SstMap;
use cursor::{Bounds, RunCursor};
use std::cmp::Ordering;

/// The largest number of runs merged by linear selection.
pub const LINEAR_MAX: usize = 6;

/// Orders two cursors' current entries (user keys in `order`, then the packed trailer
/// descending); ties (the same internal key in two runs, which RocksDB never writes) go to the
/// lower run index so the output is deterministic.
#[inline]
fn cursor_cmp(order: UserKeyOrder, a: &RunCursor, ai: usize, b: &RunCursor, bi: usize) -> Ordering {
    order
        .cmp(a.user_key(), b.user_key())
        .then_with(|| b.packed().cmp(&a.packed()))
        .then_with(|| ai.cmp(&bi))
}

/// A batch's target size: about 1 MiB of keys and values, so each FFI round trip carries many
/// entries while staying small next to the read buffers. Both merges fill batches to it.
pub const BATCH_BYTES: usize = 1 << 20;

pub struct RunMerger {
    cursors: Vec<RunCursor>,
    /// Min-heap of cursor indices (heap mode only).
    heap: Vec<usize>,
    linear: bool,
    /// The cursor holding the current smallest entry.
    current: Option<usize>,
    order: UserKeyOrder,
}

impl RunMerger {
    /// Positions every run on its first entry in bounds.
    pub fn new(map: &SstMap, reader: &mut Reader, bounds: &Bounds) -> Result<RunMerger> {
        let mut cursors = Vec::with_capacity(map.runs.len());
        for run in 0..map.runs.len() {
            let mut c = RunCursor::new(run);
            c.seek_to_first(map, reader, bounds)?;
            cursors.push(c);
        }
        let linear = cursors.len() <= LINEAR_MAX;
        let mut m = RunMerger {
            cursors,
            heap: Vec::new(),
            linear,
            current: None,
            order: bounds.order,
        };
        if !linear {
            m.heap = (0..m.cursors.len())
                .filter(|&i| m.cursors[i].valid())
                .collect();
            for i in (0..m.heap.len() / 2).rev() {
                m.sift_down(i);
            }
        }
        m.select();
        Ok(m)
    }

    /// The cursor holding the smallest entry, or None when every run is done.
    pub fn current(&self) -> Option<&RunCursor> {
        self.current.map(|i| &self.cursors[i])
    }

    /// Advances past the current entry.
    pub fn next(&mut self, map: &SstMap, reader: &mut Reader, bounds: &Bounds) -> Result<()> {
        let Some(i) = self.current else {
            return Ok(());
        };
        self.cursors[i].next(map, reader, bounds)?;
        if !self.linear {
            // The top of the heap is `i`: restore the heap after its key grew (or it ended).
            if !self.cursors[i].valid() {
                let last = self.heap.pop().expect("current cursor is in the heap");
                if !self.heap.is_empty() {
                    self.heap[0] = last;
                }
            }
            if !self.heap.is_empty() {
                self.sift_down(0);
            }
        }
        self.select();
        Ok(())
    }

    pub fn cursors(&self) -> &[RunCursor] {
        &self.cursors
    }

    /// Starts batch `generation`: every run gives back the chunks no readable batch points into
    /// (`release_point`, see held.rs).
    pub fn begin_batch(&mut self, reader: &mut Reader, generation: u64, release_point: u64) {
        for c in &mut self.cursors {
            c.begin_batch(reader, generation, release_point);
        }
    }

    fn select(&mut self) {
        self.current = if self.linear {
            let mut best: Option<usize> = None;
            for i in 0..self.cursors.len() {
                if !self.cursors[i].valid() {
                    continue;
                }
                best = match best {
                    Some(b)
                        if cursor_cmp(self.order, &self.cursors[b], b, &self.cursors[i], i)
                            .is_le() =>
                    {
                        Some(b)
                    }
                    _ => Some(i),
                };
            }
            best
        } else {
            self.heap.first().copied()
        };
    }

    fn less(&self, a: usize, b: usize) -> bool {
        cursor_cmp(self.order, &self.cursors[a], a, &self.cursors[b], b).is_lt()
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * pos + 1;
            if l >= n {
                return;
            }
            let r = l + 1;
            let mut child = l;
            if r < n && self.less(self.heap[r], self.heap[l]) {
                child = r;
            }
            if self.less(self.heap[child], self.heap[pos]) {
                self.heap.swap(child, pos);
                pos = child;
            } else {
                return;
            }
        }
    }
}
