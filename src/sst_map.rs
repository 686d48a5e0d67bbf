//! The SST-Map: every input file's data blocks (offset, size), grouped into the sorted runs the
//! merge consumes, and planned as large coalesced reads.
//!
//! The C++ side fills it from the open `TableReader`s' index blocks, which RocksDB already holds
//! in memory, so building it costs no I/O. A sorted run is one L0 file, or all the files of one
//! non-L0 level in key order: exactly the children of RocksDB's `CompactionMergingIterator`.

use crate::block::checksum::ChecksumType;
use crate::block::{BlockHandle, BLOCK_TRAILER_SIZE};
use crate::error::{Error, Result};
use crate::reader::{ChunkPlan, FileSpec};
use std::path::PathBuf;

/// One input SST file and the data blocks of it the compaction needs, in file order.
#[derive(Clone, Debug)]
pub struct InputFile {
    pub path: PathBuf,
    pub file_size: u64,
    pub checksum_type: ChecksumType,
    /// 0 below format_version 6 (no context checksums).
    pub base_context_checksum: u32,
    pub blocks: Vec<BlockHandle>,
    /// The table's `compression_name` is not NoCompression: blocks are decompressed per their
    /// trailer's type (RocksDB ignores the type byte otherwise).
    pub blocks_maybe_compressed: bool,
    /// The table's compression dictionary (`max_dict_bytes` > 0), empty when it has none.
    pub compression_dict: Vec<u8>,
    /// An ingested file's global sequence number, which replaces every key's own (0: none).
    pub global_seqno: u64,
}

/// The files of one sorted run, in key order.
#[derive(Clone, Debug, Default)]
pub struct SortedRun {
    pub files: Vec<InputFile>,
}

/// One coalesced read and the blocks it carries: a contiguous range of one file's blocks, so a
/// chunk costs a few words however many blocks it holds (a 1 GB compaction has ~250k blocks).
#[derive(Clone, Debug)]
pub struct PlannedChunk {
    pub plan: ChunkPlan,
    /// The chunk's blocks are `files[plan.file].blocks[first_block..first_block + num_blocks]`.
    pub first_block: usize,
    pub num_blocks: usize,
    /// One block larger than the read size: the reader reads it into a buffer of its own
    /// (`ReaderConfig::oversized_above`), and the native merge may hand its decompressed values
    /// over in place (merge/cursor.rs).
    pub oversized: bool,
}

impl PlannedChunk {
    /// The `i`-th block of the chunk and the offset of its first byte inside the chunk.
    pub fn block(&self, map: &SstMap, i: usize) -> Option<(BlockHandle, usize)> {
        if i >= self.num_blocks {
            return None;
        }
        let handle = *map.files[self.plan.file].blocks.get(self.first_block + i)?;
        Some((handle, (handle.offset - self.plan.offset) as usize))
    }
}

/// The whole compaction's read plan.
#[derive(Clone, Debug)]
pub struct SstMap {
    pub files: Vec<InputFile>,
    /// Per sorted run, its chunks in key order.
    pub runs: Vec<Vec<PlannedChunk>>,
}

impl SstMap {
    /// Plans reads of at most `max_chunk` bytes, merging blocks that are adjacent in their file
    /// (RocksDB writes data blocks back to back, each followed by its 5-byte trailer).
    ///
    /// A block larger than `max_chunk` (a value of several MiB makes one) is a chunk of its own,
    /// marked `oversized`: nothing is coalesced with it, so the reader can give that one read a
    /// buffer of its own without sizing every buffer of the run to it.
    pub fn build(runs: Vec<SortedRun>, max_chunk: usize) -> Result<SstMap> {
        let mut files = Vec::with_capacity(runs.iter().map(|r| r.files.len()).sum());
        let mut planned = Vec::with_capacity(runs.len());
        for run in runs {
            let mut chunks: Vec<PlannedChunk> = Vec::new();
            for file in run.files {
                let file_index = files.len();
                let mut current: Option<PlannedChunk> = None;
                for (block_index, handle) in file.blocks.iter().enumerate() {
                    let span = block_span(handle, &file)?;
                    let oversized = span > max_chunk;
                    // An oversized block never extends a chunk, and nothing extends it (its
                    // length is already over max_chunk).
                    let extend = !oversized
                        && current.as_ref().is_some_and(|c| {
                            c.plan.offset + c.plan.len as u64 == handle.offset
                                && c.plan.len + span <= max_chunk
                        });
                    if !extend {
                        chunks.extend(current.take());
                        current = Some(PlannedChunk {
                            plan: ChunkPlan {
                                file: file_index,
                                offset: handle.offset,
                                len: 0,
                            },
                            first_block: block_index,
                            num_blocks: 0,
                            oversized,
                        });
                    }
                    let chunk = current.as_mut().expect("a chunk was just opened");
                    chunk.num_blocks += 1;
                    chunk.plan.len += span;
                }
                chunks.extend(current.take());
                files.push(file);
            }
            planned.push(chunks);
        }
        Ok(SstMap {
            files,
            runs: planned,
        })
    }

    /// The files the reader opens, in [`SstMap::files`] order.
    pub fn file_specs(&self, direct: bool) -> Vec<FileSpec> {
        self.files
            .iter()
            .map(|f| FileSpec {
                path: f.path.clone(),
                direct,
            })
            .collect()
    }

    /// The read plans per run, as the reader takes them.
    pub fn chunk_plans(&self) -> Vec<Vec<ChunkPlan>> {
        self.runs
            .iter()
            .map(|chunks| chunks.iter().map(|c| c.plan.clone()).collect())
            .collect()
    }

