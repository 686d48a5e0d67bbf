#!/usr/bin/env python3
"""db_bench workload benchmark: stock RocksDB 10.1.3 vs ringmerge under live compaction.

Complements scripts/bench_compaction.py (one deterministic manual compaction) with workloads in
which compactions run in the background while the foreground writes/reads, using the paper's
db_bench settings (scripts/db_bench_paper.flags, shared with the manual compaction and
tests/db_bench.rs).

Cases (each run once per rep x I/O mode x variant, variants interleaved with rotating order so
drift hits all of them alike; ratios are always variant median / stock median of the same case
and mode from the same invocation):

  fill-mbc1, fill-mbc2   `fillrandom,waitforcompaction,stats` into an empty DB with
                         --max_background_compactions=1 / =2 (--mbc). Reports fillrandom ops/s,
                         p50/p99 write latency (db_bench's "Microseconds per write" histogram),
                         compaction time per MB read (SUM rocksdb.compaction.times.micros /
                         rocksdb.compact.read.bytes), write stall time (ticker
                         rocksdb.stall.micros), compactions (histogram COUNT) and how many
                         subcompactions ringmerge accelerated / fell back on (its lines in
                         the DB's LOG, read by scripts/outcomes.py).
  rrwr-10/50/90          `readrandomwriterandom --readwritepercent=P --duration=D` (--rw-percents)
  readwhilewriting       `readwhilewriting --duration=D` (1 reader + 1 unthrottled writer)
                         Each on a fresh copy of one loaded DB (fillrandom of --rw-num keys +
                         waitforcompaction, built once with stock RocksDB and cached in WORK, so
                         every variant starts from byte-identical files), page cache dropped
                         first. Reports ops/s, p99 read/write latency (db_bench's histograms;
                         readwhilewriting prints no write histogram, so its write p99 comes from
                         the statistics histogram rocksdb.db.write.micros, flagged "stats"), plus
                         the same compaction/stall/LOG figures as above.

Coverage cases (--suites coverage; what an operator's DB looks like beyond the paper's setup):

  lz4                    fill-mbc1 with --compression_type=lz4 (every SST compressed).
  myrocks                fill-mbc1 with a MyRocks-like column family from an OPTIONS file
                         (db_bench has no bottommost flag): LZ4 above, ZSTD at the bottommost
                         level, level_compaction_dynamic_level_bytes, 16 KiB blocks; the rest as
                         the paper's flags. One file per I/O mode (the file's DBOptions replace
                         db_bench's direct-I/O flags), written to WORK.
  snapshots              one manual compaction with snapshots held at several points:
                         `ringmerge_driver bench` (built next to db_bench) writes 16 L0 files of
                         62,500 x 1 KiB values over a 1M-key universe (5% deletes), holding a
                         snapshot after every 4th file, drops the page cache and compacts
                         everything into L1 while the snapshots are held, so RocksDB's
                         CompactionIterator keeps the versions they see. Figures from the LOG's
                         compaction events (no ops/s: nothing runs in the foreground).

Variants: stock -> RINGMERGE_MODE=off, X-inline -> RINGMERGE_MODE=X with RINGMERGE_MERGE_AHEAD=off
(the merge in line on the compaction thread), any other name X -> RINGMERGE_MODE=X (native, bpf).
I/O modes: buffered, direct (--use_direct_reads=1 --use_direct_io_for_flush_and_compaction=1).

Output: a terminal table, OUT/workloads.json (every raw run + summary), OUT/workloads.md, per-run
artifacts (db_bench stdout/stderr, LOG, ringmerge lines, command) under OUT/runs-workloads/STAMP,
then OUT/workloads.svg and OUT/compaction.svg via tools/bench-chart (cargo) unless --no-chart.
Any db_bench failure or unparsable figure aborts with a non-zero exit and a message.

The parts: bench_workloads_cases.py (the cases, one run of a case), bench_workloads_report.py
(summary, reports, charts) and the modules shared with scripts/bench_compaction.py
(bench_common.py, bench_measure.py, bench_parse.py, bench_tables.py). Python 3.11 standard
library only. Must run as root (drops the page cache); scripts/bench-workloads.sh checks that.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

from bench_common import (DEFAULT_DB_BENCH, DEFAULT_OUT, IO_MODES, TIME_BIN, BenchError,
                          file_sha256, git_head, variant_env)
from bench_workloads_cases import WORKLOAD_FLAGS, build_rw_load, log, make_cases, one_run
from bench_workloads_report import METRICS, draw_charts, print_tables, report_md, summarize

QUICK_WRITE_BUFFER = 4 << 20  # --quick: 50k keys would not even fill one 64 MiB memtable


def die(msg: str) -> None:
    print(f"bench-workloads: ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def parse_int_list(s: str) -> list[int]:
    try:
        return [int(x) for x in s.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of integers: {s!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--num", type=int, default=None,
                    help="keys for fillrandom (default 1,000,000; --quick 50,000)")
    ap.add_argument("--rw-num", type=int, default=None,
                    help="keys of the DB loaded for the read/write workloads (default --num)")
    ap.add_argument("--duration", type=int, default=None,
                    help="seconds per read/write workload run (default 20; --quick 2)")
    ap.add_argument("--reps", type=int, default=None, help="default 2 (--quick 1)")
    ap.add_argument("--modes", default="buffered,direct", help="comma list of: buffered, direct")
    ap.add_argument("--variants", default="stock,stock-sub2,native",
                    help="comma list; stock -> RINGMERGE_MODE=off, X -> RINGMERGE_MODE=X, "
                         "X-inline -> RINGMERGE_MODE=X RINGMERGE_MERGE_AHEAD=off")
    ap.add_argument("--suites", default="fill,rw",
                    help="comma list of: fill (fillrandom cases), rw (read/write workloads), "
                         "coverage (lz4, myrocks, snapshots)")
    ap.add_argument("--driver", type=Path, default=None,
                    help="ringmerge_driver for the snapshots case (default: next to db_bench)")
    ap.add_argument("--mbc", type=parse_int_list, default=[1, 2],
                    help="max_background_compactions values for the fill cases (default 1,2)")
    ap.add_argument("--rw-percents", type=parse_int_list, default=[10, 50, 90],
                    help="readrandomwriterandom --readwritepercent values (default 10,50,90)")
    ap.add_argument("--no-readwhilewriting", dest="readwhilewriting", action="store_false")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test in about a minute: --num 50000, --duration 2, --reps 1 and "
                         f"--write_buffer_size={QUICK_WRITE_BUFFER} so compactions still happen")
    ap.add_argument("--write-buffer-size", type=int, default=None,
                    help="override the paper's 64 MiB --write_buffer_size")
    ap.add_argument("--db-bench", type=Path, default=DEFAULT_DB_BENCH)
    ap.add_argument("--work", type=Path, default=None, help="default OUT/work-workloads")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-drop-caches", dest="drop_caches", action="store_false")
    ap.add_argument("--no-chart", action="store_true", help="do not run tools/bench-chart")
    ap.add_argument("--extra", action="append", default=[],
                    help="extra db_bench flag for every measured run (repeatable)")
    args = ap.parse_args()

    q = args.quick
    args.num = args.num or (50_000 if q else 1_000_000)
    args.rw_num = args.rw_num or args.num
    args.duration = args.duration or (2 if q else 20)
    args.reps = args.reps or (1 if q else 2)
    if args.write_buffer_size is None and q:
        args.write_buffer_size = QUICK_WRITE_BUFFER
    args.out = args.out.resolve()
    args.work = (args.work or args.out / "work-workloads").resolve()
    args.db_bench = args.db_bench.resolve()
    args.driver = (args.driver or args.db_bench.parent / "ringmerge_driver").resolve()
    args.suites = [s for s in args.suites.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    for m in modes:
        if m not in IO_MODES:
            die(f"unknown I/O mode {m!r} (known: {', '.join(IO_MODES)})")
    for s in args.suites:
        if s not in ("fill", "rw", "coverage"):
            die(f"unknown suite {s!r} (known: fill, rw, coverage)")
    if not variants or not modes or not args.suites or args.reps < 1 or args.num < 1:
        die("need at least one variant, mode and suite, --reps >= 1 and --num >= 1")
    if any(p < 0 or p > 100 for p in args.rw_percents):
        die("--rw-percents must be within 0..100")
    if "stock" in variants:  # stock first so ratios have a base
        variants = ["stock"] + [v for v in variants if v != "stock"]
    else:
        log("WARNING: no stock variant: no ratios")
    if args.drop_caches and os.geteuid() != 0:
        die("must run as root to drop the page cache (or pass --no-drop-caches)")
    if not (args.db_bench.is_file() and os.access(args.db_bench, os.X_OK)):
        die(f"db_bench not found or not executable: {args.db_bench}")
    if "coverage" in args.suites and not os.access(args.driver, os.X_OK):
        die(f"ringmerge_driver not found or not executable: {args.driver} (--driver)")
    if not os.access(TIME_BIN, os.X_OK):
        die(f"{TIME_BIN} missing (apt-get install time)")

    cases = make_cases(args)
    if not cases:
        die("no cases selected")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    runs_dir = args.out / "runs-workloads" / stamp
    runs: list[dict] = []
    try:
        args.work.mkdir(parents=True, exist_ok=True)
        log(f"db_bench {args.db_bench}; num={args.num}; rw-num={args.rw_num}; "
            f"duration={args.duration}s; reps={args.reps}; modes={modes}; variants={variants}; "
            f"cases={[c['name'] for c in cases]}; work={args.work}; out={args.out}")
        rw_load = build_rw_load(args) if any(c["kind"] == "rw" for c in cases) else None

        plan = []
        for rep in range(1, args.reps + 1):
            for mi, mode in enumerate(modes):
                for ci, case in enumerate(cases):
                    k = (rep - 1 + mi + ci) % len(variants)  # rotate the order to spread drift
                    for v in variants[k:] + variants[:k]:
                        plan.append((rep, mode, case, v))
        t_start = time.monotonic()
        for i, (rep, mode, case, variant) in enumerate(plan, 1):
            eta = ""
            if runs:
                per = (time.monotonic() - t_start) / len(runs)
                eta = f", ~{per * (len(plan) - len(runs)) / 60:.1f} min left"
            log(f"run {i}/{len(plan)}: rep {rep} {mode:8s} {case['name']:16s} {variant}{eta}")
            r = one_run(args, case, mode, variant, rep,
                        runs_dir / f"{i:03d}-{case['name']}-{mode}-{variant}-rep{rep}", rw_load)
            runs.append(r)
            lat = "  ".join(x for x in (
                f"p99 write {r['p99_write_us']:.1f} us" if r["p99_write_us"] is not None else "",
                f"p99 read {r['p99_read_us']:.1f} us" if r["p99_read_us"] is not None else "") if x)
            per_mb = (f"{r['compaction_us_per_mb']:.0f} us/MB" if r["compaction_us_per_mb"]
                      else "n/a")
            log(f"  {r['ops_per_s']} ops/s  {lat}  {r['compactions']} compaction(s) "
                f"{r['compaction_wall_s']:.2f} s ({per_mb})  stall "
                + (f"{r['stall_s']:.2f} s  " if r["stall_s"] is not None else "n/a  ")
                + f"ringmerge accel/fallback {r['ringmerge_accelerated']}/{r['ringmerge_fallback']}"
                + (f" (+{r['ringmerge_aborted']} cut by shutdown)" if r["ringmerge_aborted"] else ""))
            if (variant_env(variant)["RINGMERGE_MODE"] != "off" and r["compactions"]
                    and not r["ringmerge_accelerated"]):
                log(f"  WARNING: {variant}: {r['compactions']} compactions, none logged as "
                    f"accelerated")
    except BenchError as e:
        die(str(e))

    summary = summarize(runs, cases, modes, variants)
    print_tables(summary)

    created = _dt.datetime.now().isoformat()
    result = {
        "benchmark": "db_bench workloads under live compaction (fillrandom, "
                     "readrandomwriterandom, readwhilewriting)",
        "created": created,
        "config": {"num": args.num, "rw_num": args.rw_num, "duration_s": args.duration,
                   "reps": args.reps, "quick": q, "modes": modes, "variants": variants,
                   "cases": cases, "paper_flags": WORKLOAD_FLAGS,
                   "write_buffer_size_override": args.write_buffer_size,
                   "io_modes": {m: IO_MODES[m] for m in modes}, "extra_flags": args.extra,
                   "drop_caches": args.drop_caches, "rw_load_db": str(rw_load) if rw_load else None,
                   "db_bench": str(args.db_bench), "db_bench_sha256": file_sha256(args.db_bench)},
        "environment": {"uname": " ".join(os.uname()), "nproc": os.cpu_count(),
                        "git_head": git_head()},
        "metrics": [{"key": k, "header": h, "better": b} for k, h, b, _ in METRICS],
        "summary": summary, "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workloads.json").write_text(json.dumps(result, indent=2))
    (args.out / "workloads.md").write_text(report_md(result, runs_dir, "coverage" in args.suites))
    print(f"\nwrote {args.out / 'workloads.json'} and {args.out / 'workloads.md'}")

    if not args.no_chart:
        try:
            for line in draw_charts(args.out):
                print(line)
        except BenchError as e:
            die(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
