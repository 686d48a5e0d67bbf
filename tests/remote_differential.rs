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

/// The remote benchmark (`scripts/bench_remote.py`, the README's remote section) at `--quick`
/// scale, end to end: every variant runs, remote jobs go to spawned workers and are reaped, and
/// the figures it reports agree with the raw outputs each run left (the driver's lines, perf's
/// count, the outcome lines). Nothing is timed.
#[test]
fn remote_benchmark_quick_runs_end_to_end() {
    let out = common::root().join("target/bench-remote-quick");
    let _ = std::fs::remove_dir_all(&out);
    let res = Command::new("python3")
        .arg(common::root().join("scripts/bench_remote.py"))
        .args(["--quick", "--out"])
        .arg(&out)
        .arg("--driver")
        .arg(driver())
        .output()
        .expect("spawn python3");
    assert!(
        res.status.success(),
        "bench_remote.py --quick failed: {}\n{}",
        String::from_utf8_lossy(&res.stderr),
        String::from_utf8_lossy(&res.stdout)
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["failed_checks"].as_array().unwrap().len(), 0);
    let rows = results["rows"].as_array().unwrap();
    let variants: Vec<&str> = rows
        .iter()
        .map(|r| r["variant"].as_str().unwrap())
        .collect();
    for v in [
        "local-stock",
        "local-ringmerge",
        "remote-stock",
        "remote-ringmerge",
    ] {
        assert!(variants.contains(&v), "no {v} run: {variants:?}");
    }
    for r in rows {
        let variant = r["variant"].as_str().unwrap();
        let dir = out.join(format!("{variant}-rep{}", r["rep"]));
        let stdout = std::fs::read_to_string(dir.join("stdout.txt")).unwrap();
        let field = |line: &str, key: &str| -> f64 {
            let l = stdout
                .lines()
                .find(|l| l.starts_with(&format!("{line} ")))
                .unwrap_or_else(|| panic!("{variant}: no {line} line in {stdout}"));
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{variant}: no {key} in {l}"))
                .parse()
                .unwrap()
        };
        assert!(
            field("load_compactions", "jobs") > 0.0,
            "{variant}: no compaction"
        );
        assert_eq!(
            r["jobs"].as_f64().unwrap(),
            field("load_compactions", "jobs")
        );
        // perf's own count, read here: `<n>,,raw_syscalls:sys_enter,...`.
        let perf = std::fs::read_to_string(dir.join("perf.txt")).unwrap();
        let syscalls: u64 = perf
            .lines()
            .find(|l| l.contains("raw_syscalls:sys_enter"))
            .and_then(|l| l.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{variant}: no syscall count in {perf}"));
        assert!(syscalls > 0);
        assert_eq!(r["syscalls"].as_u64().unwrap(), syscalls);
        let outcomes = std::fs::read_to_string(dir.join("outcomes")).unwrap_or_default();
        let accelerated = common::parse_outcomes(&outcomes)
            .iter()
            .filter(|o| o.accelerated)
            .count() as u64;
        assert_eq!(r["accelerated"].as_u64().unwrap(), accelerated, "{variant}");
        if variant.ends_with("ringmerge") {
            assert!(accelerated > 0, "{variant}: nothing accelerated");
        } else {
            assert_eq!(accelerated, 0, "{variant}: stock accelerated");
        }
        if variant.starts_with("remote") {
            let jobs = field("load_remote", "jobs");
            assert!(jobs > 0.0, "{variant}: no job went to a worker");
            // Every job's worker was spawned, waited for and reaped, its CPU counted.
            assert_eq!(field("load_remote", "workers_reaped"), jobs, "{variant}");
            assert!(field("load_remote", "worker_cpu_s") > 0.0, "{variant}");
            assert!(field("load_remote", "worker_compact_s") > 0.0, "{variant}");
        }
    }
}
