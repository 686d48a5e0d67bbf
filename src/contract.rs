//! The contract between the patched RocksDB (C++) and ringmerge (Rust): the types both sides
//! see, and the two C++ hooks Rust calls back.
//!
//! This module is a leaf: it imports nothing from the crate, so any layer may use its types
//! (the merges fill [`BatchEntry`]s in place). The functions C++ calls are declared on top of it,
//! in [`crate::api`], which aliases these types into its own bridge.
//!
//! C++ describes a subcompaction's inputs (sorted runs of SST files with their data block
//! handles, taken from the open table readers with no I/O) and pulls the merged stream back as
//! batches of [`BatchEntry`]. Nothing here throws: failures come back as a [`MergeStatus`] the C++
//! side turns into a RocksDB `Status`.

#[cxx::bridge(namespace = "ringmerge")]
pub mod ffi {
    /// One input SST file as RocksDB's open `BlockBasedTable` describes it.
    struct InputFile {
        path: String,
        file_size: u64,
        /// `ChecksumType` from the footer (0 none, 1 crc32c, 2 xxHash, 3 xxHash64, 4 XXH3).
        checksum_type: u8,
        /// format_version 6 context checksum base; 0 for older formats.
        base_context_checksum: u32,
        /// The data blocks to read, in file order, as offset, size pairs.
        block_handles: Vec<u64>,
        /// `compression_name` is not NoCompression (the C++ side only hands over files whose
        /// codec ringmerge decodes, with format_version >= 2).
        blocks_maybe_compressed: bool,
        /// The compression dictionary block's contents; empty when the table has none.
        compression_dict: Vec<u8>,
        /// An ingested file's global sequence number: RocksDB reads every key of the file with
        /// it (their own is 0). 0: the keys' own (none, or 0, which changes nothing).
        global_seqno: u64,
    }

    /// One L0 file, or the files of one deeper level in key order.
    struct SortedRun {
        files: Vec<InputFile>,
    }

    /// One subcompaction's inputs. How to read and merge them (memory budget, merge engine,
    /// merge-ahead) is ringmerge's own configuration, not part of the request.
    struct CompactionInput {
        runs: Vec<SortedRun>,
        /// How the column family's user keys sort.
        user_key_order: UserKeyOrder,
        /// The files store user keys without their timestamps
        /// (`persist_user_defined_timestamps` = false): RocksDB's readers append the minimum
        /// timestamp to each, and so must the merge.
        timestamps_not_persisted: bool,
        /// Subcompaction bounds on user keys: start inclusive, end exclusive; without their
        /// timestamps when the order has them (RocksDB clips every version of a key alike).
        has_start: bool,
        start: Vec<u8>,
        has_end: bool,
        end: Vec<u8>,
        /// The DB reads with O_DIRECT (`use_direct_reads`).
        use_direct_reads: bool,
        /// The I/O priority of this compaction's reads (ioprio_set's value); 0 keeps the
        /// reading thread's. C++ decides it: it knows whether RocksDB has writes delayed.
        io_priority: i32,
    }

    /// The user comparators ringmerge merges with (C++ declines any other).
    enum UserKeyOrder {
        /// `BytewiseComparator()`.
        Bytewise,
        /// `BytewiseComparatorWithU64Ts()`: an 8-byte timestamp ends every user key.
        BytewiseU64Ts,
        /// `ReverseBytewiseComparator()`, and MyRocks' `rev:` column families.
        ReverseBytewise,
        /// `ReverseBytewiseComparatorWithU64Ts()`.
        ReverseBytewiseU64Ts,
    }

    enum StatusCode {
        Ok,
        IOError,
        Corruption,
        NotSupported,
        /// A bug in ringmerge (a caught panic).
        Internal,
    }

    struct MergeStatus {
        code: StatusCode,
        message: String,
    }

    /// What the C++ side needs of ringmerge's configuration (src/config.rs reads it, once per
    /// process); the rest of the configuration stays in Rust.
    struct Settings {
        /// The mode is not `off`: try to accelerate each subcompaction.
        accelerate: bool,
        /// Bytes of output writes an accelerated compaction may queue behind its table builder;
        /// 0 writes synchronously, as stock.
        write_behind: u64,
        /// The I/O priority (ioprio_set's value) of an accelerated compaction's reads and
        /// write-behind writes; 0 keeps the compaction thread's.
        compaction_io_priority: i32,
        /// Keep the compaction thread's priority instead while RocksDB reports writes delayed or
        /// stopped (the compaction's IO_USER rate-limiter priority).
        io_priority_auto: bool,
        /// Accelerate over a wrapped FileSystem when every input's local file verifies.
        verify_wrapped_fs: bool,
        /// Empty, or why the wrapped-FileSystem setting was not understood.
        wrapped_fs_warning: String,
        /// TEST HOOK: a `compression_name` to treat as undecodable, so the codec fallback can be
        /// tested with a codec this build writes; empty in production.
        fault_undecodable_codec: String,
        /// Empty, or why settings were not understood (logged once per process).
        warning: String,
    }

    /// One merged entry of a batch. Its internal key is `batch_data()[key_offset..][..key_len]`;
    /// its value is the `value_len` bytes at address `value_addr`: inside `batch_data()` when the
    /// merge copied it, inside an uncompressed input block when it is pinned (zero-copy, both
    /// merges). Either way the bytes stay valid and unchanged until the next-but-one
    /// `next_batch`, as the batch itself. Layout = `struct rm_out_entry` (bpf/merge_abi.h).
    struct BatchEntry {
        key_offset: u32,
        key_len: u32,
        value_len: u32,
        /// 1 when the value points into an input block rather than into `batch_data()`.
        pinned: u32,
        value_addr: u64,
    }

