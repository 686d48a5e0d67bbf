//! What an accelerated compaction reports, all produced from the one schema,
//! [`SubcompactionSummary`]: the LOG line of each subcompaction, the outcome log
//! (`RINGMERGE_OUTCOME_LOG`), and the job's totals in the `compaction_finished` event.
//!
//! The functions below destructure the summary without `..`, so a field added to or removed
//! from the schema is a compile error here until it is reported (or explicitly not).

use crate::contract::{EventField, SubcompactionSummary};
use parking_lot::Mutex;
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::OnceLock;

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// The LOG line's figures (after "accelerated subcompaction N: "), as the tools parse them
/// (scripts/outcomes.py, tests/common).
pub fn log_line(s: &SubcompactionSummary) -> String {
    let SubcompactionSummary {
        backend,
        io_uring_fallback_reason,
        runs,
        files,
        blocks,
        compressed_blocks,
        oversized_blocks,
        oversized_peak_bytes,
        dict_files,
        range_del_files,
        entries,
        bytes_read,
        reads_submitted,
        io_uring_enter_calls,
        short_reads,
        wait_micros,
        merge_micros,
        merge_engine,
        bpf_unavailable,
        bpf_declined,
        bpf_calls,
        ahead,
        ahead_wait_micros,
        ahead_cpu_micros,
        ahead_unavailable,
        ahead_attrs_unapplied,
        wrapped_fs,
        io_priority,
        read_rate_limit,
        rate_limit_wait_micros,
        write_behind_limit,
        write_behind_files,
        write_behind_bytes,
        write_behind_write_micros,
        write_behind_full_wait_micros,
        write_behind_drain_wait_micros,
        write_behind_cpu_micros,
    } = s;
    // `tier=2`: the merged stream of all versions feeds RocksDB's own CompactionIterator.
    let mut out = format!(
        "tier=2 backend={backend} merge={merge_engine} runs={runs} files={files} \
         blocks={blocks} compressed_blocks={compressed_blocks} dict_files={dict_files} \
         range_del_files={range_del_files} entries={entries} bytes_read={bytes_read} \
         reads_submitted={reads_submitted} io_uring_enter={io_uring_enter_calls} \
         short_reads={short_reads} read_wait_ms={:.1} merge_ms={:.1}",
        ms(*wait_micros),
        ms(*merge_micros)
    );
    // Writing to a String cannot fail.
    if *oversized_blocks > 0 {
        // Blocks larger than the read size, and the read memory they took beyond the budget.
        let _ = write!(
            out,
            " oversized_blocks={oversized_blocks} oversized_peak_bytes={oversized_peak_bytes}"
        );
    }
    if *bpf_calls > 0 {
        let _ = write!(out, " bpf_calls={bpf_calls}");
    }
    if !bpf_unavailable.is_empty() {
        let _ = write!(out, " bpf_unavailable=\"{bpf_unavailable}\"");
    }
    if !bpf_declined.is_empty() {
        let _ = write!(out, " bpf_declined=\"{bpf_declined}\"");
    }
    if *ahead {
        let _ = write!(
            out,
            " merge_ahead=on ahead_wait_ms={:.1} ahead_cpu_ms={:.1}",
            ms(*ahead_wait_micros),
            ms(*ahead_cpu_micros)
        );
        if !ahead_attrs_unapplied.is_empty() {
            let _ = write!(out, " ahead_attrs_unapplied=\"{ahead_attrs_unapplied}\"");
        }
    } else if !ahead_unavailable.is_empty() {
        let _ = write!(out, " merge_ahead_unavailable=\"{ahead_unavailable}\"");
    } else {
        out.push_str(" merge_ahead=off");
    }
    if !io_priority.is_empty() {
        let _ = write!(out, " io_priority={io_priority}");
    }
    if !wrapped_fs.is_empty() {
        // The operator chose to read a wrapped FileSystem's files directly: every line says
        // whose reads were bypassed (fault injection, accounting).
        let _ = write!(
            out,
            " wrapped_fs=\"{wrapped_fs}\" (footers verified, read directly)"
        );
    }
    if !read_rate_limit.is_empty() {
        let _ = write!(
            out,
            " read_rate_limit={read_rate_limit} rate_limit_wait_ms={:.1}",
            ms(*rate_limit_wait_micros)
        );
    }
    if !io_uring_fallback_reason.is_empty() {
        let _ = write!(out, " io_uring_unavailable=\"{io_uring_fallback_reason}\"");
    }
    if *write_behind_limit == 0 {
        out.push_str(" write_behind=off");
    } else {
        let _ = write!(
            out,
            " write_behind={write_behind_limit} wb_files={write_behind_files} \
             wb_bytes={write_behind_bytes} wb_write_ms={:.1} wb_full_wait_ms={:.1} \
             wb_drain_wait_ms={:.1} wb_cpu_ms={:.1}",
            ms(*write_behind_write_micros),
            ms(*write_behind_full_wait_micros),
            ms(*write_behind_drain_wait_micros),
            ms(*write_behind_cpu_micros)
        );
    }
    out
}

