//! The README's main command, `scripts/bench.sh`, at `--quick` scale, end to end: it builds (cached),
//! runs the manual-compaction suite and the workload suite for stock and ringmerge in both I/O
//! modes, writes the reports and draws the charts. A broken path in it fails here.
//!
//! The checks read the raw per-run outputs (db_bench's stdout, the DB's LOG, perf's data, the
//! command each run recorded) with their own parsers, not the figures the scripts computed, and
//! then require the scripts' figures to agree with them. Syscalls are counted over every thread
//! of the process, so per-block reads moved to another thread are still counted. Nothing here is
//! timed: figures at this scale are noise; only counts the kernel reports are compared.

use ringmerge::merge::bpf::kernel_allows_arena;
use ringmerge::test_support::record_skip;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{parse_outcomes, root};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {v}"))
}

/// The one stamped folder a fresh run leaves under `dir` (the test removes older ones).
fn only_subdir(dir: &Path) -> PathBuf {
    let subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(subdirs.len(), 1, "one run folder in {}", dir.display());
    subdirs.into_iter().next().unwrap()
}

fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// `<name> ... COUNT : n SUM : s` of db_bench's statistics dump (a histogram): (count, sum).
fn stats_hist(out: &str, name: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{name} P50 :")))
        .unwrap_or_else(|| panic!("no histogram {name} in db_bench's output"));
    let after = |key: &str| -> u64 {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    (after("COUNT : "), after("SUM : "))
}

/// `<name> COUNT : n` of db_bench's statistics dump (a ticker).
fn stats_ticker(out: &str, name: &str) -> u64 {
    let prefix = format!("{name} COUNT : ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no ticker {name} in db_bench's output"))
        .trim()
        .parse()
        .unwrap()
}

/// ops/sec of db_bench's result line for `bench` (`fillrandom : ... micros/op N ops/sec ...`).
fn ops_per_sec(out: &str, bench: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(bench) && l.contains(" ops/sec"))
        .unwrap_or_else(|| panic!("no '{bench} : ... ops/sec' line"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "ops/sec").unwrap();
    words[i - 1].parse().unwrap()
}

/// What a run's LOG says ringmerge did.
#[derive(Debug, Default)]
struct LogOutcome {
    /// Lines that mention ringmerge at all (its outcomes, warnings and event fields).
    lines: usize,
    accelerated_ok: usize,
    fallback: usize,
    io_uring: usize,
    bpf_merges: usize,
    bpf_unavailable: usize,
}

fn log_outcome(log: &str) -> LogOutcome {
    let mut lg = LogOutcome {
        lines: log.lines().filter(|l| l.contains("ringmerge")).count(),
        ..LogOutcome::default()
    };
    for o in parse_outcomes(log) {
        if o.ok() {
            lg.accelerated_ok += 1;
            lg.io_uring += (o.field("backend") == Some("io_uring")) as usize;
            lg.bpf_merges += o.field("merge").is_some_and(|m| m.starts_with("bpf-")) as usize;
        }
        lg.fallback += !o.accelerated as usize;
        lg.bpf_unavailable += o.field("bpf_unavailable").is_some() as usize;
    }
    lg
}

/// The I/O mode a run folder's name (`NNN-...-<mode>-<variant>-rep<R>`) names.
fn io_mode_of(name: &str) -> &'static str {
    ["buffered", "direct"]
        .into_iter()
        .find(|m| name.contains(&format!("-{m}-")))
        .unwrap_or_else(|| panic!("run folder {name} names no I/O mode"))
}

/// What every run's LOG must say of ringmerge: nothing under stock; otherwise no fallback, and
/// every accelerated subcompaction read through io_uring.
fn assert_log_of_variant(name: &str, variant: &str, lg: &LogOutcome) {
    if variant.starts_with("stock") {
        assert_eq!(
            lg.lines, 0,
            "{name}: RINGMERGE_MODE=off logged ringmerge lines"
        );
    } else {
        assert_eq!(lg.fallback, 0, "{name}: {lg:?}");
        assert_eq!(
            lg.io_uring, lg.accelerated_ok,
            "{name}: not io_uring: {lg:?}"
        );
    }
}

