//! The contract between the patched RocksDB (C++) and ringmerge (Rust).
//!
//! C++ describes a subcompaction's inputs (sorted runs of SST files with their data block handles,
//! taken from the open table readers with no I/O) and pulls the merged stream back as batches.
//! Nothing here throws: failures come back as a [`ffi::MergeStatus`] the C++ side turns into a
//! RocksDB `Status`, and every entry point catches panics so none unwinds into C++.

use crate::ahead::{Failure, Merge};
use crate::block::checksum::ChecksumType;
use crate::block::BlockHandle;
use crate::compaction::{
    CompactionSpec, MergeChoice, DEFAULT_INFLIGHT_BYTES, DEFAULT_MEMORY_BUDGET,
};
use crate::error::Error;
use crate::merge::bpf::Selection;
use crate::merge::cursor::Bounds;
use crate::reader::{Backend, ReadAccounting, ReadDone, ReadThrottle};
use crate::sst_map::{InputFile, SortedRun};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cxx::bridge(namespace = "ringmerge")]
pub(crate) mod ffi {
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
    }

    /// One L0 file, or the files of one deeper level in key order.
    struct SortedRun {
        files: Vec<InputFile>,
    }

    struct CompactionInput {
        runs: Vec<SortedRun>,
        /// Subcompaction bounds on user keys: start inclusive, end exclusive.
        has_start: bool,
        start: Vec<u8>,
        has_end: bool,
        end: Vec<u8>,
        /// The DB reads with O_DIRECT (`use_direct_reads`).
        use_direct_reads: bool,
        /// Bytes of read buffers this compaction may hold; 0 means the default (64 MiB).
        memory_budget: u64,
        /// Merge in the BPF program (`Mode::Bpf`), natively if it cannot be loaded.
        merge_in_bpf: bool,
        /// The I/O priority of this compaction's reads (ioprio_set's value); 0 keeps the
        /// reading thread's.
        io_priority: i32,
        /// Run the merge on the compaction thread's companion, batches made ahead
        /// (`RINGMERGE_MERGE_AHEAD`, on by default).
        merge_ahead: bool,
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

    enum Mode {
        /// Stock RocksDB, as if the patch were not there.
        Off,
        /// ringmerge reads and merges natively in Rust.
        Native,
        /// ringmerge reads in Rust and merges in its eBPF program (native where BPF is
        /// unavailable, with the reason logged).
        Bpf,
    }

    struct Settings {
        mode: Mode,
        memory_budget: u64,
        /// Bytes of output writes an accelerated compaction may queue behind its table builder
        /// (`RINGMERGE_WRITE_BEHIND`); 0 writes synchronously, as stock.
        write_behind: u64,
        /// `RINGMERGE_MERGE_AHEAD`: merge on a companion thread of the compaction thread.
        merge_ahead: bool,
        /// `RINGMERGE_IO_PRIORITY`: the I/O priority (ioprio_set's value) of an accelerated
        /// compaction's reads and write-behind writes; 0 keeps the compaction thread's.
        compaction_io_priority: i32,
        /// `RINGMERGE_IO_PRIORITY=auto`: keep the compaction thread's priority instead while
        /// RocksDB reports writes delayed or stopped (the compaction's IO_USER priority).
        io_priority_auto: bool,
        /// Empty, or why the environment's setting was not understood.
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

    /// One compaction's figures for the LOG line and the compaction_finished event.
    struct MergeSummary {
        backend: String,
        io_uring_fallback_reason: String,
        runs: u64,
        files: u64,
        blocks: u64,
        compressed_blocks: u64,
        entries: u64,
        bytes_read: u64,
        reads_submitted: u64,
        io_uring_enter_calls: u64,
        short_reads: u64,
        wait_micros: u64,
        merge_micros: u64,
        /// "native", "bpf-linear" or "bpf-heap".
        merge_engine: String,
        /// Why `Mode::Bpf` merged natively; empty otherwise.
        bpf_unavailable: String,
        /// BPF program runs (one test_run syscall each).
        bpf_calls: u64,
        /// The merge ran on the companion thread (merge-ahead).
        ahead: bool,
        /// Time the compaction thread waited for batches made ahead.
        ahead_wait_micros: u64,
        /// The companion thread's CPU time for this merge.
        ahead_cpu_micros: u64,
        /// Why merge-ahead was asked for but the merge ran in line; empty otherwise.
        ahead_unavailable: String,
        /// Time reads waited for the DB's read rate limit (see `ReadThrottle`).
        rate_limit_wait_micros: u64,
        /// The compaction thread's scheduling attributes (nice, policy, I/O priority, CPUs) the
        /// merge-ahead companion could not take on; empty when it took all (thread_attrs.rs).
        ahead_attrs_unapplied: String,
    }

    /// RINGMERGE_WRAPPED_FS: what to do when the DB's FileSystem is not the default POSIX one.
    struct WrappedFsPolicy {
        /// `verify`: accelerate when every input passes `verify_local_file`; `refuse` (default):
        /// fall back.
        verify: bool,
        /// Empty, or why the environment's setting was not understood.
        warning: String,
    }

    /// The footer RocksDB's open table reader parsed (`BlockBasedTable::Rep::footer`).
    struct ExpectedFooter {
        checksum_type: u8,
        format_version: u32,
        base_context_checksum: u32,
        metaindex_offset: u64,
        metaindex_size: u64,
    }

    extern "Rust" {
        fn wrapped_fs_policy_from_env() -> WrappedFsPolicy;
        /// Empty when the OS file at `path` is the file RocksDB read through its wrapped file
        /// system (regular file, same size, same footer); otherwise why not.
        fn verify_local_file(path: &str, file_size: u64, expected: &ExpectedFooter) -> String;
    }

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

    extern "Rust" {
        /// A compaction's merge; created by `open_merge` even when opening failed, so C++ always
        /// owns exactly one box and reads the outcome from `status()`.
        type CompactionMerge;

        /// The process settings from RINGMERGE_MODE and RINGMERGE_MEMORY_BUDGET.
        fn settings_from_env() -> Settings;
        /// With RINGMERGE_MODE=bpf, starts loading the BPF program on a background thread at
        /// process start, so its verification (~0.1 s) is not on the first compaction's path.
        fn preload_from_env();
        /// `throttle`: null, or the read rate limit every read of this merge passes first.
        /// `accounting`: null, or where every finished read of this merge is accounted.
        fn open_merge(
            input: CompactionInput,
            throttle: UniquePtr<ReadThrottle>,
            accounting: UniquePtr<ReadAccounting>,
        ) -> Box<CompactionMerge>;
        fn status(self: &CompactionMerge) -> MergeStatus;
        /// Fills the next batch; false at the end of the stream or on error (see `status`).
        fn next_batch(self: &mut CompactionMerge) -> bool;
        /// The current batch's key bytes (and the values that were copied).
        fn batch_data(self: &CompactionMerge) -> &[u8];
        /// The current batch's entries, in merged order (see `BatchEntry`).
        fn batch_entries(self: &CompactionMerge) -> &[BatchEntry];
        /// Bytes read since the previous call (for RocksDB's IOSTATS on the calling thread).
        fn take_bytes_read(self: &mut CompactionMerge) -> u64;
        fn summary(self: &CompactionMerge) -> MergeSummary;
    }
}

pub struct CompactionMerge {
    session: Option<Merge>,
    /// Why merge-ahead was asked for and not used.
    ahead_unavailable: Option<String>,
    error: Option<Error>,
    /// Set when a panic was caught; the session is not touched again.
    internal: Option<String>,
}

pub(crate) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

/// Output writes queued behind the table builder: eight of RocksDB's default 1 MiB write buffers
/// (`writable_file_max_buffer_size`), enough to keep a disk busy while the merge runs.
const DEFAULT_WRITE_BEHIND: u64 = 8 << 20;

/// `RINGMERGE_MERGE_AHEAD=auto`: merge ahead only while the CPUs are not contended (read once per
/// process with the other settings; see cpu_pressure.rs).
static AHEAD_AUTO: AtomicBool = AtomicBool::new(false);
/// `RINGMERGE_INFLIGHT`: bytes of input reads in flight at once (0: unbounded; see
/// `ReaderConfig::max_inflight_bytes`), read once per process with the other settings.
static INFLIGHT_BOUND: AtomicUsize = AtomicUsize::new(DEFAULT_INFLIGHT_BYTES);
/// Linux's idle I/O class (include/uapi/linux/ioprio.h): served when no other class waits (the
/// mq-deadline and BFQ schedulers; `none` ignores classes), with the schedulers' own bound on how
/// long it may wait.
const IOPRIO_CLASS_IDLE: i32 = 3;
const IOPRIO_CLASS_SHIFT: i32 = 13;
/// `some avg10` (percent) at or above which `auto` merges in line.
const AHEAD_AUTO_MAX_CPU_PRESSURE: f64 = 20.0;

fn settings_from_env() -> ffi::Settings {
    let mut warning = String::new();
    let mode = match std::env::var("RINGMERGE_MODE").as_deref() {
        Err(_) | Ok("") | Ok("native") => ffi::Mode::Native,
        Ok("off") => ffi::Mode::Off,
        Ok("bpf") => ffi::Mode::Bpf,
        Ok(other) => {
            warning = format!("RINGMERGE_MODE={other} is not one of off|native|bpf: running stock");
            ffi::Mode::Off
        }
    };
    let memory_budget = match std::env::var("RINGMERGE_MEMORY_BUDGET") {
        Err(_) => DEFAULT_MEMORY_BUDGET as u64,
        Ok(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 << 20 => n,
            _ => {
                warning = format!(
                    "RINGMERGE_MEMORY_BUDGET={v} is not a byte count >= 1 MiB: using 64 MiB"
                );
                DEFAULT_MEMORY_BUDGET as u64
            }
        },
    };
    let write_behind = match std::env::var("RINGMERGE_WRITE_BEHIND").as_deref() {
        Err(_) | Ok("") | Ok("on") => DEFAULT_WRITE_BEHIND,
        Ok("off") | Ok("0") => 0,
        Ok(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 << 20 => n,
            _ => {
                warning = format!(
                    "RINGMERGE_WRITE_BEHIND={v} is not off|on or a byte count >= 1 MiB: using 8 MiB"
                );
                DEFAULT_WRITE_BEHIND
            }
        },
    };
    // Read buffers each thread keeps between compactions (reader/pool.rs): a process-wide
    // setting of the Rust side, applied here where the environment is read once per process.
    match std::env::var("RINGMERGE_POOL_CAP") {
        Err(_) => {}
        Ok(v) => match v.parse::<u64>() {
            Ok(n) => crate::reader::set_pool_cap(usize::try_from(n).unwrap_or(usize::MAX)),
            Err(_) => {
                warning = format!(
                    "RINGMERGE_POOL_CAP={v} is not a byte count: keeping up to 64 MiB per thread"
                );
            }
        },
    }
    let merge_ahead = match std::env::var("RINGMERGE_MERGE_AHEAD").as_deref() {
        Err(_) | Ok("") | Ok("on") => true,
        Ok("auto") => {
            AHEAD_AUTO.store(true, Ordering::Relaxed);
            true
        }
        Ok("off") => false,
        Ok(v) => {
            warning = format!("RINGMERGE_MERGE_AHEAD={v} is not off|on|auto: using on");
            true
        }
    };
    let inflight_bound = match std::env::var("RINGMERGE_INFLIGHT").as_deref() {
        Err(_) | Ok("") => DEFAULT_INFLIGHT_BYTES,
        Ok("off") => 0,
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 << 20 => n,
            _ => {
                warning = format!(
                    "RINGMERGE_INFLIGHT={v} is not off or a byte count >= 1 MiB: using the default"
                );
                DEFAULT_INFLIGHT_BYTES
            }
        },
    };
    INFLIGHT_BOUND.store(inflight_bound, Ordering::Relaxed);
    let idle = IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT;
    let (compaction_io_priority, io_priority_auto) =
        match std::env::var("RINGMERGE_IO_PRIORITY").as_deref() {
            Err(_) | Ok("") | Ok("auto") => (idle, true),
            Ok("idle") => (idle, false),
            Ok("inherit") => (0, false),
            Ok(v) => {
                warning = format!("RINGMERGE_IO_PRIORITY={v} is not auto|idle|inherit: using auto");
                (idle, true)
            }
        };
    ffi::Settings {
        mode,
        memory_budget,
        write_behind,
        merge_ahead,
        compaction_io_priority,
        io_priority_auto,
        warning,
    }
}

