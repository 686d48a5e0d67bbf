//! One compaction's BPF merge: the arena state the program works on, and the loop that runs the
//! program and serves what it asks for (next chunks, bigger buffers) until a batch is full.
//!
//! Division of work, per the design: Rust plans and reads (io_uring into arena buffers), verifies
//! every block's checksum as stock compaction does, and finds where each block's entries end;
//! the program decodes the entries (prefix-compressed keys), clips them to the subcompaction's
//! bounds, selects the smallest internal key and copies it to the output batch, which C++ reads
//! straight from the arena.
//!
//! Pinned values: copying every value into the batch was the program's largest cost (a JITed
//! BPF copy is several times slower than memcpy), so a value is emitted by address, pointing
//! into its input block, whenever Rust can keep that block still long enough. A batch must stay
//! readable while the next one is made (see compaction.rs), so a chunk that values were emitted
//! from is not recycled when its run moves on: it is held until the start of the next-but-one
//! batch. Held chunks keep their reader buffers, so a run may only pin a new chunk when its
//! held ones, the new one and one more read still fit its read depth; otherwise that chunk's
//! values are copied, as before. The reader can therefore always land the next chunk, and
//! memory stays within the reader's budget.

use super::abi;
use super::region::ArenaBox;
use super::{BpfEngine, Selection};
use crate::block::compression::{ctype, Decompressor};
use crate::block::data::parse_layout;
use crate::contract::BatchEntry;
use crate::error::{Error, Result};
use crate::merge::cursor::{decompress_block, verified_block, Bounds};
use crate::merge::held::{release_point, HeldChunks};
use crate::reader::arena::Arena;
use crate::reader::{Chunk, Reader};
use crate::sst_map::SstMap;

/// The output batch's target size (as the native path's).
const OUT_TARGET: usize = crate::merge::BATCH_BYTES;
/// Output capacity: the target plus room for the entry that crosses it.
const OUT_CAP: usize = OUT_TARGET + (256 << 10);
/// Entries per batch at most (a 24-byte `BatchEntry` each).
const INDEX_CAP: usize = 64 << 10;
/// First key buffer per run; grown when the program asks.
const KEY_CAP: usize = 4096;

struct RunSlot {
    chunk: Option<Chunk>,
    /// Chunks of this run received so far (the current one is `received - 1`).
    received: usize,
    blocks: ArenaBox,
    key: ArenaBox,
    /// The current chunk's compressed blocks, decompressed back to back: staged on the heap
    /// (the codecs write into a Vec), then copied where the program reads them.
    staged: Vec<u8>,
    scratch: Vec<u8>,
    decompressed: Option<ArenaBox>,
    decompressor: Decompressor,
}

struct OutBuf {
    data: ArenaBox,
    index: ArenaBox,
    len: usize,
    count: usize,
}

pub struct BpfBatcher {
    engine: &'static BpfEngine,
    selection: Selection,
    session: ArenaBox,
    _runs: ArenaBox,
    _heap: ArenaBox,
    _bounds: ArenaBox,
    slots: Vec<RunSlot>,
    out: [OutBuf; 2],
    current: usize,
    done: bool,
    /// Batches started so far (see "Pinned values").
    generation: u64,
    /// Chunks a readable batch may point into, each with its decompressed blocks (where its
    /// compressed blocks' values are), given back to the arena with it.
    held: HeldChunks<Option<ArenaBox>>,
    pub blocks: u64,
    pub compressed_blocks: u64,
    pub calls: u64,
}