/// The variant a run's recorded command ran as, from its environment (RINGMERGE_MODE and
/// RINGMERGE_MERGE_AHEAD), named as the scripts name variants.
fn variant_of(command: &str) -> String {
    let env = |k: &str| {
        command
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    // db_bench takes the last --subcompactions given; the variant's own comes after the
    // common flags' --subcompactions=1.
    let sub = command
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--subcompactions="))
        .next_back()
        .filter(|n| *n != "1")
        .map(|n| format!("-sub{n}"))
        .unwrap_or_default();
    let base = match (
        env("RINGMERGE_MODE").as_deref(),
        env("RINGMERGE_MERGE_AHEAD"),
    ) {
        (Some("off"), _) => "stock".to_string(),
        (Some(m), Some(a)) if a == "off" => format!("{m}-inline"),
        (Some(m), _) => m.to_string(),
        (None, _) => panic!("command records no RINGMERGE_MODE: {command}"),
    };
    base + &sub
}

/// raw_syscalls:sys_enter events in a perf.data file, over every thread: (all, pread64).
fn perf_syscalls(data: &Path) -> (u64, u64) {
    // perf prints the syscall's number; this machine's (the perf data was recorded here).
    const PREAD64: i64 = libc::SYS_pread64;
    let out = Command::new("perf")
        .args(["script", "-F", "tid,trace", "-i"])
        .arg(data)
        .output()
        .expect("run perf script");
    assert!(
        out.status.success(),
        "perf script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut all, mut pread) = (0, 0);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(i) = line.find("NR ") else { continue };
        let nr: i64 = line[i + 3..]
            .split(|c: char| !(c.is_ascii_digit() || c == '-'))
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("perf line {line}"));
        all += 1;
        pread += (nr == PREAD64) as u64;
    }
    (all, pread)
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{what}: the report says {got}, the raw outputs say {want}"
    );
}

#[test]
fn main_command_quick_runs_end_to_end() {
    let out_dir = root().join("target/bench-quick");
    let _ = std::fs::remove_dir_all(&out_dir);
    let run = Command::new(root().join("scripts/bench.sh"))
        .args(["--quick", "--keep-perf-data", "--out"])
        .arg(&out_dir)
        .output()
        .expect("run scripts/bench.sh");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "scripts/bench.sh --quick failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for f in [
        "report.md",
        "results.json",
        "workloads.md",
        "workloads.json",
        "compaction.svg",
        "workloads.svg",
    ] {
        let p = out_dir.join(f);
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("the main command wrote no {f}: {e}"))
            .len();
        assert!(len > 500, "{f} is {len} bytes");
    }
    for svg in ["compaction.svg", "workloads.svg"] {
        let text = read(&out_dir.join(svg));
        assert!(text.contains("<svg") && text.contains("stock"), "{svg}");
    }
    check_manual_compaction(&out_dir);
    check_workloads(&out_dir);
}

