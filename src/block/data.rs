//! Sequential decoding of uncompressed blocks in RocksDB's `BlockBuilder` format
//! (table/block_based/block_builder.cc, block.cc, data_block_footer.cc,
//! data_block_hash_index.cc):
//!
//! ```text
//! entry*   : varint32 shared | varint32 non_shared | varint32 value_len | key delta | value
//! restarts : fixed32 offset * num_restarts
//! [hash]   : uint8 bucket * num_buckets | fixed16 num_buckets     (only with the hash bit)
//! footer   : fixed32 num_restarts | (hash index present) << 31
//! ```
//!
//! Besides what RocksDB checks, the decoder verifies that the restart array is well formed and
//! that every restart point falls on an entry with `shared == 0`: RocksDB's writer always produces
//! that, and a compaction that trusts a damaged block would silently write bad keys.

use super::varint::{get_fixed16, get_fixed32, get_varint32};
use crate::error::{Error, Result};

/// `kMaxBlockSizeSupportedByHashIndex`: larger blocks never carry a hash index, so their footer is
/// read as a plain 32-bit restart count (RocksDB keeps this for legacy blocks whose count has the
/// top bit set).
const MAX_BLOCK_SIZE_FOR_HASH_INDEX: usize = 1 << 16;
/// Bit 31 of the footer (`kDataBlockIndexTypeBitShift`).
const HASH_INDEX_BIT: u32 = 1 << 31;
/// `kNumRestartsMask`.
const NUM_RESTARTS_MASK: u32 = HASH_INDEX_BIT - 1;
/// Hash bucket markers (`kCollision`, `kNoEntry`); other values are restart indices.
const BUCKET_COLLISION: u8 = 254;

/// Where the parts of a block live, as `Block::Block` computes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockLayout {
    /// End of the entries = start of the restart array (`restart_offset_`).
    pub(crate) data_end: usize,
    /// Number of restart points; 0 means an empty block, as in `NewDataIterator`.
    pub(crate) num_restarts: u32,
}

impl BlockLayout {
    /// Offset of restart point `i` (already validated by [`parse_layout`] for the same buffer).
    #[inline]
    pub(crate) fn restart(&self, payload: &[u8], i: u32) -> Option<usize> {
        let mut p = self.data_end.checked_add((i as usize).checked_mul(4)?)?;
        get_fixed32(payload, &mut p).map(|v| v as usize)
    }
}

/// Parses and validates the block footer, optional hash index and restart array.
pub(crate) fn parse_layout(payload: &[u8]) -> Result<BlockLayout> {
    let size = payload.len();
    // NewDataIterator/NewIndexIterator reject anything shorter than two fixed32s.
    if size < 8 {
        return Err(Error::corruption(format!(
            "bad block contents: block of {size} bytes is too short"
        )));
    }
    let mut p = size - 4;
    let footer = get_fixed32(payload, &mut p).ok_or_else(|| Error::corruption("bad block"))?;
    let (num_restarts, has_hash) = if size > MAX_BLOCK_SIZE_FOR_HASH_INDEX {
        (footer, false)
    } else {
        (footer & NUM_RESTARTS_MASK, footer & HASH_INDEX_BIT != 0)
    };
    let restarts_len = (num_restarts as usize)
        .checked_mul(4)
        .ok_or_else(|| Error::corruption("bad block contents: restart count overflows"))?;
    // End of the region that holds restarts (and before the hash index, if any).
    let restarts_limit = if has_hash {
        let mut p = size - 6;
        let num_buckets = get_fixed16(payload, &mut p)
            .ok_or_else(|| Error::corruption("bad block contents: missing hash index"))?;
        if num_buckets == 0 {
            return Err(Error::corruption(
                "bad block contents: hash index with zero buckets",
            ));
        }
        let map_offset = (size - 6)
            .checked_sub(usize::from(num_buckets))
            .ok_or_else(|| {
                Error::corruption(format!(
                    "bad block contents: {num_buckets} hash buckets do not fit in {size} bytes"
                ))
            })?;
        // A bucket names the restart interval holding the key; anything past the restart array
        // cannot have been written by RocksDB.
        let buckets = payload.get(map_offset..size - 6).unwrap_or(&[]);
        if let Some(b) = buckets
            .iter()
            .find(|&&b| b < BUCKET_COLLISION && u32::from(b) >= num_restarts)
        {
            return Err(Error::corruption(format!(
                "bad block contents: hash bucket names restart {b} of {num_restarts}"
            )));
        }
        map_offset
    } else {
        size - 4
    };
    let data_end = restarts_limit.checked_sub(restarts_len).ok_or_else(|| {
        Error::corruption(format!(
            "bad block contents: {num_restarts} restarts do not fit in {size} bytes"
        ))
    })?;
    let layout = BlockLayout {
        data_end,
        num_restarts,
    };
    // Restart points: the first at 0, strictly increasing, each before the restart array (an
    // empty block has the single restart 0 == data_end).
    let mut prev: Option<usize> = None;
    for i in 0..num_restarts {
        let r = layout
            .restart(payload, i)
            .ok_or_else(|| Error::corruption("bad block contents: restart array out of range"))?;
        let ok = match prev {
            None => r == 0,
            Some(pr) => r > pr && r < data_end,
        };
        if !ok {
            return Err(Error::corruption(format!(
                "bad block contents: restart point {i} at {r} is out of order or range \
                 (data ends at {data_end})"
            )));
        }
        prev = Some(r);
    }
    Ok(layout)
}