impl BpfBatcher {
    /// Sets up the arena state for `map`'s runs and gives each run its first chunk.
    pub fn new(
        engine: &'static BpfEngine,
        selection: Selection,
        map: &SstMap,
        reader: &mut Reader,
        bounds: &Bounds,
    ) -> Result<BpfBatcher> {
        let arena = engine.arena();
        let nruns = map.runs.len();
        let session = ArenaBox::new(arena, std::mem::size_of::<abi::Session>())?;
        let runs = ArenaBox::new(arena, nruns.max(1) * std::mem::size_of::<abi::Run>())?;
        let heap = ArenaBox::new(arena, nruns.max(1) * 4)?;
        let start = bounds.start.as_deref().unwrap_or(&[]);
        let end = bounds.end.as_deref().unwrap_or(&[]);
        let mut bounds_box = ArenaBox::new(arena, start.len() + end.len())?;
        let (start_at, end_at) = bounds_box
            .slice_mut::<u8>(start.len() + end.len())
            .split_at_mut(start.len());
        start_at.copy_from_slice(start);
        end_at.copy_from_slice(end);
        let mut slots = Vec::with_capacity(nruns);
        for run in &map.runs {
            let most = run.iter().map(|c| c.num_blocks).max().unwrap_or(0);
            slots.push(RunSlot {
                chunk: None,
                received: 0,
                blocks: ArenaBox::new(arena, most.max(1) * std::mem::size_of::<abi::Block>())?,
                key: ArenaBox::new(arena, KEY_CAP)?,
                staged: Vec::new(),
                scratch: Vec::new(),
                decompressed: None,
                decompressor: Decompressor::new(),
            });
        }
        let out = [OutBuf::new(arena)?, OutBuf::new(arena)?];
        let mut m = BpfBatcher {
            engine,
            selection,
            session,
            _runs: runs,
            _heap: heap,
            _bounds: bounds_box,
            slots,
            out,
            current: 0,
            done: false,
            generation: 0,
            held: HeldChunks::default(),
            blocks: 0,
            compressed_blocks: 0,
            calls: 0,
        };
        let bounds_addr = m._bounds.addr();
        let (runs_addr, heap_addr) = (m._runs.addr(), m._heap.addr());
        *m.session_mut() = abi::Session {
            nruns: nruns as u32,
            runs: runs_addr,
            heap: heap_addr,
            start: bounds_addr,
            start_len: start.len() as u32,
            has_start: bounds.start.is_some() as u32,
            end: bounds_addr + start.len() as u64,
            end_len: end.len() as u32,
            has_end: bounds.end.is_some() as u32,
            out_target: OUT_TARGET as u32,
            index_cap: INDEX_CAP as u32,
            pending: abi::NO_RUN,
            ..abi::Session::default()
        };
        for i in 0..nruns {
            let key = m.slots[i].key.addr();
            let key_cap = m.slots[i].key.len() as u32;
            *m.run_mut(i) = abi::Run {
                key,
                key_cap,
                state: abi::RUN_LOAD,
                ..abi::Run::default()
            };
            m.load_chunk(i, map, reader)?;
        }
        Ok(m)
    }

    fn session_mut(&mut self) -> &mut abi::Session {
        self.session.get_mut()
    }

    fn run_mut(&mut self, i: usize) -> &mut abi::Run {
        // `_runs` holds one Run per run (slot).
        &mut self._runs.slice_mut::<abi::Run>(self.slots.len())[i]
    }

    /// Runs one step of the program on this session; its answer is in the session's `result`.
    /// The only place the program runs: `&mut self` guarantees no reference into this session's
    /// arena regions is alive meanwhile (see region.rs).
    fn run_program(&mut self) -> Result<()> {
        self.calls += 1;
        self.engine
            .run(self.selection, self.session.addr())
            .map_err(|e| Error::io(format!("running the BPF merge program: {e}")))
    }

