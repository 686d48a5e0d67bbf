"""The workload benchmark's summary and reports (scripts/bench_workloads.py): the metrics, the
summary rows of its runs, the terminal tables, workloads.md, rendered from the workloads.json
document (report_md), and the SVG charts (tools/bench-chart).

Python 3.11 standard library only.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
from pathlib import Path

import bench_tables as bt
from bench_common import REPO, BenchError
from bench_workloads_cases import FILL_BENCH, RW_LOAD_MBC, SNAPSHOT_SCENARIO, log

CHART_MANIFEST = REPO / "tools/bench-chart/Cargo.toml"

METRICS = [  # key, header, better, formatter
    ("ops_per_s", "ops/s", "higher", lambda v: bt.fmt_num(v)),
    ("p99_write_us", "p99 write us", "lower", lambda v: f"{v:.1f}" if v < 100 else f"{v:.0f}"),
    ("p99_read_us", "p99 read us", "lower", lambda v: f"{v:.1f}" if v < 100 else f"{v:.0f}"),
    ("compaction_us_per_mb", "compaction us/MB", "lower", lambda v: f"{v:.0f}"),
    ("compaction_thread_cpu_us_per_mb", "c-thread CPU us/MB", "lower", lambda v: f"{v:.0f}"),
    ("compaction_cpu_us_per_mb", "all-threads CPU us/MB", "lower", lambda v: f"{v:.0f}"),
    ("compaction_wall_s", "compaction s", "lower", lambda v: f"{v:.2f}"),
    ("compact_read_gb", "compaction read GB", "lower", lambda v: f"{v:.2f}"),
    ("stall_s", "stall s", "lower", lambda v: f"{v:.2f}"),
    ("process_cpu_s", "process CPU s", "lower", lambda v: f"{v:.2f}"),
    ("compactions", "compactions", None, lambda v: f"{v:g}"),
]


def summarize(runs: list[dict], cases: list[dict], modes: list[str], variants: list[str]) -> list[dict]:
    out = []
    for case in cases:
        for mode in modes:
            base = None
            for variant in variants:
                rs = [r for r in runs if r["case"] == case["name"] and r["mode"] == mode
                      and r["variant"] == variant]
                if not rs:
                    continue
                s = {"case": case["name"], "title": case["title"], "kind": case["kind"],
                     "mode": mode, "variant": variant, "runs": len(rs)}
                for key, *_ in METRICS + [("peak_rss_mb",), ("compaction_cpu_s",)]:
                    vals = [r[key] for r in rs if r[key] is not None]
                    if vals:
                        s[key] = bt.stat(vals)
                s["write_latency_source"] = sorted({r["write_lat"]["source"] for r in rs
                                                    if r["write_lat"]})
                s["ringmerge_accelerated"] = sum(r["ringmerge_accelerated"] for r in rs)
                s["ringmerge_fallback"] = sum(r["ringmerge_fallback"] for r in rs)
                s["ringmerge_aborted"] = sum(r["ringmerge_aborted"] for r in rs)
                s["compactions_total"] = sum(r["compactions"] for r in rs)
                s["thread_cpu_s"] = bt.median_thread_cpu(rs)
                causes = sorted({c for r in rs for c in r.get("stall_causes", {})})
                s["stall_causes"] = {c: statistics.median(r.get("stall_causes", {}).get(c, 0)
                                                          for r in rs) for c in causes}
                if variant == "stock":
                    base = s
                if base is not None:
                    s["ratio_to_stock"] = {
                        k: s[k]["median"] / base[k]["median"]
                        for k, _, better, _ in METRICS
                        if better and k in s and k in base and base[k]["median"]}
                out.append(s)
    return out


def cell(s: dict, key: str, fmt) -> str:
    # A write p99 taken from statistics (readwhilewriting) is marked "*".
    from_stats = key == "p99_write_us" and s.get("write_latency_source") == ["stats"]
    return bt.cell(s, key, fmt, mark="*" if from_stats else "", hide_equal_range=True)


def table_rows(summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    hdr = ["case", "mode", "variant", "runs"] + [h for _, h, *_ in METRICS] + ["accel/fallback"]
    rows = []
    for s in summary:
        rows.append([s["case"], s["mode"], s["variant"], str(s["runs"])]
                    + [cell(s, k, f) for k, _, _, f in METRICS]
                    + [f"{s['ringmerge_accelerated']}/{s['ringmerge_fallback']}"
                       f" of {s['compactions_total']}"
                       + (f" (+{s['ringmerge_aborted']} cut by shutdown)"
                          if s["ringmerge_aborted"] else "")])
    return hdr, rows


def stall_rows(summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Median write stalls per cause (RocksDB's "Write Stall (count)" of the column family),
    only causes that occurred."""
    causes = sorted({c for s in summary for c, v in s.get("stall_causes", {}).items() if v})
    hdr = ["case", "mode", "variant", "stall s"] + causes
    rows = []
    for s in summary:
        c = s.get("stall_causes", {})
        rows.append([s["case"], s["mode"], s["variant"],
                     f"{s['stall_s']['median']:.2f}" if "stall_s" in s else "n/a"]
                    + [f"{c.get(k, 0):g}" for k in causes])
    return hdr, rows


def no_compaction_cases(summary: list[dict]) -> list[str]:
    """Case x mode rows in which no variant ran a compaction: every variant ran stock's code
    there, so their ratios measure only this machine's noise."""
    keys = sorted({(s["case"], s["mode"]) for s in summary})
    return [f"{c}/{m}" for c, m in keys
            if all(not s["compactions_total"] for s in summary
                   if s["case"] == c and s["mode"] == m)]


