//! The SST footer (table/format.cc `Footer::DecodeFrom`, `FooterBuilder::Build`).
//!
//! format_version 1..=5 (53 bytes):
//! ```text
//! checksum_type u8 | metaindex handle | index handle | zero padding to 40 bytes
//!                  | fixed32 format_version | fixed64 magic
//! ```
//! format_version >= 6 (53 bytes; the index handle moved into the metaindex):
//! ```text
//! checksum_type u8 | 3e 00 7a 00 | fixed32 footer checksum | fixed32 base_context_checksum
//!   | fixed32 metaindex size | 16 unchecked reserved bytes | 8 reserved bytes that must be zero
//!   | fixed32 format_version | fixed64 magic
//! ```
//! The fv6 footer checksum covers all 53 bytes with the checksum field zeroed, plus the context
//! modifier for the footer's own offset. The metaindex block ends right before the footer.
//! Legacy footers (format_version 0, 48 bytes, legacy magic) are not supported.

use super::checksum::{compute, context_modifier, ChecksumType};
use super::varint::{get_fixed32, get_fixed64};
use super::{BlockHandle, BLOCK_TRAILER_SIZE};
use crate::error::{Error, Result};

/// `Footer::kNewVersionsEncodedLength` (= `kMaxEncodedLength`).
pub const FOOTER_LEN: usize = 53;
/// `Footer::kVersion0EncodedLength` (= `kMinEncodedLength`): no file shorter can be an SST.
pub const LEGACY_FOOTER_LEN: usize = 48;

/// `kBlockBasedTableMagicNumber`.
pub const BLOCK_BASED_TABLE_MAGIC_NUMBER: u64 = 0x88e2_41b7_85f4_cff7;
/// `kLegacyBlockBasedTableMagicNumber` (format_version 0 footer).
pub const LEGACY_BLOCK_BASED_TABLE_MAGIC_NUMBER: u64 = 0xdb47_7524_8b80_fb57;
/// `kPlainTableMagicNumber`.
const PLAIN_TABLE_MAGIC_NUMBER: u64 = 0x8242_2296_63bf_9564;
/// `kLegacyPlainTableMagicNumber`.
const LEGACY_PLAIN_TABLE_MAGIC_NUMBER: u64 = 0x4f34_18eb_7a8f_13b8;
/// `kCuckooTableMagicNumber`.
const CUCKOO_TABLE_MAGIC_NUMBER: u64 = 0x9267_89d0_c5f1_7873;

/// `kExtendedMagic`, the first bytes of part 2 in format_version >= 6.
const EXTENDED_MAGIC: [u8; 4] = [0x3e, 0x00, 0x7a, 0x00];
/// `kLatestFormatVersion`.
const LATEST_FORMAT_VERSION: u32 = 6;
/// `BlockBasedTableFactory::kMinSupportedFormatVersion`; older files go to the stock path.
const MIN_SUPPORTED_FORMAT_VERSION: u32 = 2;

/// A decoded block-based table footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    /// Checksum type of every block trailer in the file.
    pub checksum_type: ChecksumType,
    /// Table format_version (2..=6).
    pub format_version: u32,
    /// fv6 per-file context seed for block checksums; 0 (no context) before fv6.
    pub base_context_checksum: u32,
    /// The metaindex block.
    pub metaindex_handle: BlockHandle,
    /// The index block; `None` for format_version >= 6, where the metaindex locates it.
    pub index_handle: Option<BlockHandle>,
}

