//! A cursor over one sorted run: it pulls the run's chunks from the reader, verifies each block's
//! trailer checksum (as stock compaction does, `verify_checksums = true`), decodes the entries and
//! clips them to the subcompaction's `[start, end)` user-key range like RocksDB's
//! `ClippingIterator` (start inclusive, end exclusive, all versions of a user key together).
//!
//! Compressed blocks are verified on their raw (compressed) bytes, as RocksDB verifies them, then
//! decoded into the cursor's scratch buffer, which is reused from block to block: once it has
//! grown to the run's largest block, decompression allocates nothing.
//!
//! Pinned values: the native merge hands RocksDB the values of uncompressed blocks where they lie
//! in the chunk (no copy), so a chunk the run is done with is held until no readable batch points
//! into it (`begin_batch`; the rule and why it cannot starve the reader are in held.rs).
//!
//! Oversized chunks (one block larger than the read size, see sst_map.rs) are always pinned:
//! leaving one gives its read slot back (`Reader::detach`, the buffer is the chunk's own), so
//! holding it costs the run no read. The values of such a block are pinned even when it was
//! compressed: its decoded bytes are the scratch buffer, which goes with the chunk into the held
//! chunks when the run leaves it (the next compressed block of the run decodes into a fresh
//! one). So a multi-MiB value in an oversized block is handed over where it lies, never copied
//! into a batch. A large value decoded from a regular chunk (a compressed block far smaller than
//! its value) is copied, as every value of a compressed regular block is.

use crate::block::checksum::verify_block;
use crate::block::compression::{ctype, Decompressor};
use crate::block::data::DataBlockCursor;
use crate::block::key::{pack, split_internal_key, type_of, UserKeyOrder};
use crate::block::BlockHandle;
use crate::error::{Error, Result};
use crate::merge::held::HeldChunks;
use crate::reader::{Chunk, Reader};
use crate::sst_map::{PlannedChunk, SstMap};

/// Block `b` of a planned chunk whose bytes are `bytes`, with its trailer checksum verified (as
/// stock compaction does, `verify_checksums = true`): its handle, payload (still compressed if
/// it was written so) and compression type; None past the chunk's last block. Shared by the
/// native cursor and the BPF session, so both find the same damage with the same message.
pub(crate) fn verified_block<'a>(
    map: &SstMap,
    planned: &PlannedChunk,
    b: usize,
    bytes: &'a [u8],
) -> Result<Option<(BlockHandle, &'a [u8], u8)>> {
    let Some((handle, offset_in_chunk)) = planned.block(map, b) else {
        return Ok(None);
    };
    let file = &map.files[planned.plan.file];
    let span = handle.size as usize + crate::block::BLOCK_TRAILER_SIZE;
    let raw = bytes
        .get(offset_in_chunk..offset_in_chunk + span)
        .ok_or_else(|| Error::corruption("block outside its chunk"))?;
    let (payload, compression) = verify_block(
        raw,
        file.checksum_type,
        file.base_context_checksum,
        handle.offset,
    )
    .map_err(|e| match e {
        Error::Corruption(m) => Error::corruption(format!("{m} in {}", file.path.display())),
        other => other,
    })?;
    Ok(Some((handle, payload, compression)))
}

/// Decompresses a verified block's payload (compression type `compression`, not none) into
/// `out`, with the file's dictionary; errors name the block's offset and file.
pub(crate) fn decompress_block(
    decompressor: &mut Decompressor,
    map: &SstMap,
    planned: &PlannedChunk,
    handle: BlockHandle,
    compression: u8,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let file = &map.files[planned.plan.file];
    let at_offset = |m: String| {
        Error::corruption(format!(
            "{m} at offset {} in {}",
            handle.offset,
            file.path.display()
        ))
    };
    if !file.blocks_maybe_compressed {
        // RocksDB reads the blocks of a file whose `compression_name` is NoCompression without
        // decompressing them; a compressed block there means the metadata lies.
        return Err(at_offset(format!(
            "unexpected compressed block (type {compression})"
        )));
    }
    decompressor
        .decompress(
            compression,
            payload,
            &file.compression_dict,
            planned.plan.file as u64,
            out,
        )
        .map_err(|e| match e {
            Error::Corruption(m) => at_offset(m),
            other => other,
        })
}

/// Subcompaction bounds on user keys, start inclusive and end exclusive, and the user-key order
/// the runs are merged in. With timestamps the bounds carry none: every version of a key is
/// inside or outside alike, as RocksDB clips (see [`UserKeyOrder::without_ts`]).
#[derive(Clone, Debug, Default)]
pub struct Bounds {
    pub start: Option<Vec<u8>>,
    pub end: Option<Vec<u8>>,
    pub order: UserKeyOrder,
}