/// Decodes an entry header at `*pos` like `CheckAndDecodeEntry` (with `value_len`) or
/// `DecodeKeyV4` (without; value length is then 0 and the caller decodes the value itself).
/// At least 3 bytes must remain before `limit`, as RocksDB requires. On success `*pos` is at the
/// key delta and the delta (plus value, when its length is known) is within `limit`.
#[inline]
pub(crate) fn decode_entry_header(
    payload: &[u8],
    pos: &mut usize,
    limit: usize,
    with_value_len: bool,
) -> Option<(u32, u32, u32)> {
    let region = payload.get(..limit)?;
    let p = *pos;
    let head = region.get(p..p.checked_add(3)?)?;
    let (shared, non_shared, value_len, mut q);
    if with_value_len && (head[0] | head[1] | head[2]) < 128 {
        // Fast path: all three lengths are one byte each (the common case).
        (shared, non_shared, value_len, q) =
            (head[0].into(), head[1].into(), head[2].into(), p + 3);
    } else if !with_value_len && (head[0] | head[1]) < 128 {
        (shared, non_shared, value_len, q) = (head[0].into(), head[1].into(), 0, p + 2);
    } else {
        q = p;
        shared = get_varint32(region, &mut q)?;
        non_shared = get_varint32(region, &mut q)?;
        value_len = if with_value_len {
            get_varint32(region, &mut q)?
        } else {
            0
        };
    }
    let need = u64::from(non_shared) + u64::from(value_len);
    if need > (limit - q) as u64 {
        return None;
    }
    *pos = q;
    Some((shared, non_shared, value_len))
}

/// Sequential cursor over one data block. It holds no borrow: the caller owns the buffer and
/// passes it to every call, so the cursor can sit in a struct next to that buffer.
#[derive(Debug, Default)]
pub struct DataBlockCursor {
    /// Start of the restart array; entries occupy `0..data_end`.
    data_end: usize,
    num_restarts: u32,
    /// Offset of the next entry to decode.
    pos: usize,
    /// Index and offset of the next restart point not yet reached (`usize::MAX` when none).
    next_restart_idx: u32,
    next_restart_off: usize,
    /// Full key of the current entry; reused so steady-state decoding does not allocate.
    key: Vec<u8>,
    value_off: usize,
    value_len: usize,
    /// Set after a corruption so later calls keep failing instead of decoding garbage.
    failed: bool,
}