/// The manual-compaction suite: every mode x variant ran, ringmerge read through io_uring and
/// merged in BPF where asked, per-block preads are gone from every thread, and results.json agrees
/// with the raw outputs.
fn check_manual_compaction(out_dir: &Path) {
    let results = json(&out_dir.join("results.json"));
    let dirs = run_dirs(&only_subdir(&out_dir.join("runs")));
    // (mode, variant) -> raw figures of the untraced run, and the traced run's syscalls.
    let mut wall: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut sys: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    // Where the kernel refuses BPF arenas: its answer, then the bpf runs that merged natively.
    let mut no_bpf: Option<String> = None;
    for d in &dirs {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        let mode = io_mode_of(&name).to_string();
        let variant = variant_of(&read(&d.join("command.txt")));
        let out = read(&d.join("db_bench.out"));
        let (compactions, wall_us) = stats_hist(&out, "rocksdb.compaction.times.micros");
        assert!(compactions >= 1, "{name}: no compaction ran");
        assert!(
            stats_ticker(&out, "rocksdb.compact.read.bytes") > 0,
            "{name}"
        );
        let lg = log_outcome(&read(&d.join("LOG")));
        assert_log_of_variant(&name, &variant, &lg);
        if variant == "stock-sub2" {
            // Stock's own way to use both cores: the compaction really ran split in two.
            assert!(
                read(&d.join("LOG")).contains("\"num_subcompactions\": 2"),
                "{name}: stock-sub2 ran no 2-way subcompaction"
            );
        }
        if !variant.starts_with("stock") {
            assert!(
                lg.accelerated_ok >= 1,
                "{name}: nothing accelerated: {lg:?}"
            );
            if variant.starts_with("bpf") {
                match kernel_allows_arena() {
                    Ok(()) => {
                        assert_eq!(lg.bpf_merges, lg.accelerated_ok, "{name}: not BPF: {lg:?}");
                        assert_eq!(lg.bpf_unavailable, 0, "{name}: {lg:?}");
                    }
                    Err(why) => {
                        // The LOG (and so the report) must say these runs merged natively.
                        assert!(lg.bpf_unavailable >= 1, "{name}: {lg:?}");
                        no_bpf.get_or_insert(why).push_str(&format!(" {name}"));
                    }
                }
            }
        }
        let key = (mode, variant);
        if name.ends_with("-reptrace") {
            let perf = d.join("perf.data");
            assert!(perf.exists(), "{name}: no perf.data (--keep-perf-data)");
            sys.insert(key, perf_syscalls(&perf));
        } else {
            wall.insert(key, wall_us as f64 / 1e6);
        }
    }
    if let Some(why_and_runs) = no_bpf {
        record_skip(
            "bench_harness: the BPF merge of the manual compaction's bpf runs",
            &format!("the kernel refuses BPF arenas; merged natively: {why_and_runs}"),
        );
    }
    let variants = ["stock", "stock-sub2", "native", "bpf"];
    for mode in ["buffered", "direct"] {
        for v in variants {
            let key = (mode.to_string(), v.to_string());
            assert!(wall.contains_key(&key), "no timed {mode}/{v} run");
            assert!(sys.contains_key(&key), "no perf-traced {mode}/{v} run");
        }
        let k = |v: &str| (mode.to_string(), v.to_string());
        let (stock_all, stock_pread) = sys[&k("stock")];
        if mode == "buffered" {
            // Stock reads a 4 KiB block per pread; ringmerge reads batches through io_uring.
            assert!(
                stock_pread > 1000,
                "stock should pread per block: {stock_pread}"
            );
            for v in ["native", "bpf"] {
                let (all, pread) = sys[&k(v)];
                assert!(
                    pread * 20 < stock_pread,
                    "{v}: {pread} preads over all threads against stock's {stock_pread}"
                );
                assert!(
                    all * 4 < stock_all,
                    "{v}: {all} syscalls over all threads against stock's {stock_all}"
                );
            }
        }
        // The report's figures are the raw ones (one rep: the median is the run).
        let summary = results["summary"].as_array().expect("summary rows");
        let row = |v: &str| {
            summary
                .iter()
                .find(|r| r["mode"] == mode && r["variant"] == v)
                .unwrap_or_else(|| panic!("no {mode}/{v} row in results.json"))
        };
        for v in variants {
            let r = row(v);
            close(num(r, &["wall_s", "median"]), wall[&k(v)], "wall_s");
            close(
                num(r, &["syscalls_total", "median"]),
                sys[&k(v)].0 as f64,
                &format!("{mode}/{v} syscalls of every thread"),
            );
            close(
                r["syscalls_by_kind_median"]["pread64"]
                    .as_f64()
                    .unwrap_or(0.0),
                sys[&k(v)].1 as f64,
                &format!("{mode}/{v} pread64 of every thread"),
            );
            if v != "stock" {
                close(
                    num(r, &["ratio_to_stock", "wall_s"]),
                    wall[&k(v)] / wall[&k("stock")],
                    &format!("{mode}/{v} wall ratio"),
                );
                close(
                    num(r, &["ratio_to_stock", "syscalls_total"]),
                    sys[&k(v)].0 as f64 / stock_all as f64,
                    &format!("{mode}/{v} syscall ratio"),
                );
            }
        }
    }
}

