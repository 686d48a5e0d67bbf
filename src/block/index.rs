//! Index blocks (`IndexBlockIter` in table/block_based/block.cc, `IndexValue` in
//! table/format.cc). They use the data-block entry format, with two value encodings:
//!
//! * plain (format_version < 4): `varint32 value_len` is present and the value is
//!   `varint64 offset, varint64 size`;
//! * delta-encoded (format_version >= 4, `index_value_is_delta_encoded` property): no value
//!   length; an entry whose key shares nothing with the previous key (`shared == 0`, which
//!   includes every restart point) holds the full handle, any other holds `varsigned64` size
//!   delta, with `offset = prev.offset + prev.size + 5` (blocks are consecutive).
//!
//! With `kBinarySearchWithFirstKey`, each value is followed by a length-prefixed first internal
//! key of the data block.

use super::data::{decode_entry_header, parse_layout};
use super::varint::{get_varint32, get_varsigned64};
use super::{BlockHandle, BLOCK_TRAILER_SIZE};
use crate::error::{Error, Result};

/// One decoded index entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Separator key (an internal key, or a user key when the table property
    /// `index_key_is_user_key` is set).
    pub key: Vec<u8>,
    /// Data block the entry points at.
    pub handle: BlockHandle,
    /// First internal key of that data block (`kBinarySearchWithFirstKey` only; else empty).
    pub first_internal_key: Vec<u8>,
}

/// Decodes a whole index block into (separator key, data block handle) pairs, in block order.
pub fn decode_index_block(
    payload: &[u8],
    value_is_delta_encoded: bool,
) -> Result<Vec<(Vec<u8>, BlockHandle)>> {
    Ok(
        decode_index_block_ext(payload, value_is_delta_encoded, false)?
            .into_iter()
            .map(|e| (e.key, e.handle))
            .collect(),
    )
}

