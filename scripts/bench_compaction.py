#!/usr/bin/env python3
"""Deterministic manual-compaction benchmark: stock RocksDB 10.1.3 vs ringmerge.

What it does (it reproduces the stock baseline measured when the project started, on a 2-core VM:
one pread per 4 KiB block buffered, one synchronous 2 MiB read at a time direct; this benchmark's
own reports are in docs/measurements/):

1. Builds an input DB once with db_bench fillrandom (N keys, the paper's configuration of
   scripts/db_bench_paper.flags: 16-byte keys, 1 KiB values, seed 42, no WAL, no compression,
   64 MiB memtables; auto compactions off), cached in WORK/input-nN.
   N=1,000,000 gives ~17 L0 files, ~1 GB.
2. For every rep, I/O mode (buffered / direct) and variant (stock = RINGMERGE_MODE=off,
   native = RINGMERGE_MODE=native, any other name X = RINGMERGE_MODE=X), interleaved:
   copies the input DB to a fresh directory, syncs and drops the page cache, then runs
   `db_bench --benchmarks=compact,stats --use_existing_db=1 --statistics=1 ...` (one
   CompactRange of everything into L1) under `perf record -e raw_syscalls:sys_enter` (every
   thread of the process; the compaction threads, named rocksdb:low, also apart) and
   `/usr/bin/time -v`.
3. Collects per run: compaction wall/CPU time (histogram SUMs, cross-checked against the LOG's
   compaction_finished events), compact read/write bytes, kernel-counted syscalls of every
   thread by kind, peak RSS, and the `ringmerge` LOG lines (accelerated / fallback counts).
4. Prints a summary (median, min-max, ratio to stock in the same I/O mode) and writes
   OUT/results.json (every raw run + summary) and OUT/report.md.

The parts: bench_common.py (paths, flags, variants), bench_measure.py (thread CPU, perf, disk),
bench_parse.py (db_bench, time -v and LOG output), bench_tables.py and bench_compaction_report.py
(summary and reports). Python 3.11 standard library only. Must run as root (drop_caches, perf
tracepoints).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_common import (COMPACTION_COMM, DEFAULT_DB_BENCH, DEFAULT_OUT, IO_MODES, PAPER_FLAGS,
                          TIME_BIN, BenchError, copy_db, db_files, drop_caches, env_text,
                          file_sha256, git_head, variant_env, variant_flags)
from bench_compaction_report import disk_bound, print_tables, report_md, summarize
from bench_measure import (ThreadCpuSampler, ensure_perf, measure_disk, measure_io_floor,
                           parse_perf, syscall_names)
from bench_parse import parse_hist, parse_log, parse_ticker, parse_time_v

# Options shared by the fill and the compaction run (the table/DB shape): the paper's
# configuration, and automatic compactions off in a level-style DB.
COMMON_FLAGS = PAPER_FLAGS + [
    # Must stay off in the compact run too: 17 L0 files would otherwise trigger an automatic
    # L0->L1 compaction as soon as the DB opens, racing the manual one.
    "--disable_auto_compactions=1",
    "--compaction_style=0",
    "--level_compaction_dynamic_level_bytes=0",  # db_bench's default; L0 compacts into L1
]
FILL_FLAGS = ["--benchmarks=fillrandom", "--use_existing_db=0"]
COMPACT_FLAGS = [
    "--benchmarks=compact,stats",
    "--use_existing_db=1",
    "--statistics=1",
    "--compaction_readahead_size=2097152",
]


def log(msg: str) -> None:
    ts = _dt.datetime.now().strftime("%H:%M:%S")
    print(f"[bench {ts}] {msg}", flush=True)


def die(msg: str) -> "None":
    print(f"bench-compaction: ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def build_input(db_bench: Path, work: Path, num: int) -> Path:
    fill_cmd_tail = FILL_FLAGS + COMMON_FLAGS + [f"--num={num}"]
    key = hashlib.sha256(" ".join(fill_cmd_tail).encode()).hexdigest()[:10]
    inp = work / f"input-n{num}-{key}"
    meta_path = inp / "BENCH_INPUT.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        n, size = db_files(inp)
        if n == meta["sst_files"] and size == meta["sst_bytes"]:
            log(f"reusing input DB {inp} ({n} L0 files, {size / 1e6:.0f} MB)")
            return inp
        log(f"cached input {inp} does not match its metadata; rebuilding")
    tmp = work / f"{inp.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(inp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [str(db_bench), f"--db={tmp}"] + fill_cmd_tail
    log(f"building input DB: {' '.join(cmd)}")
    t0 = time.monotonic()
    env = dict(os.environ, RINGMERGE_MODE="off")
    with open(work / f"{inp.name}.fill.out", "w") as out:
        p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, text=True)
    if p.returncode != 0:
        tail = (work / f"{inp.name}.fill.out").read_text()[-3000:]
        raise BenchError(f"db_bench fillrandom failed (exit {p.returncode}):\n{tail}")
    n, size = db_files(tmp)
    if n == 0:
        raise BenchError(f"fillrandom produced no .sst files in {tmp}")
    meta = {"num": num, "command": cmd, "sst_files": n, "sst_bytes": size,
            "fill_seconds": round(time.monotonic() - t0, 2),
            "db_bench": str(db_bench), "created": _dt.datetime.now().isoformat()}
    meta_path_tmp = tmp / "BENCH_INPUT.json"
    meta_path_tmp.write_text(json.dumps(meta, indent=2))
    tmp.rename(inp)
    log(f"input DB ready: {n} L0 files, {size / 1e6:.0f} MB, fill took {meta['fill_seconds']} s")
    return inp


def one_run(args, inp: Path, run_dir: Path, variant: str, mode: str, rep: int,
            names: dict[int, str], traced: bool) -> dict:
    db = args.work / "db"
    copy_db(inp, db)
    run_dir.mkdir(parents=True, exist_ok=True)
    drop_caches()

    cmd = ([str(args.db_bench), f"--db={db}"] + COMPACT_FLAGS + COMMON_FLAGS
           + [f"--num={args.num}"] + IO_MODES[mode] + variant_flags(variant) + args.extra)
    time_out = run_dir / "time-v.txt"
    wrapped = [TIME_BIN, "-v", "-o", str(time_out)] + cmd
    perf_data = run_dir / "perf.data"
    if traced:
        # Whole process tree (threads inherit), no kernel-side filter: the compaction threads
        # dominate the event count anyway, and other thread names stay visible.
        wrapped = (["perf", "record", "-e", "raw_syscalls:sys_enter",
                    "-m", args.perf_mmap, "-o", str(perf_data), "--"] + wrapped)
    env = dict(os.environ, **variant_env(variant))
    stdout_f = run_dir / "db_bench.out"
    stderr_f = run_dir / "db_bench.err"
    t0 = time.monotonic()
    with open(stdout_f, "w") as so, open(stderr_f, "w") as se:
        p = subprocess.Popen(wrapped, stdout=so, stderr=se, env=env, text=True)
        sampler = ThreadCpuSampler(p.pid)
        p.wait()
        sampler.stop()
    outer_s = time.monotonic() - t0
    out = stdout_f.read_text()
    err = stderr_f.read_text()
    (run_dir / "command.txt").write_text(
        env_text(variant_env(variant)) + " " + " ".join(wrapped) + "\n")

    def fail(msg: str):
        raise BenchError(f"{variant}/{mode}/rep{rep}: {msg}\n--- stderr (tail) ---\n{err[-3000:]}"
                         f"\n--- stdout (tail) ---\n{out[-2000:]}\n(artifacts: {run_dir})")

    if not time_out.exists():
        fail(f"no /usr/bin/time output (wrapper exit {p.returncode})")
    tv = parse_time_v(time_out.read_text())
    if tv["exit_status"] != 0 or p.returncode != 0:
        fail(f"db_bench failed (exit status {tv['exit_status']}, wrapper exit {p.returncode})")
    if "STATISTICS:" not in out:
        fail("db_bench printed no STATISTICS section")
    if traced and re.search(r"lost \d+ chunks", err):
        fail("perf lost events; raise --perf-mmap")

    try:
        c_count, wall_us = parse_hist(out, "rocksdb.compaction.times.micros")
        c_count_cpu, cpu_us = parse_hist(out, "rocksdb.compaction.times.cpu_micros")
        read_b = parse_ticker(out, "rocksdb.compact.read.bytes")
        write_b = parse_ticker(out, "rocksdb.compact.write.bytes")
        cpu_total_ticker = parse_ticker(out, "rocksdb.compaction.total.time.cpu_micros")
    except BenchError as e:
        fail(str(e))
    if c_count == 0:
        fail("no compaction ran (rocksdb.compaction.times.micros COUNT is 0; "
             "a single L0 file may have been trivially moved -- use a larger --num)")

    log_path = db / "LOG"
    if not log_path.exists():
        fail(f"no LOG in {db}")
    log_text = log_path.read_text(errors="replace")
    lg = parse_log(log_text)
    (run_dir / "ringmerge.log").write_text("\n".join(lg["ringmerge_lines"]) + "\n")
    shutil.copy(log_path, run_dir / "LOG")
    ev = lg["compaction_finished"]
    ev_wall = sum(e["compaction_time_micros"] or 0 for e in ev)
    ev_cpu = sum(e["compaction_time_cpu_micros"] or 0 for e in ev)
    cross = {
        "log_events": len(ev), "log_wall_us": ev_wall, "log_cpu_us": ev_cpu,
        "ok": len(ev) == c_count and ev_wall == wall_us and ev_cpu == cpu_us,
    }
    if not cross["ok"]:
        log(f"  WARNING: statistics ({c_count} compactions, {wall_us} us wall, {cpu_us} us cpu) "
            f"disagree with LOG compaction_finished ({len(ev)} events, {ev_wall} us, {ev_cpu} us)")

    sysc = None
    if traced:
        if not perf_data.exists():
            fail("perf produced no data file")
        try:
            sysc = parse_perf(perf_data, names)
        except BenchError as e:
            fail(str(e))
        if sysc["compaction_thread"]["total"] == 0:
            fail(f"perf recorded no syscalls from threads named {COMPACTION_COMM}")
        if not args.keep_perf_data:
            perf_data.unlink()

    n_in, in_bytes = db_files(inp)
    n_out, out_bytes = db_files(db)
    shutil.rmtree(db, ignore_errors=True)
    return {
        "variant": variant, "mode": mode, "rep": rep, "traced": traced,
        "ringmerge_mode_env": env["RINGMERGE_MODE"],
        "compactions": c_count,
        "wall_s": wall_us / 1e6, "cpu_s": cpu_us / 1e6,
        # Every thread's CPU, db_bench start to end: the compaction CPU figure counts only the
        # compaction thread, not work moved to other threads (write-behind).
        "process_cpu_s": tv["user_s"] + tv["sys_s"],
        "thread_cpu_s": sampler.groups(tv["user_s"] + tv["sys_s"]),
        "compaction_total_cpu_ticker_s": cpu_total_ticker / 1e6,
        "read_bytes": read_b, "write_bytes": write_b,
        "input_files": n_in, "input_bytes": in_bytes,
        "output_files": n_out, "output_bytes": out_bytes,
        "peak_rss_mb": tv["max_rss_kb"] / 1024,
        "time_v": tv,
        "syscalls": sysc,
        "log": {"crosscheck": cross, "compaction_finished": ev,
                "ringmerge_accelerated": lg["ringmerge_accelerated"],
                "ringmerge_fallback": lg["ringmerge_fallback"],
                "bpf_unavailable": lg["bpf_unavailable"],
                "ringmerge_lines": lg["ringmerge_lines"]},
        "db_bench_process_s": round(outer_s, 3),
        "artifacts": str(run_dir),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=1_000_000, help="keys in the input DB (1M = ~17 L0 files, ~1 GB)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--modes", default="buffered,direct", help="comma list of: buffered, direct")
    ap.add_argument("--variants", default="stock,stock-sub2,native,bpf",
                    help="comma list; stock -> RINGMERGE_MODE=off, X -> RINGMERGE_MODE=X, "
                         "X-inline -> RINGMERGE_MODE=X RINGMERGE_MERGE_AHEAD=off")
    ap.add_argument("--db-bench", type=Path, default=DEFAULT_DB_BENCH)
    ap.add_argument("--work", type=Path, default=None, help="default OUT/work")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--trace", choices=("separate", "all", "off"), default="separate",
                    help="separate (default): timing reps untraced plus one perf-traced run per "
                         "mode x variant for the syscall counts (perf costs ~10-15%% of wall in "
                         "buffered mode); all: trace every rep; off: no syscall tracing")
    ap.add_argument("--no-perf", action="store_true", help="same as --trace off")
    ap.add_argument("--perf-mmap", default="16M", help="perf record -m (ring buffer per CPU)")
    ap.add_argument("--keep-perf-data", action="store_true")
    ap.add_argument("--no-disk-bound", action="store_true", help="skip the dd bandwidth probe")
    ap.add_argument("--extra", action="append", default=[],
                    help="extra db_bench flag for the compaction run (repeatable)")
    args = ap.parse_args()
    if args.no_perf:
        args.trace = "off"
    args.no_perf = args.trace == "off"

    args.work = (args.work or args.out / "work").resolve()
    args.out = args.out.resolve()
    args.db_bench = args.db_bench.resolve()
    modes = [m for m in args.modes.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    for m in modes:
        if m not in IO_MODES:
            die(f"unknown I/O mode {m!r} (known: {', '.join(IO_MODES)})")
    if not variants or not modes or args.reps < 1 or args.num < 1:
        die("need at least one variant, one mode, --reps >= 1 and --num >= 1")
    if "stock" in variants:  # stock first so ratios have a base
        variants = ["stock"] + [v for v in variants if v != "stock"]
    if os.geteuid() != 0:
        die("must run as root (drop_caches, perf tracepoints)")
    if not (args.db_bench.is_file() and os.access(args.db_bench, os.X_OK)):
        die(f"db_bench not found or not executable: {args.db_bench}")
    if not os.access(TIME_BIN, os.X_OK):
        die(f"{TIME_BIN} missing (apt-get install time)")

    try:
        if not args.no_perf:
            ensure_perf()
        names = syscall_names()
        args.work.mkdir(parents=True, exist_ok=True)
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        runs_dir = args.out / "runs" / stamp

        log(f"db_bench {args.db_bench}; N={args.num}; reps={args.reps}; modes={modes}; "
            f"variants={variants}; work={args.work}; out={args.out}")
        inp = build_input(args.db_bench, args.work, args.num)
        n_in, in_bytes = db_files(inp)
        disk = {} if args.no_disk_bound else measure_disk(inp, args.work)
        if disk:
            log(f"disk probe: read {disk.get('read_MBps')} MB/s, write {disk.get('write_MBps')} MB/s "
                f"({disk['method']})")

        plan = []
        for rep in range(1, args.reps + 1):
            for mi, mode in enumerate(modes):
                k = (rep - 1 + mi) % len(variants)  # rotate variant order to spread drift
                for v in variants[k:] + variants[:k]:
                    plan.append((rep, mode, v, args.trace == "all"))
        if args.trace == "separate":
            for mode in modes:
                for v in variants:
                    plan.append(("trace", mode, v, True))
        runs: list[dict] = []
        t_start = time.monotonic()
        for i, (rep, mode, variant, traced) in enumerate(plan, 1):
            eta = ""
            if runs:
                per = (time.monotonic() - t_start) / len(runs)
                eta = f", ~{per * (len(plan) - len(runs)) / 60:.1f} min left"
            log(f"run {i}/{len(plan)}: rep {rep} {mode:8s} {variant}"
                f"{' (perf-traced)' if traced else ''}{eta}")
            r = one_run(args, inp, runs_dir / f"{i:02d}-{mode}-{variant}-rep{rep}",
                        variant, mode, rep, names, traced)
            runs.append(r)
            sc = r["syscalls"]
            top = (", ".join(f"{k} {v}" for k, v in list(sc["by_syscall"].items())[:3])
                   if sc else "not traced")
            log(f"  wall {r['wall_s']:.2f} s, cpu {r['cpu_s']:.2f} s, {r['compactions']} compaction(s), "
                f"read {r['read_bytes'] / 1e6:.0f} MB, write {r['write_bytes'] / 1e6:.0f} MB, "
                f"RSS {r['peak_rss_mb']:.0f} MB, syscalls of all threads "
                f"{sc['total'] if sc else 'n/a'} ({top}), "
                f"ringmerge accel/fallback {r['log']['ringmerge_accelerated']}/"
                f"{r['log']['ringmerge_fallback']}")
            if sc:
                others = {k: v for k, v in sc["by_comm_all_threads"].items() if k != COMPACTION_COMM}
                log("  syscalls of other threads: "
                    + (", ".join(f"{k} {v}" for k, v in list(others.items())[:5]) or "none"))
    except BenchError as e:
        die(str(e))

    summary = summarize(runs, modes, variants)
    bound = disk_bound(summary, disk)
    floor: dict = {}
    stock_rows = [s for s in summary if s["variant"] == "stock"]
    if disk and stock_rows:
        floor = measure_io_floor(inp, args.work, stock_rows[0]["write_bytes"]["median"])
        if floor:
            for s in stock_rows:
                ratio = floor["seconds"] / s["wall_s"]["median"]
                bound.append(f"I/O floor ({floor['method']}): {floor['seconds']:.2f} s "
                             f"{floor['all_seconds']} = {ratio:.2f}x {s['mode']} stock's "
                             f"compaction wall: no variant can go below that ratio here")
    print_tables(summary, bound, disk)

    result = {
        "benchmark": "deterministic manual compaction (fillrandom input, one CompactRange into L1)",
        "created": _dt.datetime.now().isoformat(),
        "config": {"num": args.num, "reps": args.reps, "modes": modes, "variants": variants,
                   "db_bench": str(args.db_bench), "db_bench_sha256": file_sha256(args.db_bench),
                   "work": str(args.work), "input_db": str(inp), "input_sst_files": n_in,
                   "input_sst_bytes": in_bytes, "common_flags": COMMON_FLAGS,
                   "fill_flags": FILL_FLAGS, "compact_flags": COMPACT_FLAGS, "io_modes": IO_MODES,
                   "extra_flags": args.extra, "trace": args.trace,
                   "syscalls_counted": "every thread of the process",
                   "compaction_thread_comm": COMPACTION_COMM},
        "environment": {"uname": " ".join(os.uname()), "nproc": os.cpu_count(),
                        "git_head": git_head()},
        "disk": disk, "disk_bound": bound, "io_floor": floor,
        "summary": summary, "runs": runs,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    (args.out / "report.md").write_text(report_md(result, runs_dir))
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
