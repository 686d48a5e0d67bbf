//! `block::compression::Decompressor` on arbitrary payloads, for every codec it decodes and the
//! ones it refuses, with and without a dictionary, reusing one decompressor and one output
//! buffer across calls (as a run cursor does).
//!
//! Input layout: `type u8 | dict_len u8 | dict[dict_len] | payload...` (shorter inputs are
//! padded with zeros).
//!
//! Contract: no panic / out-of-bounds / hang; unsupported types are `NotSupported`; a ZSTD block
//! that decodes has exactly its announced size. Payloads announcing more than 1 MiB are skipped:
//! like RocksDB, the decoder allocates what the (checksum-verified) size prefix says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmerge::block::compression::{announced_len, ctype, is_supported, Decompressor};
use ringmerge::error::Error;

const TYPES: [u8; 7] = [
    ctype::SNAPPY,
    ctype::ZLIB,
    ctype::LZ4,
    ctype::LZ4HC,
    ctype::ZSTD,
    ctype::BZIP2,
    ctype::XPRESS,
];

fuzz_target!(|data: &[u8]| {
    let t = TYPES[data.first().copied().unwrap_or(0) as usize % TYPES.len()];
    let dict_len = data.get(1).copied().unwrap_or(0) as usize;
    let rest = data.get(2..).unwrap_or(&[]);
    let (dict, payload) = rest.split_at(dict_len.min(rest.len()));
    if announced_len(t, payload).is_some_and(|n| n > 1 << 20) {
        return;
    }
    let mut d = Decompressor::new();
    let mut out = Vec::new();
    for (key, dict) in [(1u64, dict), (0, &[][..]), (1, dict)] {
        match d.decompress(t, payload, dict, key, &mut out) {
            Ok(()) => {
                assert!(is_supported(t));
                if t == ctype::ZSTD {
                    assert_eq!(Some(out.len()), announced_len(t, payload));
                }
            }
            Err(Error::NotSupported(_)) => assert!(!is_supported(t)),
            Err(e) => {
                assert!(is_supported(t), "{e}");
            }
        }
    }
});