    /// One accelerated subcompaction's figures: the one schema from which the LOG line, the
    /// outcome log, the job totals and the `compaction_finished` fields are all produced
    /// (src/report.rs). Rust fills the merge's fields; C++ fills those only it knows
    /// (marked "C++").
    #[derive(Clone, Debug, Default, PartialEq)]
    struct SubcompactionSummary {
        /// "io_uring" or "pread".
        backend: String,
        /// Why io_uring was not used; empty otherwise.
        io_uring_fallback_reason: String,
        runs: u64,
        files: u64,
        blocks: u64,
        /// Of `blocks`, those that were compressed (decoded by ringmerge).
        compressed_blocks: u64,
        /// Data blocks larger than the read size, each read into a buffer of its own.
        oversized_blocks: u64,
        /// The most bytes of those buffers alive at once: read memory beyond the budget.
        oversized_peak_bytes: u64,
        /// C++: input files that carry a compression dictionary.
        dict_files: u64,
        /// C++: input files whose range tombstones were interleaved as sentinels.
        range_del_files: u64,
        entries: u64,
        bytes_read: u64,
        reads_submitted: u64,
        io_uring_enter_calls: u64,
        short_reads: u64,
        wait_micros: u64,
        merge_micros: u64,
        /// "native", "bpf-linear" or "bpf-heap".
        merge_engine: String,
        /// Why the BPF merge was asked for but the merge ran natively; empty otherwise.
        bpf_unavailable: String,
        /// Why the BPF merge, loaded, was not used for this subcompaction (a data block larger
        /// than its read size) and the merge ran natively; empty otherwise. Not a sign that BPF
        /// is unavailable, unlike `bpf_unavailable`.
        bpf_declined: String,
        /// BPF program runs (one test_run syscall each).
        bpf_calls: u64,
        /// The merge ran on the compaction thread's companion thread (merge-ahead).
        ahead: bool,
        /// Time the compaction thread waited for batches made ahead.
        ahead_wait_micros: u64,
        /// The companion thread's CPU time for this merge.
        ahead_cpu_micros: u64,
        /// Why merge-ahead was asked for but the merge ran in line; empty otherwise.
        ahead_unavailable: String,
        /// The compaction thread's scheduling attributes (nice, policy, I/O priority, CPUs) the
        /// companion could not take on; empty when it took all.
        ahead_attrs_unapplied: String,
        /// C++: the wrapped FileSystem whose files were verified and read directly; empty on
        /// the default POSIX file system.
        wrapped_fs: String,
        /// C++: the I/O class of the compaction's reads and write-behind writes: "idle",
        /// "inherit" or "inherit(writes_delayed)".
        io_priority: String,
        /// C++: the priority the reads requested from the DB's rate_limiter; empty when reads
        /// are not rate limited.
        read_rate_limit: String,
        /// Time reads waited for the DB's read rate limit.
        rate_limit_wait_micros: u64,
        /// C++: the write-behind queue bound (0: off) and, over the output files opened so far,
        /// bytes queued, the compaction thread's waits (queue full; queue draining before
        /// Sync/Close) and the writer threads' write and CPU time.
        write_behind_limit: u64,
        write_behind_files: u64,
        write_behind_bytes: u64,
        write_behind_write_micros: u64,
        write_behind_full_wait_micros: u64,
        write_behind_drain_wait_micros: u64,
        write_behind_cpu_micros: u64,
    }

    /// One `ringmerge_*` field of the `compaction_finished` event: a number, or a text when
    /// `is_text`.
    struct EventField {
        key: String,
        is_text: bool,
        text: String,
        number: u64,
    }

    /// The footer RocksDB's open table reader parsed (`BlockBasedTable::Rep::footer`).
    struct ExpectedFooter {
        checksum_type: u8,
        format_version: u32,
        base_context_checksum: u32,
        metaindex_offset: u64,
        metaindex_size: u64,
    }

    // Instantiated here, where the types are defined, for the API's signatures.
    impl Vec<EventField> {}
    impl UniquePtr<ReadThrottle> {}
    impl UniquePtr<ReadAccounting> {}

    unsafe extern "C++" {
        include!("ringmerge_read_throttle.h");

        /// The DB's `rate_limiter` as the compaction's reads see it (C++ implements it over
        /// RocksDB's `RateLimiter`; see cpp/ringmerge_read_throttle.h).
        type ReadThrottle;

        /// Blocks until `bytes` may be read.
        fn request_read(throttle: &ReadThrottle, bytes: u64);
    }

    unsafe extern "C++" {
        include!("ringmerge_read_accounting.h");

        /// RocksDB's accounting of file reads as the compaction's reads see it (statistics,
        /// per-level read latency, listeners; see cpp/ringmerge_read_accounting.h).
        type ReadAccounting;

        /// One finished read of input file `file` (the files of `CompactionInput::runs` in
        /// order): `len` bytes at `offset`, started at `start_unix_nanos` (wall clock), taking
        /// `duration_nanos`; `err` is 0, or the errno it failed with. (Not named `errno`: the
        /// generated C++ would meet the libc macro of that name.)
        fn account_read(
            accounting: &ReadAccounting,
            file: usize,
            offset: u64,
            len: u64,
            start_unix_nanos: u64,
            duration_nanos: u64,
            err: i32,
        );
    }
}

pub use ffi::{
    BatchEntry, CompactionInput, EventField, ExpectedFooter, InputFile, MergeStatus, Settings,
    SortedRun, StatusCode, SubcompactionSummary, UserKeyOrder,
};
