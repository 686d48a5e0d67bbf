//! A cursor over one sorted run: it pulls the run's chunks from the reader, verifies each block's
//! trailer checksum (as stock compaction does, `verify_checksums = true`), decodes the entries and
//! clips them to the subcompaction's `[start, end)` user-key range like RocksDB's
//! `ClippingIterator` (start inclusive, end exclusive, all versions of a user key together).

use crate::block::checksum::verify_block;
use crate::block::data::DataBlockCursor;
use crate::block::key::split_internal_key;
use crate::error::{Error, Result};
use crate::reader::{Chunk, Reader};
use crate::sst_map::{PlannedChunk, SstMap};

/// Subcompaction bounds on user keys.
#[derive(Clone, Debug, Default)]
pub struct Bounds {
    pub start: Option<Vec<u8>>,
    pub end: Option<Vec<u8>>,
}

pub struct RunCursor {
    run: usize,
    /// Index of the chunk held in `chunk` within the run's plan.
    chunk_index: usize,
    chunk: Option<Chunk>,
    /// Next block to open within the current chunk.
    next_block: usize,
    /// Byte range of the current block's payload within the chunk.
    payload: (usize, usize),
    block: DataBlockCursor,
    /// The current entry's trailer (seq << 8 | type), cached for comparisons.
    packed: u64,
    valid: bool,
    pub blocks_decoded: u64,
}

impl RunCursor {
    pub fn new(run: usize) -> Self {
        RunCursor {
            run,
            chunk_index: 0,
            chunk: None,
            next_block: 0,
            payload: (0, 0),
            block: DataBlockCursor::new(),
            packed: 0,
            valid: false,
            blocks_decoded: 0,
        }
    }

    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current entry's full internal key.
    pub fn key(&self) -> &[u8] {
        self.block.key()
    }

    pub fn user_key(&self) -> &[u8] {
        let k = self.block.key();
        &k[..k.len() - 8]
    }

    pub fn packed(&self) -> u64 {
        self.packed
    }

    pub fn value(&self) -> &[u8] {
        match &self.chunk {
            Some(c) => self.block.value(&c.bytes()[self.payload.0..self.payload.1]),
            None => &[],
        }
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
            while self.valid && self.user_key() < start.as_slice() {
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
            if let Some(chunk) = &self.chunk {
                // Borrow the fields apart: the payload lives in `chunk`, the cursor in `block`.
                let payload = &chunk.bytes()[self.payload.0..self.payload.1];
                if self.block.next(payload)? {
                    let (user_key, packed) = split_internal_key(self.block.key())?;
                    if let Some(end) = &bounds.end {
                        if user_key >= end.as_slice() {
                            return self.finish(reader);
                        }
                    }
                    self.packed = packed;
                    self.valid = true;
                    return Ok(());
                }
                if !self.open_next_block(map)? {
                    // This chunk is used up: its buffer goes back for the next reads.
                    if let Some(chunk) = self.chunk.take() {
                        reader.recycle(chunk);
                    }
                    self.chunk_index += 1;
                }
                continue;
            }
            match reader.next_chunk(self.run)? {
                Some(chunk) => {
                    self.chunk = Some(chunk);
                    self.next_block = 0;
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
        let Some((handle, offset_in_chunk)) = planned.block(map, self.next_block) else {
            return Ok(false);
        };
        let chunk = self.chunk.as_ref().expect("open_next_block needs a chunk");
        let file = &map.files[planned.plan.file];
        let span = handle.size as usize + crate::block::BLOCK_TRAILER_SIZE;
        let raw = chunk
            .bytes()
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
        if compression != 0 {
            // The C++ side only hands over files RocksDB marks as uncompressed; a compressed
            // block here means the metadata lied, which stock would also fail on.
            return Err(Error::corruption(format!(
                "unexpected compressed block (type {compression}) at offset {} in {}",
                handle.offset,
                file.path.display()
            )));
        }
        let start = offset_in_chunk;
        self.payload = (start, start + payload.len());
        self.block.reset(payload)?;
        self.next_block += 1;
        self.blocks_decoded += 1;
        Ok(true)
    }

    fn finish(&mut self, reader: &mut Reader) -> Result<()> {
        self.valid = false;
        if let Some(chunk) = self.chunk.take() {
            reader.recycle(chunk);
        }
        Ok(())
    }
}
