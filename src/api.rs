//! What C++ calls: the functions and opaque types of ringmerge's API, on top of the shared types
//! of [`crate::contract`] (aliased into this bridge, so the generated C++ names them once).
//!
//! Nothing here throws: every entry point catches panics so none unwinds into C++, and failures
//! come back as a [`MergeStatus`] the C++ side turns into a RocksDB `Status`.

use crate::ahead::{Failure, Session};
use crate::block::checksum::ChecksumType;
use crate::block::key::{UserKeyOrder, U64_TS_LEN};
use crate::block::BlockHandle;
use crate::compaction::{CompactionSpec, MergeEngine};
use crate::config::{Config, MergeAhead, Mode};
use crate::contract::{
    BatchEntry, CompactionInput, ExpectedFooter, MergeStatus, Settings, StatusCode,
    SubcompactionSummary,
};
use crate::error::{panic_message, Error};
use crate::merge::cursor::Bounds;
use crate::reader::{ReadAccounting, ReadDone, ReadThrottle};
use crate::report::JobReport;
use crate::sst_map::{InputFile, SortedRun};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Once;

#[cxx::bridge(namespace = "ringmerge")]
mod ffi {
    extern "C++" {
        include!("ringmerge/src/contract.rs.h");
        type CompactionInput = crate::contract::CompactionInput;
        type MergeStatus = crate::contract::MergeStatus;
        type Settings = crate::contract::Settings;
        type BatchEntry = crate::contract::BatchEntry;
        type SubcompactionSummary = crate::contract::SubcompactionSummary;
        type EventField = crate::contract::EventField;
        type ExpectedFooter = crate::contract::ExpectedFooter;
        type ReadThrottle = crate::contract::ffi::ReadThrottle;
        type ReadAccounting = crate::contract::ffi::ReadAccounting;
    }

    extern "Rust" {
        /// What C++ needs of the configuration (read from the environment once per process).
        fn settings() -> Settings;
        /// Starts loading the BPF program on a background thread when the mode is `bpf`, once
        /// per process, so its verification (~0.1 s) is off the compactions' path. C++ calls it
        /// when a compaction job starts.
        fn preload_bpf();

        /// A subcompaction's merged input stream; created by `open_merged_stream` even when
        /// opening failed, so C++ always owns exactly one box and reads the outcome from
        /// `status()`.
        type MergedStream;

        /// `throttle`: null, or the read rate limit every read of this merge passes first.
        /// `accounting`: null, or where every finished read of this merge is accounted.
        fn open_merged_stream(
            input: CompactionInput,
            throttle: UniquePtr<ReadThrottle>,
            accounting: UniquePtr<ReadAccounting>,
        ) -> Box<MergedStream>;
        fn status(self: &MergedStream) -> MergeStatus;
        /// Fills the next batch; false at the end of the stream or on error (see `status`).
        fn next_batch(self: &mut MergedStream) -> bool;
        /// The current batch's key bytes (and the values that were copied).
        fn batch_data(self: &MergedStream) -> &[u8];
        /// The current batch's entries, in merged order (see `BatchEntry`).
        fn batch_entries(self: &MergedStream) -> &[BatchEntry];
        /// Bytes read since the previous call (for RocksDB's IOSTATS on the calling thread).
        fn take_bytes_read(self: &mut MergedStream) -> u64;
        /// The merge's figures so far; the fields only C++ knows are left empty for it to fill.
        fn summary(self: &MergedStream) -> SubcompactionSummary;

        /// The LOG line's figures for one accelerated subcompaction.
        fn summary_log_line(summary: &SubcompactionSummary) -> String;

        /// One compaction job's outcomes, for the outcome log and the `compaction_finished`
        /// event; its methods may be called from the job's subcompaction threads at once.
        type JobReport;
        fn new_job_report() -> Box<JobReport>;
        fn add_accelerated(self: &JobReport, summary: &SubcompactionSummary);
        fn add_fallback(self: &JobReport, reason: &str);
        /// The `ringmerge_*` fields of the event; empty when no subcompaction reached ringmerge.
        fn event_fields(self: &JobReport) -> Vec<EventField>;

        /// Empty when the OS file at `path` is the file RocksDB read through its wrapped file
        /// system (regular file, same size, same footer); otherwise why not.
        fn verify_local_file(path: &str, file_size: u64, expected: &ExpectedFooter) -> String;
    }
}

pub struct MergedStream {
    session: Option<Session>,
    /// Why merge-ahead was asked for and not used.
    ahead_unavailable: Option<String>,
    error: Option<Error>,
    /// Set when a panic was caught; the session is not touched again.
    internal: Option<String>,
}

