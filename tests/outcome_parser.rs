//! The readers of ringmerge's outcome lines, on lines in the exact forms ringmerge writes them
//! (taken from real LOGs and RINGMERGE_OUTCOME_LOG files): the tests' parser in
//! tests/common/mod.rs, and the scripts' in scripts/outcomes.py, which must read every line the
//! same way; and scripts/fallback_census.py, which classes the fallback reasons of outcome files.
//! No RocksDB build needed.

use std::process::Command;

mod common;
use common::{events, parse_outcome, parse_outcomes, root, warnings, Outcomes};

const LOG: &str = r#"2026/12/03-11:19:24.060729 31433 [WARN] [ain/cpp/ringmerge_compaction_input.cc:729] ringmerge: RINGMERGE_MODE=bpf but the BPF merge is unavailable, merging natively: loading the BPF merge program: Operation not permitted (os error 1)
2026/12/03-11:19:24.232327 31535 [db/compaction/compaction_job.cc:1572] [default] [JOB 3] ringmerge: accelerated subcompaction 0: tier=2 backend=io_uring merge=native runs=1 files=1 blocks=93 compressed_blocks=0 dict_files=0 range_del_files=0 entries=2957 bytes_read=374518 reads_submitted=1 io_uring_enter=1 short_reads=0 read_wait_ms=0.0 merge_ms=0.7 bpf_unavailable="loading the BPF merge program: Operation not permitted (os error 1); libbpf: failed to load BPF skeleton 'merge_bpf': -EPERM" merge_ahead=on ahead_wait_ms=0.3 ahead_cpu_ms=0.8 io_priority=idle write_behind=8388608 wb_files=2 wb_bytes=267146 wb_write_ms=0.1 wb_full_wait_ms=0.0 wb_drain_wait_ms=2.0 wb_cpu_ms=0.1 status=OK
2026/12/03-11:19:33.106132 330 [db/compaction/compaction_job.cc:1572] [default] [JOB 8] ringmerge: accelerated subcompaction 2: tier=2 backend=pread merge=native runs=5 files=5 blocks=291 compressed_blocks=0 dict_files=0 range_del_files=0 entries=9748 bytes_read=1166043 reads_submitted=5 io_uring_enter=0 short_reads=0 read_wait_ms=0.1 merge_ms=2.8 merge_ahead=off io_priority=inherit(writes_delayed) read_rate_limit=IO_LOW rate_limit_wait_ms=354.1 io_uring_unavailable="io_uring_setup: Operation not permitted (os error 1)" write_behind=off status=IO error: While reading /db/000012.sst at offset 128771 len 64624: Input/output error
2026/12/03-11:19:33.206132 330 (Original Log Time 2026/12/03-11:19:33.206100) EVENT_LOG_v1 {"time_micros": 1796296623254815, "job": 8, "event": "compaction_finished", "compaction_time_micros": 107033, "ringmerge_path": "accelerated", "ringmerge_accelerated_subcompactions": 2, "ringmerge_fallback_subcompactions": 1}
2026/12/03-11:19:47.552291 4037 [db/compaction/compaction_job.cc:1251] [default] [JOB 11] ringmerge: fallback subcompaction 1: file system LegacyFileSystem is not the default POSIX file system (RINGMERGE_WRAPPED_FS=verify would check its files and read them directly)
2026/12/03-11:19:48.000000 4037 [db/db_impl/db_impl.cc:1] some other line about /work/ringmerge/target: nothing to parse
"#;

const OUTCOME_FILE: &str = r#"accelerated tier=2 backend=io_uring merge=native runs=2 files=2 blocks=2 compressed_blocks=2 dict_files=0 range_del_files=1 entries=7 bytes_read=309 reads_submitted=2 io_uring_enter=1 short_reads=0 read_wait_ms=0.0 merge_ms=0.2 merge_ahead=on ahead_wait_ms=0.0 ahead_cpu_ms=0.2 wrapped_fs="DbStressFS" (footers verified, read directly) write_behind=8388608 wb_files=1 wb_bytes=0 wb_write_ms=0.0 wb_full_wait_ms=0.0 wb_drain_wait_ms=0.0 wb_cpu_ms=0.0
fallback input #9 is compressed with LZ4, which ringmerge does not decode
"#;

