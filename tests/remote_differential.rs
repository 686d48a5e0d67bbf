//! Remote compaction (RocksDB's CompactionService): the driver's primary hands each compaction
//! job to a worker process (`ringmerge_driver worker`, spawned per job, `OpenAndCompact` on a job
//! folder), whose `RINGMERGE_MODE` decides whether ringmerge serves it.
//!
//! - Remote stock and remote ringmerge must write byte-identical dumps (keys, sequence numbers,
//!   types, values, file cuts, record counts), and the workers' LOGs must show ringmerge's lines.
//! - Local and remote compaction must hold the same keys. The worker builds its compaction without
//!   grandparents, so its file cuts may differ (docs/remote-compaction-study.md §5), and only the
//!   key streams are compared.
//! - A worker killed mid-job (SIGKILL) makes the primary compact that job locally: the run
//!   succeeds, its data verifies, and the dump equals the local run's.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{driver, dump_difference, run_driver, DriverRun};

fn scratch(name: &str) -> PathBuf {
    common::scratch("remotetest", name)
}

/// `run` with the jobs folder `dir/jobs-<tag>` and spawned workers; the workers inherit the
/// environment, so `mode` is theirs as well as the primary's. Returns the run and the workers'
/// LOGs, concatenated.
fn run_remote(
    dir: &Path,
    tag: &str,
    mode: &str,
    args: &[&str],
    kill_at: Option<&str>,
) -> (DriverRun, String) {
    let jobs = dir.join(format!("jobs-{tag}"));
    let _ = std::fs::remove_dir_all(&jobs);
    let mut cmd = Command::new(driver());
    if let Some(at) = kill_at {
        cmd.env("RINGMERGE_DRIVER_KILL_AT", at);
    }
    let jobs_arg = jobs.to_string_lossy().into_owned();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--remote", jobs_arg.as_str(), "--remote-spawn"]);
    let run = run_driver(cmd, dir, tag, mode, &all);
    let mut worker_logs = String::new();
    for job in std::fs::read_dir(&jobs).expect("jobs folder").flatten() {
        worker_logs += &std::fs::read_to_string(job.path().join("out/LOG")).unwrap_or_default();
    }
    (run, worker_logs)
}

/// The dump's entries ("  <key> seq=.. type=.. vlen=.. vhash=.."), without the lines of the
/// compactions and files (the cuts may differ).
fn key_stream(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter(|l| l.starts_with("  ") && l.contains(" seq="))
        .collect()
}

fn assert_same(a: &str, b: &str, what: &str, dir: &Path) {
    if let Some((line, x, y)) = dump_difference(a, b) {
        panic!(
            "{what}: dumps differ at line {line} (in {}):\n---\n{x}\n---\n{y}",
            dir.display()
        );
    }
}

fn scenario(name: &str, args: &[&str]) {
    let dir = scratch(name);
    let local = run_driver(Command::new(driver()), &dir, "local", "off", args);
    let (stock, stock_workers) = run_remote(&dir, "remote-off", "off", args, None);
    let (accel, accel_workers) = run_remote(&dir, "remote-native", "native", args, None);
    assert_same(
        &stock.dump,
        &accel.dump,
        "remote stock vs remote ringmerge",
        &dir,
    );
    assert_eq!(
        key_stream(&local.dump),
        key_stream(&stock.dump),
        "local vs remote stock: different keys (in {})",
        dir.display()
    );
    // ringmerge's lines ("ringmerge: ...") and event fields ("ringmerge_..."); the driver's
    // compaction filter is named ringmerge.DropAndChange, which the LOG's options list shows.
    assert!(
        !stock_workers.contains("ringmerge: ") && !stock_workers.contains("\"ringmerge_"),
        "RINGMERGE_MODE=off workers logged ringmerge (in {})",
        dir.display()
    );
    assert!(
        accel_workers.contains("ringmerge: accelerated"),
        "no worker LOG says ringmerge accelerated its job (in {})",
        dir.display()
    );
    assert!(
        accel_workers.contains("\"remote_worker\": 1"),
        "no worker compaction_finished event"
    );
}

#[test]
fn remote_workers_write_what_stock_workers_write() {
    scenario(
        "basic",
        &[
            "--l0-files",
            "4",
            "--base-levels",
            "2",
            "--subcompactions",
            "2",
        ],
    );
}

#[test]
fn remote_workers_with_snapshots_merges_range_deletions_and_dictionaries() {
    scenario(
        "rich",
        &[
            "--l0-files",
            "6",
            "--keys-per-file",
            "4000",
            "--subcompactions",
            "4",
            "--merge-pct",
            "20",
            "--compaction-filter",
            "--snapshots",
            "2",
            "--range-dels",
            "3",
            "--compression",
            "zstd",
            "--max-dict-bytes",
            "8192",
        ],
    );
}

#[test]
fn a_killed_worker_falls_back_to_local_compaction() {
    let args = [
        "--l0-files",
        "4",
        "--subcompactions",
        "2",
        "--merge-pct",
        "10",
        "--range-dels",
        "2",
        "--snapshots",
        "2",
    ];
    for at in ["claim", "write"] {
        let dir = scratch(&format!("kill-{at}"));
        let local = run_driver(Command::new(driver()), &dir, "local", "native", &args);
        let (remote, _) = run_remote(&dir, "remote", "native", &args, Some(at));
        assert_same(
            &local.dump,
            &remote.dump,
            &format!("local vs workers killed at {at}"),
            &dir,
        );
        assert!(
            remote.log.contains("fallback to local by API (Wait)"),
            "killed at {at}: the primary's LOG has no local fallback (in {})",
            dir.display()
        );
        assert!(
            remote.log.contains("ringmerge: accelerated"),
            "killed at {at}: the local fallback was not accelerated"
        );
    }
}