    /// Hands run `i` its next chunk (verifying every block in it), or marks it done.
    fn load_chunk(&mut self, i: usize, map: &SstMap, reader: &mut Reader) -> Result<()> {
        let (pinned, emits) = {
            let r = self.run_mut(i);
            (r.zero_copy != 0, r.chunk_emits)
        };
        if let Some(old) = self.slots[i].chunk.take() {
            if pinned && emits > 0 {
                // The current batch, or the previous one, may point into it.
                let decompressed = self.slots[i].decompressed.take();
                self.held.hold(i, old, decompressed, self.generation);
            } else {
                reader.recycle(old);
            }
        }
        let Some(chunk) = reader.next_chunk(i)? else {
            let r = self.run_mut(i);
            r.nblocks = 0;
            r.state = abi::RUN_DONE;
            return Ok(());
        };
        let arena = self.engine.arena();
        let bytes = chunk.bytes();
        if !arena.contains(bytes.as_ptr(), bytes.len()) {
            return Err(Error::not_supported("read buffer outside the BPF arena"));
        }
        let slot = &mut self.slots[i];
        let planned = map.runs[i]
            .get(slot.received)
            .ok_or_else(|| Error::corruption("more chunks than planned"))?;
        slot.received += 1;
        let file = &map.files[planned.plan.file];
        let need = planned.num_blocks * std::mem::size_of::<abi::Block>();
        if need > slot.blocks.len() {
            slot.blocks = ArenaBox::new(self.engine.arena(), need)?;
        }
        // Where each block's payload is: in the chunk, or at an offset of `staged`.
        enum At {
            Chunk(u64),
            Staged(usize),
        }
        slot.staged.clear();
        let mut places = Vec::with_capacity(planned.num_blocks);
        for b in 0..planned.num_blocks {
            let (handle, payload, compression) = verified_block(map, planned, b, bytes)?
                .ok_or_else(|| Error::corruption("planned block missing"))?;
            let at_offset = |m: String| {
                Error::corruption(format!(
                    "{m} at offset {} in {}",
                    handle.offset,
                    file.path.display()
                ))
            };
            let (layout, at) = if compression == ctype::NONE {
                (
                    payload_layout(payload, &at_offset)?,
                    At::Chunk(payload.as_ptr() as u64),
                )
            } else {
                decompress_block(
                    &mut slot.decompressor,
                    map,
                    planned,
                    handle,
                    compression,
                    payload,
                    &mut slot.scratch,
                )?;
                self.compressed_blocks += 1;
                let layout = payload_layout(&slot.scratch, &at_offset)?;
                let at = At::Staged(slot.staged.len());
                slot.staged.extend_from_slice(&slot.scratch);
                (layout, at)
            };
            places.push((at, layout));
        }
        let mut staged_base = 0u64;
        if !slot.staged.is_empty() {
            if slot
                .decompressed
                .as_ref()
                .is_none_or(|d| d.len() < slot.staged.len())
            {
                slot.decompressed = Some(ArenaBox::new(self.engine.arena(), slot.staged.len())?);
            }
            let dst = slot.decompressed.as_mut().expect("allocated above");
            // Nothing of the previous chunk is read again (its run needed a new chunk), so its
            // decompressed blocks may be overwritten.
            dst.slice_mut::<u8>(slot.staged.len())
                .copy_from_slice(&slot.staged);
            staged_base = dst.addr();
        }
        // The table holds at least num_blocks Blocks (grown above).
        let table = slot.blocks.slice_mut::<abi::Block>(planned.num_blocks);
        for (entry, (at, data_end)) in table.iter_mut().zip(places) {
            let addr = match at {
                At::Chunk(a) => a,
                At::Staged(off) => staged_base + off as u64,
            };
            *entry = abi::Block {
                addr,
                data_end: data_end as u32,
                pad: 0,
            };
        }
        self.blocks += planned.num_blocks as u64;
        let nblocks = planned.num_blocks as u32;
        let blocks_addr = slot.blocks.addr();
        let last = slot.received == map.runs[i].len();
        slot.chunk = Some(chunk);
        // Pin this chunk's values only if holding it later still leaves the run a buffer for
        // its next read (or it has no next read).
        let zero_copy = self.held.may_pin(i, reader.depth_of(i), last);
        let r = self.run_mut(i);
        r.blocks = blocks_addr;
        r.nblocks = nblocks;
        r.state = abi::RUN_LOAD;
        r.zero_copy = zero_copy as u32;
        r.chunk_emits = 0;
        Ok(())
    }

    /// Grows run `i`'s key buffer to hold `need` bytes, keeping the current key (the next
    /// entry's shared prefix comes from it).
    fn grow_key(&mut self, i: usize, need: usize) -> Result<()> {
        let arena = self.engine.arena();
        let mut bigger = ArenaBox::new(arena, need.max(2 * self.slots[i].key.len()))?;
        let (key_len, key_cap) = {
            let r = self.run_mut(i);
            (r.key_len as usize, r.key_cap as usize)
        };
        // key_len <= key_cap <= the old buffer's length, and the new one is larger.
        let kept = key_len.min(key_cap);
        bigger
            .slice_mut::<u8>(kept)
            .copy_from_slice(self.slots[i].key.slice::<u8>(kept));
        let (addr, cap) = (bigger.addr(), bigger.len() as u32);
        self.slots[i].key = bigger;
        let r = self.run_mut(i);
        r.key = addr;
        r.key_cap = cap;
        Ok(())
    }