/// `some avg10` (percent) at or above which `RINGMERGE_MERGE_AHEAD=auto` merges in line.
const AHEAD_AUTO_MAX_CPU_PRESSURE: f64 = 20.0;

/// The configuration, applying its process-wide part the first time it is asked for.
fn config() -> &'static Config {
    static APPLIED: Once = Once::new();
    let config = Config::get();
    APPLIED.call_once(|| {
        if let Some(cap) = config.pool_cap {
            crate::reader::set_pool_cap(cap);
        }
    });
    config
}

fn settings() -> Settings {
    let outcome = catch_unwind(|| {
        let c = config();
        let (compaction_io_priority, io_priority_auto) = c.compaction_io_priority();
        Settings {
            accelerate: c.mode != Mode::Off,
            write_behind: c.write_behind,
            compaction_io_priority,
            io_priority_auto,
            verify_wrapped_fs: c.verify_wrapped_fs,
            wrapped_fs_warning: c.wrapped_fs_warning.clone().unwrap_or_default(),
            fault_undecodable_codec: c.fault_undecodable_codec.clone().unwrap_or_default(),
            warning: c.warnings.join("; "),
        }
    });
    outcome.unwrap_or_else(|p| Settings {
        accelerate: false,
        write_behind: 0,
        compaction_io_priority: 0,
        io_priority_auto: false,
        verify_wrapped_fs: false,
        wrapped_fs_warning: String::new(),
        fault_undecodable_codec: String::new(),
        warning: format!(
            "ringmerge internal error reading its settings: {}: running stock",
            panic_message(p)
        ),
    })
}

fn preload_bpf() {
    static STARTED: Once = Once::new();
    let _ = catch_unwind(|| {
        if config().mode != Mode::Bpf {
            return;
        }
        STARTED.call_once(|| {
            // A failed spawn only means the first compaction loads it, as without preloading.
            let _ = std::thread::Builder::new()
                .name("ringmerge-bpf-load".to_owned())
                .spawn(|| {
                    let _ = catch_unwind(crate::merge::bpf::engine);
                });
        });
    });
}

fn summary_log_line(summary: &SubcompactionSummary) -> String {
    catch_unwind(|| crate::report::log_line(summary))
        .unwrap_or_else(|p| format!("ringmerge internal error: {}", panic_message(p)))
}

fn new_job_report() -> Box<JobReport> {
    Box::default()
}

fn verify_local_file(path: &str, file_size: u64, expected: &ExpectedFooter) -> String {
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

/// The merge session one subcompaction asks for: its inputs (from C++) read and merged as the
/// configuration says.
fn spec_from_input(input: CompactionInput, config: &Config) -> Result<CompactionSpec, Error> {
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
                global_seqno: f.global_seqno,
            });
        }
        runs.push(SortedRun { files });
    }
    let merge = match config.mode {
        Mode::Bpf => MergeEngine::Bpf(config.bpf_selection),
        Mode::Native | Mode::Off => MergeEngine::Native,
    };
    Ok(CompactionSpec {
        runs,
        bounds: Bounds {
            start: input.has_start.then_some(input.start),
            end: input.has_end.then_some(input.end),
            order: {
                let order = match input.user_key_order {
                    crate::contract::UserKeyOrder::Bytewise => UserKeyOrder::Bytewise,
                    crate::contract::UserKeyOrder::BytewiseU64Ts => UserKeyOrder::BytewiseU64Ts,
                    crate::contract::UserKeyOrder::ReverseBytewise => UserKeyOrder::ReverseBytewise,
                    crate::contract::UserKeyOrder::ReverseBytewiseU64Ts => {
                        UserKeyOrder::ReverseBytewiseU64Ts
                    }
                    other => {
                        return Err(Error::not_supported(format!(
                            "user key order {} is not one ringmerge merges",
                            other.repr
                        )))
                    }
                };
                // Stored without timestamps, every key has the same (minimum) one: the keys as
                // stored sort as they do with it.
                if input.timestamps_not_persisted {
                    order.stored_without_ts()
                } else {
                    order
                }
            },
        },
        direct: input.use_direct_reads,
        memory_budget: config.memory_budget,
        backend: config.io_backend,
        merge,
        throttle: None,
        accounting: None,
        max_inflight_bytes: config.inflight_bytes,
        io_priority: u16::try_from(input.io_priority).unwrap_or(0),
        read_faults: config.read_faults.clone(),
        pad_min_timestamp: if input.timestamps_not_persisted {
            U64_TS_LEN
        } else {
            0
        },
    })
}