/// Adds one subcompaction's figures to the job's: counts and times add up; the names (backend,
/// merge engine, priorities) are the latest subcompaction's.
fn add_to_total(total: &mut SubcompactionSummary, s: &SubcompactionSummary) {
    let SubcompactionSummary {
        backend,
        io_uring_fallback_reason,
        runs,
        files,
        blocks,
        compressed_blocks,
        oversized_blocks,
        oversized_peak_bytes,
        dict_files,
        range_del_files,
        entries,
        bytes_read,
        reads_submitted,
        io_uring_enter_calls,
        short_reads,
        wait_micros,
        merge_micros,
        merge_engine,
        bpf_unavailable,
        bpf_declined,
        bpf_calls,
        ahead,
        ahead_wait_micros,
        ahead_cpu_micros,
        ahead_unavailable,
        ahead_attrs_unapplied,
        wrapped_fs,
        io_priority,
        read_rate_limit,
        rate_limit_wait_micros,
        write_behind_limit,
        write_behind_files,
        write_behind_bytes,
        write_behind_write_micros,
        write_behind_full_wait_micros,
        write_behind_drain_wait_micros,
        write_behind_cpu_micros,
    } = s;
    let latest = |to: &mut String, from: &String| {
        if !from.is_empty() {
            to.clone_from(from);
        }
    };
    latest(&mut total.backend, backend);
    latest(
        &mut total.io_uring_fallback_reason,
        io_uring_fallback_reason,
    );
    latest(&mut total.merge_engine, merge_engine);
    latest(&mut total.bpf_unavailable, bpf_unavailable);
    latest(&mut total.bpf_declined, bpf_declined);
    latest(&mut total.ahead_unavailable, ahead_unavailable);
    latest(&mut total.ahead_attrs_unapplied, ahead_attrs_unapplied);
    latest(&mut total.wrapped_fs, wrapped_fs);
    latest(&mut total.io_priority, io_priority);
    latest(&mut total.read_rate_limit, read_rate_limit);
    total.ahead |= *ahead;
    total.write_behind_limit = *write_behind_limit;
    // The largest subcompaction's, not a sum: peaks of subcompactions need not coincide.
    total.oversized_peak_bytes = total.oversized_peak_bytes.max(*oversized_peak_bytes);
    for (t, v) in [
        (&mut total.runs, runs),
        (&mut total.files, files),
        (&mut total.blocks, blocks),
        (&mut total.compressed_blocks, compressed_blocks),
        (&mut total.oversized_blocks, oversized_blocks),
        (&mut total.dict_files, dict_files),
        (&mut total.range_del_files, range_del_files),
        (&mut total.entries, entries),
        (&mut total.bytes_read, bytes_read),
        (&mut total.reads_submitted, reads_submitted),
        (&mut total.io_uring_enter_calls, io_uring_enter_calls),
        (&mut total.short_reads, short_reads),
        (&mut total.wait_micros, wait_micros),
        (&mut total.merge_micros, merge_micros),
        (&mut total.bpf_calls, bpf_calls),
        (&mut total.ahead_wait_micros, ahead_wait_micros),
        (&mut total.ahead_cpu_micros, ahead_cpu_micros),
        (&mut total.rate_limit_wait_micros, rate_limit_wait_micros),
        (&mut total.write_behind_files, write_behind_files),
        (&mut total.write_behind_bytes, write_behind_bytes),
        (
            &mut total.write_behind_write_micros,
            write_behind_write_micros,
        ),
        (
            &mut total.write_behind_full_wait_micros,
            write_behind_full_wait_micros,
        ),
        (
            &mut total.write_behind_drain_wait_micros,
            write_behind_drain_wait_micros,
        ),
        (&mut total.write_behind_cpu_micros, write_behind_cpu_micros),
    ] {
        *t = t.saturating_add(*v);
    }
}

