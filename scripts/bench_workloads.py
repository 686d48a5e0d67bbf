#!/usr/bin/env python3
"""db_bench workload benchmark: stock RocksDB 10.1.3 vs ringmerge under live compaction.

Complements scripts/bench_compaction.py (one deterministic manual compaction) with workloads in
which compactions run in the background while the foreground writes/reads, using the paper's
db_bench settings (see /work/shared/notes/stock-baseline.md).

Cases (each run once per rep x I/O mode x variant, variants interleaved with rotating order so
drift hits all of them alike; ratios are always variant median / stock median of the same case
and mode from the same invocation):

  fill-mbc1, fill-mbc2   `fillrandom,waitforcompaction,stats` into an empty DB with
                         --max_background_compactions=1 / =2 (--mbc). Reports fillrandom ops/s,
                         p50/p99 write latency (db_bench's "Microseconds per write" histogram),
                         compaction time per MB read (SUM rocksdb.compaction.times.micros /
                         rocksdb.compact.read.bytes), write stall time (ticker
                         rocksdb.stall.micros), compactions (histogram COUNT) and how many
                         subcompactions ringmerge accelerated / fell back on (DB LOG lines
                         "ringmerge: accelerated" / "ringmerge: fallback").
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

Python 3.11 standard library only; helpers are imported from scripts/bench_compaction.py.
Must run as root (drops the page cache); scripts/bench-workloads.sh checks that.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_compaction as bc  # noqa: E402  (reused helpers; that file is not modified)

REPO = bc.REPO
DEFAULT_DB_BENCH = bc.DEFAULT_DB_BENCH
DEFAULT_OUT = bc.DEFAULT_OUT
CHART_MANIFEST = REPO / "tools/bench-chart/Cargo.toml"

# The paper's settings (stock-baseline.md); --num, --max_background_compactions, the I/O mode and
# --benchmarks are added per run. Auto compactions stay ON (db_bench's default).
PAPER_FLAGS = [
    "--key_size=16",
    "--value_size=1024",
    "--disable_wal=1",
    "--cache_size=0",
    "--compression_type=none",
    "--write_buffer_size=67108864",
    "--max_write_buffer_number=2",
    "--min_write_buffer_number_to_merge=1",
    "--max_background_flushes=1",
    "--subcompactions=1",
    "--threads=1",
    "--seed=42",
    "--statistics=1",
    "--histogram=1",
]
QUICK_WRITE_BUFFER = 4 << 20  # --quick: 50k keys would not even fill one 64 MiB memtable
IO_MODES = bc.IO_MODES
FILL_BENCH = "fillrandom,waitforcompaction,stats"
RW_LOAD_MBC = 1


class BenchError(bc.BenchError):
    pass


def log(msg: str) -> None:
    ts = _dt.datetime.now().strftime("%H:%M:%S")
    print(f"[workloads {ts}] {msg}", flush=True)


def die(msg: str) -> None:
    print(f"bench-workloads: ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------

MYROCKS_OPTIONS = """# MyRocks-like column family for bench_workloads.py's "myrocks" case.
[Version]
  rocksdb_version=10.1.3
  options_file_version=1.1

[DBOptions]
  create_if_missing=true
  max_background_flushes=1
  max_background_compactions=1
  max_subcompactions=1
  compaction_readahead_size=2097152
  use_direct_reads={direct}
  use_direct_io_for_flush_and_compaction={direct}

[CFOptions "default"]
  write_buffer_size={write_buffer_size}
  max_write_buffer_number=2
  min_write_buffer_number_to_merge=1
  compression=kLZ4Compression
  bottommost_compression=kZSTD
  level_compaction_dynamic_level_bytes=true

[TableOptions/BlockBasedTable "default"]
  block_size=16384