fn fixed32_at(b: &[u8], at: usize) -> u32 {
    let mut p = at;
    // Callers only pass offsets inside the 53-byte footer.
    get_fixed32(b, &mut p).unwrap_or(0)
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Decodes the footer. `tail` is the last min(53, file_size) bytes of the file (a longer tail is
/// accepted and only its last 53 bytes are used); `file_size` locates the footer, which matters
/// for the fv6 checksum context and the metaindex position.
pub fn parse(tail: &[u8], file_size: u64) -> Result<Footer> {
    if file_size < LEGACY_FOOTER_LEN as u64 {
        return Err(Error::corruption(format!(
            "file is too short ({file_size} bytes) to be an sstable"
        )));
    }
    if (tail.len() as u64) > file_size {
        return Err(Error::corruption(format!(
            "footer input of {} bytes is longer than the {file_size}-byte file",
            tail.len()
        )));
    }
    if tail.len() < LEGACY_FOOTER_LEN {
        return Err(Error::corruption(format!(
            "Missing SST footer data: {} bytes, file size {file_size}",
            tail.len()
        )));
    }
    let mut mp = tail.len() - 8;
    let magic = get_fixed64(tail, &mut mp).unwrap_or(0);
    match magic {
        BLOCK_BASED_TABLE_MAGIC_NUMBER => {}
        LEGACY_BLOCK_BASED_TABLE_MAGIC_NUMBER | LEGACY_PLAIN_TABLE_MAGIC_NUMBER => {
            return Err(Error::not_supported(
                "legacy SST footer (format_version 0) is not supported",
            ));
        }
        PLAIN_TABLE_MAGIC_NUMBER | CUCKOO_TABLE_MAGIC_NUMBER => {
            return Err(Error::not_supported(format!(
                "not a block-based table (magic number {magic:#018x})"
            )));
        }
        _ => {
            return Err(Error::corruption(format!(
                "Bad table magic number: expected {BLOCK_BASED_TABLE_MAGIC_NUMBER}, found {magic}"
            )));
        }
    }
    let format_version = fixed32_at(tail, tail.len() - 12);
    if format_version > LATEST_FORMAT_VERSION {
        return Err(Error::corruption(format!(
            "Corrupt or unsupported format_version: {format_version}"
        )));
    }
    if tail.len() < FOOTER_LEN {
        return Err(Error::corruption("Input is too short to be an SST file"));
    }
    if format_version < MIN_SUPPORTED_FORMAT_VERSION {
        return Err(Error::not_supported(format!(
            "format_version {format_version} is not supported"
        )));
    }
    let f = &tail[tail.len() - FOOTER_LEN..];
    // file_size >= tail.len() >= FOOTER_LEN, so this cannot underflow.
    let footer_offset = file_size - FOOTER_LEN as u64;
    let checksum_type = ChecksumType::from_u8(f[0])?;

    if format_version < 6 {
        let mut p = 1;
        let part2 = &f[..41];
        let metaindex_handle = BlockHandle::decode_from(part2, &mut p)?;
        let index_handle = BlockHandle::decode_from(part2, &mut p)?;
        // The rest of part 2 is padding that RocksDB ignores.
        return Ok(Footer {
            checksum_type,
            format_version,
            base_context_checksum: 0,
            metaindex_handle,
            index_handle: Some(index_handle),
        });
    }

    if f[1..5] != EXTENDED_MAGIC {
        return Err(Error::corruption(format!(
            "Bad extended magic number: 0x{}",
            hex_upper(&f[1..5])
        )));
    }
    let stored_checksum = fixed32_at(f, 5);
    let base_context_checksum = fixed32_at(f, 9);
    if context_modifier(base_context_checksum, 0) == 0 {
        return Err(Error::corruption("Invalid base context checksum"));
    }
    let mut copy = [0u8; FOOTER_LEN];
    copy.copy_from_slice(f);
    copy[5..9].fill(0);
    let computed = compute(checksum_type, &copy)
        .wrapping_add(context_modifier(base_context_checksum, footer_offset));
    if computed != stored_checksum {
        return Err(Error::corruption(format!(
            "Footer at {footer_offset} checksum mismatch"
        )));
    }
    let metaindex_size = u64::from(fixed32_at(f, 13));
    let metaindex_handle = footer_offset
        .checked_sub(BLOCK_TRAILER_SIZE as u64)
        .and_then(|end| end.checked_sub(metaindex_size))
        .map(|offset| BlockHandle {
            offset,
            size: metaindex_size,
        })
        .ok_or_else(|| {
            Error::corruption(format!(
                "metaindex of {metaindex_size} bytes does not fit before the footer at \
                 {footer_offset}"
            ))
        })?;
    // Bytes 17..33 are unchecked reserved padding; 33..41 must be zero.
    if f[33..41].iter().any(|&b| b != 0) {
        return Err(Error::not_supported(
            "File uses a future feature not supported in this version",
        ));
    }
    Ok(Footer {
        checksum_type,
        format_version,
        base_context_checksum,
        metaindex_handle,
        index_handle: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::testutil::{build_footer, Rng};
    use crate::block::varint::put_fixed64;

    fn h(offset: u64, size: u64) -> BlockHandle {
        BlockHandle { offset, size }
    }

    #[test]
    fn fv2_to_5_round_trip() {
        for fv in 2..=5 {
            for t in ChecksumType::ALL {
                let file_size = 1_000_000u64;
                let meta = h(900_000, 1234);
                let idx = h(123_456_789_012, 99_999);
                let f = build_footer(fv, file_size - 53, t, meta, idx, 0);
                let got = parse(&f, file_size).unwrap();
                assert_eq!(
                    got,
                    Footer {
                        checksum_type: t,
                        format_version: fv,
                        base_context_checksum: 0,
                        metaindex_handle: meta,
                        index_handle: Some(idx),
                    }
                );
                // A longer tail works too.
                let mut long = vec![0xaa; 100];
                long.extend_from_slice(&f);
                assert_eq!(parse(&long, file_size).unwrap(), got);
            }
        }
    }

    #[test]
    fn fv6_round_trip_and_flips() {
        for t in ChecksumType::ALL {
            let file_size = 77_777u64;
            let footer_offset = file_size - 53;
            let meta = h(footer_offset - 5 - 321, 321);
            let base = 0x1357_9bdf;
            let f = build_footer(6, footer_offset, t, meta, h(0, 0), base);
            let got = parse(&f, file_size).unwrap();
            assert_eq!(
                got,
                Footer {
                    checksum_type: t,
                    format_version: 6,
                    base_context_checksum: base,
                    metaindex_handle: meta,
                    index_handle: None,
                }
            );
            // At another file offset the context differs, so the footer no longer verifies.
            assert!(matches!(
                parse(&f, file_size + 1),
                Err(Error::Corruption(_))
            ));
            // Any single-bit change is rejected, except: a format_version flipped below 6 is
            // read with the older layout (as RocksDB would), and with NoChecksum the metaindex
            // size and unchecked padding are not covered by anything.
            for i in 0..53 {
                for bit in 0..8 {
                    let mut b = f.clone();
                    b[i] ^= 1 << bit;
                    match parse(&b, file_size) {
                        Err(_) => {}
                        Ok(g) if (41..45).contains(&i) => assert!(g.format_version < 6),
                        Ok(_) => assert!(
                            t == ChecksumType::NoChecksum && (13..33).contains(&i),
                            "t={t:?} byte {i} bit {bit}"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn fv6_specific_errors() {
        let file_size = 10_000u64;
        let off = file_size - 53;
        // Zero base context checksum.
        let f = build_footer(
            6,
            off,
            ChecksumType::Crc32c,
            h(off - 5 - 10, 10),
            h(0, 0),
            0,
        );
        let Err(Error::Corruption(m)) = parse(&f, file_size) else {
            panic!()
        };
        assert_eq!(m, "Invalid base context checksum");
        // Metaindex larger than the file.
        let f = build_footer(6, off, ChecksumType::Crc32c, h(0, 1 << 20), h(0, 0), 5);
        assert!(matches!(parse(&f, file_size), Err(Error::Corruption(_))));
        // Non-zero checked reserved bytes (with a recomputed checksum) -> NotSupported.
        let mut f = build_footer(6, off, ChecksumType::Xxh3, h(off - 5, 0), h(0, 0), 5);
        f[35] = 1;
        f[5..9].fill(0);
        let c = compute(ChecksumType::Xxh3, &f).wrapping_add(context_modifier(5, off));
        f[5..9].copy_from_slice(&c.to_le_bytes());
        assert!(matches!(parse(&f, file_size), Err(Error::NotSupported(_))));
        // Bad extended magic.
        let mut f = build_footer(6, off, ChecksumType::Crc32c, h(off - 5, 0), h(0, 0), 5);
        f[2] = 1;
        let Err(Error::Corruption(m)) = parse(&f, file_size) else {
            panic!()
        };
        assert_eq!(m, "Bad extended magic number: 0x3E017A00");
    }

    #[test]
    fn magic_and_version_handling() {
        // Legacy footer: 48 bytes, two handles, legacy magic.
        let mut legacy = vec![0u8; 40];
        put_fixed64(&mut legacy, LEGACY_BLOCK_BASED_TABLE_MAGIC_NUMBER);
        assert!(matches!(parse(&legacy, 48), Err(Error::NotSupported(_))));
        let mut legacy_in_53 = vec![0u8; 5];
        legacy_in_53.extend_from_slice(&legacy);
        assert!(matches!(
            parse(&legacy_in_53, 1000),
            Err(Error::NotSupported(_))
        ));
        // Plain table.
        let mut plain = vec![0u8; 45];
        put_fixed64(&mut plain, PLAIN_TABLE_MAGIC_NUMBER);
        assert!(matches!(parse(&plain, 1000), Err(Error::NotSupported(_))));
        // Garbage magic.
        assert!(matches!(parse(&[0u8; 53], 1000), Err(Error::Corruption(_))));
        // format_version 1 and 0 with the new magic: NotSupported; 7: Corruption.
        let f = build_footer(5, 0, ChecksumType::Crc32c, h(1, 2), h(3, 4), 0);
        for (fv, unsupported) in [(0u32, true), (1, true), (7, false), (u32::MAX, false)] {
            let mut b = f.clone();
            b[41..45].copy_from_slice(&fv.to_le_bytes());
            let r = parse(&b, 53);
            if unsupported {
                assert!(matches!(r, Err(Error::NotSupported(_))), "{fv}");
            } else {
                assert!(matches!(r, Err(Error::Corruption(_))), "{fv}");
            }
        }
        // Unknown checksum type.
        let mut b = f.clone();
        b[0] = 9;
        assert!(matches!(parse(&b, 53), Err(Error::Corruption(_))));
    }

    #[test]
    fn short_inputs() {
        let f = build_footer(5, 100, ChecksumType::Crc32c, h(1, 2), h(3, 4), 0);
        assert!(parse(&f, 153).is_ok());
        for n in 0..53 {
            assert!(matches!(
                parse(&f[53 - n..], 153),
                Err(Error::Corruption(_))
            ));
            assert!(parse(&f[53 - n..], n as u64).is_err());
        }
        // Tail longer than the file.
        assert!(parse(&f, 52).is_err());
        // Bad handle varints.
        let mut b = f.clone();
        b[1..41].fill(0xff);
        assert!(matches!(parse(&b, 153), Err(Error::Corruption(_))));
    }

    #[test]
    fn random_mutations_never_panic() {
        let mut rng = Rng(0x0bad_5eed);
        let f6 = build_footer(6, 947, ChecksumType::Crc32c, h(900, 42), h(0, 0), 77);
        let f5 = build_footer(5, 947, ChecksumType::XxHash, h(900, 42), h(5, 6), 0);
        for f in [f6, f5] {
            assert!(parse(&f, 1000).is_ok());
            for _ in 0..5000 {
                let m = rng.mutate(&f);
                let size = if rng.below(4) == 0 {
                    rng.next_u64() % 2000
                } else {
                    1000
                };
                let _ = parse(&m, size);
            }
        }
    }
}