impl DataBlockCursor {
    /// An idle cursor: `next` returns `Ok(false)` until [`reset`](Self::reset) succeeds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts decoding `payload` (one uncompressed data block, trailer already stripped). Parses
    /// the fixed32 footer (num_restarts | hash-index bit 31), the hash index (uint8 buckets +
    /// uint16 num_buckets) when the bit is set, and the restart array; validates every
    /// size/offset. Errors -> Corruption.
    pub fn reset(&mut self, payload: &[u8]) -> Result<()> {
        self.key.clear();
        self.value_off = 0;
        self.value_len = 0;
        self.pos = 0;
        match parse_layout(payload) {
            Ok(layout) => {
                self.failed = false;
                self.num_restarts = layout.num_restarts;
                // An empty block (no restarts) has no entries whatever its bytes say.
                self.data_end = if layout.num_restarts == 0 {
                    0
                } else {
                    layout.data_end
                };
                self.next_restart_idx = 0;
                // Restart 0 is always at offset 0 (checked by parse_layout).
                self.next_restart_off = if layout.num_restarts == 0 {
                    usize::MAX
                } else {
                    0
                };
                Ok(())
            }
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.data_end = 0;
        self.num_restarts = 0;
        self.key.clear();
        self.value_off = 0;
        self.value_len = 0;
    }

    fn corrupt(&mut self, what: &str, at: usize) -> Error {
        self.fail();
        Error::corruption(format!("bad entry in block: {what} at offset {at}"))
    }

    /// Moves to the next entry; Ok(false) after the last one. Entries: varint32 shared,
    /// varint32 non_shared, varint32 value_len, key delta, value (block_builder.cc). Rebuilds the
    /// full internal key in a reusable Vec. Malformed entries -> Corruption, never a panic.
    pub fn next(&mut self, payload: &[u8]) -> Result<bool> {
        if self.failed {
            return Err(Error::corruption(
                "bad entry in block: cursor used after a corruption",
            ));
        }
        let cur = self.pos;
        if cur >= self.data_end {
            if self.next_restart_off < self.data_end {
                return Err(self.corrupt("restart point never reached", self.next_restart_off));
            }
            self.key.clear();
            self.value_len = 0;
            return Ok(false);
        }
        let mut p = cur;
        let Some((shared, non_shared, value_len)) =
            decode_entry_header(payload, &mut p, self.data_end, true)
        else {
            return Err(self.corrupt("truncated or oversized entry", cur));
        };
        let (shared, non_shared, value_len) =
            (shared as usize, non_shared as usize, value_len as usize);
        if shared > self.key.len() {
            return Err(self.corrupt("shared prefix longer than previous key", cur));
        }
        if cur == self.next_restart_off {
            if shared != 0 {
                return Err(self.corrupt("restart entry shares a prefix", cur));
            }
            self.next_restart_idx += 1;
            self.next_restart_off = if self.next_restart_idx < self.num_restarts {
                let mut rp = self.data_end + self.next_restart_idx as usize * 4;
                match get_fixed32(payload, &mut rp) {
                    Some(r) => r as usize,
                    None => return Err(self.corrupt("restart array out of range", rp)),
                }
            } else {
                usize::MAX
            };
        } else if cur > self.next_restart_off {
            return Err(self.corrupt("entry straddles a restart point", cur));
        }
        // decode_entry_header guaranteed p + non_shared + value_len <= data_end <= len.
        let Some(delta) = payload.get(p..p + non_shared) else {
            return Err(self.corrupt("key out of range", cur));
        };
        self.key.truncate(shared);
        self.key.extend_from_slice(delta);
        self.value_off = p + non_shared;
        self.value_len = value_len;
        self.pos = self.value_off + value_len;
        Ok(true)
    }

    /// Full internal key of the current entry (empty before the first / after the last).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Value of the current entry, sliced out of `payload` (the buffer given to `reset`).
    pub fn value<'a>(&self, payload: &'a [u8]) -> &'a [u8] {
        payload
            .get(self.value_off..self.value_off.saturating_add(self.value_len))
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::key::{split_internal_key, TYPE_DELETION, TYPE_VALUE};
    use crate::block::testutil::{ikey, BlockBuilder, Rng};

