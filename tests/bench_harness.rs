//! The benchmark pipeline at a tiny scale (seconds): scripts/bench-compaction.sh runs the
//! deterministic manual compaction for stock and ringmerge in both I/O modes, with perf counting
//! the compaction thread's syscalls, and every figure in results.json must be present and sane,
//! with ratios computed from the recorded values. This keeps the harness from rotting; it asserts
//! no speed (figures at this scale are noise), only counts the kernel reports.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("results.json lacks a number at {path:?}: {v}"))
}

#[test]
fn bench_pipeline_produces_complete_results() {
    let db_bench = root().join("target/rocksdb/bin/db_bench");
    assert!(
        db_bench.exists(),
        "run scripts/build-rocksdb.sh first (the README's test command does)"
    );
    let out_dir = root().join("target/bench-test");
    let _ = std::fs::remove_dir_all(out_dir.join("runs"));
    let out = Command::new(root().join("scripts/bench-compaction.sh"))
        .arg("--db-bench")
        .arg(&db_bench)
        .args(["--num", "30000", "--reps", "1", "--no-disk-bound"])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run bench-compaction.sh");
    assert!(
        out.status.success(),
        "bench-compaction.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    assert!(out_dir.join("report.md").exists());
    let summary = results["summary"].as_array().expect("summary rows");
    assert_eq!(summary.len(), 6, "buffered/direct x stock/native/bpf");
    for mode in ["buffered", "direct"] {
        let row = |variant: &str| {
            summary
                .iter()
                .find(|r| r["mode"] == mode && r["variant"] == variant)
                .unwrap_or_else(|| panic!("no {mode}/{variant} row"))
        };
        let (stock, native, bpf) = (row("stock"), row("native"), row("bpf"));
        // The BPF merge's gate is against the native merge, in the same run.
        let expect = num(bpf, &["wall_s", "median"]) / num(native, &["wall_s", "median"]);
        let got = num(bpf, &["ratio_to_native", "wall_s"]);
        assert!(
            (got - expect).abs() < 0.01 * expect + 0.006,
            "{mode} bpf/native {got}"
        );
        assert!(
            num(bpf, &["ringmerge_accelerated"]) >= 1.0,
            "{mode}: bpf accelerated nothing"
        );
        for r in [stock, native, bpf] {
            for field in [
                "wall_s",
                "cpu_s",
                "peak_rss_mb",
                "read_bytes",
                "write_bytes",
                "compactions",
            ] {
                assert!(num(r, &[field, "median"]) > 0.0, "{mode} {field}: {r}");
            }
            assert!(
                num(r, &["syscalls_total", "median"]) > 0.0,
                "{mode}: no syscalls traced"
            );
            assert_eq!(r["crosscheck_ok"], true, "statistics and LOG disagree: {r}");
            // Ratios are the recorded medians divided by stock's.
            for field in ["wall_s", "cpu_s", "peak_rss_mb", "syscalls_total"] {
                let expect = num(r, &[field, "median"]) / num(stock, &[field, "median"]);
                let got = num(r, &["ratio_to_stock", field]);
                assert!(
                    (got - expect).abs() < 0.01 * expect.max(1e-9) + 0.006,
                    "{mode} {field} ratio {got} != {expect}"
                );
            }
        }
        assert_eq!(num(stock, &["ringmerge_accelerated"]), 0.0);
        assert!(
            num(native, &["ringmerge_accelerated"]) >= 1.0,
            "{mode}: nothing accelerated"
        );
        assert_eq!(num(native, &["ringmerge_fallback"]), 0.0);
        // Kernel-counted, not timed: per-block preads are gone from the compaction thread.
        let preads = |r: &Value| {
            r["syscalls_by_kind_median"]["pread64"]
                .as_f64()
                .unwrap_or(0.0)
        };
        if mode == "buffered" {
            assert!(
                preads(stock) > 100.0,
                "stock should pread per block: {stock}"
            );
            assert!(
                preads(native) * 20.0 < preads(stock),
                "ringmerge still preads per block: {native}"
            );
        }
    }
}

#[test]
fn workloads_pipeline_produces_complete_results() {
    let db_bench = root().join("target/rocksdb/bin/db_bench");
    assert!(
        db_bench.exists(),
        "run scripts/build-rocksdb.sh first (the README's test command does)"
    );
    let out_dir = root().join("target/bench-test-workloads");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(root().join("scripts/bench-workloads.sh"))
        .arg("--db-bench")
        .arg(&db_bench)
        .args(["--quick", "--suites", "fill", "--mbc", "1", "--no-chart"])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run bench-workloads.sh");
    assert!(
        out.status.success(),
        "bench-workloads.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("workloads.json")).unwrap())
            .unwrap();
    assert!(out_dir.join("workloads.md").exists());
    let summary = results["summary"].as_array().expect("summary rows");
    assert!(!summary.is_empty());
    for r in summary {
        let variant = r["variant"].as_str().unwrap();
        let stock = summary
            .iter()
            .find(|s| s["case"] == r["case"] && s["mode"] == r["mode"] && s["variant"] == "stock")
            .expect("a stock row for every case");
        for field in [
            "ops_per_s",
            "p99_write_us",
            "compaction_wall_s",
            "compactions",
        ] {
            assert!(num(r, &[field, "median"]) > 0.0, "{field}: {r}");
        }
        let expect = num(r, &["ops_per_s", "median"]) / num(stock, &["ops_per_s", "median"]);
        let got = num(r, &["ratio_to_stock", "ops_per_s"]);
        assert!(
            (got - expect).abs() < 0.01 * expect + 0.006,
            "ops ratio {got} != {expect}"
        );
        if variant == "stock" {
            assert_eq!(num(r, &["ringmerge_accelerated"]), 0.0);
        } else {
            assert!(
                num(r, &["ringmerge_accelerated"]) >= 1.0,
                "nothing accelerated: {r}"
            );
            assert_eq!(num(r, &["ringmerge_fallback"]), 0.0);
        }
    }
}
