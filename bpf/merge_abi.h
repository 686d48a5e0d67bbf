/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory layout shared by the BPF merge program (bpf/merge.bpf.c) and its Rust driver
 * (src/merge/bpf/abi.rs, which mirrors every struct here with #[repr(C)] and checks the sizes).
 * Every struct lives in the BPF arena, whose user-space mapping and BPF view have the same
 * addresses, so the u64 "addr" fields are plain pointers on both sides.
 *
 * Protocol: Rust verifies every block's checksum and computes where its entries end
 * (`data_end`, before the restart array); the program walks the entries itself. It returns to
 * Rust whenever it needs something only user space can do: the next chunk of a run (I/O), a
 * larger key buffer, a larger output buffer, or when the batch is full or the stream ends.
 * Everything is resumable: state is only committed once an entry is fully decoded/emitted.
 *
 * Values are not copied when Rust allows it (rm_run.zero_copy): the output entry then points at
 * the value inside the input block, and Rust keeps that block's chunk unchanged until no batch
 * that may reference it is readable any more (src/merge/bpf/session.rs, "Pinned values").
 */
#ifndef RINGMERGE_MERGE_ABI_H
#define RINGMERGE_MERGE_ABI_H

/* One verified, uncompressed data block: `addr` is its first byte (the payload, no trailer). */
struct rm_block {
	__u64 addr;
	/* Entries occupy [0, data_end); the restart array and footer follow. */
	__u32 data_end;
	__u32 pad;
};

/* Run states. */
#define RM_RUN_LOAD 0       /* Rust gave it a fresh chunk: position on its first entry */
#define RM_RUN_VALID 1      /* holds a current entry */
#define RM_RUN_NEED_CHUNK 2 /* its chunk is used up: Rust must give the next one */
#define RM_RUN_DONE 3       /* no more entries in bounds */

struct rm_run {
	__u64 blocks;     /* addr of rm_block[nblocks] for the current chunk */
	__u32 nblocks;
	__u32 block_idx;  /* block being walked */
	__u64 base;       /* addr of that block */
	__u32 data_end;
	__u32 next;       /* offset of the next entry to decode */
	__u64 key;        /* addr of this run's key buffer (the current internal key) */
	__u32 key_cap;
	__u32 key_len;
	__u64 value;      /* addr of the current value, inside the block */
	__u32 value_len;
	__u32 state;
	__u64 packed;     /* current key's trailer: seq << 8 | type */
	__u32 started;    /* an entry >= start was seen: stop comparing against start */
	__u32 zero_copy;  /* set by Rust per chunk: emit values by address, do not copy them */
	/* User-key bytes 0..8 and 8..16, big-endian, zero-padded: together they order most
	 * pairs of keys (db_bench's 16-byte keys always) without a call. */
	__u64 prefix;
	__u64 prefix2;
	__u32 chunk_emits; /* entries emitted from the current chunk (reset by Rust at load) */
	__u32 pad;
};

/* One output entry. The key is at out_data + key_offset; the value at value_addr, which is
 * inside out_data (copied) or inside an input block (pinned = 1). */
struct rm_out_entry {
	__u32 key_offset;
	__u32 key_len;
	__u32 value_len;
	__u32 pinned;
	__u64 value_addr;
};

/* Return codes (rm_session.result). */
#define RM_BATCH_FULL 1   /* batch_bytes reached out_target: take the batch */
#define RM_EOF 2          /* every run is done */
#define RM_NEED_CHUNK 3   /* run `run` needs its next chunk */
#define RM_NEED_KEY 4     /* run `run` needs a key buffer of at least `need` bytes */
#define RM_NEED_OUT 5     /* the empty output cannot hold the next entry: `need` bytes */
#define RM_CORRUPT 6      /* run `run`'s block is malformed; `detail` says how */
#define RM_INDEX_FULL 7   /* the output index is full: take the batch */
#define RM_AGAIN 8        /* the kernel's loop budget ran out mid-walk: call again */

/* RM_CORRUPT details. */
#define RM_BAD_ENTRY_HEADER 1
#define RM_BAD_SHARED 2
#define RM_BAD_ENTRY_BOUNDS 3
#define RM_BAD_KEY_LENGTH 4

#define RM_NO_RUN 0xffffffffu

struct rm_session {
	__u32 nruns;
	__u32 heap_len;
	__u64 runs;        /* addr of rm_run[nruns] */
	__u64 heap;        /* addr of __u32[nruns] (heap variant) */
	__u64 start;       /* subcompaction bounds on user keys */
	__u32 start_len;
	__u32 has_start;
	__u64 end;
	__u32 end_len;
	__u32 has_end;
	__u64 out_data;    /* output: internal keys, and the values that are copied */
	__u32 out_cap;
	__u32 out_len;
	__u32 out_target;  /* stop once batch_bytes reaches this */
	__u32 index_cap;   /* in entries */
	__u64 out_index;   /* struct rm_out_entry per entry */
	__u32 index_len;   /* in entries */
	__u32 initialized; /* every run positioned (and the heap built) */
	__u32 pending;     /* run that returned RM_NEED_CHUNK / RM_NEED_KEY, or RM_NO_RUN */
	__u32 result;
	__u32 run;
	__u32 detail;
	__u64 need;
	__u64 emitted;     /* entries emitted over the session */
	__u32 batch_bytes; /* keys and values (copied or pinned) in this batch */
	__u32 init_next;   /* runs [0, init_next) are positioned on their first entry */
};

/* The test_run context: which session to advance. */
struct rm_args {
	__u64 session;
	__u64 calls;
};

#endif
