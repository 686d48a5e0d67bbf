//! `block::index::decode_index_block` / `decode_index_block_ext` on an arbitrary payload, with
//! both value encodings (plain and delta-encoded) and with/without the first-key variant
//! (`kBinarySearchWithFirstKey`).
//!
//! Contract: no panic / out-of-bounds / hang. Invariants checked on success: entry count and key
//! sizes are bounded by the payload, and `decode_index_block` agrees with
//! `decode_index_block_ext(.., false)`.
//!
//! Big-block mode: an input starting with 0xB1 is fuzzed as `filler ++ rest`, where the filler is
//! one valid 65535-byte index entry for the value encoding being decoded (shared 0, a key of
//! zeros, handle (0, 0), empty first key when that variant is decoded). That makes a block larger
//! than 64 KiB, whose footer is read as a plain 32-bit restart count.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use ringmerge::block::index::{decode_index_block, decode_index_block_ext};

/// Size of the big-block filler.
const BIG: usize = 65535;

fn payload(big: bool, rest: &[u8], delta: bool, first_key: bool) -> Cow<'_, [u8]> {
    if !big {
        return Cow::Borrowed(rest);
    }
    // Value: varint64 offset 0, varint64 size 0[, varint32 first-key length 0].
    let value: &[u8] = if first_key { &[0, 0, 0] } else { &[0, 0] };
    let header = if delta { 4 } else { 5 };
    let k = BIG - header - value.len();
    // shared = 0, non_shared = varint(k) (3 bytes), [value_len].
    let mut v = vec![0u8, (k as u8) | 0x80, ((k >> 7) as u8) | 0x80, (k >> 14) as u8];
    if !delta {
        v.push(value.len() as u8);
    }
    v.resize(v.len() + k, 0);
    v.extend_from_slice(value);
    debug_assert_eq!(v.len(), BIG);
    v.extend_from_slice(rest);
    Cow::Owned(v)
}

fuzz_target!(|data: &[u8]| {
    let (big, rest) = match data.split_first() {
        Some((0xB1, rest)) => (true, rest),
        _ => (false, data),
    };
    for delta in [false, true] {
        let p: &[u8] = &payload(big, rest, delta, false);
        let plain = decode_index_block(p, delta);
        let ext = decode_index_block_ext(p, delta, false);
        match (&plain, &ext) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.len(), b.len());
                for ((k, h), e) in a.iter().zip(b) {
                    assert_eq!(k, &e.key);
                    assert_eq!(h, &e.handle);
                    assert!(e.first_internal_key.is_empty());
                }
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!(
                "decode_index_block and decode_index_block_ext disagree: {plain:?} vs {ext:?}"
            ),
        }
        if let Ok(entries) = &ext {
            // Each entry takes at least 2 header bytes.
            assert!(entries.len() <= p.len() / 2 + 1);
            for e in entries {
                assert!(e.key.len() <= p.len());
            }
        }

        let p: &[u8] = &payload(big, rest, delta, true);
        if let Ok(entries) = decode_index_block_ext(p, delta, true) {
            assert!(entries.len() <= p.len() / 2 + 1);
            for e in &entries {
                assert!(e.key.len() <= p.len());
                assert!(e.first_internal_key.len() <= p.len());
            }
        }
    }
});