fn wrapped_fs_policy_from_env() -> ffi::WrappedFsPolicy {
    match std::env::var("RINGMERGE_WRAPPED_FS").as_deref() {
        Err(_) | Ok("") | Ok("refuse") => ffi::WrappedFsPolicy {
            verify: false,
            warning: String::new(),
        },
        Ok("verify") => ffi::WrappedFsPolicy {
            verify: true,
            warning: String::new(),
        },
        Ok(other) => ffi::WrappedFsPolicy {
            verify: false,
            warning: format!("RINGMERGE_WRAPPED_FS={other} is not one of verify|refuse"),
        },
    }
}

fn verify_local_file(path: &str, file_size: u64, expected: &ffi::ExpectedFooter) -> String {
    let expected = crate::wrapped_fs::ExpectedFooter {
        checksum_type: expected.checksum_type,
        format_version: expected.format_version,
        base_context_checksum: expected.base_context_checksum,
        metaindex_offset: expected.metaindex_offset,
        metaindex_size: expected.metaindex_size,
    };
    match catch_unwind(AssertUnwindSafe(|| {
        crate::wrapped_fs::verify_local_file(std::path::Path::new(path), file_size, &expected)
    })) {
        Ok(Ok(())) => String::new(),
        Ok(Err(reason)) => reason,
        Err(p) => format!("ringmerge internal error: {}", panic_message(p)),
    }
}