#[test]
fn log_lines_parse_into_outcomes() {
    let outcomes = parse_outcomes(LOG);
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    let (a, b, f) = (&outcomes[0], &outcomes[1], &outcomes[2]);

    assert!(a.accelerated && a.ok());
    assert_eq!(a.subcompaction, Some(0));
    assert_eq!(a.field("merge"), Some("native"));
    assert_eq!(a.int("blocks"), Some(93));
    assert_eq!(a.num("ahead_cpu_ms"), Some(0.8));
    // A quoted value with spaces, colons and single quotes in it.
    assert_eq!(
        a.field("bpf_unavailable"),
        Some(
            "loading the BPF merge program: Operation not permitted (os error 1); libbpf: \
             failed to load BPF skeleton 'merge_bpf': -EPERM"
        )
    );
    assert_eq!(a.field("merge_ahead"), Some("on"));
    assert_eq!(a.field("status"), None, "status is apart from the fields");

    // RocksDB's status runs to the end of the line.
    assert!(b.accelerated && !b.ok() && b.status_is("IO error"));
    assert_eq!(
        b.status.as_deref(),
        Some(
            "IO error: While reading /db/000012.sst at offset 128771 len 64624: Input/output error"
        )
    );
    assert_eq!(b.subcompaction, Some(2));
    assert_eq!(b.field("io_priority"), Some("inherit(writes_delayed)"));
    assert_eq!(
        b.field("io_uring_unavailable"),
        Some("io_uring_setup: Operation not permitted (os error 1)")
    );
    assert_eq!(b.field("write_behind"), Some("off"));
    assert_eq!(b.int("wb_bytes"), None);

    assert!(!f.accelerated && f.fields.is_empty() && f.status.is_none());
    assert_eq!(f.subcompaction, Some(1));
    assert!(f
        .reason
        .as_deref()
        .unwrap()
        .starts_with("file system LegacyFileSystem is not the default POSIX file system ("));

    assert_eq!(outcomes.accelerated().len(), 2);
    assert_eq!(outcomes.fallbacks().len(), 1);
    assert_eq!(outcomes.sum("runs"), 6);
    assert_eq!(outcomes.sum("bytes_read"), 374518 + 1166043);

    let w = warnings(LOG);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("the BPF merge is unavailable"));

    let finished = events(LOG, "compaction_finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["ringmerge_path"], "accelerated");
    assert_eq!(finished[0]["ringmerge_fallback_subcompactions"], 1);
    assert!(events(LOG, "compaction_started").is_empty());
}

#[test]
fn outcome_file_lines_parse_into_outcomes() {
    let outcomes = parse_outcomes(OUTCOME_FILE);
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let (a, f) = (&outcomes[0], &outcomes[1]);
    assert!(a.accelerated && a.subcompaction.is_none() && a.status.is_none());
    // Not `ok()`: the outcome file carries no status.
    assert!(!a.ok());
    // The words after a quoted value that are not key=value are skipped.
    assert_eq!(a.field("wrapped_fs"), Some("DbStressFS"));
    assert_eq!(a.int("write_behind"), Some(8388608));
    assert_eq!(a.int("range_del_files"), Some(1));
    assert_eq!(
        f.reason.as_deref(),
        Some("input #9 is compressed with LZ4, which ringmerge does not decode")
    );
    for not_an_outcome in [
        "",
        "accelerated",
        "ringmerge: accelerated subcompaction x: tier=2",
        "[default] [JOB 3] ringmerge: RINGMERGE_INFLIGHT=abc is not a number",
    ] {
        assert!(
            parse_outcome(not_an_outcome).is_none(),
            "{not_an_outcome:?}"
        );
    }
}

