//! `block::footer::parse` on arbitrary bytes.
//!
//! Input layout: `flags u8 | v u64 LE | tail...`.
//! * flags bit 0 clear: `file_size = tail.len() + (v mod 2^32)`, i.e. a plausible file that holds
//!   the tail (seeds use this to place a real footer at its real offset); set: `file_size = v`,
//!   anything at all (too short, shorter than the tail, near u64::MAX).
//! * flags bit 1 set: before parsing, the harness rewrites the fv6 footer checksum field so it
//!   matches, letting the fuzzer reach the code behind the checksum (metaindex placement, reserved
//!   bytes) that random mutation would otherwise never pass.
//!
//! Contract: no panic / out-of-bounds / hang; on success the result is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmerge::block::checksum::{compute, context_modifier, ChecksumType};
use ringmerge::block::footer::{parse, FOOTER_LEN};
use ringmerge::block::BLOCK_TRAILER_SIZE;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        // Still exercise the degenerate inputs.
        let _ = parse(data, data.len() as u64);
        let _ = parse(data, 0);
        return;
    }
    let flags = data[0];
    let v = u64::from_le_bytes(data[1..9].try_into().unwrap());
    let mut tail = data[9..].to_vec();
    let file_size = if flags & 1 == 0 {
        (tail.len() as u64).saturating_add(v & 0xffff_ffff)
    } else {
        v
    };
    if flags & 2 != 0 && tail.len() >= FOOTER_LEN && file_size >= FOOTER_LEN as u64 {
        let n = tail.len();
        let f = &mut tail[n - FOOTER_LEN..];
        if let Ok(ct) = ChecksumType::from_u8(f[0]) {
            let base = u32::from_le_bytes(f[9..13].try_into().unwrap());
            f[5..9].fill(0);
            let c = compute(ct, f)
                .wrapping_add(context_modifier(base, file_size - FOOTER_LEN as u64));
            f[5..9].copy_from_slice(&c.to_le_bytes());
        }
    }

    let Ok(footer) = parse(&tail, file_size) else {
        return;
    };
    // Invariants of a successfully parsed footer.
    assert!(tail.len() >= FOOTER_LEN);
    assert!(file_size >= tail.len() as u64);
    assert!((2..=6).contains(&footer.format_version), "{footer:?}");
    assert_eq!(footer.checksum_type as u8, tail[tail.len() - FOOTER_LEN]);
    if footer.format_version >= 6 {
        assert!(footer.index_handle.is_none());
        assert_ne!(footer.base_context_checksum, 0);
        // The metaindex block (plus trailer) ends exactly where the footer starts.
        let end = footer
            .metaindex_handle
            .offset
            .checked_add(footer.metaindex_handle.size)
            .and_then(|e| e.checked_add(BLOCK_TRAILER_SIZE as u64))
            .expect("metaindex end overflows");
        assert_eq!(end, file_size - FOOTER_LEN as u64, "{footer:?}");
    } else {
        assert!(footer.index_handle.is_some());
        assert_eq!(footer.base_context_checksum, 0);
    }
});
