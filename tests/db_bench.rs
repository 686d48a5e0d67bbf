//! db_bench fillrandom in the paper's configuration (scripts/db_bench_paper.flags, which the
//! benchmark scripts read too: no WAL, no block cache, no compression, 64 MiB memtables x 2, one
//! flush thread), scaled down to run in seconds, with automatic compactions on: every compaction
//! RocksDB schedules must run through ringmerge (exactness itself is what tests/differential.rs
//! proves).

use ringmerge::merge::bpf::kernel_allows_arena;
use ringmerge::test_support::record_skip;
use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{db_bench_paper_flags, events, parse_outcomes, ringmerge_lines, root, Outcomes};

fn db_bench() -> PathBuf {
    let p = root().join("target/rocksdb/bin/db_bench");
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-rocksdb.sh (the README's test command does)",
        p.display()
    );
    p
}

struct Run {
    stdout: String,
    log: String,
}

/// `test` names the calling test, so concurrent tests never share a DB directory.
fn fillrandom(test: &str, mode: &str, direct: bool) -> Run {
    let dir = root().join(format!("target/dbbench-test/{test}-{mode}-{direct}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let direct_flag = if direct { "1" } else { "0" };
    // Small memtables and a low L0 trigger so a short run flushes and compacts often.
    let flags = db_bench_paper_flags(&["--write_buffer_size=4194304"]);
    let out = Command::new(db_bench())
        .env("RINGMERGE_MODE", mode)
        .args(&flags)
        .args([
            "--benchmarks=fillrandom,waitforcompaction,stats",
            "--num=120000",
            "--level0_file_num_compaction_trigger=4",
            "--max_bytes_for_level_base=16777216",
            "--target_file_size_base=4194304",
            "--max_background_compactions=2",
            "--statistics=1",
        ])
        .arg(format!("--use_direct_reads={direct_flag}"))
        .arg(format!(
            "--use_direct_io_for_flush_and_compaction={direct_flag}"
        ))
        .arg(format!("--db={}", dir.display()))
        .output()
        .expect("spawn db_bench");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "db_bench ({mode}) failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(dir.join("LOG")).unwrap();
    Run { stdout, log }
}

fn check(direct: bool, mode: &str) {
    let native = fillrandom(mode, mode, direct);
    // A compaction still running when db_bench closes the DB ends with ShutdownInProgress, as
    // stock's would; every other accelerated subcompaction must have succeeded.
    let outcomes = parse_outcomes(&native.log);
    let accelerated_lines = outcomes.accelerated();
    for o in &accelerated_lines {
        assert!(o.ok() || o.status_is("Shutdown in progress"), "{o:?}");
    }
    let fallbacks = outcomes.fallbacks();
    let finished = events(&native.log, "compaction_finished");
    let compactions = finished.len();
    assert!(
        compactions > 0,
        "the run compacted nothing:\n{}",
        native.stdout
    );
    assert!(fallbacks.is_empty(), "fallbacks: {fallbacks:?}");
    assert!(
        // compaction_finished is logged for a shutdown-cut compaction too.
        accelerated_lines.len() >= compactions,
        "{} accelerated subcompactions for {compactions} compactions",
        accelerated_lines.len()
    );
    assert!(
        finished
            .iter()
            .any(|e| e["ringmerge_path"] == "accelerated"),
        "compaction_finished events lack the ringmerge fields"
    );
    if mode == "bpf" {
        match kernel_allows_arena() {
            Ok(()) => {
                for o in &accelerated_lines {
                    assert!(
                        o.field("merge").is_some_and(|m| m.starts_with("bpf-")),
                        "not merged in BPF: {o:?}"
                    );
                }
            }
            // The kernel refuses BPF arenas (asked without ringmerge's loader): the run must
            // have merged natively, saying why, and the skip is recorded.
            Err(why) => {
                for o in &accelerated_lines {
                    assert!(
                        o.field("merge") == Some("native") && o.field("bpf_unavailable").is_some(),
                        "without BPF arenas the bpf mode must merge natively and say why: {o:?}"
                    );
                }
                record_skip(
                    "db_bench fillrandom_compactions_run_accelerated_bpf: its BPF merge",
                    &format!("the kernel refuses BPF arenas ({why}); merged natively"),
                );
            }
        }
    }
    // The same workload under stock logs nothing of ringmerge.
    let stock = fillrandom(mode, "off", direct);
    assert!(ringmerge_lines(&stock.log).is_empty());
}

#[test]
fn fillrandom_compactions_run_accelerated_buffered() {
    check(false, "native");
}

#[test]
fn fillrandom_compactions_run_accelerated_bpf() {
    check(false, "bpf");
}

#[test]
fn fillrandom_compactions_run_accelerated_direct() {
    check(true, "native");
}