    fn entries(n: usize, seed: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut rng = Rng(seed | 1);
        let mut out = Vec::new();
        for i in 0..n {
            // Shared prefixes of varying length, some long keys and values (multi-byte varints).
            let mut user = format!("key{:06}", i / 3).into_bytes();
            if i % 7 == 0 {
                user.extend(std::iter::repeat_n(b'z', 200));
            }
            let seq = 1_000_000 - i as u64;
            let t = if i % 5 == 0 {
                TYPE_DELETION
            } else {
                TYPE_VALUE
            };
            let vlen = if i % 11 == 0 { 300 } else { rng.below(20) };
            let value: Vec<u8> = (0..vlen).map(|_| rng.next_u64() as u8).collect();
            out.push((ikey(&user, seq, t), value));
        }
        // A block holds keys in internal-key order.
        out.sort_by(|a, b| {
            let (au, ap) = split_internal_key(&a.0).unwrap();
            let (bu, bp) = split_internal_key(&b.0).unwrap();
            crate::block::key::cmp_internal(au, ap, bu, bp)
        });
        out
    }

    fn build(es: &[(Vec<u8>, Vec<u8>)], interval: usize, hash: bool) -> Vec<u8> {
        let mut b = BlockBuilder::new(interval);
        if hash {
            b = b.with_hash_index(0.75);
        }
        for (k, v) in es {
            b.add(k, v, None);
        }
        b.finish()
    }

    fn decode_all(payload: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut c = DataBlockCursor::new();
        c.reset(payload)?;
        let mut out = Vec::new();
        while c.next(payload)? {
            out.push((c.key().to_vec(), c.value(payload).to_vec()));
        }
        // Stays at the end.
        assert!(!c.next(payload)?);
        Ok(out)
    }

    #[test]
    fn round_trip_restart_intervals_and_hash() {
        for n in [0usize, 1, 2, 15, 16, 17, 33, 200] {
            for interval in [1usize, 2, 16] {
                for hash in [false, true] {
                    let es = entries(n, n as u64 + 7);
                    let blk = build(&es, interval, hash);
                    if hash {
                        assert_ne!(
                            u32::from_le_bytes(blk[blk.len() - 4..].try_into().unwrap())
                                & HASH_INDEX_BIT,
                            0
                        );
                    }
                    assert_eq!(decode_all(&blk).unwrap(), es, "n={n} interval={interval}");
                }
            }
        }
    }

    #[test]
    fn empty_block_and_zero_restarts() {
        // BlockBuilder::Finish on an empty block: one restart at 0, then the footer.
        let blk = build(&[], 16, false);
        assert_eq!(blk, [0, 0, 0, 0, 1, 0, 0, 0]);
        assert!(decode_all(&blk).unwrap().is_empty());
        // num_restarts == 0 is an empty block to RocksDB, whatever precedes the footer.
        assert!(decode_all(&[9, 9, 9, 9, 0, 0, 0, 0]).unwrap().is_empty());
    }

    #[test]
    fn keys_are_internal_keys() {
        let es = entries(40, 3);
        let blk = build(&es, 16, false);
        let mut c = DataBlockCursor::new();
        c.reset(&blk).unwrap();
        let mut prev: Option<(Vec<u8>, u64)> = None;
        while c.next(&blk).unwrap() {
            let (u, p) = split_internal_key(c.key()).unwrap();
            if let Some((pu, pp)) = &prev {
                assert_eq!(
                    crate::block::key::cmp_internal(pu, *pp, u, p),
                    std::cmp::Ordering::Less
                );
            }
            prev = Some((u.to_vec(), p));
        }
    }

    #[test]
    fn large_block_ignores_hash_bit() {
        // > 64 KiB: the footer is a plain count even when bit 31 would be set; here we just check
        // a large block (no hash index) decodes.
        let es: Vec<_> = (0..2000)
            .map(|i| {
                (
                    ikey(format!("k{i:08}").as_bytes(), 5, TYPE_VALUE),
                    vec![b'v'; 40],
                )
            })
            .collect();
        let blk = build(&es, 16, true);
        assert!(blk.len() > MAX_BLOCK_SIZE_FOR_HASH_INDEX);
        assert_eq!(
            u32::from_le_bytes(blk[blk.len() - 4..].try_into().unwrap()) & HASH_INDEX_BIT,
            0
        );
        assert_eq!(decode_all(&blk).unwrap(), es);
    }