#[derive(Default)]
struct JobTotals {
    accelerated: u64,
    fallbacks: u64,
    /// The latest fallback's reason.
    fallback_reason: String,
    total: SubcompactionSummary,
}

/// One compaction job's outcomes, added to by its subcompactions' threads.
#[derive(Default)]
pub struct JobReport {
    totals: Mutex<JobTotals>,
}

// Called from C++: a panic (a bug) loses a report line, never unwinds into C++ (the totals' mutex
// does not poison).
impl JobReport {
    pub fn add_accelerated(&self, s: &SubcompactionSummary) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            append_outcome(&format!("accelerated {}", log_line(s)));
            let mut t = self.totals.lock();
            t.accelerated += 1;
            add_to_total(&mut t.total, s);
        }));
    }

    pub fn add_fallback(&self, reason: &str) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            append_outcome(&format!("fallback {reason}"));
            let mut t = self.totals.lock();
            t.fallbacks += 1;
            reason.clone_into(&mut t.fallback_reason);
        }));
    }

    /// The `ringmerge_*` fields of the job's `compaction_finished` event; none when no
    /// subcompaction reached ringmerge (RINGMERGE_MODE=off).
    pub fn event_fields(&self) -> Vec<EventField> {
        catch_unwind(AssertUnwindSafe(|| self.fields())).unwrap_or_default()
    }

    fn fields(&self) -> Vec<EventField> {
        let t = self.totals.lock();
        if t.accelerated == 0 && t.fallbacks == 0 {
            return Vec::new();
        }
        let text = |key: &str, text: &str| EventField {
            key: format!("ringmerge_{key}"),
            is_text: true,
            text: text.to_owned(),
            number: 0,
        };
        let number = |key: &str, number: u64| EventField {
            key: format!("ringmerge_{key}"),
            is_text: false,
            text: String::new(),
            number,
        };
        let path = if t.accelerated > 0 {
            "accelerated"
        } else {
            "stock"
        };
        let mut out = vec![
            text("path", path),
            number("accelerated_subcompactions", t.accelerated),
            number("fallback_subcompactions", t.fallbacks),
        ];
        if t.fallbacks > 0 {
            out.push(text("fallback_reason", &t.fallback_reason));
        }
        if t.accelerated == 0 {
            return out;
        }
        let SubcompactionSummary {
            backend,
            io_uring_fallback_reason: _,
            runs: _,
            files: _,
            blocks,
            compressed_blocks,
            oversized_blocks,
            oversized_peak_bytes,
            dict_files: _,
            range_del_files: _,
            entries: _,
            bytes_read,
            reads_submitted,
            io_uring_enter_calls,
            short_reads: _,
            wait_micros,
            merge_micros,
            merge_engine,
            bpf_unavailable: _,
            bpf_declined: _,
            bpf_calls: _,
            ahead,
            ahead_wait_micros,
            ahead_cpu_micros,
            ahead_unavailable: _,
            ahead_attrs_unapplied: _,
            wrapped_fs: _,
            io_priority: _,
            read_rate_limit,
            rate_limit_wait_micros,
            write_behind_limit,
            write_behind_files,
            write_behind_bytes,
            write_behind_write_micros: _,
            write_behind_full_wait_micros,
            write_behind_drain_wait_micros,
            write_behind_cpu_micros,
        } = &t.total;
        out.extend([
            text("backend", backend),
            text("merge", merge_engine),
            number("blocks", *blocks),
            number("compressed_blocks", *compressed_blocks),
            number("bytes_read", *bytes_read),
            number("reads_submitted", *reads_submitted),
            number("io_uring_enter_calls", *io_uring_enter_calls),
            number("read_wait_micros", *wait_micros),
            number("merge_micros", *merge_micros),
            text("merge_ahead", if *ahead { "on" } else { "off" }),
            number("merge_ahead_wait_micros", *ahead_wait_micros),
            number("merge_ahead_cpu_micros", *ahead_cpu_micros),
        ]);
        if *oversized_blocks > 0 {
            out.push(number("oversized_blocks", *oversized_blocks));
            out.push(number("oversized_peak_bytes", *oversized_peak_bytes));
        }
        if !read_rate_limit.is_empty() {
            out.push(text("read_rate_limit", read_rate_limit));
            out.push(number("rate_limit_wait_micros", *rate_limit_wait_micros));
        }
        out.extend([
            number("write_behind", *write_behind_limit),
            number("write_behind_files", *write_behind_files),
            number("write_behind_bytes", *write_behind_bytes),
            number(
                "write_behind_wait_micros",
                write_behind_full_wait_micros.saturating_add(*write_behind_drain_wait_micros),
            ),
            number("write_behind_cpu_micros", *write_behind_cpu_micros),
        ]);
        out
    }
}

