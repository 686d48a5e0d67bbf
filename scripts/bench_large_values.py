"""Large-values benchmark: the compaction of a DB holding about 10% of its bytes in multi-MiB
values (a BLOB or JSON column, a large document), stock (RINGMERGE_MODE=off) against ringmerge
(native), in the same run, order alternating.

Each run builds the same DB with `ringmerge_driver bench` (2 base levels and L0 files of 1 KiB
values, plus values of --large-values MiB written once each across the files), drops the page
cache, and compacts everything with CompactRange. The figures come from the DB's LOG
(`compaction_finished` events: compaction time, the compaction thread's CPU, input bytes) and the
outcome lines (accelerated subcompactions, blocks larger than the read size). Before ringmerge
read such blocks, every compaction holding one fell back to stock whole.

Python 3.11 standard library only. Must run as root (the driver drops the page cache).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO, BenchError, finish_report  # noqa: E402
from outcomes import events, parse as parse_outcomes  # noqa: E402

DRIVER = REPO / "target/rocksdb/bin/ringmerge_driver"
MODES = {"stock": "off", "ringmerge": "native"}


def scenario(args) -> list[str]:
    return ["--l0-files", str(args.l0_files), "--base-levels", "2",
            "--keys-per-file", str(args.keys_per_file), "--value-min", "1024",
            "--value-max", "1024", "--large-values", args.large_values, "--drop-caches"]


def one_run(args, variant: str, rep: int) -> dict:
    run_dir = args.out / f"{variant}-rep{rep}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    db = run_dir / "db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGMERGE_")}
    env["RINGMERGE_MODE"] = MODES[variant]
    p = subprocess.run([str(args.driver), "bench", "--db", str(db)] + scenario(args),
                       env=env, capture_output=True, text=True)
    (run_dir / "stdout.txt").write_text(p.stdout)
    (run_dir / "stderr.txt").write_text(p.stderr)
    if p.returncode != 0:
        raise BenchError(f"{variant} rep {rep}: driver exited {p.returncode}: {p.stderr[-2000:]}")
    log = (db / "LOG").read_text(errors="replace")
    (run_dir / "ringmerge.log").write_text(
        "\n".join(line for line in log.splitlines() if "ringmerge" in line) + "\n")
    # The final CompactRange's jobs: the driver prints only those, so they are the last `n`
    # compaction_finished events (the base levels' CompactRanges come before).
    finished = events(log, "compaction_finished")
    n = sum(1 for line in p.stdout.splitlines() if line.startswith("compaction status="))
    if n == 0 or len(finished) < n:
        raise BenchError(f"{variant} rep {rep}: {n} job lines, {len(finished)} events")
    timed = finished[-n:]
    started = events(log, "compaction_started")[-n:]
    outcomes = parse_outcomes(log)
    shutil.rmtree(db, ignore_errors=True)
    return {
        "variant": variant, "rep": rep, "jobs": n,
        "input_mb": sum(e.get("input_data_size", 0) for e in started) / 2**20,
        "compaction_s": sum(e["compaction_time_micros"] for e in timed) / 1e6,
        "compaction_cpu_s": sum(e["compaction_time_cpu_micros"] for e in timed) / 1e6,
        # ringmerge's companion and write-behind threads, beside the compaction thread's CPU.
        "helper_cpu_s": sum(e.get("ringmerge_merge_ahead_cpu_micros", 0)
                            + e.get("ringmerge_write_behind_cpu_micros", 0) for e in timed) / 1e6,
        "accelerated": sum(1 for o in outcomes if o.accelerated),
        "fallback": sum(1 for o in outcomes if not o.accelerated),
        "oversized_blocks": sum(o.get("oversized_blocks", 0) for o in outcomes if o.accelerated),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 rep, a quarter of the keys")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--l0-files", type=int, default=8)
    ap.add_argument("--keys-per-file", type=int, default=20000)
    # 8 L0 files over 2 base levels: the final compaction reads ~200 MiB; 20 MiB of large values
    # is about 10% of its input.
    ap.add_argument("--large-values", default="2,6,2,6,4")
    ap.add_argument("--driver", type=Path, default=DRIVER)
    ap.add_argument("--out", type=Path, default=REPO / "target/bench-large-values")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.keys_per_file, args.large_values = 1, 5000, "2,6"
    if os.geteuid() != 0:
        ap.error("must run as root (the driver drops the page cache)")
    if not args.driver.exists():
        ap.error(f"{args.driver} missing: run scripts/build-rocksdb.sh")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for rep in range(1, args.reps + 1):
        for v in (["stock", "ringmerge"] if rep % 2 else ["ringmerge", "stock"]):
            print(f"[bench-large-values] rep {rep}: {v}", file=sys.stderr, flush=True)
            rows.append(one_run(args, v, rep))
    med = {}
    for v in MODES:
        rs = [r for r in rows if r["variant"] == v]
        med[v] = {k: statistics.median(r[k] for r in rs)
                  for k in ("input_mb", "compaction_s", "compaction_cpu_s", "helper_cpu_s")}
        med[v]["per_mb_ms"] = 1000 * med[v]["compaction_s"] / max(med[v]["input_mb"], 1e-9)
        med[v]["accelerated"] = sum(r["accelerated"] for r in rs)
        med[v]["fallback"] = sum(r["fallback"] for r in rs)
        med[v]["oversized_blocks"] = sum(r["oversized_blocks"] for r in rs)
    s, r = med["stock"], med["ringmerge"]
    large_mib = sum(int(x) for x in args.large_values.split(","))
    text = "\n".join([
        "# Compaction with multi-MiB values: stock vs ringmerge",
        "",
        f"`ringmerge_driver bench {' '.join(scenario(args))}` ({large_mib} MiB of large values, "
        f"{100 * large_mib / max(s['input_mb'], 1):.0f}% of the final compaction's input), "
        f"{args.reps} rep(s) each, order alternating, page cache dropped before each "
        "compaction; medians.",
        "",
        "| | stock | ringmerge | ratio |",
        "|---|---|---|---|",
        f"| input MB | {s['input_mb']:.0f} | {r['input_mb']:.0f} | |",
        f"| compaction time (s) | {s['compaction_s']:.2f} | {r['compaction_s']:.2f} | "
        f"{r['compaction_s'] / s['compaction_s']:.2f}x |",
        f"| compaction time per MB (ms) | {s['per_mb_ms']:.2f} | {r['per_mb_ms']:.2f} | "
        f"{r['per_mb_ms'] / s['per_mb_ms']:.2f}x |",
        f"| compaction thread CPU (s) | {s['compaction_cpu_s']:.2f} | {r['compaction_cpu_s']:.2f} "
        f"| {r['compaction_cpu_s'] / s['compaction_cpu_s']:.2f}x |",
        f"| + ringmerge's companion and writer threads' CPU (s) | - | {r['helper_cpu_s']:.2f} | |",
        f"| accelerated / fallback subcompactions (every compaction of every rep) | "
        f"{s['accelerated']} / "
        f"{s['fallback']} | {r['accelerated']} / {r['fallback']} | |",
        f"| blocks larger than the read size (all reps) | | {r['oversized_blocks']} | |",
        "",
    ])
    bad = []
    if r["fallback"] or not r["accelerated"]:
        bad.append("ringmerge did not accelerate every subcompaction")
    if not r["oversized_blocks"]:
        bad.append("no block larger than the read size: the large values did not make any")
    if s["accelerated"]:
        bad.append("stock runs have accelerated subcompactions")
    return finish_report(args.out, text, {"rows": rows, "medians": med}, bad)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench-large-values: {e}", file=sys.stderr)
        sys.exit(1)