def print_tables(summary: list[dict]) -> None:
    """The summary as the terminal shows it."""
    hdr, rows = table_rows(summary)
    print()
    print(bt.text_table(hdr, rows))
    print("\ncells: median [min-max] (ratio of medians to stock, same case and mode); "
          "'*' = write p99 from statistics rocksdb.db.write.micros")
    t_hdr, t_rows = bt.thread_cpu_rows(summary, ("case", "mode", "variant"))
    print("\nCPU by thread group, s (median; every thread of the process):")
    print(bt.text_table(t_hdr, t_rows))
    s_hdr, s_rows = stall_rows(summary)
    print("\nWrite stalls by cause (median count per run):")
    print(bt.text_table(s_hdr, s_rows))
    idle = no_compaction_cases(summary)
    if idle:
        print(f"\nNo compaction ran in {', '.join(idle)}: those rows ran the same code in "
              f"every variant, so their ratios show this machine's noise, nothing else.")


def report_md(result: dict, runs_dir, coverage: bool) -> str:
    """workloads.md of a workloads.json document; `runs_dir` holds the per-run artifacts,
    `coverage`: the coverage suite ran."""
    cfg, summary, created = result["config"], result["summary"], result["created"]
    hdr, rows = table_rows(summary)
    t_hdr, t_rows = bt.thread_cpu_rows(summary, ("case", "mode", "variant"))
    s_hdr, s_rows = stall_rows(summary)
    idle = no_compaction_cases(summary)
    wbs = cfg["write_buffer_size_override"]
    md = [f"# db_bench workloads under live compaction ({created[:19]})", "",
          f"Paper settings (`{' '.join(cfg['paper_flags'])}`)"
          + (f", but `--write_buffer_size={wbs}`" if wbs else "") + ". "
          f"fill cases: `{FILL_BENCH}` of {cfg['num']:,} keys into an empty DB with the given "
          f"`--max_background_compactions`. Read/write cases: `--duration={cfg['duration_s']}` on a "
          f"fresh copy of one DB loaded with stock RocksDB (fillrandom of {cfg['rw_num']:,} keys + "
          f"waitforcompaction), `--max_background_compactions={RW_LOAD_MBC}`. Page cache "
          f"{'dropped' if cfg['drop_caches'] else 'not dropped'} before each run. Reps: {cfg['reps']}, "
          f"variants interleaved. db_bench: `{cfg['db_bench']}`.", "",
          "Cells: median [min-max] (ratio of medians to stock, same case and mode, this run). "
          "Latencies are db_bench's `--histogram=1` percentiles (`*` = from the statistics "
          "histogram `rocksdb.db.write.micros`, as readwhilewriting prints no write histogram); "
          "compaction us/MB = SUM `rocksdb.compaction.times.micros` / `rocksdb.compact.read.bytes`"
          "; c-thread CPU = SUM `rocksdb.compaction.times.cpu_micros` (the compaction thread "
          "only) per MB; all-threads CPU adds ringmerge's helper threads (`ahead_cpu_ms` + "
          "`wb_cpu_ms` of its LOG lines), the CPU a compaction costs the machine"
          "; stall = ticker `rocksdb.stall.micros`; accel/fallback = `ringmerge:` LOG lines "
          "(per subcompaction, status=OK) over all runs, of the total compactions counted by "
          "statistics; subcompactions cut short by the DB closing at the end of a run are listed "
          "apart.", ""]
    if coverage:
        md += ["Coverage cases: `lz4` = the fill case with `--compression_type=lz4`; `myrocks` = "
               "the fill case with a MyRocks-like OPTIONS file (LZ4, ZSTD bottommost, dynamic "
               "level bytes, 16 KiB blocks; written to WORK per I/O mode); `snapshots` = "
               f"`ringmerge_driver bench {' '.join(SNAPSHOT_SCENARIO)}` (one manual compaction "
               "of ~1 GB holding 4 snapshots; figures from the LOG's compaction events).", ""]
    md += [bt.md_table(hdr, rows), ""]
    md += ["CPU by thread group, seconds (median; every thread of the process, sampled from "
           "/proc/PID/task every 50 ms; `unattributed` = the process total of `time -v` minus "
           "the threads seen, i.e. threads that ended between two samples):", "",
           bt.md_table(t_hdr, t_rows), ""]
    md += ["Write stalls by cause (median count per run; RocksDB's `Write Stall (count)`):", "",
           bt.md_table(s_hdr, s_rows), ""]
    if idle:
        md += [f"No compaction ran in {', '.join(idle)}: every variant ran the same code there, "
               "so those ratios show this machine's noise, nothing else.", ""]
    for svg in ("workloads.svg",):
        md += [f"![{svg}]({svg})", ""]
    md += [f"Raw runs: `workloads.json`; per-run artifacts (stdout, LOG, ringmerge lines, "
           f"command): `{runs_dir}`.", ""]
    return "\n".join(md)


def find_cargo() -> str | None:
    c = shutil.which("cargo")
    if c:
        return c
    for p in (Path.home() / ".cargo/bin/cargo", Path("/root/.cargo/bin/cargo")):
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def draw_charts(out_dir: Path) -> list[str]:
    cargo = find_cargo()
    if cargo is None:
        log("cargo not found: skipping the SVG charts (tools/bench-chart)")
        return []
    cmd = [cargo, "run", "--quiet", "--release", "--manifest-path", str(CHART_MANIFEST), "--",
           str(out_dir)]
    log(f"drawing charts: {' '.join(cmd)}")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"chart tool failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return [l for l in p.stdout.splitlines() if l.strip()]