/// scripts/outcomes.py reads every line as the tests do: the same kind, subcompaction, status,
/// reason and fields (its numbers as the same numbers).
#[test]
fn the_scripts_parser_reads_the_same() {
    let text = format!("{LOG}{OUTCOME_FILE}");
    let script = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import outcomes
print(json.dumps([dict(accelerated=o.accelerated, subcompaction=o.subcompaction, fields=o.fields,
                       status=o.status, reason=o.reason) for o in outcomes.parse(sys.stdin.read())]))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(root().join("scripts"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "scripts/outcomes.py failed");
    let py: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let rs = parse_outcomes(&text);
    assert_eq!(py.len(), rs.len(), "{py:?}\n{rs:?}");
    for (p, r) in py.iter().zip(&rs) {
        assert_eq!(p["accelerated"], r.accelerated, "{r:?}");
        assert_eq!(p["subcompaction"].as_u64(), r.subcompaction.map(u64::from));
        assert_eq!(p["status"].as_str(), r.status.as_deref(), "{r:?}");
        assert_eq!(p["reason"].as_str(), r.reason.as_deref(), "{r:?}");
        let fields = p["fields"].as_object().unwrap();
        assert_eq!(fields.len(), r.fields.len(), "{fields:?}\n{r:?}");
        for (k, v) in fields {
            match v {
                serde_json::Value::String(s) => assert_eq!(r.field(k), Some(s.as_str()), "{k}"),
                n if n.is_u64() => assert_eq!(r.int(k), n.as_u64(), "{k}"),
                n => assert_eq!(r.num(k), n.as_f64(), "{k}"),
            }
        }
    }
}

/// scripts/fallback_census.py groups outcome files by suite or crash-test profile and mode, folds
/// reasons that differ only in file numbers, paths, sizes and debug dumps into one class (names
/// with digits in them stay whole), judges each class, and fails `--strict` on one it cannot judge.
#[test]
fn the_fallback_census_classes_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: &[&str]| {
        std::fs::write(dir.path().join(name), lines.join("\n") + "\n").unwrap()
    };
    let accelerated = OUTCOME_FILE.lines().next().unwrap();
    write(
        "db_compaction_test.native.0.outcomes",
        &[
            accelerated,
            "fallback input #12 is compressed with BZip2, which ringmerge does not decode",
            "fallback comparator rocksdb.Uint64Comparator is not the bytewise comparator",
            "fallback input #19 on file system MemoryFileSystem: /t/db_1/000019.sst is not a \
             local file (No such file or directory (os error 2))",
        ],
    );
    write(
        "db_compaction_test.native.1.outcomes",
        &[
            "fallback input #3 is compressed with BZip2, which ringmerge does not decode",
            "fallback input #20 on file system MemoryFileSystem: /t/db_2/000020.sst is not a \
             local file (No such file or directory (os error 2))",
            "fallback input #4 persists timestamps, unlike its column family",
        ],
    );
    write(
        "whitebox.native.plain.outcomes",
        &[
            accelerated,
            accelerated,
            "fallback comparator ShortKeyComparator is not one of RocksDB's bytewise or \
             reverse bytewise comparators (with or without u64 timestamps)",
            "fallback table format is not block-based",
        ],
    );
    // Not an outcome file: left out.
    write(
        "whitebox.native.plain.log",
        &["fallback input #1 has a global seqno (ingested)"],
    );
    let json = dir.path().join("census.json");
    let census = || {
        let out = Command::new("python3")
            .arg(root().join("scripts/fallback_census.py"))
            .arg(dir.path())
            .arg("--strict")
            .arg("--json")
            .arg(&json)
            .output()
            .expect("run python3");
        let text = std::fs::read(&json).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
        });
        let c: serde_json::Value = serde_json::from_slice(&text).unwrap();
        (out.status.code(), c)
    };

    let (code, c) = census();
    assert_eq!(code, Some(0), "{c:#}");
    let sources: Vec<_> = c["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap(),
                s["mode"].as_str().unwrap(),
                s["files"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("crash:plain", "native", Some(1)),
            ("db_compaction_test", "native", Some(2))
        ]
    );
    assert_eq!(c["totals"]["accelerated"], 3);
    assert_eq!(c["totals"]["fallback"], 8);
    let classes: Vec<_> = c["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["class"].as_str().unwrap(),
                k["verdict"].as_str().unwrap(),
                k["total"].as_u64().unwrap(),
            )
        })
        .collect();
    let mem_fs = "input #N on file system MemoryFileSystem: <path> is not a local file (No such \
                  file or directory (os error N))";
    let short = "comparator ShortKeyComparator is not one of RocksDB's bytewise or reverse \
                 bytewise comparators (with or without u64 timestamps)";
    assert_eq!(
        classes,
        [
            (
                "input #N is compressed with BZip2, which ringmerge does not decode",
                "yes",
                2
            ),
            (mem_fs, "yes", 2),
            (short, "yes", 1),
            (
                "comparator rocksdb.Uint64Comparator is not the bytewise comparator",
                "yes",
                1
            ),
            (
                "input #N persists timestamps, unlike its column family",
                "yes",
                1
            ),
            ("table format is not block-based", "yes", 1),
        ]
    );
    let bzip2 = &c["classes"][0];
    assert_eq!(
        bzip2["example"],
        "input #12 is compressed with BZip2, which ringmerge does not decode"
    );
    assert_eq!(bzip2["counts"]["db_compaction_test/native"], 2);

    // A reason nobody has judged yet fails --strict.
    write(
        "blackbox.native.faults.outcomes",
        &["fallback something new at offset 77 in /t/db/000009.sst"],
    );
    let (code, c) = census();
    assert_eq!(code, Some(1), "{c:#}");
    assert_eq!(c["unclassified"], 1);
    let new = c["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["verdict"] == "unclassified")
        .unwrap();
    assert_eq!(new["class"], "something new at offset N in <path>");
    assert_eq!(new["counts"]["crash:faults/native"], 1);
}