fn preload_from_env() {
    let _ = catch_unwind(|| {
        if std::env::var("RINGMERGE_MODE").as_deref() == Ok("bpf") {
            // A failed spawn only means the first compaction loads it, as without preloading.
            let _ = std::thread::Builder::new()
                .name("ringmerge-bpf-load".to_owned())
                .spawn(|| {
                    let _ = catch_unwind(crate::merge::bpf::engine);
                });
        }
    });
}

fn spec_from_input(input: ffi::CompactionInput) -> Result<CompactionSpec, Error> {
    let mut runs = Vec::with_capacity(input.runs.len());
    for run in input.runs {
        let mut files = Vec::with_capacity(run.files.len());
        for f in run.files {
            if f.block_handles.len() % 2 != 0 {
                return Err(Error::corruption("odd number of block handle words"));
            }
            files.push(InputFile {
                path: PathBuf::from(f.path),
                file_size: f.file_size,
                checksum_type: ChecksumType::from_u8(f.checksum_type)?,
                base_context_checksum: f.base_context_checksum,
                blocks: f
                    .block_handles
                    .chunks_exact(2)
                    .map(|h| BlockHandle {
                        offset: h[0],
                        size: h[1],
                    })
                    .collect(),
                blocks_maybe_compressed: f.blocks_maybe_compressed,
                compression_dict: f.compression_dict,
            });
        }
        runs.push(SortedRun { files });
    }
    let backend = match std::env::var("RINGMERGE_IO").as_deref() {
        Ok("pread") => Backend::Pread,
        _ => Backend::Auto,
    };
    // RINGMERGE_BPF_SELECTION=linear|heap forces the BPF program's selection (benchmarks,
    // tests); by default it follows the run count like the native merge.
    let merge = if input.merge_in_bpf {
        MergeChoice::Bpf(match std::env::var("RINGMERGE_BPF_SELECTION").as_deref() {
            Ok("linear") => Some(Selection::Linear),
            Ok("heap") => Some(Selection::Heap),
            _ => None,
        })
    } else {
        MergeChoice::Native
    };
    Ok(CompactionSpec {
        runs,
        bounds: Bounds {
            start: input.has_start.then_some(input.start),
            end: input.has_end.then_some(input.end),
        },
        direct: input.use_direct_reads,
        memory_budget: match input.memory_budget {
            0 => DEFAULT_MEMORY_BUDGET,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        },
        backend,
        merge,
        throttle: None,
        accounting: None,
        max_inflight_bytes: INFLIGHT_BOUND.load(Ordering::Relaxed),
        io_priority: u16::try_from(input.io_priority).unwrap_or(0),
    })
}

