//! Block checksums as RocksDB writes and verifies them (table/format.cc
//! `ComputeBuiltinChecksum`/`ComputeBuiltinChecksumWithLastByte`, table/format.h
//! `ChecksumModifierForContext`, table/block_based/reader_common.cc `VerifyBlockChecksum`).
//!
//! Every block of a block-based table is followed by a 5-byte trailer: one compression-type byte
//! and a fixed32 checksum over the payload *and* that type byte, plus (format_version >= 6) a
//! per-file, per-offset "context" modifier so a block copied to the wrong place fails its check.

use super::BLOCK_TRAILER_SIZE;
use crate::error::{Error, Result};

/// The checksum function a table was written with (`rocksdb::ChecksumType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumType {
    /// `kNoChecksum`: the stored value is just the context modifier.
    NoChecksum = 0,
    /// `kCRC32c`, stored masked (`crc32c::Mask`).
    Crc32c = 1,
    /// `kxxHash`: XXH32 with seed 0.
    XxHash = 2,
    /// `kxxHash64`: low 32 bits of XXH64 with seed 0.
    XxHash64 = 3,
    /// `kXXH3`: low 32 bits of XXH3_64bits of all but the last byte, xor-mixed with that byte.
    Xxh3 = 4,
}

impl ChecksumType {
    /// Every type RocksDB 10.1.3 can write.
    pub const ALL: [ChecksumType; 5] = [
        ChecksumType::NoChecksum,
        ChecksumType::Crc32c,
        ChecksumType::XxHash,
        ChecksumType::XxHash64,
        ChecksumType::Xxh3,
    ];

    /// Maps the footer's checksum-type byte; anything outside 0..=4 is corruption, as in
    /// `Footer::DecodeFrom` (`IsSupportedChecksumType`).
    pub fn from_u8(v: u8) -> Result<Self> {
        match v {
            0 => Ok(ChecksumType::NoChecksum),
            1 => Ok(ChecksumType::Crc32c),
            2 => Ok(ChecksumType::XxHash),
            3 => Ok(ChecksumType::XxHash64),
            4 => Ok(ChecksumType::Xxh3),
            _ => Err(Error::corruption(format!(
                "Corrupt or unsupported checksum type: {v}"
            ))),
        }
    }
}

/// `crc32c::kMaskDelta` from util/crc32c.h.
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// `crc32c::Mask`: rotate right by 15 bits and add a constant. RocksDB stores masked CRCs because
/// computing the CRC of data that embeds CRCs is otherwise problematic.
#[inline]
pub fn crc32c_mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// `crc32c::Unmask`, the inverse of [`crc32c_mask`] (used only to make error messages show the
/// raw CRC, as RocksDB's do).
#[inline]
pub fn crc32c_unmask(masked: u32) -> u32 {
    masked.wrapping_sub(CRC_MASK_DELTA).rotate_left(15)
}

/// `ModifyChecksumForLastByte` (format.cc): XXH3 folds the final byte in by xor with a multiple
/// of a prime instead of streaming it, so the hot path hashes one contiguous range.
#[inline]
fn modify_checksum_for_last_byte(checksum: u32, last_byte: u8) -> u32 {
    const RANDOM_PRIME: u32 = 0x6b90_83d9;
    checksum ^ u32::from(last_byte).wrapping_mul(RANDOM_PRIME)
}

/// Checksum RocksDB stores for `data` = block payload followed by its 1 compression-type byte,
/// before the context modifier (crc32c is masked as RocksDB masks it; Xxh3 per format.cc
/// `ComputeBuiltinChecksumWithLastByte`). This is `ComputeBuiltinChecksum(type, data, len)`.
pub fn compute(ctype: ChecksumType, data_with_type: &[u8]) -> u32 {
    match ctype {
        ChecksumType::NoChecksum => 0,
        ChecksumType::Crc32c => crc32c_mask(crc32c::crc32c(data_with_type)),
        ChecksumType::XxHash => twox_hash::XxHash32::oneshot(0, data_with_type),
        // Lower32of64: truncation intended.
        ChecksumType::XxHash64 => twox_hash::XxHash64::oneshot(0, data_with_type) as u32,
        ChecksumType::Xxh3 => match data_with_type.split_last() {
            // RocksDB special-cases empty input (no last byte to mix in) as 0.
            None => 0,
            Some((&last, body)) => {
                modify_checksum_for_last_byte(twox_hash::XxHash3_64::oneshot(body) as u32, last)
            }
        },
    }
}

