//! Stock equivalence: `RINGMERGE_MODE=off` is stock RocksDB, measured against an unpatched build.
//!
//! The differential tests (tests/differential.rs) compare ringmerge with the patched binary under
//! `RINGMERGE_MODE=off`; that "off" is stock rests on this file. Each scenario runs twice, with
//! the test driver (tests/driver/ringmerge_driver.cc) built two ways from the same RocksDB 10.1.3
//! source and flags:
//!
//! - stock: linked with the unmodified library (`scripts/build-rocksdb.sh --stock`, into
//!   target/rocksdb-stock/bin/), run with `RINGMERGE_MODE=native`, which a patched build would
//!   obey (accelerate and log) and the stock one cannot see;
//! - off: the patched build's driver (`scripts/build-rocksdb.sh`, target/rocksdb/bin/) with
//!   `RINGMERGE_MODE=off`;
//!
//! and both must write the same thing: the driver's dump (every compaction job's statistics, every
//! live file's level, boundaries, seqno range, counts, codec and data size, every internal key in
//! it with sequence number, type, value length and hash, what a reader sees) and the LOG's events
//! (every flush, compaction and table file creation, with all table properties), less the fields
//! that differ between any two runs of one binary (times, file numbers, DB and session ids). The
//! LOGs must not mention ringmerge at all. A missing stock build fails the tests, with the command
//! that makes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{dump_difference, parse_outcomes, root, run_driver, DriverRun};

/// The patched build's driver (RINGMERGE_DRIVER overrides, as in tests/differential.rs).
fn patched_driver() -> PathBuf {
    common::driver()
}

/// The driver linked with unpatched RocksDB 10.1.3 (RINGMERGE_STOCK_DRIVER overrides). It must
/// have been built from this clone's driver source: a stale one would run another scenario (or
/// reject a new flag) and the comparison would say nothing.
fn stock_driver() -> PathBuf {
    let build = "run scripts/build-rocksdb.sh --stock (scripts/test.sh does, before cargo test)";
    if let Some(p) = std::env::var_os("RINGMERGE_STOCK_DRIVER") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "RINGMERGE_STOCK_DRIVER={} is missing",
            p.display()
        );
        return p;
    }
    let p = root().join("target/rocksdb-stock/bin/ringmerge_driver");
    assert!(
        p.exists(),
        "{} is missing: the unpatched RocksDB 10.1.3 build is needed to compare with; {build}",
        p.display()
    );
    let built_from = p.with_file_name("ringmerge_driver.built-from.cc");
    let source = root().join("tests/driver/ringmerge_driver.cc");
    assert!(
        std::fs::read(&built_from).ok() == Some(std::fs::read(&source).unwrap()),
        "{} was not built from the current {}: {build}",
        p.display(),
        source.display()
    );
    p
}

/// A scratch directory under target/stocktest.
fn scratch(name: &str) -> PathBuf {
    common::scratch("stocktest", name)
}

/// `ringmerge_driver run` of one build: its DB in `dir/db-<tag>`, its dump in `dir/dump-<tag>.txt`.
fn run(driver: &Path, dir: &Path, tag: &str, mode: &str, args: &[&str]) -> DriverRun {
    run_driver(Command::new(driver), dir, tag, mode, args)
}

fn assert_same_dump(stock: &str, off: &str, dir: &Path) {
    if let Some((line, stock, off)) = dump_difference(stock, off) {
        panic!(
            "the patched build with RINGMERGE_MODE=off wrote something else than unpatched RocksDB: \
             the dumps differ at line {line} (dumps in {}):\n--- stock (unpatched)\n{stock}\n--- patched, \
             RINGMERGE_MODE=off\n{off}",
            dir.display()
        );
    }
}

/// Lines of a LOG that come from ringmerge: its per-subcompaction lines and warnings
/// (`ringmerge: ...`) and its compaction_finished event fields (`"ringmerge_...`). (Not any line
/// with "ringmerge" in it: the DB's path and the driver's compaction filter name may have it.)
fn ringmerge_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("ringmerge:") || l.contains("\"ringmerge_"))
        .collect()
}