/// The C++ read throttle, owned by whichever thread runs the merge's reads.
struct CxxReadThrottle(cxx::UniquePtr<ffi::ReadThrottle>);

// SAFETY: `ReadThrottle` (cpp/ringmerge_read_throttle.h) is immutable after construction and its
// only operation, the const `Request`, may be called from any thread: RocksDB's `RateLimiter` is
// thread-safe (every DB thread calls it), and the object holds its own references to the limiter
// and the statistics, so it may be destroyed on any thread too.
unsafe impl Send for CxxReadThrottle {}
// SAFETY: as above; `&ReadThrottle` only reaches the const, thread-safe `Request`.
unsafe impl Sync for CxxReadThrottle {}

impl CxxReadThrottle {
    fn into_throttle(self) -> Option<ReadThrottle> {
        if self.0.is_null() {
            return None;
        }
        Some(ReadThrottle::new(move |bytes| self.request(bytes)))
    }

    fn request(&self, bytes: u64) {
        if let Some(t) = self.0.as_ref() {
            ffi::request_read(t, bytes);
        }
    }
}

/// The C++ read accounting, owned by whichever thread runs the merge's reads.
struct CxxReadAccounting(cxx::UniquePtr<ffi::ReadAccounting>);

// SAFETY: `ReadAccounting` (cpp/ringmerge_read_accounting.h) is immutable after construction and
// its only operation, the const `Done`, may be called from any thread: it records into RocksDB's
// `Statistics` and `HistogramImpl`s (thread-safe: every DB thread records into them) and calls
// the DB's listeners, which RocksDB calls from any of its threads. It holds its own references
// to the statistics and listeners, so it may be destroyed on any thread too.
unsafe impl Send for CxxReadAccounting {}
// SAFETY: as above; `&ReadAccounting` only reaches the const, thread-safe `Done`.
unsafe impl Sync for CxxReadAccounting {}