/// Like [`decode_index_block`], also for index blocks whose values carry the data block's first
/// key (`have_first_key`, i.e. `index_type == kBinarySearchWithFirstKey`).
pub fn decode_index_block_ext(
    payload: &[u8],
    value_is_delta_encoded: bool,
    have_first_key: bool,
) -> Result<Vec<IndexEntry>> {
    let layout = parse_layout(payload)?;
    let mut out = Vec::new();
    if layout.num_restarts == 0 {
        // `NewIndexIterator` treats this as an empty block.
        return Ok(out);
    }
    let data_end = layout.data_end;
    let corrupt = |what: &str, at: usize| {
        Error::corruption(format!("bad entry in index block: {what} at offset {at}"))
    };
    let mut key: Vec<u8> = Vec::new();
    let mut prev: Option<BlockHandle> = None;
    let mut pos = 0usize;
    let mut next_restart_idx = 0u32;
    let mut next_restart_off = 0usize;
    while pos < data_end {
        let cur = pos;
        let (shared, non_shared, value_len) =
            decode_entry_header(payload, &mut pos, data_end, !value_is_delta_encoded)
                .ok_or_else(|| corrupt("truncated or oversized entry", cur))?;
        let (shared, non_shared) = (shared as usize, non_shared as usize);
        if shared > key.len() {
            return Err(corrupt("shared prefix longer than previous key", cur));
        }
        // Same restart-point consistency check as the data block cursor.
        if cur == next_restart_off {
            if shared != 0 {
                return Err(corrupt("restart entry shares a prefix", cur));
            }
            next_restart_idx += 1;
            next_restart_off = if next_restart_idx < layout.num_restarts {
                layout
                    .restart(payload, next_restart_idx)
                    .ok_or_else(|| corrupt("restart array out of range", cur))?
            } else {
                usize::MAX
            };
        } else if cur > next_restart_off {
            return Err(corrupt("entry straddles a restart point", cur));
        }
        let delta = payload
            .get(pos..pos.saturating_add(non_shared))
            .ok_or_else(|| corrupt("key out of range", cur))?;
        key.truncate(shared);
        key.extend_from_slice(delta);
        let value_start = pos + non_shared;
        // Without a stored length the value runs to the end of the entries, and its own
        // encoding tells where it stops (`DecodeCurrentValue`).
        let value_end = if value_is_delta_encoded {
            data_end
        } else {
            value_start + value_len as usize
        };
        let value = payload
            .get(..value_end)
            .ok_or_else(|| corrupt("value out of range", cur))?;
        let mut vp = value_start;
        let handle = match prev {
            Some(p) if value_is_delta_encoded && shared != 0 => {
                let d = get_varsigned64(value, &mut vp)
                    .ok_or_else(|| corrupt("bad delta-encoded index value", cur))?;
                let offset = p
                    .offset
                    .checked_add(p.size)
                    .and_then(|o| o.checked_add(BLOCK_TRAILER_SIZE as u64))
                    .ok_or_else(|| corrupt("delta-encoded offset overflows", cur))?;
                let size = p
                    .size
                    .checked_add_signed(d)
                    .ok_or_else(|| corrupt("delta-encoded size out of range", cur))?;
                BlockHandle { offset, size }
            }
            // A shared key needs a previous handle; the first entry always has shared == 0
            // (checked above), so `prev` is None only when shared == 0.
            _ => BlockHandle::decode_from(value, &mut vp)
                .map_err(|_| corrupt("bad block handle", cur))?,
        };
        let mut first_internal_key = Vec::new();
        if have_first_key {
            let len = get_varint32(value, &mut vp)
                .ok_or_else(|| corrupt("bad first key in block info", cur))?;
            let fk = value
                .get(vp..vp.saturating_add(len as usize))
                .ok_or_else(|| corrupt("bad first key in block info", cur))?;
            first_internal_key.extend_from_slice(fk);
            vp += fk.len();
        }
        pos = if value_is_delta_encoded {
            vp
        } else {
            value_end
        };
        prev = Some(handle);
        out.push(IndexEntry {
            key: key.clone(),
            handle,
            first_internal_key,
        });
    }
    if next_restart_off < data_end {
        return Err(corrupt("restart point never reached", next_restart_off));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::testutil::{build_index, ikey, Rng};
    use crate::block::varint::{put_fixed32, put_varint32, put_varint64, put_varsigned64};

    /// Consecutive data blocks of varying size, as a table builder lays them out.
    fn sample(n: usize, seed: u64) -> Vec<(Vec<u8>, BlockHandle)> {
        let mut rng = Rng(seed | 1);
        let mut off = 0u64;
        (0..n)
            .map(|i| {
                let size = 3000 + rng.below(2000) as u64 + if i % 9 == 0 { 1 << 20 } else { 0 };
                let h = BlockHandle { offset: off, size };
                off += size + BLOCK_TRAILER_SIZE as u64;
                // Every 4th separator changes its first byte, so shared == 0 also happens off restarts.
                let user = format!("{}sep{i:05}", (b'a' + (i / 4 % 26) as u8) as char);
                (ikey(user.as_bytes(), 100 + i as u64, 1), h)
            })
            .collect()
    }

    #[test]
    fn round_trip_all_modes() {
        for n in [0usize, 1, 2, 16, 17, 100] {
            for interval in [1usize, 4, 16] {
                for delta in [false, true] {
                    let es = sample(n, n as u64 + interval as u64);
                    let blk = build_index(&es, interval, delta, None);
                    assert_eq!(
                        decode_index_block(&blk, delta).unwrap(),
                        es,
                        "n={n} interval={interval} delta={delta}"
                    );
                }
            }
        }
    }

    #[test]
    fn with_first_keys() {
        let es = sample(50, 5);
        let fks: Vec<Vec<u8>> = (0..es.len())
            .map(|i| ikey(format!("first{i}").as_bytes(), 7, 1))
            .collect();
        for delta in [false, true] {
            for interval in [1, 16] {
                let blk = build_index(&es, interval, delta, Some(&fks));
                let got = decode_index_block_ext(&blk, delta, true).unwrap();
                assert_eq!(got.len(), es.len());
                for ((g, e), fk) in got.iter().zip(&es).zip(&fks) {
                    assert_eq!((&g.key, &g.handle, &g.first_internal_key), (&e.0, &e.1, fk));
                }
                // Plain values carry a length, so the first key is simply ignored.
                if !delta {
                    assert_eq!(decode_index_block(&blk, false).unwrap(), es);
                }
            }
        }
    }

    #[test]
    fn hand_made_delta_block() {
        // Keys "a", "ab", "b" at restart interval 16 with delta values: full handle, delta,
        // then full handle again because "b" shares nothing with "ab".
        let mut blk = Vec::new();
        blk.extend_from_slice(&[0, 1, b'a']);
        put_varint64(&mut blk, 0);
        put_varint64(&mut blk, 100);
        blk.extend_from_slice(&[1, 1, b'b']);
        put_varsigned64(&mut blk, -10); // size 90 at offset 105
        blk.extend_from_slice(&[0, 1, b'b']);
        put_varint64(&mut blk, 500);
        put_varint64(&mut blk, 7);
        put_fixed32(&mut blk, 0);
        put_fixed32(&mut blk, 1);
        let got = decode_index_block(&blk, true).unwrap();
        assert_eq!(
            got,
            vec![
                (
                    b"a".to_vec(),
                    BlockHandle {
                        offset: 0,
                        size: 100
                    }
                ),
                (
                    b"ab".to_vec(),
                    BlockHandle {
                        offset: 105,
                        size: 90
                    }
                ),
                (
                    b"b".to_vec(),
                    BlockHandle {
                        offset: 500,
                        size: 7
                    }
                ),
            ]
        );
        // The same block read as plain: "value_len" bytes are garbage -> error, no panic.
        assert!(decode_index_block(&blk, false).is_err());
    }

    #[test]
    fn plain_hand_made() {
        let mut blk = Vec::new();
        let mut v = Vec::new();
        put_varint64(&mut v, 1 << 33);
        put_varint64(&mut v, 4096);
        blk.extend_from_slice(&[0, 3]);
        put_varint32(&mut blk, v.len() as u32);
        blk.extend_from_slice(b"xyz");
        blk.extend_from_slice(&v);
        put_fixed32(&mut blk, 0);
        put_fixed32(&mut blk, 1);
        assert_eq!(
            decode_index_block(&blk, false).unwrap(),
            vec![(
                b"xyz".to_vec(),
                BlockHandle {
                    offset: 1 << 33,
                    size: 4096
                }
            )]
        );
        // Value length one short: the handle no longer decodes.
        blk[2] -= 1;
        assert!(decode_index_block(&blk, false).is_err());
    }

    #[test]
    fn negative_size_is_corruption() {
        let mut blk = Vec::new();
        blk.extend_from_slice(&[0, 1, b'a']);
        put_varint64(&mut blk, 0);
        put_varint64(&mut blk, 10);
        blk.extend_from_slice(&[1, 1, b'b']);
        put_varsigned64(&mut blk, -11);
        put_fixed32(&mut blk, 0);
        put_fixed32(&mut blk, 1);
        assert!(matches!(
            decode_index_block(&blk, true),
            Err(Error::Corruption(_))
        ));
    }

    #[test]
    fn random_mutations_never_panic() {
        let mut rng = Rng(0xfeed_beef_cafe_f00d);
        let es = sample(40, 11);
        let fks: Vec<Vec<u8>> = (0..es.len()).map(|i| vec![i as u8; 9]).collect();
        for delta in [false, true] {
            for interval in [1, 16] {
                for fk in [false, true] {
                    let blk = build_index(&es, interval, delta, fk.then_some(&fks[..]));
                    assert_eq!(decode_index_block_ext(&blk, delta, fk).unwrap().len(), 40);
                    for _ in 0..2000 {
                        let m = rng.mutate(&blk);
                        match decode_index_block_ext(&m, delta, fk) {
                            Ok(_) | Err(Error::Corruption(_)) => {}
                            Err(e) => panic!("unexpected error kind {e:?}"),
                        }
                        let _ = decode_index_block_ext(&m, !delta, !fk);
                    }
                }
            }
        }
    }
}
