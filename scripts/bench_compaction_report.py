"""The manual-compaction benchmark's summary and reports (scripts/bench_compaction.py): the
summary rows of its runs, the terminal tables, and report.md, rendered from the results.json
document alone (report_md), so a report can be drawn again from a saved run.

Python 3.11 standard library only.
"""

from __future__ import annotations

import statistics

from bench_common import COMPACTION_COMM, WRITE_BEHIND_COMM
from bench_tables import (cell, fmt_num, md_table, median_thread_cpu, stat, text_table,
                          thread_cpu_rows)


def summarize(runs: list[dict], modes: list[str], variants: list[str]) -> list[dict]:
    out = []
    for mode in modes:
        base = None
        native = None
        for variant in variants:
            all_rs = [r for r in runs if r["mode"] == mode and r["variant"] == variant]
            if not all_rs:
                continue
            # Timings/RSS from untraced runs when there are any (tracing adds per-syscall cost);
            # syscall counts from the traced ones.
            rs = [r for r in all_rs if not r["traced"]] or all_rs
            trs = [r for r in all_rs if r["syscalls"]]
            s = {
                "mode": mode, "variant": variant, "runs": len(rs),
                "wall_s": stat([r["wall_s"] for r in rs]),
                "cpu_s": stat([r["cpu_s"] for r in rs]),
                "process_cpu_s": stat([r["process_cpu_s"] for r in rs]),
                "thread_cpu_s": median_thread_cpu(rs),
                "peak_rss_mb": stat([r["peak_rss_mb"] for r in rs]),
                "read_bytes": stat([r["read_bytes"] for r in rs]),
                "write_bytes": stat([r["write_bytes"] for r in rs]),
                "compactions": stat([r["compactions"] for r in rs]),
                "ringmerge_accelerated": sum(r["log"]["ringmerge_accelerated"] for r in all_rs),
                "ringmerge_fallback": sum(r["log"]["ringmerge_fallback"] for r in all_rs),
                "bpf_unavailable": sum(r["log"]["bpf_unavailable"] for r in all_rs),
                "crosscheck_ok": all(r["log"]["crosscheck"]["ok"] for r in all_rs),
                "traced_runs": len(trs),
            }
            if trs:
                rs = trs
                s["syscalls_total"] = stat([r["syscalls"]["total"] for r in rs])
                kinds: set[str] = set()
                for r in rs:
                    kinds.update(r["syscalls"]["by_syscall"])
                by_kind = {k: statistics.median([r["syscalls"]["by_syscall"].get(k, 0) for r in rs])
                           for k in kinds}
                s["syscalls_by_kind_median"] = dict(sorted(by_kind.items(), key=lambda kv: -kv[1]))
                s["syscalls_compaction_thread"] = stat(
                    [r["syscalls"]["compaction_thread"]["total"] for r in rs])
                s["syscalls_write_behind"] = stat(
                    [r["syscalls"]["by_comm_all_threads"].get(WRITE_BEHIND_COMM, 0) for r in rs])
            if variant == "stock":
                base = s
            if base is not None:
                ratio = {}
                for k in ("wall_s", "cpu_s", "process_cpu_s", "peak_rss_mb", "syscalls_total",
                          "syscalls_compaction_thread"):
                    if k in s and k in base and base[k]["median"]:
                        ratio[k] = s[k]["median"] / base[k]["median"]
                s["ratio_to_stock"] = ratio
            if variant == "native":
                native = s
            if variant == "bpf" and native is not None:
                # Issue 3's gate: the BPF merge's wall time against the native merge's.
                s["ratio_to_native"] = {
                    k: s[k]["median"] / native[k]["median"]
                    for k in ("wall_s", "cpu_s") if native[k]["median"]}
            out.append(s)
    return out