/// Event fields whose values differ between two runs of the same binary: clocks, file numbers
/// (subcompactions allocate them concurrently), the DB's and the session's random ids, and
/// flush_started's memtable memory_usage (the skiplist's node heights come from a thread-local
/// random generator). None of them is part of what a compaction writes but the timestamps and
/// ids in the table properties, which RocksDB sets per run as well.
const VARYING: &[&str] = &[
    "memory_usage",
    "time_micros",
    "compaction_time_micros",
    "compaction_time_cpu_micros",
    "file_number",
    "orig_file_number",
    "creation_time",
    "oldest_key_time",
    "newest_key_time",
    "file_creation_time",
    "db_id",
    "db_session_id",
];

fn normalize(v: &mut serde_json::Value) {
    if let serde_json::Value::Object(m) = v {
        m.retain(|k, _| !VARYING.contains(&k.as_str()));
        for (k, x) in m.iter_mut() {
            // compaction_started's input files by level: file numbers, kept as a count.
            if k.starts_with("files_L") {
                if let serde_json::Value::Array(a) = x {
                    *x = serde_json::Value::from(a.len());
                }
            }
            normalize(x);
        }
    }
}

/// The LOG's events (EVENT_LOG_v1: flushes, compactions, table file creations and deletions,
/// with every table property), less the VARYING fields, counted; subcompactions log theirs in
/// no fixed order, hence a multiset.
fn events(log: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, json) in log.lines().filter_map(|l| l.split_once("EVENT_LOG_v1 ")) {
        let mut e: serde_json::Value = serde_json::from_str(json)
            .unwrap_or_else(|err| panic!("unparsable LOG event ({err}): {json}"));
        normalize(&mut e);
        *out.entry(e.to_string()).or_insert(0) += 1;
    }
    out
}