    #[test]
    fn hand_made_block_bytes() {
        // Two entries "ab"->"1", "ac"->"22" at restart interval 16, written out by hand.
        let blk: Vec<u8> = vec![
            0, 2, 1, b'a', b'b', b'1', // shared 0, non_shared 2, value 1
            1, 1, 2, b'c', b'2', b'2', // shared 1, non_shared 1, value 2
            0, 0, 0, 0, // restart[0] = 0
            1, 0, 0, 0, // num_restarts = 1
        ];
        assert_eq!(
            decode_all(&blk).unwrap(),
            vec![
                (b"ab".to_vec(), b"1".to_vec()),
                (b"ac".to_vec(), b"22".to_vec())
            ]
        );
        // Also with a 1-bucket hash index pointing at restart 0.
        let mut h = blk[..16].to_vec();
        h.extend_from_slice(&[0, 1, 0]); // bucket[0] = 0, num_buckets = 1
        h.extend_from_slice(&(1u32 | HASH_INDEX_BIT).to_le_bytes());
        assert_eq!(decode_all(&h).unwrap().len(), 2);
        // A bucket naming a restart that does not exist.
        h[16] = 3;
        assert!(decode_all(&h).is_err());
    }

    #[test]
    fn specific_corruptions() {
        let es = entries(40, 9);
        let blk = build(&es, 16, false);
        let n = blk.len();
        // Too short.
        for len in 0..8 {
            assert!(matches!(decode_all(&blk[..len]), Err(Error::Corruption(_))));
        }
        // Restart count larger than the block.
        let mut b = blk.clone();
        b[n - 4..].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert!(decode_all(&b).is_err());
        // First entry claims a shared prefix.
        let mut b = blk.clone();
        b[0] = 1;
        assert!(decode_all(&b).is_err());
        // Restart point moved off an entry boundary.
        let mut b = blk.clone();
        let r1 = n - 4 - 3 * 4 + 4;
        let v = u32::from_le_bytes(b[r1..r1 + 4].try_into().unwrap());
        b[r1..r1 + 4].copy_from_slice(&(v + 1).to_le_bytes());
        assert!(decode_all(&b).is_err());
        // Hash bit set on a block without a hash index.
        let mut b = blk.clone();
        b[n - 1] |= 0x80;
        assert!(decode_all(&b).is_err());
    }

    #[test]
    fn cursor_stays_failed_and_recovers_on_reset() {
        let es = entries(20, 1);
        let blk = build(&es, 16, false);
        let mut bad = blk.clone();
        bad[0] = 5; // shared 5 on the first entry
        let mut c = DataBlockCursor::new();
        assert!(!c.next(&blk).unwrap()); // idle cursor
        c.reset(&bad).unwrap();
        assert!(c.next(&bad).is_err());
        assert!(c.next(&bad).is_err());
        assert!(c.value(&bad).is_empty());
        c.reset(&blk).unwrap();
        assert!(c.next(&blk).unwrap());
        assert_eq!(c.key(), &es[0].0[..]);
        // A different (shorter) buffer on next must not panic.
        let _ = c.next(&blk[..10]);
        let _ = c.value(&[]);
    }

    #[test]
    fn random_mutations_never_panic() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for (i, (interval, hash)) in [(16, false), (16, true), (1, false), (3, true)]
            .into_iter()
            .enumerate()
        {
            let es = entries(60, i as u64 + 100);
            let blk = build(&es, interval, hash);
            let mut errs = 0;
            for _ in 0..4000 {
                let m = rng.mutate(&blk);
                match decode_all(&m) {
                    Ok(v) => assert!(v.len() <= m.len()),
                    Err(Error::Corruption(_)) => errs += 1,
                    Err(e) => panic!("unexpected error kind {e:?}"),
                }
            }
            assert!(errs > 0);
        }
        // Pure garbage too.
        for len in 0..300 {
            let g: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = decode_all(&g);
        }
    }
}