def table_rows(summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    hdr = ["mode", "variant", "runs", "compaction wall s", "compaction CPU s",
           "process CPU s", "syscalls (all threads)", "top syscalls", "syscalls (rocksdb:low)",
           "peak RSS MB", "read/write MB",
           "compactions", "accel/fallback"]
    rows = []
    for s in summary:
        top = ", ".join(f"{k} {fmt_num(v)}"
                        for k, v in list(s.get("syscalls_by_kind_median", {}).items())[:3])
        wall = cell(s, "wall_s", lambda v: f"{v:.2f}")
        if "ratio_to_native" in s and "wall_s" in s["ratio_to_native"]:
            wall += f" ({s['ratio_to_native']['wall_s']:.2f}x native)"
        rows.append([
            s["mode"], s["variant"], str(s["runs"]),
            wall,
            cell(s, "cpu_s", lambda v: f"{v:.2f}"),
            cell(s, "process_cpu_s", lambda v: f"{v:.2f}"),
            cell(s, "syscalls_total", fmt_num),
            top or "n/a",
            cell(s, "syscalls_compaction_thread", fmt_num),
            cell(s, "peak_rss_mb", lambda v: f"{v:.0f}"),
            f"{s['read_bytes']['median'] / 1e6:.0f}/{s['write_bytes']['median'] / 1e6:.0f}",
            f"{s['compactions']['median']:.0f}",
            f"{s['ringmerge_accelerated']}/{s['ringmerge_fallback']}"
            + (" (BPF unavailable: merged natively)" if s["bpf_unavailable"] else ""),
        ])
    return hdr, rows


def kinds_table(summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    best: dict[str, float] = {}
    for s in summary:
        for k, v in s.get("syscalls_by_kind_median", {}).items():
            best[k] = max(best.get(k, 0), v)
    kinds = [k for k, _ in sorted(best.items(), key=lambda kv: -kv[1])][:10]
    h2 = ["mode", "variant", "total"] + kinds + ["other kinds", "rocksdb:low",
                                                 WRITE_BEHIND_COMM]
    r2 = []
    for s in summary:
        bk = s.get("syscalls_by_kind_median", {})
        if "syscalls_total" not in s:
            continue
        rest = sum(v for k, v in bk.items() if k not in kinds)
        r2.append([s["mode"], s["variant"], fmt_num(s["syscalls_total"]["median"])]
                  + [fmt_num(bk.get(k, 0)) for k in kinds]
                  + [fmt_num(rest), fmt_num(s["syscalls_compaction_thread"]["median"]),
                     fmt_num(s["syscalls_write_behind"]["median"])])
    return h2, r2


def disk_bound(summary: list[dict], disk: dict) -> list[str]:
    lines = []
    rbw, wbw = disk.get("read_MBps"), disk.get("write_MBps")
    if not rbw or not wbw:
        return lines
    for s in summary:
        if s["variant"] != "stock":
            continue
        r_s = s["read_bytes"]["median"] / 1e6 / rbw
        w_s = s["write_bytes"]["median"] / 1e6 / wbw
        lines.append(f"{s['mode']}: read {s['read_bytes']['median'] / 1e6:.0f} MB at {rbw} MB/s "
                     f"= {r_s:.2f} s, write {s['write_bytes']['median'] / 1e6:.0f} MB at {wbw} MB/s "
                     f"= {w_s:.2f} s -> disk bound ~{max(r_s, w_s):.2f} s if overlapped "
                     f"({r_s + w_s:.2f} s if serial)")
    return lines


def print_tables(summary: list[dict], bound: list[str], disk: dict) -> None:
    """The summary as the terminal shows it."""
    hdr, rows = table_rows(summary)
    print()
    print(text_table(hdr, rows))
    h2, r2 = kinds_table(summary)
    if r2:
        print("\nSyscalls of every thread by kind (median per run):")
        print(text_table(h2, r2))
    h3, r3 = thread_cpu_rows(summary)
    print("\nCPU by thread group, s (median; every thread of the process):")
    print(text_table(h3, r3))
    if bound:
        print("\nDisk bound (" + disk["method"] + "):")
        for l in bound:
            print("  " + l)
    if any(s["bpf_unavailable"] for s in summary):
        print("\nWARNING: the BPF program could not be loaded (see the LOG's bpf_unavailable=): "
              "rows marked 'BPF unavailable' merged natively")
    if not all(s["crosscheck_ok"] for s in summary):
        print("\nWARNING: statistics and LOG compaction_finished disagreed in some runs "
              "(see results.json runs[].log.crosscheck)")


def report_md(result: dict, runs_dir) -> str:
    """report.md of a results.json document; `runs_dir` holds the per-run artifacts."""
    cfg, summary = result["config"], result["summary"]
    bound, disk = result["disk_bound"], result["disk"]
    hdr, rows = table_rows(summary)
    h3, r3 = thread_cpu_rows(summary)
    md = [f"# Manual compaction benchmark ({result['created'][:19]})", "",
          f"Input: fillrandom of {cfg['num']:,} keys (16 B keys, 1 KiB values, seed 42, no WAL, "
          f"no compression, 64 MiB memtables, auto compactions off) = {cfg['input_sst_files']} L0 "
          f"files, {cfg['input_sst_bytes'] / 1e6:.0f} MB; one `compact` (CompactRange into L1) per "
          f"run on a fresh copy, page cache dropped first. Reps: {cfg['reps']}, interleaved. "
          f"db_bench: `{cfg['db_bench']}`.",
          "",
          "Cells: median [min-max] (ratio of medians to stock in the same I/O mode). Wall and CPU "
          "are the SUMs of `rocksdb.compaction.times.micros` / `.cpu_micros` (the compaction "
          "thread only); process CPU is db_bench's user+sys over its whole run, every thread "
          "(`/usr/bin/time -v`, io_uring's io-wq workers included); syscalls are "
          "`raw_syscalls:sys_enter` events counted by perf over every thread of db_bench's process "
          "(compaction thread, merge-ahead companion, write-behind writers, flush and "
          f"foreground threads), with those of the compaction threads (`{COMPACTION_COMM}`) in "
          "their own column; "
          "peak RSS is db_bench's (`/usr/bin/time -v`); accel/fallback counts `ringmerge:` LOG lines "
          "over all runs. "
          + ("Wall, CPU and RSS come from the untraced reps; syscall counts from one separate "
             "perf-traced run per row." if cfg["trace"] == "separate" else
             "Every run was perf-traced." if cfg["trace"] == "all" else "Syscalls were not traced."),
          "", md_table(hdr, rows), ""]
    if summary and any("syscalls_by_kind_median" in s for s in summary):
        md += ["## Syscalls of every thread by kind (median per run)", ""]
        h2, r2 = kinds_table(summary)
        md += [md_table(h2, r2), ""]
    md += ["CPU by thread group, seconds (median; every thread of the process, sampled from "
           "/proc/PID/task every 50 ms; `unattributed` = `time -v`'s process total minus the "
           "threads seen):", "", md_table(h3, r3), ""]
    if bound:
        md += [f"## Disk bound ({disk['method']})", ""] + [f"- {l}" for l in bound] + [""]
    md += [f"Raw runs: `results.json`; per-run artifacts (stdout, LOG, ringmerge lines): `{runs_dir}`.", ""]
    return "\n".join(md)
