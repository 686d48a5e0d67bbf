//! Chunks that readable batches may still point into, shared by both merges.
//!
//! A value pinned in an input chunk is handed to RocksDB where it lies, so a chunk its run is
//! done with cannot go back to the reader at once: the batch being made and the one before it
//! may point into it (the batch contract: the previous batch stays readable until the
//! next-but-one `next_batch`). It is held until batch `left + 2` begins, where `left` is the
//! batch during which the run left it.
//!
//! "Begins" is the consumer's view: in line the merge makes batch N when the consumer asks for
//! it; with merge-ahead the companion runs ahead, and a chunk goes back only once the consumer
//! has asked for batch `left + 2` ([`release_point`]).
//!
//! Held chunks keep their read buffers, which count against their run's read depth, so a run
//! pins a new chunk only if its held chunks, that chunk and one more read still fit
//! ([`HeldChunks::may_pin`]); otherwise the chunk's values are copied and the chunk goes back as
//! soon as the run leaves it. The reader can therefore always land the run's next chunk, and the
//! merge never waits for a consumer to release something.
//!
//! An oversized chunk (one block larger than the read size) is the exception: its buffer is its
//! own, not its slot's, so the native merge gives the slot back when it leaves the chunk
//! (`Reader::detach`) and holds only the bytes, which cost the run no read. Such a chunk is
//! therefore always pinned: a multi-MiB value is never copied into a batch for want of a read.
//! What it costs instead is memory beyond the read budget while a readable batch points into
//! it (reader/mod.rs, "Oversized plans").

use crate::reader::{Chunk, Reader};

/// The batch up to which held chunks may go back when batch `generation` begins: `generation`
/// in line, or the batch a consumer on another thread asked for last (`consumer`), which lags.
pub fn release_point(generation: u64, consumer: Option<u64>) -> u64 {
    consumer.map_or(generation, |asked| asked.min(generation))
}

struct Held<X> {
    run: usize,
    chunk: Chunk,
    /// Whatever else the pinned values live in and must outlive the chunk with it: the BPF
    /// merge's decompressed blocks; for the native merge, the decoded bytes of an oversized
    /// compressed block (merge/cursor.rs), empty otherwise.
    _with: X,
    /// Goes back when batch `release_at` begins.
    release_at: u64,
}

pub struct HeldChunks<X = ()> {
    held: Vec<Held<X>>,
}

impl<X> Default for HeldChunks<X> {
    fn default() -> Self {
        HeldChunks { held: Vec::new() }
    }
}

impl<X> HeldChunks<X> {
    /// Holds `run`'s `chunk`, which it left while batch `generation` was being made.
    pub fn hold(&mut self, run: usize, chunk: Chunk, with: X, generation: u64) {
        self.held.push(Held {
            run,
            chunk,
            _with: with,
            release_at: generation + 2,
        });
    }

    /// Gives back every chunk that only batches no longer readable point into, at the
    /// [`release_point`] of the batch that begins.
    pub fn release(&mut self, reader: &mut Reader, release_point: u64) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].release_at <= release_point {
                reader.recycle(self.held.swap_remove(i).chunk);
            } else {
                i += 1;
            }
        }
    }

    /// Chunks `run` holds that take one of its reads (an oversized chunk detached from its
    /// read slot, `Reader::detach`, takes none).
    pub fn held_by(&self, run: usize) -> usize {
        self.held
            .iter()
            .filter(|h| h.run == run && h.chunk.holds_a_read())
            .count()
    }

    /// Whether `run` may pin the chunk it is given: its held chunks, that chunk and one more
    /// read fit its read depth, or it is the run's last chunk (no read follows).
    pub fn may_pin(&self, run: usize, depth: usize, last: bool) -> bool {
        last || self.held_by(run) + 2 <= depth
    }
}