/// The workload suite: every case x mode x variant ran and printed its result line, the
/// read/write cases ran on the loaded DB, the fill cases' ringmerge runs were accelerated, and
/// workloads.json agrees with the raw outputs.
fn check_workloads(out_dir: &Path) {
    let results = json(&out_dir.join("workloads.json"));
    let dirs = run_dirs(&only_subdir(&out_dir.join("runs-workloads")));
    let cases = [
        ("fill-mbc1", "fillrandom"),
        ("fill-mbc2", "fillrandom"),
        ("rrwr-10", "readrandomwriterandom"),
        ("rrwr-50", "readrandomwriterandom"),
        ("rrwr-90", "readrandomwriterandom"),
        ("readwhilewriting", "readwhilewriting"),
    ];
    let mut ops: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for d in &dirs {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        let (case, bench) = cases
            .iter()
            .find(|(c, _)| name.contains(&format!("-{c}-")))
            .unwrap_or_else(|| panic!("run folder {name} names no known case"));
        let mode = io_mode_of(&name);
        let command = read(&d.join("command.txt"));
        let variant = variant_of(&command);
        let out = read(&d.join("db_bench.out"));
        let n = ops_per_sec(&out, bench);
        assert!(n > 0, "{name}: 0 ops/sec");
        let lg = log_outcome(&read(&d.join("LOG")));
        assert_log_of_variant(&name, &variant, &lg);
        if !variant.starts_with("stock") && bench == &"fillrandom" {
            assert!(
                lg.accelerated_ok >= 1,
                "{name}: nothing accelerated: {lg:?}"
            );
        }
        if bench != &"fillrandom" {
            assert!(
                command.contains("--use_existing_db=1"),
                "{name}: a read/write case must run on the loaded DB: {command}"
            );
        }
        ops.insert((case.to_string(), mode.to_string(), variant), n);
    }
    // The loaded DB of the read/write cases was written by stock RocksDB.
    let loads: Vec<PathBuf> = run_dirs(&out_dir.join("work-workloads"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".load"))
        .collect();
    assert_eq!(loads.len(), 1, "one read/write load: {loads:?}");
    assert_eq!(variant_of(&read(&loads[0].join("command.txt"))), "stock");
    let summary = results["summary"].as_array().expect("summary rows");
    for (case, _) in cases {
        for mode in ["buffered", "direct"] {
            let key = |v: &str| (case.to_string(), mode.to_string(), v.to_string());
            for v in ["stock", "stock-sub2", "native"] {
                assert!(ops.contains_key(&key(v)), "no {case}/{mode}/{v} run");
                let row = summary
                    .iter()
                    .find(|r| r["case"] == case && r["mode"] == mode && r["variant"] == v)
                    .unwrap_or_else(|| panic!("no {case}/{mode}/{v} row in workloads.json"));
                close(
                    num(row, &["ops_per_s", "median"]),
                    ops[&key(v)] as f64,
                    &format!("{case}/{mode}/{v} ops/s"),
                );
                if v != "stock" {
                    close(
                        num(row, &["ratio_to_stock", "ops_per_s"]),
                        ops[&key(v)] as f64 / ops[&key("stock")] as f64,
                        &format!("{case}/{mode}/{v} ops ratio"),
                    );
                }
            }
        }
    }
}