/// The C++ read throttle, owned by whichever thread runs the merge's reads.
struct CxxReadThrottle(cxx::UniquePtr<crate::contract::ffi::ReadThrottle>);

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
            crate::contract::ffi::request_read(t, bytes);
        }
    }
}

/// The C++ read accounting, owned by whichever thread runs the merge's reads.
struct CxxReadAccounting(cxx::UniquePtr<crate::contract::ffi::ReadAccounting>);

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
        crate::contract::ffi::account_read(
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

fn open_merged_stream(
    input: CompactionInput,
    throttle: cxx::UniquePtr<crate::contract::ffi::ReadThrottle>,
    accounting: cxx::UniquePtr<crate::contract::ffi::ReadAccounting>,
) -> Box<MergedStream> {
    let mut merge = MergedStream {
        session: None,
        ahead_unavailable: None,
        error: None,
        internal: None,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<Session, Failure> {
        let config = config();
        let mut spec = spec_from_input(input, config).map_err(Failure::Error)?;
        spec.throttle = CxxReadThrottle(throttle).into_throttle();
        spec.accounting = CxxReadAccounting(accounting).into_accounting();
        let ahead = config.merge_ahead != MergeAhead::Off;
        let busy = if config.merge_ahead == MergeAhead::Auto {
            crate::cpu_pressure::contended(AHEAD_AUTO_MAX_CPU_PRESSURE)
        } else {
            None
        };
        let (opened, unavailable) = match busy {
            Some(why) => (Session::open(spec, false).0, Some(why)),
            None => Session::open(spec, ahead),
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

impl MergedStream {
    fn status(&self) -> MergeStatus {
        let (code, message) = if let Some(m) = &self.internal {
            (
                StatusCode::Internal,
                format!("ringmerge internal error: {m}"),
            )
        } else {
            match &self.error {
                None => (StatusCode::Ok, String::new()),
                Some(Error::Io(m)) => (StatusCode::IOError, m.clone()),
                Some(Error::Corruption(m)) => (StatusCode::Corruption, m.clone()),
                Some(Error::NotSupported(m)) => (StatusCode::NotSupported, m.clone()),
            }
        };
        MergeStatus { code, message }
    }

    /// The session for read-only queries (batch slices, figures): still readable after a merge
    /// error, so the LOG line can report how far it got, but not after a caught panic.
    fn readable(&self) -> Option<&Session> {
        self.session.as_ref().filter(|_| self.internal.is_none())
    }

    /// The session for advancing: only while neither an error nor a panic happened.
    fn live_session(&mut self) -> Option<&mut Session> {
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
        self.readable().map_or(&[], Session::batch_data)
    }

    fn batch_entries(&self) -> &[BatchEntry] {
        self.readable().map_or(&[], Session::batch_entries)
    }

    fn take_bytes_read(&mut self) -> u64 {
        if self.internal.is_some() {
            return 0;
        }
        self.session.as_mut().map_or(0, Session::take_bytes_read)
    }

    fn summary(&self) -> SubcompactionSummary {
        let s = self.readable().map(Session::summary).unwrap_or_default();
        SubcompactionSummary {
            backend: s.backend.to_owned(),
            io_uring_fallback_reason: s.fallback_reason.unwrap_or_default(),
            runs: s.runs as u64,
            files: s.files as u64,
            blocks: s.blocks as u64,
            compressed_blocks: s.compressed_blocks as u64,
            oversized_blocks: s.reader.oversized_reads,
            oversized_peak_bytes: s.reader.oversized_peak_bytes,
            entries: s.entries,
            bytes_read: s.reader.bytes_read,
            reads_submitted: s.reader.reads_submitted,
            io_uring_enter_calls: s.reader.enter_calls,
            short_reads: s.reader.short_reads,
            wait_micros: s.wait.as_micros() as u64,
            merge_micros: s.merge.as_micros() as u64,
            merge_engine: s.merge_engine.to_owned(),
            bpf_unavailable: s.bpf_unavailable.unwrap_or_default(),
            bpf_declined: s.bpf_declined.unwrap_or_default(),
            bpf_calls: s.bpf_calls,
            ahead: s.ahead,
            ahead_wait_micros: s.ahead_wait.as_micros() as u64,
            ahead_cpu_micros: s.ahead_cpu.as_micros() as u64,
            ahead_unavailable: self.ahead_unavailable.clone().unwrap_or_default(),
            rate_limit_wait_micros: s.reader.throttle_wait_ns / 1000,
            ahead_attrs_unapplied: s.ahead_attrs_unapplied.unwrap_or_default(),
            // C++ fills the rest (inputs' dictionaries and range deletions, file system, I/O
            // class, read rate limit, write-behind).
            ..SubcompactionSummary::default()
        }
    }
}