"""

# `ringmerge_driver bench` scenario of the "snapshots" case (~1 GB, like the manual compaction).
SNAPSHOT_SCENARIO = ["--l0-files", "16", "--keys-per-file", "62500", "--universe-factor", "16",
                     "--value-min", "1024", "--value-max", "1024", "--base-levels", "0",
                     "--delete-pct", "5", "--snapshots", "4",
                     "--target-file-size", str(64 << 20)]


def myrocks_options_file(args, mode: str) -> Path:
    path = args.work / f"myrocks-{mode}.ini"
    # The file replaces db_bench's option flags, so it carries --write-buffer-size (--quick) too.
    path.write_text(MYROCKS_OPTIONS.format(direct="true" if mode == "direct" else "false",
                                           write_buffer_size=args.write_buffer_size or 64 << 20))
    return path


def make_cases(args) -> list[dict]:
    cases = []
    fill1 = [f"--benchmarks={FILL_BENCH}", "--use_existing_db=0", f"--num={args.num}",
             "--max_background_compactions=1"]
    if "coverage" in args.suites:
        cases.append({"name": "lz4", "kind": "fill", "bench": "fillrandom",
                      "title": "fillrandom, LZ4 on every level",
                      "flags": fill1 + ["--compression_type=lz4"]})
        cases.append({"name": "myrocks", "kind": "fill", "bench": "fillrandom",
                      "title": "fillrandom, MyRocks-like (LZ4, ZSTD bottommost; OPTIONS file)",
                      "flags": fill1, "options_file": True})
        cases.append({"name": "snapshots", "kind": "driver", "bench": None,
                      "title": "manual compaction holding 4 snapshots (ringmerge_driver bench)",
                      "flags": SNAPSHOT_SCENARIO})
    if "fill" in args.suites:
        for k in args.mbc:
            cases.append({"name": f"fill-mbc{k}", "kind": "fill", "bench": "fillrandom",
                          "title": f"fillrandom, max_background_compactions={k}",
                          "flags": [f"--benchmarks={FILL_BENCH}", "--use_existing_db=0",
                                    f"--num={args.num}", f"--max_background_compactions={k}"]})
    if "rw" in args.suites:
        common = ["--use_existing_db=1", f"--num={args.rw_num}", f"--duration={args.duration}",
                  f"--max_background_compactions={RW_LOAD_MBC}"]
        for p in args.rw_percents:
            cases.append({"name": f"rrwr-{p}", "kind": "rw", "bench": "readrandomwriterandom",
                          "title": f"readrandomwriterandom, {p}% reads",
                          "flags": ["--benchmarks=readrandomwriterandom,stats",
                                    f"--readwritepercent={p}"] + common})
        if args.readwhilewriting:
            cases.append({"name": "readwhilewriting", "kind": "rw", "bench": "readwhilewriting",
                          "title": "readwhilewriting (1 reader + 1 writer)",
                          "flags": ["--benchmarks=readwhilewriting,stats"] + common})
    return cases


# ----------------------------------------------------------------------------------------------
# Parsing db_bench output
# ----------------------------------------------------------------------------------------------

def parse_ops(text: str, bench: str) -> dict:
    m = re.search(rf"^{re.escape(bench)}\s*:\s*([\d.]+) micros/op (\d+) ops/sec ([\d.]+) seconds "
                  rf"(\d+) operations;(.*)$", text, re.M)
    if not m:
        raise BenchError(f"no '{bench} : ... ops/sec' result line in db_bench output")
    return {"micros_per_op": float(m.group(1)), "ops_per_s": int(m.group(2)),
            "seconds": float(m.group(3)), "operations": int(m.group(4)),
            "tail": m.group(5).strip()}


def parse_db_bench_hist(text: str, op: str) -> dict | None:
    """db_bench --histogram=1 block 'Microseconds per <op>:' -> count/avg/percentiles, or None."""
    m = re.search(rf"^Microseconds per {re.escape(op)}:\s*\n"
                  rf"Count: (\d+) Average: ([\d.]+)\s+StdDev: [\d.]+\s*\n"
                  rf"Min: \S+\s+Median: \S+\s+Max: (\S+)\s*\n"
                  rf"Percentiles: P50: ([\d.]+) P75: ([\d.]+) P99: ([\d.]+) P99\.9: ([\d.]+)"
                  rf" P99\.99: ([\d.]+)", text, re.M)
    if not m:
        if re.search(rf"^Microseconds per {re.escape(op)}:", text, re.M):
            raise BenchError(f"cannot parse db_bench's 'Microseconds per {op}' histogram")
        return None
    return {"count": int(m.group(1)), "avg_us": float(m.group(2)), "max_us": float(m.group(3)),
            "p50_us": float(m.group(4)), "p99_us": float(m.group(6)),
            "p999_us": float(m.group(7)), "source": "db_bench"}


STATS_HIST_RE = (r"^{name} P50 : ([\d.]+) P95 : ([\d.]+) P99 : ([\d.]+) P100 : ([\d.]+) "
                 r"COUNT : (\d+) SUM : (\d+)\s*$")


def parse_stats_hist(text: str, name: str) -> dict:
    m = re.search(STATS_HIST_RE.format(name=re.escape(name)), text, re.M)
    if not m:
        raise BenchError(f"statistics histogram {name} not found in db_bench output")
    return {"p50_us": float(m.group(1)), "p99_us": float(m.group(3)),
            "max_us": float(m.group(4)), "count": int(m.group(5)), "sum_us": int(m.group(6)),
            "source": "stats"}


# ----------------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------------

def run_db_bench(args, cmd: list[str], variant_env: dict, run_dir: Path,
                 what: str) -> tuple[str, dict]:
    """Runs db_bench under /usr/bin/time -v; returns (stdout, time -v figures). Raises loudly."""
    run_dir.mkdir(parents=True, exist_ok=True)
    time_out = run_dir / "time-v.txt"
    wrapped = [bc.TIME_BIN, "-v", "-o", str(time_out)] + cmd
    env = dict(os.environ, **variant_env)
    (run_dir / "command.txt").write_text(f"{bc.env_text(variant_env)} {' '.join(cmd)}\n")
    so_f, se_f = run_dir / "db_bench.out", run_dir / "db_bench.err"
    with open(so_f, "w") as so, open(se_f, "w") as se:
        p = subprocess.Popen(wrapped, stdout=so, stderr=se, env=env, text=True)
        sampler = bc.ThreadCpuSampler(p.pid)
        p.wait()
        sampler.stop()
    out, err = so_f.read_text(errors="replace"), se_f.read_text(errors="replace")

    def fail(msg: str):
        raise BenchError(f"{what}: {msg}\n--- stderr (tail) ---\n{err[-3000:]}\n--- stdout (tail) "
                         f"---\n{out[-2000:]}\n(command: {run_dir / 'command.txt'}; artifacts: "
                         f"{run_dir})")

    if not time_out.exists():
        fail(f"no /usr/bin/time output (exit {p.returncode})")
    try:
        tv = bc.parse_time_v(time_out.read_text())
    except bc.BenchError as e:
        fail(str(e))
    if p.returncode != 0 or tv["exit_status"] != 0:
        fail(f"db_bench failed (exit status {tv['exit_status']}, wrapper exit {p.returncode})")
    if "STATISTICS:" not in out:
        fail("db_bench printed no STATISTICS section")
    tv["thread_cpu_s"] = sampler.groups(tv["user_s"] + tv["sys_s"])
    return out, tv


def collect(out: str, db: Path, case: dict, what: str, run_dir: Path) -> dict:
    """All figures of one finished db_bench run (stdout + the DB's LOG)."""
    try:
        ops = parse_ops(out, case["bench"])
        w = parse_db_bench_hist(out, "write")
        r = parse_db_bench_hist(out, "read")
        if w is None and case["bench"] != "readrandom":
            w = parse_stats_hist(out, "rocksdb.db.write.micros")
        if r is None and case["kind"] == "rw":
            r = parse_stats_hist(out, "rocksdb.db.get.micros")
        c_count, c_wall_us = bc.parse_hist(out, "rocksdb.compaction.times.micros")
        _, c_cpu_us = bc.parse_hist(out, "rocksdb.compaction.times.cpu_micros")
        read_b = bc.parse_ticker(out, "rocksdb.compact.read.bytes")
        write_b = bc.parse_ticker(out, "rocksdb.compact.write.bytes")
        stall_us = bc.parse_ticker(out, "rocksdb.stall.micros")
        stall_causes = bc.parse_stall_causes(out)
        keys_written = bc.parse_ticker(out, "rocksdb.number.keys.written")
        keys_read = bc.parse_ticker(out, "rocksdb.number.keys.read")
        flush_b = bc.parse_ticker(out, "rocksdb.flush.write.bytes")
    except bc.BenchError as e:
        raise BenchError(f"{what}: {e} (artifacts: {run_dir})") from None
    log_path = db / "LOG"
    if not log_path.exists():
        raise BenchError(f"{what}: no LOG in {db}")
    log_text = log_path.read_text(errors="replace")
    shutil.copy(log_path, run_dir / "LOG")
    lg = bc.parse_log(log_text)
    (run_dir / "ringmerge.log").write_text("\n".join(lg["ringmerge_lines"]) + "\n")
    if case["kind"] == "fill" and c_count == 0:
        raise BenchError(f"{what}: no compaction ran (rocksdb.compaction.times.micros COUNT 0); "
                         f"use a larger --num")
    if c_count and read_b == 0:
        raise BenchError(f"{what}: {c_count} compactions but rocksdb.compact.read.bytes is 0")
    return {
        "ops_per_s": ops["ops_per_s"], "bench_seconds": ops["seconds"],
        "operations": ops["operations"], "result_tail": ops["tail"],
        "write_lat": w, "read_lat": r,
        "p99_write_us": w["p99_us"] if w else None,
        "p99_read_us": r["p99_us"] if r else None,
        "compactions": c_count, "compaction_wall_s": c_wall_us / 1e6,
        "compaction_cpu_s": c_cpu_us / 1e6,
        "compact_read_bytes": read_b, "compact_write_bytes": write_b,
        "compact_read_gb": read_b / 1e9,
        "compaction_us_per_mb": (c_wall_us / (read_b / 1e6)) if read_b else None,
        # RocksDB's compaction CPU counts the compaction thread only; ringmerge's companion
        # (merge-ahead) and write-behind threads do compaction work too, so the all-threads
        # figure adds their CPU from the LOG lines (ahead_cpu_ms, wb_cpu_ms).
        "compaction_thread_cpu_us_per_mb": (c_cpu_us / (read_b / 1e6)) if read_b else None,
        "compaction_cpu_us_per_mb": ((c_cpu_us + helper_cpu_us(lg)) / (read_b / 1e6))
        if read_b else None,
        "stall_s": stall_us / 1e6,
        "stall_causes": stall_causes,
        "keys_written": keys_written, "keys_read": keys_read, "flush_write_bytes": flush_b,
        "log_compactions": len(lg["compaction_finished"]),
        **ringmerge_outcomes(lg),
    }


HELPER_CPU_RE = re.compile(r"\b(?:ahead_cpu_ms|wb_cpu_ms)=([\d.]+)")


def helper_cpu_us(lg: dict) -> float:
    """CPU of ringmerge's helper threads (merge-ahead companion, write-behind writers) summed over
    the run's finished (status=OK) "ringmerge: accelerated" lines, as statistics count only
    finished compactions, in microseconds. A writer's CPU counts the output
    files closed when the line was written (all but the last)."""
    return sum(float(m.group(1)) * 1000.0 for l in lg["ringmerge_lines"]
               if "ringmerge: accelerated" in l and "status=OK" in l
               for m in HELPER_CPU_RE.finditer(l))


def ringmerge_outcomes(lg: dict) -> dict:
    """Subcompactions ringmerge finished with status=OK; ones cut short by DB shutdown (a
    compaction still running when db_bench closes the DB, which statistics never count) are
    reported separately."""
    return {
        "ringmerge_accelerated": sum("ringmerge: accelerated" in l and "status=OK" in l
                                     for l in lg["ringmerge_lines"]),
        "ringmerge_aborted": sum("ringmerge: accelerated" in l and "status=OK" not in l
                                 for l in lg["ringmerge_lines"]),
        "ringmerge_fallback": lg["ringmerge_fallback"],
    }


def base_cmd(args) -> list[str]:
    flags = list(PAPER_FLAGS)
    if args.write_buffer_size:
        flags = [f for f in flags if not f.startswith("--write_buffer_size=")]
        flags.append(f"--write_buffer_size={args.write_buffer_size}")
    return [str(args.db_bench)] + flags


def build_rw_load(args) -> Path:
    """fillrandom + waitforcompaction of --rw-num keys with stock RocksDB, cached in WORK."""
    tail = base_cmd(args)[1:] + [f"--benchmarks=fillrandom,waitforcompaction",
                                 "--use_existing_db=0", f"--num={args.rw_num}",
                                 f"--max_background_compactions={RW_LOAD_MBC}"]
    key = hashlib.sha256((" ".join(tail) + str(args.db_bench)).encode()).hexdigest()[:10]
    inp = args.work / f"rwload-n{args.rw_num}-{key}"
    meta_path = inp / "BENCH_INPUT.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        n, size = bc.db_files(inp)
        if n == meta["sst_files"] and size == meta["sst_bytes"]:
            log(f"reusing loaded DB {inp} ({n} SST files, {size / 1e6:.0f} MB)")
            return inp
        log(f"cached load {inp} does not match its metadata; rebuilding")
    tmp = args.work / f"{inp.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(inp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [str(args.db_bench), f"--db={tmp}"] + tail
    log(f"loading DB for the read/write workloads (stock): {' '.join(cmd)}")
    t0 = time.monotonic()
    out, _ = run_db_bench(args, cmd, bc.variant_env("stock"), args.work / f"{inp.name}.load", "rw load")
    parse_ops(out, "fillrandom")
    n, size = bc.db_files(tmp)
    if n == 0:
        raise BenchError(f"rw load produced no .sst files in {tmp}")
    meta = {"num": args.rw_num, "command": cmd, "sst_files": n, "sst_bytes": size,
            "load_seconds": round(time.monotonic() - t0, 2),
            "created": _dt.datetime.now().isoformat()}
    (tmp / "BENCH_INPUT.json").write_text(json.dumps(meta, indent=2))
    tmp.rename(inp)
    log(f"loaded DB ready: {n} SST files, {size / 1e6:.0f} MB, took {meta['load_seconds']} s")
    return inp


def run_driver(args, case: dict, mode: str, variant: str, run_dir: Path,
               what: str) -> tuple[dict, dict]:
    """The "snapshots" case: `ringmerge_driver bench`; returns (figures from the DB's LOG,
    time -v figures)."""
    db = args.work / "db"
    shutil.rmtree(db, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(args.driver), "bench", "--db", str(db)] + case["flags"]
    if mode == "direct":
        cmd.append("--direct")
    if args.drop_caches:
        cmd.append("--drop-caches")
    venv = bc.variant_env(variant)
    time_out = run_dir / "time-v.txt"
    (run_dir / "command.txt").write_text(f"{bc.env_text(venv)} {' '.join(cmd)}\n")
    p = subprocess.run([bc.TIME_BIN, "-v", "-o", str(time_out)] + cmd, capture_output=True,
                       text=True, env=dict(os.environ, **venv))
    (run_dir / "driver.out").write_text(p.stdout)
    (run_dir / "driver.err").write_text(p.stderr)
    if p.returncode != 0 or "compact status: OK" not in p.stdout:
        raise BenchError(f"{what}: ringmerge_driver bench failed (exit {p.returncode}): "
                         f"{p.stderr[-2000:]}{p.stdout[-1000:]} (artifacts: {run_dir})")
    tv = bc.parse_time_v(time_out.read_text())
    log_text = (db / "LOG").read_text(errors="replace")
    shutil.copy(db / "LOG", run_dir / "LOG")
    lg = bc.parse_log(log_text)
    (run_dir / "ringmerge.log").write_text("\n".join(lg["ringmerge_lines"]) + "\n")
    events = lg["compaction_finished"]
    if not events:
        raise BenchError(f"{what}: no compaction_finished event in the LOG ({run_dir})")
    read_b = 0
    for line in log_text.splitlines():
        i = line.find("EVENT_LOG_v1 ")
        if i >= 0 and '"compaction_started"' in line:
            read_b += json.loads(line[i + len("EVENT_LOG_v1 "):]).get("input_data_size", 0)
    wall_us = sum(e["compaction_time_micros"] for e in events)
    cpu_us = sum(e["compaction_time_cpu_micros"] for e in events)
    return {
        "ops_per_s": None, "bench_seconds": None, "operations": None, "result_tail": "",
        "write_lat": None, "read_lat": None, "p99_write_us": None, "p99_read_us": None,
        "compactions": len(events), "compaction_wall_s": wall_us / 1e6,
        "compaction_cpu_s": cpu_us / 1e6, "compact_read_bytes": read_b,
        "compact_read_gb": read_b / 1e9, "stall_causes": {},
        "compact_write_bytes": sum(e["total_output_size"] or 0 for e in events),
        "compaction_us_per_mb": wall_us / (read_b / 1e6) if read_b else None,
        "compaction_thread_cpu_us_per_mb": cpu_us / (read_b / 1e6) if read_b else None,
        "compaction_cpu_us_per_mb": ((cpu_us + helper_cpu_us(lg)) / (read_b / 1e6))
        if read_b else None,
        "stall_s": None, "keys_written": None, "keys_read": None, "flush_write_bytes": None,
        "log_compactions": len(events),
        **ringmerge_outcomes(lg),
    }, tv


def one_run(args, case: dict, mode: str, variant: str, rep: int, run_dir: Path,
            rw_load: Path | None) -> dict:
    db = args.work / "db"
    what = f"{case['name']}/{mode}/{variant}/rep{rep}"
    t0 = time.monotonic()
    if case["kind"] == "driver":
        res, tv = run_driver(args, case, mode, variant, run_dir, what)
    else:
        if case["kind"] == "fill":
            shutil.rmtree(db, ignore_errors=True)
            db.mkdir(parents=True)
        else:
            bc.copy_db(rw_load, db)  # fresh copy, LOG removed
        if args.drop_caches:
            bc.drop_caches()
        cmd = (base_cmd(args) + [f"--db={db}"] + case["flags"] + IO_MODES[mode]
               + bc.variant_flags(variant) + args.extra)
        if case.get("options_file"):
            cmd.append(f"--options_file={myrocks_options_file(args, mode)}")
        t0 = time.monotonic()
        out, tv = run_db_bench(args, cmd, bc.variant_env(variant), run_dir, what)
        res = collect(out, db, case, what, run_dir)
    if bc.variant_env(variant)["RINGMERGE_MODE"] == "off" and res["ringmerge_accelerated"]:
        raise BenchError(f"{what}: stock run (RINGMERGE_MODE=off) logged "
                         f"{res['ringmerge_accelerated']} accelerated compactions")
    shutil.rmtree(db, ignore_errors=True)
    res.update({"case": case["name"], "kind": case["kind"], "mode": mode, "variant": variant,
                "rep": rep, "ringmerge_env": bc.env_text(bc.variant_env(variant)),
                "peak_rss_mb": tv["max_rss_kb"] / 1024, "process_s": round(time.monotonic() - t0, 2),
                "user_s": tv["user_s"], "sys_s": tv["sys_s"],
                "process_cpu_s": tv["user_s"] + tv["sys_s"],
                "thread_cpu_s": tv.get("thread_cpu_s", {}), "artifacts": str(run_dir)})
    return res


# ----------------------------------------------------------------------------------------------
# Summary and reports
# ----------------------------------------------------------------------------------------------

METRICS = [  # key, header, better, formatter
    ("ops_per_s", "ops/s", "higher", lambda v: bc.fmt_num(v)),
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
                        s[key] = bc.stat(vals)
                s["write_latency_source"] = sorted({r["write_lat"]["source"] for r in rs
                                                    if r["write_lat"]})
                s["ringmerge_accelerated"] = sum(r["ringmerge_accelerated"] for r in rs)
                s["ringmerge_fallback"] = sum(r["ringmerge_fallback"] for r in rs)
                s["ringmerge_aborted"] = sum(r["ringmerge_aborted"] for r in rs)
                s["compactions_total"] = sum(r["compactions"] for r in rs)
                s["thread_cpu_s"] = bc.median_thread_cpu(rs)
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
    return bc.cell(s, key, fmt, mark="*" if from_stats else "", hide_equal_range=True)


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


# ----------------------------------------------------------------------------------------------

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
    if not os.access(bc.TIME_BIN, os.X_OK):
        die(f"{bc.TIME_BIN} missing (apt-get install time)")

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
            if (bc.variant_env(variant)["RINGMERGE_MODE"] != "off" and r["compactions"]
                    and not r["ringmerge_accelerated"]):
                log(f"  WARNING: {variant}: {r['compactions']} compactions, none logged as "
                    f"accelerated")
    except bc.BenchError as e:
        die(str(e))

    summary = summarize(runs, cases, modes, variants)
    hdr, rows = table_rows(summary)
    print()
    print(bc.text_table(hdr, rows))
    print("\ncells: median [min-max] (ratio of medians to stock, same case and mode); "
          "'*' = write p99 from statistics rocksdb.db.write.micros")
    t_hdr, t_rows = bc.thread_cpu_rows(summary, ("case", "mode", "variant"))
    print("\nCPU by thread group, s (median; every thread of the process):")
    print(bc.text_table(t_hdr, t_rows))
    s_hdr, s_rows = stall_rows(summary)
    print("\nWrite stalls by cause (median count per run):")
    print(bc.text_table(s_hdr, s_rows))
    idle = no_compaction_cases(summary)
    if idle:
        print(f"\nNo compaction ran in {', '.join(idle)}: those rows ran the same code in "
              f"every variant, so their ratios show this machine's noise, nothing else.")

    created = _dt.datetime.now().isoformat()
    result = {
        "benchmark": "db_bench workloads under live compaction (fillrandom, "
                     "readrandomwriterandom, readwhilewriting)",
        "created": created,
        "config": {"num": args.num, "rw_num": args.rw_num, "duration_s": args.duration,
                   "reps": args.reps, "quick": q, "modes": modes, "variants": variants,
                   "cases": cases, "paper_flags": PAPER_FLAGS,
                   "write_buffer_size_override": args.write_buffer_size,
                   "io_modes": {m: IO_MODES[m] for m in modes}, "extra_flags": args.extra,
                   "drop_caches": args.drop_caches, "rw_load_db": str(rw_load) if rw_load else None,
                   "db_bench": str(args.db_bench), "db_bench_sha256": bc.file_sha256(args.db_bench)},
        "environment": {"uname": " ".join(os.uname()), "nproc": os.cpu_count(),
                        "git_head": bc.git_head()},
        "metrics": [{"key": k, "header": h, "better": b} for k, h, b, _ in METRICS],
        "summary": summary, "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workloads.json").write_text(json.dumps(result, indent=2))

    wbs = args.write_buffer_size
    md = [f"# db_bench workloads under live compaction ({created[:19]})", "",
          f"Paper settings (`{' '.join(PAPER_FLAGS)}`)"
          + (f", but `--write_buffer_size={wbs}`" if wbs else "") + ". "
          f"fill cases: `{FILL_BENCH}` of {args.num:,} keys into an empty DB with the given "
          f"`--max_background_compactions`. Read/write cases: `--duration={args.duration}` on a "
          f"fresh copy of one DB loaded with stock RocksDB (fillrandom of {args.rw_num:,} keys + "
          f"waitforcompaction), `--max_background_compactions={RW_LOAD_MBC}`. Page cache "
          f"{'dropped' if args.drop_caches else 'not dropped'} before each run. Reps: {args.reps}, "
          f"variants interleaved. db_bench: `{args.db_bench}`.", "",
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
    if "coverage" in args.suites:
        md += ["Coverage cases: `lz4` = the fill case with `--compression_type=lz4`; `myrocks` = "
               "the fill case with a MyRocks-like OPTIONS file (LZ4, ZSTD bottommost, dynamic "
               "level bytes, 16 KiB blocks; written to WORK per I/O mode); `snapshots` = "
               f"`ringmerge_driver bench {' '.join(SNAPSHOT_SCENARIO)}` (one manual compaction "
               "of ~1 GB holding 4 snapshots; figures from the LOG's compaction events).", ""]
    md += [bc.md_table(hdr, rows), ""]
    md += ["CPU by thread group, seconds (median; every thread of the process, sampled from "
           "/proc/PID/task every 50 ms; `unattributed` = the process total of `time -v` minus "
           "the threads seen, i.e. threads that ended between two samples):", "",
           bc.md_table(t_hdr, t_rows), ""]
    md += ["Write stalls by cause (median count per run; RocksDB's `Write Stall (count)`):", "",
           bc.md_table(s_hdr, s_rows), ""]
    if idle:
        md += [f"No compaction ran in {', '.join(idle)}: every variant ran the same code there, "
               "so those ratios show this machine's noise, nothing else.", ""]
    for svg in ("workloads.svg",):
        md += [f"![{svg}]({svg})", ""]
    md += [f"Raw runs: `workloads.json`; per-run artifacts (stdout, LOG, ringmerge lines, "
           f"command): `{runs_dir}`.", ""]
    (args.out / "workloads.md").write_text("\n".join(md))
    print(f"\nwrote {args.out / 'workloads.json'} and {args.out / 'workloads.md'}")

    if not args.no_chart:
        try:
            for line in draw_charts(args.out):
                print(line)
        except bc.BenchError as e:
            die(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