impl CxxReadAccounting {
    fn into_accounting(self) -> Option<ReadAccounting> {
        if self.0.is_null() {
            return None;
        }
        Some(ReadAccounting::new(move |d| self.done(d)))
    }

    fn done(&self, d: &ReadDone) {
        let Some(a) = self.0.as_ref() else {
            return;
        };
        let start = d
            .start
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        ffi::account_read(
            a,
            d.file,
            d.offset,
            d.len as u64,
            start,
            u64::try_from(d.duration.as_nanos()).unwrap_or(u64::MAX),
            d.errno.unwrap_or(0),
        );
    }
}

fn open_merge(
    input: ffi::CompactionInput,
    throttle: cxx::UniquePtr<ffi::ReadThrottle>,
    accounting: cxx::UniquePtr<ffi::ReadAccounting>,
) -> Box<CompactionMerge> {
    let mut merge = CompactionMerge {
        session: None,
        ahead_unavailable: None,
        error: None,
        internal: None,
    };
    let ahead = input.merge_ahead;
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<Merge, Failure> {
        let mut spec = spec_from_input(input).map_err(Failure::Error)?;
        spec.throttle = CxxReadThrottle(throttle).into_throttle();
        spec.accounting = CxxReadAccounting(accounting).into_accounting();
        let busy = if ahead && AHEAD_AUTO.load(Ordering::Relaxed) {
            crate::cpu_pressure::contended(AHEAD_AUTO_MAX_CPU_PRESSURE)
        } else {
            None
        };
        let (opened, unavailable) = match busy {
            Some(why) => (Merge::open(spec, false).0, Some(why)),
            None => Merge::open(spec, ahead),
        };
        merge.ahead_unavailable = unavailable;
        opened
    }));
    match outcome {
        Ok(Ok(session)) => merge.session = Some(session),
        Ok(Err(Failure::Error(e))) => merge.error = Some(e),
        Ok(Err(Failure::Panic(m))) => merge.internal = Some(m),
        Err(p) => merge.internal = Some(panic_message(p)),
    }
    Box::new(merge)
}

