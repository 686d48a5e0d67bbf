"""Remote compaction benchmark: a live database (ringmerge_driver load: fillrandom's shape in the
paper's configuration, automatic compactions on) whose compactions run in worker processes
(the driver's folder CompactionService, one spawned worker per job, at most --compaction-threads
at once), stock workers (RINGMERGE_MODE=off) against ringmerge workers (native), in the same
run, with local compaction (the same two modes, no workers) beside them as the reference.

Per run, from the driver's lines:
- the primary's write rate (ops/s) and stall time (RocksDB's STALL_MICROS);
- the compactions' input MB (trivial moves apart) and their time per MB: for remote jobs the
  wall time from Schedule to the end of Wait as the primary sees it (spawn, OpenAndCompact,
  result), and the time the worker's OpenAndCompact took; for local jobs the job's elapsed time;
- the CPU of every thread of every worker process (wait4), and of the whole run (the driver's
  process tree: primary, workers, io_uring workers);
- the syscalls of the whole process tree, counted by the kernel (perf stat -e
  raw_syscalls:sys_enter, inherited by every thread and child);
- how many subcompactions ringmerge accelerated (RINGMERGE_OUTCOME_LOG, which the spawned
  workers inherit and append to).

Ratios are ringmerge over stock of the same kind (remote or local), medians over the reps, whose
order alternates (ABCD, DCBA, ...). Python 3.11 standard library only. Must run as root (perf).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO, BenchError, finish_report  # noqa: E402
from outcomes import parse as parse_outcomes  # noqa: E402

DRIVER = REPO / "target/rocksdb/bin/ringmerge_driver"
VARIANTS = {  # name: (RINGMERGE_MODE, remote)
    "local-stock": ("off", False),
    "local-ringmerge": ("native", False),
    "remote-stock": ("off", True),
    "remote-ringmerge": ("native", True),
}
LINE_RE = re.compile(r"^(load|load_compactions|load_remote) (.*)$", re.M)


def fields(text: str) -> dict[str, dict[str, float]]:
    out = {}
    for kind, rest in LINE_RE.findall(text):
        out[kind] = {k: float(v) for k, v in (kv.split("=", 1) for kv in rest.split())}
    return out


def perf_syscalls(path: Path) -> int:
    # perf stat -x, lines: value,unit,event,...
    for line in path.read_text().splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[2].startswith("raw_syscalls:sys_enter"):
            if not parts[0].strip().isdigit():
                raise BenchError(f"perf stat could not count syscalls: {line}")
            return int(parts[0])
    raise BenchError(f"no raw_syscalls:sys_enter count in {path}")


def one_run(args, variant: str, rep: int, work: Path) -> dict:
    mode, remote = VARIANTS[variant]
    run_dir = work / f"{variant}-rep{rep}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    outcomes = run_dir / "outcomes"
    cmd = [str(args.driver), "load", "--db", str(run_dir / "db"), "--keys", str(args.keys),
           "--value-size", str(args.value_size), "--write-buffer-mb", str(args.write_buffer_mb),
           "--compaction-threads", str(args.compaction_threads)]
    if remote:
        cmd += ["--remote", str(run_dir / "jobs"), "--remote-spawn"]
    perf_out = run_dir / "perf.txt"
    cmd = ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-o", str(perf_out), "--"] + cmd
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGMERGE_")}
    env.update(RINGMERGE_MODE=mode, RINGMERGE_OUTCOME_LOG=str(outcomes))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    (run_dir / "stdout.txt").write_text(p.stdout)
    (run_dir / "stderr.txt").write_text(p.stderr)
    if p.returncode != 0:
        raise BenchError(f"{variant} rep {rep}: driver exited {p.returncode}: {p.stderr[-2000:]}")
    f = fields(p.stdout)
    for kind in ("load", "load_compactions") + (("load_remote",) if remote else ()):
        if kind not in f:
            raise BenchError(f"{variant} rep {rep}: no {kind} line in {run_dir}/stdout.txt")
    o = parse_outcomes(outcomes.read_text() if outcomes.exists() else "")
    c = f["load_compactions"]
    row = {
        "variant": variant, "rep": rep, "mode": mode, "remote": remote, "wall_s": wall,
        "ops_per_s": f["load"]["ops_per_s"], "stall_s": f["load"]["stall_s"],
        "write_s": f["load"]["write_s"], "total_s": f["load"]["total_s"],
        "jobs": int(c["jobs"]), "trivial_moves": int(c["trivial_moves"]),
        "input_mb": c["input_mb"], "job_s": c["job_s"],
        # Every thread of the process tree (perf's own share is small: it only waits).
        "tree_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "syscalls": perf_syscalls(perf_out),
        "accelerated": sum(1 for x in o if x.accelerated),
        "fallback": sum(1 for x in o if not x.accelerated),
        "gave_up": p.stderr.count("compacting it locally"),
    }
    if remote:
        r = f["load_remote"]
        row.update(remote_jobs=int(r["jobs"]), remote_wall_s=r["wall_s"],
                   worker_compact_s=r["worker_compact_s"],
                   worker_cpu_s=r["worker_cpu_s"], workers=int(r["workers_reaped"]))
    shutil.rmtree(run_dir / "db", ignore_errors=True)
    shutil.rmtree(run_dir / "jobs", ignore_errors=True)
    return row


def per_mb(row: dict, key: str) -> float | None:
    v = row.get(key)
    return None if v is None or row["input_mb"] <= 0 else v / row["input_mb"]


METRICS = [  # (name, how, lower is better)
    ("compaction time per MB, primary's view (ms)",
     lambda r: 1000 * per_mb(r, "remote_wall_s" if r["remote"] else "job_s")),
    ("compaction time per MB, the worker's OpenAndCompact / the local job (ms)",
     lambda r: 1000 * per_mb(r, "worker_compact_s" if r["remote"] else "job_s")),
    ("worker CPU per MB, every thread (ms)",
     lambda r: 1000 * per_mb(r, "worker_cpu_s") if r["remote"] else None),
    ("CPU per MB, whole process tree (ms)", lambda r: 1000 * per_mb(r, "tree_cpu_s")),
    ("syscalls per MB, whole process tree", lambda r: per_mb(r, "syscalls")),
    ("primary's writes (ops/s)", lambda r: r["ops_per_s"]),
    ("primary's stall time (s)", lambda r: r["stall_s"]),
    ("load wall, writes + settling (s)", lambda r: r["total_s"]),
]


def summarize(rows: list[dict]) -> dict:
    med = {}
    for v in VARIANTS:
        rs = [r for r in rows if r["variant"] == v]
        if not rs:
            continue
        med[v] = {}
        for name, how in METRICS:
            vals = [x for x in (how(r) for r in rs) if x is not None]
            med[v][name] = statistics.median(vals) if vals else None
        med[v]["accelerated"] = sum(r["accelerated"] for r in rs)
        med[v]["fallback"] = sum(r["fallback"] for r in rs)
        med[v]["jobs"] = statistics.median(r["jobs"] for r in rs)
        med[v]["input_mb"] = statistics.median(r["input_mb"] for r in rs)
    return med


def report(args, rows, med) -> str:
    def fmt(x):
        return "-" if x is None else (f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}")

    def ratio(a, b):
        return "-" if a is None or b in (None, 0) else f"{a / b:.2f}x"

    lines = [
        "# Remote compaction: stock workers vs ringmerge workers",
        "",
        f"`ringmerge_driver load --keys {args.keys} --value-size {args.value_size} "
        f"--write-buffer-mb {args.write_buffer_mb} --compaction-threads "
        f"{args.compaction_threads}`, {args.reps} rep(s) per variant, order alternating; "
        "remote: `--remote JOBS --remote-spawn` (one worker process per job, at most "
        f"{args.compaction_threads} at once, on this machine's {os.cpu_count()} cores). "
        "Medians; ratios are ringmerge / stock of the same kind.",
        "",
        "| metric | local stock | local ringmerge | ratio | remote stock | remote ringmerge "
        "| ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, _ in METRICS:
        g = lambda v: med.get(v, {}).get(name)  # noqa: E731
        lines.append(f"| {name} | {fmt(g('local-stock'))} | {fmt(g('local-ringmerge'))} | "
                     f"{ratio(g('local-ringmerge'), g('local-stock'))} | "
                     f"{fmt(g('remote-stock'))} | {fmt(g('remote-ringmerge'))} | "
                     f"{ratio(g('remote-ringmerge'), g('remote-stock'))} |")
    lines += ["", "| variant | compactions (median) | input MB (median) | accelerated / fallback "
              "subcompactions (all reps) |", "|---|---|---|---|"]
    for v, m in med.items():
        lines.append(f"| {v} | {m['jobs']:.0f} | {m['input_mb']:.0f} | "
                     f"{m['accelerated']} / {m['fallback']} |")
    lines += ["", "Per run: results.json (`rows`); each run's driver output in its folder."]
    return "\n".join(lines) + "\n"


def checks(rows: list[dict]) -> list[str]:
    """What makes the comparison void (not speed: that is reported, never asserted)."""
    bad = []
    for r in rows:
        what = f"{r['variant']} rep {r['rep']}"
        if r["jobs"] == 0:
            bad.append(f"{what}: no compaction ran (load too small)")
        if r["remote"] and r["remote_jobs"] == 0:
            bad.append(f"{what}: no job went to a worker")
        if r["gave_up"]:
            bad.append(f"{what}: {r['gave_up']} remote job(s) given up and compacted locally")
        if r["mode"] == "native" and r["accelerated"] == 0:
            bad.append(f"{what}: ringmerge accelerated nothing")
        if r["mode"] == "off" and r["accelerated"]:
            bad.append(f"{what}: stock run has accelerated subcompactions")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="300k keys, 16 MiB memtables, 1 rep")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value-size", type=int, default=1024)
    ap.add_argument("--write-buffer-mb", type=int, default=64)
    ap.add_argument("--compaction-threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--driver", type=Path, default=DRIVER)
    ap.add_argument("--out", type=Path, default=REPO / "target/bench-remote")
    args = ap.parse_args()
    if args.quick:
        args.keys, args.write_buffer_mb, args.reps = 300_000, 16, 1
    variants = args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v} ({', '.join(VARIANTS)})")
    if not args.driver.exists():
        ap.error(f"{args.driver} missing: run scripts/build-rocksdb.sh")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for rep in range(1, args.reps + 1):
        order = variants if rep % 2 else list(reversed(variants))
        for v in order:
            print(f"[bench-remote] rep {rep}: {v}", file=sys.stderr, flush=True)
            rows.append(one_run(args, v, rep, args.out))
    med = summarize(rows)
    text = report(args, rows, med)
    bad = checks(rows)
    return finish_report(args.out, text, {"args": {k: str(v) for k, v in vars(args).items()},
                                          "rows": rows, "medians": med}, bad)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench-remote: {e}", file=sys.stderr)
        sys.exit(1)
