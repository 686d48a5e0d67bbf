//! Rust mirror of bpf/merge_abi.h: the structs the BPF merge program and its driver share in the
//! arena. Field order, offsets, sizes and alignment must match the C header exactly; the
//! compile-time assertions at the end of this file (every field's offset and every struct's size,
//! as the C compiler lays out the header) and the differential tests keep them honest.

/// A verified, uncompressed data block: payload address and the end of its entries.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Block {
    pub addr: u64,
    pub data_end: u32,
    pub pad: u32,
}

pub const RUN_LOAD: u32 = 0;
pub const RUN_VALID: u32 = 1;
pub const RUN_NEED_CHUNK: u32 = 2;
pub const RUN_DONE: u32 = 3;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    pub blocks: u64,
    pub nblocks: u32,
    pub block_idx: u32,
    pub base: u64,
    pub data_end: u32,
    pub next: u32,
    pub key: u64,
    pub key_cap: u32,
    pub key_len: u32,
    pub value: u64,
    pub value_len: u32,
    pub state: u32,
    pub packed: u64,
    pub started: u32,
    pub zero_copy: u32,
    pub prefix: u64,
    pub prefix2: u64,
    pub chunk_emits: u32,
    pub pad: u32,
}

pub const BATCH_FULL: u32 = 1;
pub const EOF: u32 = 2;
pub const NEED_CHUNK: u32 = 3;
pub const NEED_KEY: u32 = 4;
pub const NEED_OUT: u32 = 5;
pub const CORRUPT: u32 = 6;
pub const INDEX_FULL: u32 = 7;
pub const AGAIN: u32 = 8;

pub const NO_RUN: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Session {
    pub nruns: u32,
    pub heap_len: u32,
    pub runs: u64,
    pub heap: u64,
    pub start: u64,
    pub start_len: u32,
    pub has_start: u32,
    pub end: u64,
    pub end_len: u32,
    pub has_end: u32,
    pub out_data: u64,
    pub out_cap: u32,
    pub out_len: u32,
    pub out_target: u32,
    pub index_cap: u32,
    pub out_index: u64,
    pub index_len: u32,
    pub initialized: u32,
    pub pending: u32,
    pub result: u32,
    pub run: u32,
    pub detail: u32,
    pub need: u64,
    pub emitted: u64,
    pub batch_bytes: u32,
    pub init_next: u32,
}

/// The `test_run` context.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Args {
    pub session: u64,
    pub calls: u64,
}

/// What an `CORRUPT` detail code means.
pub fn corrupt_detail(code: u32) -> &'static str {
    match code {
        1 => "bad entry header",
        2 => "shared key prefix longer than the previous key",
        3 => "entry extends past the block's entries",
        4 => "internal key shorter than 8 bytes",
        _ => "malformed entry",
    }
}

const _: () = assert!(std::mem::size_of::<Block>() == 16);
const _: () = assert!(std::mem::size_of::<Run>() == 104);
const _: () = assert!(std::mem::size_of::<Session>() == 136);
// The program writes `struct rm_out_entry`, which C++ reads as the contract's BatchEntry.
const _: () = assert!(std::mem::size_of::<crate::contract::BatchEntry>() == 24);
const _: () = assert!(std::mem::align_of::<crate::contract::BatchEntry>() == 8);
const _: () = assert!(std::mem::size_of::<Args>() == 16);

/// Asserts at compile time that each field of `$ty` lies at the byte offset given for it: the
/// offsets of the C struct it mirrors (C lays fields out in order, each at the next multiple of
/// its alignment: 4 for __u32, 8 for __u64).
macro_rules! assert_offsets {
    ($ty:ty { $($field:ident: $offset:literal),* $(,)? }) => {
        const _: () = {
            $(assert!(std::mem::offset_of!($ty, $field) == $offset);)*
        };
    };
}

// struct rm_block
assert_offsets!(Block {
    addr: 0,
    data_end: 8,
    pad: 12,
});
// struct rm_run
assert_offsets!(Run {
    blocks: 0,
    nblocks: 8,
    block_idx: 12,
    base: 16,
    data_end: 24,
    next: 28,
    key: 32,
    key_cap: 40,
    key_len: 44,
    value: 48,
    value_len: 56,
    state: 60,
    packed: 64,
    started: 72,
    zero_copy: 76,
    prefix: 80,
    prefix2: 88,
    chunk_emits: 96,
    pad: 100,
});
// struct rm_session
assert_offsets!(Session {
    nruns: 0,
    heap_len: 4,
    runs: 8,
    heap: 16,
    start: 24,
    start_len: 32,
    has_start: 36,
    end: 40,
    end_len: 48,
    has_end: 52,
    out_data: 56,
    out_cap: 64,
    out_len: 68,
    out_target: 72,
    index_cap: 76,
    out_index: 80,
    index_len: 88,
    initialized: 92,
    pending: 96,
    result: 100,
    run: 104,
    detail: 108,
    need: 112,
    emitted: 120,
    batch_bytes: 128,
    init_next: 132,
});
// struct rm_out_entry, which the program writes and C++ reads as the contract's BatchEntry.
assert_offsets!(crate::contract::BatchEntry {
    key_offset: 0,
    key_len: 4,
    value_len: 8,
    pinned: 12,
    value_addr: 16,
});
// struct rm_args
assert_offsets!(Args {
    session: 0,
    calls: 8,
});