impl CompactionMerge {
    fn status(&self) -> ffi::MergeStatus {
        let (code, message) = if let Some(m) = &self.internal {
            (
                ffi::StatusCode::Internal,
                format!("ringmerge internal error: {m}"),
            )
        } else {
            match &self.error {
                None => (ffi::StatusCode::Ok, String::new()),
                Some(Error::Io(m)) => (ffi::StatusCode::IOError, m.clone()),
                Some(Error::Corruption(m)) => (ffi::StatusCode::Corruption, m.clone()),
                Some(Error::NotSupported(m)) => (ffi::StatusCode::NotSupported, m.clone()),
            }
        };
        ffi::MergeStatus { code, message }
    }

    /// The session for read-only queries (batch slices, figures): still readable after a merge
    /// error, so the LOG line can report how far it got, but not after a caught panic.
    fn readable(&self) -> Option<&Merge> {
        self.session.as_ref().filter(|_| self.internal.is_none())
    }

    /// The session for advancing: only while neither an error nor a panic happened.
    fn live_session(&mut self) -> Option<&mut Merge> {
        if self.error.is_some() || self.internal.is_some() {
            return None;
        }
        self.session.as_mut()
    }

    fn next_batch(&mut self) -> bool {
        let Some(session) = self.live_session() else {
            return false;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| session.next_batch()));
        match outcome {
            Ok(Ok(more)) => more,
            Ok(Err(Failure::Error(e))) => {
                self.error = Some(e);
                false
            }
            Ok(Err(Failure::Panic(m))) => {
                self.internal = Some(m);
                false
            }
            Err(p) => {
                self.internal = Some(panic_message(p));
                false
            }
        }
    }

    fn batch_data(&self) -> &[u8] {
        self.readable().map_or(&[], Merge::batch_data)
    }

    fn batch_entries(&self) -> &[ffi::BatchEntry] {
        self.readable().map_or(&[], Merge::batch_entries)
    }

    fn take_bytes_read(&mut self) -> u64 {
        if self.internal.is_some() {
            return 0;
        }
        self.session.as_mut().map_or(0, Merge::take_bytes_read)
    }

    fn summary(&self) -> ffi::MergeSummary {
        let s = self.readable().map(Merge::summary).unwrap_or_default();
        ffi::MergeSummary {
            backend: s.backend.to_owned(),
            io_uring_fallback_reason: s.fallback_reason.unwrap_or_default(),
            runs: s.runs as u64,
            files: s.files as u64,
            blocks: s.blocks as u64,
            compressed_blocks: s.compressed_blocks as u64,
            entries: s.entries,
            bytes_read: s.reader.bytes_read,
            reads_submitted: s.reader.reads_submitted,
            io_uring_enter_calls: s.reader.enter_calls,
            short_reads: s.reader.short_reads,
            wait_micros: s.wait.as_micros() as u64,
            merge_micros: s.merge.as_micros() as u64,
            merge_engine: s.merge_engine.to_owned(),
            bpf_unavailable: s.bpf_unavailable.unwrap_or_default(),
            bpf_calls: s.bpf_calls,
            ahead: s.ahead,
            ahead_wait_micros: s.ahead_wait.as_micros() as u64,
            ahead_cpu_micros: s.ahead_cpu.as_micros() as u64,
            ahead_unavailable: self.ahead_unavailable.clone().unwrap_or_default(),
            rate_limit_wait_micros: s.reader.throttle_wait_ns / 1000,
            ahead_attrs_unapplied: s.ahead_attrs_unapplied.unwrap_or_default(),
        }
    }
}