/// Appends one line to the outcome log, when the configuration names one. RocksDB's own test
/// suites delete their DB directories (and LOGs) when a test ends; this file is how a suite run
/// still reports what share of its compactions ringmerge served.
fn append_outcome(line: &str) {
    static OUTCOME_LOG: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    let log = OUTCOME_LOG.get_or_init(|| {
        crate::config::Config::get()
            .outcome_log
            .as_deref()
            .and_then(open_outcome_log)
            .map(Mutex::new)
    });
    if let Some(file) = log {
        // One write per line, so lines of concurrent processes appending to the same file do
        // not interleave. A failed write loses a line of a report, not data: ignored.
        let _ = file.lock().write_all(format!("{line}\n").as_bytes());
    }
}

fn open_outcome_log(path: &Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| log::warn!("outcome log {}: {e}", path.display()))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SubcompactionSummary {
        SubcompactionSummary {
            backend: "io_uring".into(),
            runs: 3,
            files: 5,
            blocks: 100,
            compressed_blocks: 40,
            entries: 1000,
            bytes_read: 409_600,
            reads_submitted: 7,
            io_uring_enter_calls: 4,
            wait_micros: 1250,
            merge_micros: 20_040,
            merge_engine: "native".into(),
            ahead: true,
            ahead_wait_micros: 300,
            ahead_cpu_micros: 15_000,
            io_priority: "idle".into(),
            write_behind_limit: 8 << 20,
            write_behind_files: 1,
            write_behind_bytes: 300_000,
            write_behind_write_micros: 900,
            write_behind_cpu_micros: 700,
            ..Default::default()
        }
    }

    #[test]
    fn log_line_is_what_the_tools_parse() {
        assert_eq!(
            log_line(&sample()),
            "tier=2 backend=io_uring merge=native runs=3 files=5 blocks=100 \
             compressed_blocks=40 dict_files=0 range_del_files=0 entries=1000 \
             bytes_read=409600 reads_submitted=7 io_uring_enter=4 short_reads=0 \
             read_wait_ms=1.2 merge_ms=20.0 merge_ahead=on ahead_wait_ms=0.3 \
             ahead_cpu_ms=15.0 io_priority=idle write_behind=8388608 wb_files=1 \
             wb_bytes=300000 wb_write_ms=0.9 wb_full_wait_ms=0.0 wb_drain_wait_ms=0.0 \
             wb_cpu_ms=0.7"
        );
        let s = SubcompactionSummary {
            ahead: false,
            ahead_unavailable: "cores busy".into(),
            bpf_unavailable: "arena refused".into(),
            read_rate_limit: "IO_LOW".into(),
            rate_limit_wait_micros: 2000,
            write_behind_limit: 0,
            oversized_blocks: 2,
            oversized_peak_bytes: 6 << 20,
            bpf_declined: "a data block larger".into(),
            ..sample()
        };
        let line = log_line(&s);
        for part in [
            " oversized_blocks=2 oversized_peak_bytes=6291456",
            " bpf_declined=\"a data block larger\"",
            " bpf_unavailable=\"arena refused\"",
            " merge_ahead_unavailable=\"cores busy\"",
            " read_rate_limit=IO_LOW rate_limit_wait_ms=2.0",
            " write_behind=off",
        ] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
        assert!(!line.contains("merge_ahead=on"), "{line}");
    }

    #[test]
    fn job_totals_add_up_and_reach_the_event() {
        let job = JobReport::default();
        assert!(job.event_fields().is_empty(), "nothing to report yet");
        job.add_accelerated(&sample());
        job.add_accelerated(&sample());
        job.add_fallback("comparator x is not the bytewise comparator");
        let fields = job.event_fields();
        let get = |k: &str| {
            fields
                .iter()
                .find(|f| f.key == format!("ringmerge_{k}"))
                .unwrap_or_else(|| panic!("{k} missing"))
        };
        assert_eq!(get("path").text, "accelerated");
        assert_eq!(get("accelerated_subcompactions").number, 2);
        assert_eq!(get("fallback_subcompactions").number, 1);
        assert!(get("fallback_reason").text.starts_with("comparator x"));
        assert_eq!(get("blocks").number, 200);
        assert_eq!(get("bytes_read").number, 819_200);
        assert_eq!(get("merge_micros").number, 40_080);
        assert_eq!(get("merge_ahead").text, "on");
        assert_eq!(get("write_behind").number, 8 << 20);
        assert_eq!(get("write_behind_bytes").number, 600_000);
        assert_eq!(get("write_behind_cpu_micros").number, 1400);
        assert!(fields.iter().all(|f| f.key != "ringmerge_read_rate_limit"));
        // Only a job that met blocks larger than the read size reports them.
        assert!(fields.iter().all(|f| f.key != "ringmerge_oversized_blocks"));
        let job = JobReport::default();
        for peak in [3 << 20, 5 << 20] {
            job.add_accelerated(&SubcompactionSummary {
                oversized_blocks: 1,
                oversized_peak_bytes: peak,
                ..sample()
            });
        }
        let fields = job.event_fields();
        let get = |k: &str| {
            fields
                .iter()
                .find(|f| f.key == format!("ringmerge_{k}"))
                .unwrap_or_else(|| panic!("{k} missing"))
                .number
        };
        assert_eq!(get("oversized_blocks"), 2);
        assert_eq!(get("oversized_peak_bytes"), 5 << 20);
    }

    #[test]
    fn a_job_that_only_fell_back_reports_the_stock_path() {
        let job = JobReport::default();
        job.add_fallback("table format is not block-based");
        let keys: Vec<_> = job.event_fields().into_iter().map(|f| f.key).collect();
        assert_eq!(
            keys,
            [
                "ringmerge_path",
                "ringmerge_accelerated_subcompactions",
                "ringmerge_fallback_subcompactions",
                "ringmerge_fallback_reason"
            ]
        );
    }
}
