//! `block::data::DataBlockCursor` over an arbitrary payload (one uncompressed data block, trailer
//! already stripped): reset, then next until Ok(false) or Err, touching key() and value() at each
//! step. The cursor is then reused on a prefix and a suffix of the same bytes, as a long-lived
//! cursor in a compaction is reused across blocks (including after a corruption).
//!
//! Contract: no panic / out-of-bounds / hang. Invariants checked:
//! * every value lies inside the payload, before its 4-byte block footer;
//! * a key is never longer than the payload (it is made of key deltas taken from it);
//! * the number of entries is bounded (each entry takes >= 3 header bytes), so a cursor that
//!   keeps returning Ok(true) is reported as a hang instead of spinning;
//! * after Ok(false) the cursor stays at the end (Ok(false) again, empty key);
//! * after an Err the cursor stays failed (Err again), as documented on `DataBlockCursor`.
//!
//! Big-block mode: an input starting with 0xB1 is fuzzed as `filler ++ rest`, where the filler is
//! one valid 65535-byte entry (shared 0, a 65530-byte key of zeros, empty value). That makes a
//! block larger than 64 KiB, whose footer RocksDB reads as a plain 32-bit restart count (never a
//! hash index), which mutation alone would take very long to grow to.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use ringmerge::block::data::DataBlockCursor;

fn walk(cursor: &mut DataBlockCursor, payload: &[u8]) {
    if cursor.reset(payload).is_err() {
        // A failed reset leaves an idle, failed cursor: it must not yield entries.
        assert!(cursor.next(payload).is_err() || cursor.key().is_empty());
        return;
    }
    let max_entries = payload.len() / 3 + 1;
    let base = payload.as_ptr() as usize;
    let mut entries = 0usize;
    loop {
        match cursor.next(payload) {
            Ok(true) => {
                entries += 1;
                assert!(
                    entries <= max_entries,
                    "cursor yielded {entries} entries from a {}-byte block",
                    payload.len()
                );
                let key = cursor.key();
                assert!(key.len() <= payload.len(), "key longer than the block");
                let value = cursor.value(payload);
                let start = value.as_ptr() as usize;
                if !value.is_empty() {
                    assert!(start >= base, "value before the payload");
                    assert!(
                        start + value.len() <= base + payload.len().saturating_sub(4),
                        "value {}..{} runs into the block footer of a {}-byte block",
                        start - base,
                        start - base + value.len(),
                        payload.len()
                    );
                }
                // Read both ends of each slice so ASan would see a bad one.
                std::hint::black_box((key.first(), key.last(), value.first(), value.last()));
            }
            Ok(false) => {
                assert!(cursor.key().is_empty());
                assert!(cursor.value(payload).is_empty());
                assert!(matches!(cursor.next(payload), Ok(false)), "end is not sticky");
                return;
            }
            Err(_) => {
                assert!(cursor.next(payload).is_err(), "corruption is not sticky");
                let _ = cursor.key();
                let _ = cursor.value(payload);
                return;
            }
        }
    }
}

/// Size of the big-block filler (see "Big-block mode" above).
const BIG: usize = 65535;

/// See "Big-block mode" above.
fn payload(data: &[u8]) -> Cow<'_, [u8]> {
    match data.split_first() {
        Some((0xB1, rest)) => {
            // shared = 0, non_shared = varint(BIG - 5) (3 bytes), value_len = 0, key of zeros.
            let k = BIG - 5;
            let mut v = vec![0u8, (k as u8) | 0x80, ((k >> 7) as u8) | 0x80, (k >> 14) as u8, 0];
            v.resize(BIG, 0);
            v.extend_from_slice(rest);
            Cow::Owned(v)
        }
        _ => Cow::Borrowed(data),
    }
}

fuzz_target!(|data: &[u8]| {
    let data: &[u8] = &payload(data);
    let mut cursor = DataBlockCursor::new();
    // An idle cursor yields nothing.
    assert!(matches!(cursor.next(data), Ok(false)));
    walk(&mut cursor, data);
    // Reuse the same cursor on a prefix and a suffix of the input (cut at a point derived from
    // all bytes: a well-formed block always starts with 0, so its first byte would not do).
    let cut = data
        .iter()
        .fold(0usize, |a, &b| a.wrapping_mul(31).wrapping_add(usize::from(b)))
        % (data.len() + 1);
    walk(&mut cursor, &data[..cut]);
    walk(&mut cursor, &data[cut..]);
    // And once more on the full input: the result must not depend on earlier use.
    walk(&mut cursor, data);
});
