"""The workload benchmark's cases (scripts/bench_workloads.py) and how one run of a case goes:
the db_bench command of a case, I/O mode and variant, run under `/usr/bin/time -v` with every
thread's CPU sampled, its figures collected from db_bench's output and the DB's LOG; the loaded DB
the read/write cases start from; the `ringmerge_driver bench` run of the snapshots case.

Python 3.11 standard library only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from bench_common import (IO_MODES, PAPER_FLAGS, TIME_BIN, BenchError, copy_db, db_files,
                          drop_caches, env_text, variant_env, variant_flags)
from bench_measure import ThreadCpuSampler
from bench_parse import (helper_cpu_us, log_events, parse_db_bench_hist, parse_hist, parse_log,
                         parse_ops, parse_stall_causes, parse_stats_hist, parse_ticker,
                         parse_time_v, ringmerge_outcomes)

# The paper's configuration (scripts/db_bench_paper.flags) and what every workload run measures
# with; --num, --max_background_compactions, the I/O mode and --benchmarks are added per run.
# Auto compactions stay ON (db_bench's default).
WORKLOAD_FLAGS = PAPER_FLAGS + ["--statistics=1", "--histogram=1"]
FILL_BENCH = "fillrandom,waitforcompaction,stats"
RW_LOAD_MBC = 1


def log(msg: str) -> None:
    ts = _dt.datetime.now().strftime("%H:%M:%S")
    print(f"[workloads {ts}] {msg}", flush=True)


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


def run_db_bench(args, cmd: list[str], variant_env: dict, run_dir: Path,
                 what: str) -> tuple[str, dict]:
    """Runs db_bench under /usr/bin/time -v; returns (stdout, time -v figures). Raises loudly."""
    run_dir.mkdir(parents=True, exist_ok=True)
    time_out = run_dir / "time-v.txt"
    wrapped = [TIME_BIN, "-v", "-o", str(time_out)] + cmd
    env = dict(os.environ, **variant_env)
    (run_dir / "command.txt").write_text(f"{env_text(variant_env)} {' '.join(cmd)}\n")
    so_f, se_f = run_dir / "db_bench.out", run_dir / "db_bench.err"
    with open(so_f, "w") as so, open(se_f, "w") as se:
        p = subprocess.Popen(wrapped, stdout=so, stderr=se, env=env, text=True)
        sampler = ThreadCpuSampler(p.pid)
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
        tv = parse_time_v(time_out.read_text())
    except BenchError as e:
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
        c_count, c_wall_us = parse_hist(out, "rocksdb.compaction.times.micros")
        _, c_cpu_us = parse_hist(out, "rocksdb.compaction.times.cpu_micros")
        read_b = parse_ticker(out, "rocksdb.compact.read.bytes")
        write_b = parse_ticker(out, "rocksdb.compact.write.bytes")
        stall_us = parse_ticker(out, "rocksdb.stall.micros")
        stall_causes = parse_stall_causes(out)
        keys_written = parse_ticker(out, "rocksdb.number.keys.written")
        keys_read = parse_ticker(out, "rocksdb.number.keys.read")
        flush_b = parse_ticker(out, "rocksdb.flush.write.bytes")
    except BenchError as e:
        raise BenchError(f"{what}: {e} (artifacts: {run_dir})") from None
    log_path = db / "LOG"
    if not log_path.exists():
        raise BenchError(f"{what}: no LOG in {db}")
    log_text = log_path.read_text(errors="replace")
    shutil.copy(log_path, run_dir / "LOG")
    lg = parse_log(log_text)
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


def base_cmd(args) -> list[str]:
    flags = list(WORKLOAD_FLAGS)
    if args.write_buffer_size:
        flags = [f for f in flags if not f.startswith("--write_buffer_size=")]
        flags.append(f"--write_buffer_size={args.write_buffer_size}")
    return [str(args.db_bench)] + flags


def build_rw_load(args) -> Path:
    """fillrandom + waitforcompaction of --rw-num keys with stock RocksDB, cached in WORK."""
    tail = base_cmd(args)[1:] + ["--benchmarks=fillrandom,waitforcompaction",
                                 "--use_existing_db=0", f"--num={args.rw_num}",
                                 f"--max_background_compactions={RW_LOAD_MBC}"]
    key = hashlib.sha256((" ".join(tail) + str(args.db_bench)).encode()).hexdigest()[:10]
    inp = args.work / f"rwload-n{args.rw_num}-{key}"
    meta_path = inp / "BENCH_INPUT.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        n, size = db_files(inp)
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
    out, _ = run_db_bench(args, cmd, variant_env("stock"), args.work / f"{inp.name}.load", "rw load")
    parse_ops(out, "fillrandom")
    n, size = db_files(tmp)
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
    venv = variant_env(variant)
    time_out = run_dir / "time-v.txt"
    (run_dir / "command.txt").write_text(f"{env_text(venv)} {' '.join(cmd)}\n")
    p = subprocess.run([TIME_BIN, "-v", "-o", str(time_out)] + cmd, capture_output=True,
                       text=True, env=dict(os.environ, **venv))
    (run_dir / "driver.out").write_text(p.stdout)
    (run_dir / "driver.err").write_text(p.stderr)
    if p.returncode != 0 or "compact status: OK" not in p.stdout:
        raise BenchError(f"{what}: ringmerge_driver bench failed (exit {p.returncode}): "
                         f"{p.stderr[-2000:]}{p.stdout[-1000:]} (artifacts: {run_dir})")
    tv = parse_time_v(time_out.read_text())
    log_text = (db / "LOG").read_text(errors="replace")
    shutil.copy(db / "LOG", run_dir / "LOG")
    lg = parse_log(log_text)
    (run_dir / "ringmerge.log").write_text("\n".join(lg["ringmerge_lines"]) + "\n")
    events = lg["compaction_finished"]
    if not events:
        raise BenchError(f"{what}: no compaction_finished event in the LOG ({run_dir})")
    read_b = sum(ev.get("input_data_size", 0) for ev in log_events(log_text, "compaction_started"))
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
            copy_db(rw_load, db)  # fresh copy, LOG removed
        if args.drop_caches:
            drop_caches()
        cmd = (base_cmd(args) + [f"--db={db}"] + case["flags"] + IO_MODES[mode]
               + variant_flags(variant) + args.extra)
        if case.get("options_file"):
            cmd.append(f"--options_file={myrocks_options_file(args, mode)}")
        t0 = time.monotonic()
        out, tv = run_db_bench(args, cmd, variant_env(variant), run_dir, what)
        res = collect(out, db, case, what, run_dir)
    if variant_env(variant)["RINGMERGE_MODE"] == "off" and res["ringmerge_accelerated"]:
        raise BenchError(f"{what}: stock run (RINGMERGE_MODE=off) logged "
                         f"{res['ringmerge_accelerated']} accelerated compactions")
    shutil.rmtree(db, ignore_errors=True)
    res.update({"case": case["name"], "kind": case["kind"], "mode": mode, "variant": variant,
                "rep": rep, "ringmerge_env": env_text(variant_env(variant)),
                "peak_rss_mb": tv["max_rss_kb"] / 1024, "process_s": round(time.monotonic() - t0, 2),
                "user_s": tv["user_s"], "sys_s": tv["sys_s"],
                "process_cpu_s": tv["user_s"] + tv["sys_s"],
                "thread_cpu_s": tv.get("thread_cpu_s", {}), "artifacts": str(run_dir)})
    return res
