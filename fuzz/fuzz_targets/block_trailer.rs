//! `block::checksum::verify_block` with every checksum type and an arbitrary context
//! (base_context_checksum, offset).
//!
//! Input layout: `base u32 LE | offset u64 LE | block_with_trailer...` (shorter inputs use zeros).
//!
//! Contract: no panic / out-of-bounds / hang. Invariants checked:
//! * on success the returned payload and type byte are the block's own bytes;
//! * a trailer built the way RocksDB writes it (`compute` + `context_modifier`) over the same
//!   payload always verifies, for every checksum type, base and offset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmerge::block::checksum::{compute, context_modifier, verify_block, ChecksumType};
use ringmerge::block::BLOCK_TRAILER_SIZE;

fuzz_target!(|data: &[u8]| {
    let mut hdr = [0u8; 12];
    let n = data.len().min(12);
    hdr[..n].copy_from_slice(&data[..n]);
    let base = u32::from_le_bytes(hdr[0..4].try_into().unwrap());
    let offset = u64::from_le_bytes(hdr[4..12].try_into().unwrap());
    let block = &data[n..];

    for ct in ChecksumType::ALL {
        for (b, o) in [(base, offset), (0, offset), (base, 0)] {
            match verify_block(block, ct, b, o) {
                Ok((payload, type_byte)) => {
                    assert!(block.len() >= BLOCK_TRAILER_SIZE);
                    let size = block.len() - BLOCK_TRAILER_SIZE;
                    assert_eq!(payload, &block[..size]);
                    assert_eq!(type_byte, block[size]);
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }

        // Round trip: re-seal the payload with a correct trailer; it must verify.
        if let Some(size) = block.len().checked_sub(BLOCK_TRAILER_SIZE) {
            let mut sealed = block[..=size].to_vec();
            let c = compute(ct, &sealed).wrapping_add(context_modifier(base, offset));
            sealed.extend_from_slice(&c.to_le_bytes());
            let (payload, type_byte) = verify_block(&sealed, ct, base, offset)
                .unwrap_or_else(|e| panic!("re-sealed block fails for {ct:?}: {e}"));
            assert_eq!(payload, &block[..size]);
            assert_eq!(type_byte, block[size]);
        }
    }
});