    pub fn num_blocks(&self) -> usize {
        self.files.iter().map(|f| f.blocks.len()).sum()
    }

    /// Bytes of blocks and trailers the plan reads.
    pub fn planned_bytes(&self) -> u64 {
        self.runs.iter().flatten().map(|c| c.plan.len as u64).sum()
    }

    /// Chunks that are one block larger than the read size.
    pub fn oversized_chunks(&self) -> usize {
        self.runs.iter().flatten().filter(|c| c.oversized).count()
    }
}

/// The largest block (payload and trailer) of any file of `runs`: what decides, before the
/// reads are planned, whether every block fits a given read size. Handles past their file's
/// end are left to [`SstMap::build`] to report.
pub fn largest_block_span(runs: &[SortedRun]) -> u64 {
    runs.iter()
        .flat_map(|r| &r.files)
        .flat_map(|f| &f.blocks)
        .map(|h| h.size.saturating_add(BLOCK_TRAILER_SIZE as u64))
        .max()
        .unwrap_or(0)
}

/// A block's bytes on disk: payload plus trailer, checked against the file's size so a bad
/// handle is a `Corruption` here and never an out-of-range read later.
fn block_span(handle: &BlockHandle, file: &InputFile) -> Result<usize> {
    let end = handle
        .offset
        .checked_add(handle.size)
        .and_then(|e| e.checked_add(BLOCK_TRAILER_SIZE as u64));
    match end {
        Some(end) if end <= file.file_size => Ok((handle.size as usize) + BLOCK_TRAILER_SIZE),
        _ => Err(Error::corruption(format!(
            "block handle offset {} size {} is past the end ({} bytes) of {}",
            handle.offset,
            handle.size,
            file.file_size,
            file.path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, sizes: &[u64]) -> InputFile {
        let mut off = 0;
        let blocks = sizes
            .iter()
            .map(|&s| {
                let h = BlockHandle {
                    offset: off,
                    size: s,
                };
                off += s + BLOCK_TRAILER_SIZE as u64;
                h
            })
            .collect();
        InputFile {
            path: PathBuf::from(name),
            file_size: off + 1000,
            checksum_type: ChecksumType::Crc32c,
            base_context_checksum: 0,
            blocks,
            blocks_maybe_compressed: false,
            compression_dict: Vec::new(),
            global_seqno: 0,
        }
    }

    #[test]
    fn coalesces_adjacent_blocks_up_to_the_chunk_size() {
        let runs = vec![SortedRun {
            files: vec![file("a", &[100, 100, 100]), file("b", &[50])],
        }];
        let map = SstMap::build(runs, 215).unwrap();
        let chunks = &map.runs[0];
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].plan.len, 210);
        assert_eq!(chunks[0].num_blocks, 2);
        assert_eq!(chunks[0].block(&map, 1).unwrap().1, 105);
        assert!(chunks[0].block(&map, 2).is_none());
        assert_eq!(chunks[1].plan.offset, 210);
        assert_eq!(chunks[2].plan.file, 1);
        assert_eq!(map.num_blocks(), 4);
        assert_eq!(map.planned_bytes(), 210 + 105 + 55);
    }

    #[test]
    fn gaps_start_a_new_chunk() {
        let mut f = file("a", &[100, 100]);
        f.blocks[1].offset += 7;
        let map = SstMap::build(vec![SortedRun { files: vec![f] }], 1 << 20).unwrap();
        assert_eq!(map.runs[0].len(), 2);
    }

    #[test]
    fn rejects_handles_past_the_end() {
        let mut f = file("a", &[100]);
        f.file_size = 50;
        assert!(matches!(
            SstMap::build(vec![SortedRun { files: vec![f] }], 1 << 20),
            Err(Error::Corruption(_))
        ));
    }

    #[test]
    fn an_oversized_block_is_a_chunk_of_its_own() {
        // 100-byte blocks around a 1000-byte one, read size 215: the blocks before it coalesce,
        // it stands alone (even though its neighbours are adjacent), and the ones after it
        // coalesce again. A file that is one oversized block is one chunk.
        let runs = vec![
            SortedRun {
                files: vec![
                    file("a", &[100, 100, 1000, 100, 100, 100]),
                    file("b", &[50]),
                ],
            },
            SortedRun {
                files: vec![file("c", &[5000])],
            },
        ];
        assert_eq!(largest_block_span(&runs), 5005);
        let map = SstMap::build(runs, 215).unwrap();
        let shape: Vec<(u64, usize, usize, bool)> = map.runs[0]
            .iter()
            .map(|c| (c.plan.offset, c.plan.len, c.num_blocks, c.oversized))
            .collect();
        assert_eq!(
            shape,
            [
                (0, 210, 2, false),
                (210, 1005, 1, true),
                (1215, 210, 2, false),
                (1425, 105, 1, false),
                (0, 55, 1, false),
            ]
        );
        assert_eq!(map.runs[0][1].block(&map, 0).unwrap().1, 0);
        assert_eq!(map.runs[1].len(), 1);
        assert!(map.runs[1][0].oversized);
        assert_eq!(map.runs[1][0].plan.len, 5005);
        assert_eq!(map.oversized_chunks(), 2);
        // A block of exactly the read size is not oversized.
        let map = SstMap::build(
            vec![SortedRun {
                files: vec![file("d", &[210])],
            }],
            215,
        )
        .unwrap();
        assert_eq!(map.oversized_chunks(), 0);
    }
}