/// format_version 6 context modifier (`ChecksumModifierForContext`): 0 when
/// base_context_checksum == 0, otherwise `base ^ (lower32(offset) + upper32(offset))`.
#[inline]
pub fn context_modifier(base_context_checksum: u32, offset: u64) -> u32 {
    if base_context_checksum == 0 {
        return 0;
    }
    // Lower32of64 / Upper32of64: truncations intended.
    let folded = (offset as u32).wrapping_add((offset >> 32) as u32);
    base_context_checksum ^ folded
}

/// Verifies one block read with its 5-byte trailer (payload, type byte, fixed32 stored checksum)
/// at file `offset`; returns (payload, compression type byte).
///
/// Mirrors `VerifyBlockChecksum`: the modifier is subtracted from the stored value (so the
/// message shows the context-free checksum) and compared with the computed one. As in RocksDB,
/// `NoChecksum` still compares: the writer stores `0 + modifier`, so a stored value other than
/// the modifier is reported as a mismatch.
pub fn verify_block(
    block_with_trailer: &[u8],
    ctype: ChecksumType,
    base_context_checksum: u32,
    offset: u64,
) -> Result<(&[u8], u8)> {
    let Some(block_size) = block_with_trailer.len().checked_sub(BLOCK_TRAILER_SIZE) else {
        return Err(Error::corruption(format!(
            "block at offset {offset} too short for its trailer: {} bytes",
            block_with_trailer.len()
        )));
    };
    let (checked, stored_bytes) = block_with_trailer.split_at(block_size + 1);
    let stored_raw = u32::from_le_bytes(
        stored_bytes
            .try_into()
            .map_err(|_| Error::corruption("block trailer has a bad length"))?,
    );
    let computed = compute(ctype, checked);
    let modifier = context_modifier(base_context_checksum, offset);
    let mut stored = stored_raw.wrapping_sub(modifier);
    let (payload, type_byte) = checked.split_at(block_size);
    // `checked` is block_size + 1 bytes long, so the type byte is always present.
    let ctype_byte = type_byte.first().copied().unwrap_or(0);
    if stored == computed {
        return Ok((payload, ctype_byte));
    }
    let mut computed = computed;
    if ctype == ChecksumType::Crc32c {
        // Unmask for people who might look for the reference CRC value, as RocksDB does.
        stored = crc32c_unmask(stored);
        computed = crc32c_unmask(computed);
    }
    Err(Error::corruption(format!(
        "block checksum mismatch: stored{} = {stored}, computed = {computed}, type = {}  in \
         offset {offset} size {block_size}",
        if modifier != 0 {
            "(context removed)"
        } else {
            ""
        },
        ctype as u8
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::testutil::add_trailer;

    /// `ChecksumAsString` from table_test.cc: the little-endian bytes of the checksum in hex.
    fn as_hex(v: u32) -> String {
        v.to_le_bytes().iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Known-answer vectors copied from RocksDB 10.1.3 table/table_test.cc
    /// `BuiltinChecksumTest.ChecksumSchemas`, which pins the on-disk checksum values.
    #[test]
    fn rocksdb_checksum_schemas() {
        let b0 = b"x".to_vec();
        let b1 = b"This is a short block!x".to_vec();
        let mut b2 = Vec::new();
        for _ in 0..100 {
            b2.extend_from_slice(b"This is a long block!");
        }
        b2.push(b'x');
        // kNoCompression, kSnappyCompression, kZSTD.
        let cts = [0u8, 1, 7];
        let expected: [(ChecksumType, [&str; 10]); 5] = [
            (ChecksumType::NoChecksum, ["00000000"; 10]),
            (
                ChecksumType::Crc32c,
                [
                    "D8EA82A2", "D28F2549", "052B2843", "46F8F711", "583F0355", "2F9B0A57",
                    "ECE7DA1D", "943EF0AB", "43A2EDB1", "00E53D63",
                ],
            ),
            (
                ChecksumType::XxHash,
                [
                    "055DCC02", "3EB065CF", "31F79238", "320D2E00", "4A2E5FB0", "0BD9F652",
                    "B4107E50", "20F4D4BA", "8F1A1F99", "A191A338",
                ],
            ),
            (
                ChecksumType::XxHash64,
                [
                    "99E9D851", "682705DB", "30E7211B", "B7BB58E8", "B74655EF", "B6C8BBBE",
                    "AED9E3B4", "0D4999FE", "F5932423", "6B31BAB1",
                ],
            ),
            (
                ChecksumType::Xxh3,
                [
                    "00000000", "C294D338", "1B174353", "2D0E20C8", "B37FB5E6", "6AFC258D",
                    "5CE54616", "FA2D482E", "23AED845", "15B7BBDE",
                ],
            ),
        ];
        for (t, exp) in expected {
            let mut got = vec![as_hex(compute(t, &[]))];
            for base in [&b0, &b1, &b2] {
                for ct in cts {
                    let mut d = base.clone();
                    *d.last_mut().unwrap() = ct;
                    got.push(as_hex(compute(t, &d)));
                }
            }
            assert_eq!(got, exp, "checksum type {t:?}");
        }
    }

    #[test]
    fn crc_mask_matches_rocksdb() {
        // Mask(0) == kMaskDelta; the empty-input vector above pins the rest.
        assert_eq!(crc32c_mask(0), 0xa282_ead8);
        for v in [0u32, 1, 0xdead_beef, u32::MAX] {
            assert_eq!(crc32c_unmask(crc32c_mask(v)), v);
        }
    }

    #[test]
    fn from_u8() {
        for t in ChecksumType::ALL {
            assert_eq!(ChecksumType::from_u8(t as u8).unwrap(), t);
        }
        assert!(matches!(
            ChecksumType::from_u8(5),
            Err(Error::Corruption(_))
        ));
        assert!(ChecksumType::from_u8(0xff).is_err());
    }

    #[test]
    fn context_modifier_formula() {
        assert_eq!(context_modifier(0, 12345), 0);
        assert_eq!(context_modifier(0x1234_5678, 0), 0x1234_5678);
        let off = 0x0000_0002_0000_0003u64;
        assert_eq!(context_modifier(0xff00_ff00, off), 0xff00_ff00 ^ 5);
        assert_eq!(
            context_modifier(1, u64::MAX),
            1 ^ u32::MAX.wrapping_add(u32::MAX)
        );
    }

    #[test]
    fn verify_round_trip_every_type() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for t in ChecksumType::ALL {
            for (base, offset) in [(0u32, 0u64), (0x9e37_79b9, 4096), (7, 1 << 40)] {
                let blk = add_trailer(&payload, 1, t, base, offset);
                let (p, ct) = verify_block(&blk, t, base, offset).unwrap();
                assert_eq!(p, &payload[..]);
                assert_eq!(ct, 1);
                // A block moved elsewhere fails when context checksums are on.
                if base != 0 {
                    assert!(verify_block(&blk, t, base, offset + 1).is_err());
                }
            }
        }
    }

    #[test]
    fn every_single_byte_flip_fails() {
        let payload: Vec<u8> = (0..64u8).collect();
        for t in ChecksumType::ALL {
            let blk = add_trailer(&payload, 0, t, 0x5555_aaaa, 777);
            // NoChecksum only protects the stored value itself.
            let range = if t == ChecksumType::NoChecksum {
                blk.len() - 4..blk.len()
            } else {
                0..blk.len()
            };
            for i in range {
                for bit in 0..8 {
                    let mut bad = blk.clone();
                    bad[i] ^= 1 << bit;
                    let e = verify_block(&bad, t, 0x5555_aaaa, 777).unwrap_err();
                    match e {
                        Error::Corruption(m) => {
                            assert!(m.starts_with("block checksum mismatch"), "{m}")
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn message_like_rocksdb() {
        let blk = add_trailer(b"abc", 0, ChecksumType::Crc32c, 0, 10);
        let mut bad = blk.clone();
        bad[0] ^= 1;
        let Error::Corruption(m) = verify_block(&bad, ChecksumType::Crc32c, 0, 10).unwrap_err()
        else {
            panic!()
        };
        let stored = crc32c::crc32c(b"abc\0");
        assert!(m.contains(&format!("stored = {stored}")), "{m}");
        assert!(m.contains("type = 1  in "), "{m}");
        let blk = add_trailer(b"abc", 0, ChecksumType::Xxh3, 3, 10);
        let Error::Corruption(m) = verify_block(&blk, ChecksumType::Xxh3, 4, 10).unwrap_err()
        else {
            panic!()
        };
        assert!(m.starts_with("block checksum mismatch: stored(context removed) = "));
    }

    #[test]
    fn too_short() {
        for t in ChecksumType::ALL {
            for n in 0..BLOCK_TRAILER_SIZE {
                assert!(matches!(
                    verify_block(&vec![0u8; n], t, 0, 0),
                    Err(Error::Corruption(_))
                ));
            }
        }
        // An empty payload with a valid trailer is fine.
        let blk = add_trailer(b"", 0, ChecksumType::Crc32c, 0, 0);
        assert_eq!(
            verify_block(&blk, ChecksumType::Crc32c, 0, 0).unwrap().0,
            b""
        );
    }
}