    fn corrupt(&mut self, map: &SstMap) -> Error {
        let (i, detail) = {
            let s = self.session_mut();
            (s.run as usize, s.detail)
        };
        let block_idx = self.run_mut(i).block_idx as usize;
        let slot = &self.slots[i];
        let place = map.runs[i]
            .get(slot.received.wrapping_sub(1))
            .and_then(|planned| {
                let (h, _) = planned.block(map, block_idx)?;
                Some(format!(
                    "block at offset {} in {}",
                    h.offset,
                    map.files[planned.plan.file].path.display()
                ))
            })
            .unwrap_or_else(|| "a block".to_owned());
        Error::corruption(format!(
            "bad entry in {place}: {}",
            abi::corrupt_detail(detail)
        ))
    }

    /// Fills the next batch; false once the stream is exhausted. The previous batch stays
    /// readable until the call after this one. `consumer_asked`: the batch a consumer on another
    /// thread asked for last (merge-ahead), which holds chunks back until it is two batches past
    /// them (see merge/held.rs); None in line.
    pub fn next_batch(
        &mut self,
        map: &SstMap,
        reader: &mut Reader,
        consumer_asked: Option<u64>,
    ) -> Result<bool> {
        self.generation += 1;
        self.held
            .release(reader, release_point(self.generation, consumer_asked));
        self.current ^= 1;
        let cur = self.current;
        self.out[cur].len = 0;
        self.out[cur].count = 0;
        if self.done {
            return Ok(false);
        }
        let (data, cap, index) = (
            self.out[cur].data.addr(),
            self.out[cur].data.len() as u32,
            self.out[cur].index.addr(),
        );
        {
            let s = self.session_mut();
            s.out_data = data;
            s.out_cap = cap;
            s.out_index = index;
            s.out_len = 0;
            s.index_len = 0;
            s.batch_bytes = 0;
        }
        loop {
            self.run_program()?;
            let (result, run, need) = {
                let s = self.session_mut();
                (s.result, s.run as usize, s.need as usize)
            };
            match result {
                abi::BATCH_FULL | abi::INDEX_FULL => break,
                abi::EOF => {
                    self.done = true;
                    break;
                }
                abi::NEED_CHUNK => self.load_chunk(run, map, reader)?,
                abi::NEED_KEY => self.grow_key(run, need)?,
                abi::NEED_OUT => {
                    let bigger = ArenaBox::new(self.engine.arena(), need)?;
                    let (addr, cap) = (bigger.addr(), bigger.len() as u32);
                    self.out[cur].data = bigger;
                    let s = self.session_mut();
                    s.out_data = addr;
                    s.out_cap = cap;
                }
                abi::AGAIN => {}
                abi::CORRUPT => return Err(self.corrupt(map)),
                other => {
                    return Err(Error::corruption(format!(
                        "BPF merge program returned unknown code {other}"
                    )))
                }
            }
        }
        let (len, count) = {
            let s = self.session_mut();
            (s.out_len as usize, s.index_len as usize)
        };
        self.out[cur].len = len;
        self.out[cur].count = count;
        Ok(count > 0)
    }

    /// The current batch's keys and copied values.
    pub fn batch_data(&self) -> &[u8] {
        // The program wrote `len` bytes (len <= out_cap, the buffer's length); the buffer is not
        // written again until the next-but-one next_batch.
        let o = &self.out[self.current];
        o.data.slice::<u8>(o.len)
    }

    /// The current batch's entries.
    pub fn batch_entries(&self) -> &[BatchEntry] {
        // As batch_data: the program wrote `count` rm_out_entry structs (count <= INDEX_CAP, which
        // the index buffer holds); BatchEntry has that layout (asserted in abi.rs).
        let o = &self.out[self.current];
        o.index.slice::<BatchEntry>(o.count)
    }

    pub fn selection(&self) -> Selection {
        self.selection
    }

    pub fn entries(&self) -> u64 {
        self.session.get::<abi::Session>().emitted
    }
}

impl OutBuf {
    fn new(arena: &'static Arena) -> Result<OutBuf> {
        Ok(OutBuf {
            data: ArenaBox::new(arena, OUT_CAP)?,
            index: ArenaBox::new(arena, INDEX_CAP * std::mem::size_of::<BatchEntry>())?,
            len: 0,
            count: 0,
        })
    }
}

/// Where a block's entries end (0 for an empty block, which has no restart points).
fn payload_layout(payload: &[u8], at_offset: &dyn Fn(String) -> Error) -> Result<usize> {
    let layout = parse_layout(payload).map_err(|e| match e {
        Error::Corruption(m) => at_offset(m),
        other => other,
    })?;
    Ok(if layout.num_restarts == 0 {
        0
    } else {
        layout.data_end
    })
}