fn assert_same_events(stock: &str, off: &str, dir: &Path) {
    let (s, o) = (events(stock), events(off));
    assert!(
        s.keys().any(|e| e.contains("\"table_file_creation\"")),
        "no table_file_creation event in the stock LOG ({})",
        dir.display()
    );
    if s == o {
        return;
    }
    let only = |a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>| {
        a.iter()
            .filter(|(e, n)| b.get(*e) != Some(n))
            .take(3)
            .map(|(e, n)| format!("{n}x {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "the LOG events differ between unpatched RocksDB and the patched build with \
         RINGMERGE_MODE=off (LOGs in {}):\n--- only in stock\n{}\n--- only in off\n{}",
        dir.display(),
        only(&s, &o),
        only(&o, &s)
    );
}

/// Both LOGs are RocksDB 10.1.3's, and neither has a ringmerge line: not the stock build (which
/// was told RINGMERGE_MODE=native), not the patched one with RINGMERGE_MODE=off.
fn assert_no_ringmerge(stock: &DriverRun, off: &DriverRun) {
    for (who, o) in [
        ("unpatched RocksDB (RINGMERGE_MODE=native)", stock),
        ("the patched build with RINGMERGE_MODE=off", off),
    ] {
        assert!(
            o.log.contains("RocksDB version: 10.1.3"),
            "{who}: not RocksDB 10.1.3 (no \"RocksDB version: 10.1.3\" in its LOG)"
        );
        let lines = ringmerge_lines(&o.log);
        assert!(
            lines.is_empty(),
            "{who} logged ringmerge lines (is the stock driver really stock?): {lines:?}"
        );
    }
}

/// Runs one scenario with both builds and compares everything they wrote.
fn stock_equivalent(name: &str, args: &[&str]) {
    let (stock_bin, patched_bin) = (stock_driver(), patched_driver());
    let dir = scratch(name);
    let stock = run(&stock_bin, &dir, "stock", "native", args);
    let off = run(&patched_bin, &dir, "off", "off", args);
    assert_no_ringmerge(&stock, &off);
    assert!(
        stock.dump.contains("compaction status=OK"),
        "no compaction ran:\n{}",
        stock.dump
    );
    assert_same_dump(&stock.dump, &off.dump, &dir);
    assert_same_events(&stock.log, &off.log, &dir);
}

/// The guard that makes the comparison mean something: the patched driver really is the patched
/// build (with RINGMERGE_MODE=native it accelerates, and says so), and its accelerated output is
/// unpatched RocksDB's too.
#[test]
fn the_patched_build_accelerates_and_the_stock_one_cannot() {
    let args = ["--l0-files", "3", "--base-levels", "1"];
    let (stock_bin, patched_bin) = (stock_driver(), patched_driver());
    let dir = scratch("guard");
    let stock = run(&stock_bin, &dir, "stock", "native", &args);
    let native = run(&patched_bin, &dir, "native", "native", &args);
    assert!(
        parse_outcomes(&native.log).iter().any(|o| o.accelerated),
        "{} with RINGMERGE_MODE=native did not accelerate: is it the patched build? {:?}",
        patched_bin.display(),
        ringmerge_lines(&native.log)
    );
    assert!(
        ringmerge_lines(&stock.log).is_empty(),
        "{} logged ringmerge lines: it is not unpatched RocksDB",
        stock_bin.display()
    );
    assert_same_dump(&stock.dump, &native.dump, &dir);
}

#[test]
fn l0_over_l1_l2_with_overwrites_and_deletes() {
    stock_equivalent(
        "l0_l1_l2",
        &[
            "--l0-files",
            "4",
            "--base-levels",
            "2",
            "--delete-pct",
            "15",
        ],
    );
}

#[test]
fn snapshots() {
    stock_equivalent(
        "snapshots",
        &["--snapshots", "1", "--l0-files", "4", "--delete-pct", "20"],
    );
}

#[test]
fn single_deletes_with_snapshots() {
    stock_equivalent(
        "single_delete",
        &[
            "--single-delete-pct",
            "20",
            "--l0-files",
            "5",
            "--base-levels",
            "1",
            "--snapshots",
            "2",
        ],
    );
}

#[test]
fn range_deletions_cut_small_files() {
    // One wide tombstone in an L0 file and narrow ones in every L0 and base-level file; small
    // output files, so tombstones take part in file cutting.
    stock_equivalent(
        "range_dels",
        &[
            "--range-del",
            "--range-dels",
            "6",
            "--l0-files",
            "4",
            "--base-levels",
            "2",
            "--target-file-size",
            "65536",
        ],
    );
}

#[test]
fn subcompactions() {
    stock_equivalent(
        "subcompactions",
        &[
            "--subcompactions",
            "4",
            "--l0-files",
            "6",
            "--keys-per-file",
            "4000",
            "--base-levels",
            "2",
        ],
    );
}

#[test]
fn range_deletions_with_snapshots_and_subcompactions() {
    stock_equivalent(
        "range_dels_snapshots_sub",
        &[
            "--range-dels",
            "8",
            "--snapshots",
            "2",
            "--subcompactions",
            "4",
            "--l0-files",
            "6",
            "--keys-per-file",
            "3000",
            "--base-levels",
            "2",
            "--target-file-size",
            "65536",
            "--delete-pct",
            "15",
        ],
    );
}

#[test]
fn lz4_upper_zstd_bottommost_with_dictionary() {
    // MyRocks-like: LZ4 above, ZSTD with a 16 KiB dictionary at the bottommost level.
    stock_equivalent(
        "myrocks_mix",
        &[
            "--l0-files",
            "3",
            "--base-levels",
            "2",
            "--delete-pct",
            "10",
            "--compression",
            "lz4",
            "--bottommost-compression",
            "zstd",
            "--max-dict-bytes",
            "16384",
            "--subcompactions",
            "2",
        ],
    );
}

#[test]
fn zstd_with_dictionary_and_partitioned_index() {
    stock_equivalent(
        "zstd_dict_partitioned",
        &[
            "--l0-files",
            "3",
            "--base-levels",
            "2",
            "--compression",
            "zstd",
            "--max-dict-bytes",
            "16384",
            "--index-type",
            "partitioned",
        ],
    );
}

#[test]
fn merge_operator() {
    stock_equivalent(
        "merge",
        &["--merge-pct", "30", "--l0-files", "4", "--snapshots", "2"],
    );
}

#[test]
fn compaction_filter() {
    stock_equivalent(
        "compaction_filter",
        &[
            "--compaction-filter",
            "--l0-files",
            "4",
            "--base-levels",
            "2",
        ],
    );
}

#[test]
fn key_and_value_sizes_with_direct_io() {
    stock_equivalent(
        "sizes_direct",
        &[
            "--direct",
            "--key-min",
            "8",
            "--key-max",
            "64",
            "--value-min",
            "0",
            "--value-max",
            "4096",
            "--keys-per-file",
            "600",
            "--l0-files",
            "6",
        ],
    );
}