pub struct RunCursor {
    run: usize,
    /// Index of the chunk held in `chunk` within the run's plan.
    chunk_index: usize,
    chunk: Option<Chunk>,
    /// Next block to open within the current chunk.
    next_block: usize,
    /// Byte range of the current block's payload within the chunk (when it was not compressed).
    payload: (usize, usize),
    /// The current block was compressed: its decoded payload is `scratch`, not the chunk's bytes.
    decompressed: bool,
    scratch: Vec<u8>,
    decompressor: Decompressor,
    block: DataBlockCursor,
    /// The current entry's trailer (seq << 8 | type), cached for comparisons.
    packed: u64,
    valid: bool,
    pub blocks_decoded: u64,
    /// Of `blocks_decoded`, those that were compressed.
    pub blocks_decompressed: u64,
    /// Values of the current chunk's uncompressed blocks may be referenced in place.
    pin_chunk: bool,
    /// Chunks left with values possibly referenced, each with the decoded bytes of its block
    /// when it is an oversized compressed one (empty otherwise).
    held: HeldChunks<Vec<u8>>,
    /// The current chunk is one block larger than the read size (see the module docs).
    oversized: bool,
    /// The batch being made (see `begin_batch`).
    generation: u64,
    /// The current chunk's file's global seqno (an ingested file; 0: none), which replaces every
    /// key's own sequence number as RocksDB's block iterator replaces it.
    global_seqno: u64,
    /// The current key with its trailer rewritten for `global_seqno` (unused otherwise).
    rewritten_key: Vec<u8>,
}

/// The current block's decoded payload: the chunk's bytes, or the scratch buffer it was
/// decompressed into. A free function so the caller can hold it while mutating other fields.
fn payload_of<'a>(
    chunk: &'a Option<Chunk>,
    range: (usize, usize),
    decompressed: bool,
    scratch: &'a [u8],
) -> &'a [u8] {
    if decompressed {
        scratch
    } else {
        chunk.as_ref().map_or(&[], |c| &c.bytes()[range.0..range.1])
    }
}

impl RunCursor {
    pub fn new(run: usize) -> Self {
        RunCursor {
            run,
            chunk_index: 0,
            chunk: None,
            next_block: 0,
            payload: (0, 0),
            decompressed: false,
            scratch: Vec::new(),
            decompressor: Decompressor::new(),
            block: DataBlockCursor::new(),
            packed: 0,
            valid: false,
            blocks_decoded: 0,
            blocks_decompressed: 0,
            pin_chunk: false,
            held: HeldChunks::default(),
            oversized: false,
            generation: 0,
            global_seqno: 0,
            rewritten_key: Vec::new(),
        }
    }

    /// Whether the current value may be referenced where it lies (until the next-but-one
    /// batch) instead of copied: it is in a pinned chunk's uncompressed block, or in the decoded
    /// block of a pinned oversized chunk (held with the chunk), not in the scratch buffer the
    /// run's next compressed block overwrites.
    pub fn value_pinnable(&self) -> bool {
        self.pin_chunk && (!self.decompressed || self.oversized)
    }

    /// Starts batch `generation`: gives back the held chunks no readable batch points into
    /// (`release_point`, see held.rs).
    pub fn begin_batch(&mut self, reader: &mut Reader, generation: u64, release_point: u64) {
        self.generation = generation;
        self.held.release(reader, release_point);
    }

    /// The run is done with its current chunk: back to the reader, or held while the current
    /// and next batch may point into it.
    fn leave_chunk(&mut self, reader: &mut Reader) {
        // An oversized chunk is one block: if it was compressed, the scratch buffer is its
        // decoded bytes, which pinned values point into, so it is held with the chunk (and the
        // run's regular blocks do not need a buffer that size afterwards anyway).
        let decoded = if self.oversized && self.decompressed {
            std::mem::take(&mut self.scratch)
        } else {
            Vec::new()
        };
        if let Some(mut chunk) = self.chunk.take() {
            if self.pin_chunk {
                if self.oversized {
                    // Its buffer is its own: the run gets its read slot back now, so holding it
                    // costs the run no read (held.rs).
                    reader.detach(&mut chunk);
                }
                self.held.hold(self.run, chunk, decoded, self.generation);
            } else {
                reader.recycle(chunk);
            }
        }
        self.pin_chunk = false;
        self.oversized = false;
        self.decompressed = false;
    }

    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current entry's full internal key (with the file's global seqno, if it has one).
    pub fn key(&self) -> &[u8] {
        if self.global_seqno != 0 {
            &self.rewritten_key
        } else {
            self.block.key()
        }
    }

    pub fn user_key(&self) -> &[u8] {
        let k = self.block.key();
        &k[..k.len() - 8]
    }

    pub fn packed(&self) -> u64 {
        self.packed
    }

    pub fn value(&self) -> &[u8] {
        if self.chunk.is_none() {
            return &[];
        }
        self.block.value(payload_of(
            &self.chunk,
            self.payload,
            self.decompressed,
            &self.scratch,
        ))
    }

    /// Positions on the first entry at or after `bounds.start`.
    pub fn seek_to_first(
        &mut self,
        map: &SstMap,
        reader: &mut Reader,
        bounds: &Bounds,
    ) -> Result<()> {
        self.step(map, reader, bounds)?;
        if let Some(start) = &bounds.start {
            while self.valid
                && bounds
                    .order
                    .cmp_without_ts(bounds.order.without_ts(self.user_key()), start)
                    .is_lt()
            {
                self.step(map, reader, bounds)?;
            }
        }
        Ok(())
    }

    /// Moves to the next entry of the run, or becomes invalid at the run's end or at `bounds.end`.
    pub fn next(&mut self, map: &SstMap, reader: &mut Reader, bounds: &Bounds) -> Result<()> {
        self.step(map, reader, bounds)
    }

    fn step(&mut self, map: &SstMap, reader: &mut Reader, bounds: &Bounds) -> Result<()> {
        loop {
            if self.chunk.is_some() {
                // Borrow the fields apart: the payload lives in `chunk` or `scratch`, the cursor
                // in `block`.
                let payload =
                    payload_of(&self.chunk, self.payload, self.decompressed, &self.scratch);
                if self.block.next(payload)? {
                    let (user_key, mut packed) = split_internal_key(self.block.key())?;
                    bounds.order.check(user_key)?;
                    if let Some(end) = &bounds.end {
                        if bounds
                            .order
                            .cmp_without_ts(bounds.order.without_ts(user_key), end)
                            .is_ge()
                        {
                            return self.finish(reader);
                        }
                    }
                    if self.global_seqno != 0 {
                        // DataBlockIter::ParseNextDataKey: the stored seqno (0) gives way to the
                        // file's, the value type stays (`UpdateInternalKey`).
                        packed = pack(self.global_seqno, type_of(packed));
                        self.rewritten_key.clear();
                        self.rewritten_key.extend_from_slice(user_key);
                        self.rewritten_key.extend_from_slice(&packed.to_le_bytes());
                    }
                    self.packed = packed;
                    self.valid = true;
                    return Ok(());
                }
                if !self.open_next_block(map)? {
                    // This chunk is used up: its buffer goes back for the next reads (once no
                    // batch points into it).
                    self.leave_chunk(reader);
                    self.chunk_index += 1;
                }
                continue;
            }
            match reader.next_chunk(self.run)? {
                Some(chunk) => {
                    let planned = &map.runs[self.run][self.chunk_index];
                    let last = self.chunk_index + 1 >= map.runs[self.run].len();
                    self.oversized = planned.oversized;
                    // An oversized chunk gives its read slot back when the run leaves it, so it
                    // can always be pinned (held.rs).
                    self.pin_chunk = self.oversized
                        || self.held.may_pin(self.run, reader.depth_of(self.run), last);
                    self.chunk = Some(chunk);
                    self.next_block = 0;
                    let planned = &map.runs[self.run][self.chunk_index];
                    self.global_seqno = map.files[planned.plan.file].global_seqno;
                    if !self.open_next_block(map)? {
                        return Err(Error::corruption("planned chunk holds no block"));
                    }
                }
                None => return self.finish(reader),
            }
        }
    }

    /// Verifies and opens the next block of the current chunk; false when the chunk has no more.
    fn open_next_block(&mut self, map: &SstMap) -> Result<bool> {
        let planned: &PlannedChunk = &map.runs[self.run][self.chunk_index];
        let chunk = self.chunk.as_ref().expect("open_next_block needs a chunk");
        let bytes = chunk.bytes();
        let Some((handle, payload, compression)) =
            verified_block(map, planned, self.next_block, bytes)?
        else {
            return Ok(false);
        };
        let start = payload.as_ptr() as usize - bytes.as_ptr() as usize;
        self.payload = (start, start + payload.len());
        if compression == ctype::NONE {
            self.decompressed = false;
            self.block.reset(payload)?;
        } else {
            decompress_block(
                &mut self.decompressor,
                map,
                planned,
                handle,
                compression,
                payload,
                &mut self.scratch,
            )?;
            self.decompressed = true;
            self.blocks_decompressed += 1;
            self.block.reset(&self.scratch)?;
        }
        self.next_block += 1;
        self.blocks_decoded += 1;
        Ok(true)
    }

    fn finish(&mut self, reader: &mut Reader) -> Result<()> {
        self.valid = false;
        self.leave_chunk(reader);
        Ok(())
    }
}
