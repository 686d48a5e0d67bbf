#!/usr/bin/env python3
"""The crash test's profiles, plan and checks (scripts/crashtest.sh drives db_crashtest.py; this
file says what each run gets and whether it passed).

    crashtest_report.py plan --kinds K,.. --modes M,.. --profiles rotate|all|P,..
        '<kind> <mode> <profile>' lines, one per run
    crashtest_report.py flags PROFILE     the db_stress flags of a profile, one per line
    crashtest_report.py report OUT        read OUT/runs.txt and the per-run files, write
                                          OUT/results.json and results.md; exit 1 on a problem

Profiles. Every run passes COMMON_FLAGS, one profile's flags and the stock-bug flags of
scripts/exclusions.toml; everything else stays db_crashtest.py's randomized defaults. The
profiles rotate across the runs of one invocation (see plan(): every mode runs every profile
once, in as few runs as the kinds allow), so the CI size runs each profile once per mode set:
--modes native,bpf 4 runs (native: lz4-rangedel blackbox, zstd-dict-partitioned whitebox; bpf:
myrocks-faults blackbox, plain whitebox), --modes native 4 runs (blackbox: lz4-rangedel,
myrocks-faults; whitebox: zstd-dict-partitioned, plain); --minutes is split evenly over the runs.
--profiles all runs every profile in every mode and kind (the long run).

Checks, per run (each failure is listed in results.json "problems" and fails the script):
- db_crashtest.py's exit status, and its verification failures;
- a harness timeout (see harness_timeouts(): db_crashtest.py counts it as a pass);
- the profile's flags survived db_crashtest.py's sanitizing in every db_stress command line;
- the outcome file exists and has lines; the accelerated share and count are at least the
  profile's stated minimum (MIN_SHARE) in accelerating modes; off mode writes no outcome line;
- the inputs the profile is for reached ringmerge (accelerated subcompactions with compressed
  blocks, dictionaries, range deletion files);
- a bpf run has no bpf_unavailable in its outcome lines or surviving LOGs and no merge=native.
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exclusions  # noqa: E402
import outcomes  # noqa: E402

# Always: no ingestion (files with a global seqno fall back), no blob files (values outside the
# SSTs), a small key space (more overlap, more compactions in a short run), and no injected
# faults on metadata reads or at open (they only hit the DB open and MANIFEST/WAL reads).
COMMON_FLAGS = [
    "--ingest_external_file_one_in=0", "--enable_blob_files=0", "--max_key=100000",
    "--metadata_read_fault_one_in=0", "--open_read_fault_one_in=0",
]

# A profile: flags (db_stress, over db_crashtest.py's defaults), the flags that must reach every
# db_stress command line unchanged (db_crashtest.py's finalize_and_sanitize() rewrites some, e.g.
# block_align=1 turns compression off, test_batches_snapshots=1 or inplace_update_support=1 turn
# range deletions into point deletions), and the inputs ringmerge must have been given
# (accelerated subcompactions whose outcome line shows compressed_blocks>0, dict_files>0,
# range_del_files>0).
#
# Read faults: db_stress's FaultInjectionTestFS injects them into the reads of its own threads
# and of subcompactions (DbStressListener::OnSubcompactionBegin). ringmerge reads data blocks by
# path through the OS, so those never see a fault; but it opens the tables, reads compression
# dictionaries, index partitions and range tombstones through RocksDB's table reader, i.e.
# through that file system, and an error there must make it fall back before writing anything.
# So one profile injects read faults (1 in 1000 reads, db_crashtest.py's milder choice).
PROFILES = {
    "lz4-rangedel": {
        "about": "LZ4 on every level, 1% range deletions, binary-search index",
        "flags": ["--compression_type=lz4", "--bottommost_compression_type=lz4",
                  "--compression_max_dict_bytes=0", "--block_align=0",
                  "--delrangepercent=1", "--delpercent=4",
                  "--test_batches_snapshots=0", "--inplace_update_support=0",
                  "--index_type=0", "--read_fault_one_in=0"],
        "expect_flags": ["compression_type=lz4", "bottommost_compression_type=lz4",
                         "delrangepercent=1", "index_type=0"],
        "expect_inputs": ["compressed", "range_del"],
    },
    "zstd-dict-partitioned": {
        # The dictionary is finalized from up to 64 KiB of samples (ZDICT_finalizeDictionary):
        # db_crashtest.py's other pick, ZDICT_trainFromBuffer, gives no dictionary at all for
        # the few samples of db_stress's small files, so whole runs had none (CI, 2026-12-03:
        # 391 accelerated, 0 with a dictionary). tests/differential.rs covers trained ones.
        "about": "ZSTD with a 16 KiB dictionary (finalized from up to 64 KiB of samples) on "
                 "every level, partitioned index and filters, no range deletions",
        "flags": ["--compression_type=zstd", "--bottommost_compression_type=zstd",
                  "--compression_max_dict_bytes=16384",
                  "--compression_zstd_max_train_bytes=65536",
                  "--compression_use_zstd_dict_trainer=0",
                  "--compression_max_dict_buffer_bytes=0", "--block_align=0",
                  "--index_type=2", "--partition_filters=1",
                  "--delrangepercent=0", "--delpercent=5", "--read_fault_one_in=0"],
        "expect_flags": ["compression_type=zstd", "bottommost_compression_type=zstd",
                         "compression_max_dict_bytes=16384",
                         "compression_zstd_max_train_bytes=65536",
                         "compression_use_zstd_dict_trainer=0", "index_type=2",
                         "partition_filters=1"],
        "expect_inputs": ["compressed", "dict"],
    },
    "myrocks-faults": {
        "about": "LZ4 above, ZSTD bottommost, 16 KiB dictionaries (MyRocks-like), range "
                 "deletions, partitioned index, read faults 1 in 1000",
        "flags": ["--compression_type=lz4", "--bottommost_compression_type=zstd",
                  "--compression_max_dict_bytes=16384",
                  "--compression_max_dict_buffer_bytes=0", "--block_align=0",
                  "--index_type=2", "--partition_filters=1",
                  "--delrangepercent=1", "--delpercent=4",
                  "--test_batches_snapshots=0", "--inplace_update_support=0",
                  "--read_fault_one_in=1000"],
        "expect_flags": ["compression_type=lz4", "bottommost_compression_type=zstd",
                         "compression_max_dict_bytes=16384", "index_type=2",
                         "delrangepercent=1", "read_fault_one_in=1000"],
        "expect_inputs": ["compressed", "dict", "range_del"],
    },
    "plain": {
        "about": "uncompressed, binary-search index, no range deletions, no read faults "
                 "(every compaction eligible)",
        "flags": ["--compression_type=none", "--bottommost_compression_type=none",
                  "--delrangepercent=0", "--delpercent=5", "--index_type=0",
                  "--read_fault_one_in=0"],
        "expect_flags": ["compression_type=none", "bottommost_compression_type=none",
                         "delrangepercent=0", "index_type=0"],
        "expect_inputs": [],
    },
}

# The stated minimum accelerated share (accelerated / (accelerated + fallback) subcompactions of
# one run) and count, per profile, for the accelerating modes (native, bpf). Measured on
# 2026-12-03 (2 cores, Debug -O1 db_stress, 90 s runs: two CI-size runs, --modes native,bpf, and
# one --profiles all --modes native; the bpf runs merged natively, the kernel refusing BPF
# arenas): every run of every profile 100% accelerated, 0 fallbacks, 115 to 2620 accelerated
# subcompactions per run. Minimum: 95% (90% where read faults are injected: a fault while opening
# the merge is a by-design fallback, none met yet), and 10 accelerated subcompactions per run,
# which any working run of >= 30 s passes by far; it only excludes 0/0 and near 0.
#   profile:                  (min share, min accelerated)   measured: share; accelerated (runs)
MIN_SHARE = {
    "lz4-rangedel":           (0.95, 10),  # 100%; bb 322 631, wb 939 (+bb 32384 in 21 min)
    "zstd-dict-partitioned":  (0.95, 10),  # 100%; bb 611, wb 184 115 884
    "myrocks-faults":         (0.90, 10),  # 100%; bb 648 475 1431, wb 849
    "plain":                  (0.95, 10),  # 100%; bb 862, wb 2620 328 905
}

INPUT_FIELDS = {"compressed": "compressed_blocks", "dict": "dict_files",
                "range_del": "range_del_files"}


def plan(kinds, modes, profiles):
    """(kind, mode, profile) per run. rotate (or a list): each mode and kind gets as many runs
    as it takes for the mode to run every profile once (one run each with 2 kinds and 4
    profiles in 2 modes, two with one mode), profiles assigned in turn; all: every profile in
    every mode and kind."""
    names = list(PROFILES) if profiles in ("rotate", "all") else profiles.split(",")
    for n in names:
        if n not in PROFILES:
            raise SystemExit(f"crashtest: unknown profile {n} (profiles: {', '.join(PROFILES)})")
    kinds, modes = kinds.split(","), modes.split(",")
    runs = []
    if profiles == "all":
        return [(kind, mode, n) for mode in modes for kind in kinds for n in names]
    rounds = -(-len(names) // (len(kinds) * len(modes)))
    for mode in modes:
        for _ in range(rounds):
            for kind in kinds:
                runs.append((kind, mode, names[len(runs) % len(names)]))
    return runs


def harness_timeouts(kind, text):
    """Runs db_crashtest.py killed on its own timeout and then counted as passing.

    execute_cmd() prints "KILLED <pid>" when db_stress outlives the timeout it was given.
    - whitebox: each db_stress run gets until --duration + 900 s; one still going then is killed,
      db_crashtest.py prints "Killing the run for running too long", stops and exits 0. This
      script's ops caps make every whitebox db_stress run end on its own (kill point or ops
      done) within minutes on the Debug tree, so a run the harness had to kill had stopped
      progressing toward either end: a hang. Every "KILLED" line in a whitebox log is one.
    - blackbox: every db_stress run is killed after --interval by design (its "KILLED" lines are
      the test), but the final verification run ("Running final time for verification") must
      end by itself within verify_timeout (1200 s); killed there, db_crashtest.py still exits 0.
      A db_stress that hangs inside an interval looks like any run killed on time (its output
      is lost with the SIGKILL); the next run reopens and verifies the DB.
    """
    killed = re.compile(r"^KILLED \d+", re.M)
    if kind == "whitebox":
        n = len(killed.findall(text))
        if "Killing the run for running too long" in text:
            n = max(n, 1)
        return n
    parts = text.split("Running final time for verification", 1)
    return len(killed.findall(parts[1])) if len(parts) == 2 else 0


def stress_command_lines(text):
    return [ln for ln in text.splitlines() if ln.startswith("Running db_stress with pid=")]


def input_coverage(o):
    """Accelerated subcompactions whose inputs had compressed blocks / dictionaries / range
    deletion files, from the outcome lines' summary fields (an outcomes.Outcomes)."""
    return {k: o.nonzero[field] for k, field in INPUT_FIELDS.items()}


def report(out):
    rows = []
    runs_file = os.path.join(out, "runs.txt")
    with open(runs_file) as f:
        lines = [ln.split() for ln in f if ln.strip()]
    for kind, mode, profile, rc, took, ended, name in lines:
        excluded = exclusions.crashtest_flags(kind=kind)
        prof = PROFILES[profile]
        what = f"{kind} {mode} {profile}"
        with open(os.path.join(out, name + ".log"), errors="replace") as f:
            text = f.read()
        outcome_path = os.path.join(out, name + ".outcomes")
        o = outcomes.read([outcome_path])
        problems = []
        rc, took, ended = int(rc), int(took), int(ended)
        if rc != 0:
            problems.append(f"{what}: db_crashtest.py exited {rc}")
        verification_failures = text.count("Verification failed")
        if verification_failures:
            problems.append(f"{what}: {verification_failures} verification failures")
        timeouts = harness_timeouts(kind, text)
        if timeouts:
            age = (f"; last outcome line {ended - int(os.path.getmtime(outcome_path))} s before "
                   "the run ended" if os.path.exists(outcome_path) else "")
            hang_dir = os.path.join(out, name + ".hang")
            saved = (f"; stacks and LOGs saved in {hang_dir}" if os.path.isdir(hang_dir) else "")
            problems.append(f"{what}: db_crashtest.py killed {timeouts} db_stress run(s) on its "
                            f"timeout and counted it as passing: it never ended (a hang or an "
                            f"endless loop){age}{saved}")
        cmds = stress_command_lines(text)
        if not cmds:
            problems.append(f"{what}: no db_stress command line in the log (db_stress never ran)")
        for want in prof["expect_flags"]:
            bad = [c for c in cmds if f" --{want} " not in c + " "]
            if bad:
                problems.append(f"{what}: --{want} missing from {len(bad)} of {len(cmds)} "
                                "db_stress command lines (db_crashtest.py rewrote it)")
        cov = input_coverage(o)
        share_min = None
        if mode in outcomes.ACCELERATING_MODES:
            if o.missing:
                problems.append(f"{what}: no outcome file {outcome_path}: ringmerge never ran")
            elif o.empty:
                problems.append(f"{what}: empty outcome file {outcome_path}: ringmerge never ran")
            min_share, min_acc = MIN_SHARE[profile]
            share_min = {"share": min_share, "accelerated": min_acc}
            msg = outcomes.share_problem(o, min_share, min_acc, what)
            if msg:
                problems.append(msg)
            for need in prof["expect_inputs"]:
                if cov[need] == 0:
                    problems.append(f"{what}: no accelerated subcompaction had "
                                    f"{INPUT_FIELDS[need]}>0, which this profile is for")
            if mode == "bpf":
                hits_path = os.path.join(out, name + ".loghits")
                hits = []
                if os.path.exists(hits_path):
                    with open(hits_path, errors="replace") as f:
                        hits = [tuple(ln.rstrip("\n").split(":", 1)) for ln in f if ln.strip()]
                problems += outcomes.bpf_problems(o, hits, what)
        elif o.accelerated + o.fallback:
            problems.append(f"{what}: {o.accelerated + o.fallback} outcome lines in mode {mode}")
        rows.append({
            "kind": kind, "mode": mode, "profile": profile, "profile_about": prof["about"],
            "profile_flags": prof["flags"], "excluded_flags": excluded,
            "exit": rc, "seconds": took, "ok": not problems,
            "db_stress_runs": len(cmds),
            "verification_failures": verification_failures,
            "harness_timeouts": timeouts,
            "accelerated_subcompactions": o.accelerated, "fallback_subcompactions": o.fallback,
            "share_minimum": share_min,
            "inputs": {INPUT_FIELDS[k]: v for k, v in cov.items()},
            "merge_engines": dict(o.merge_engines),
            "fallback_reasons": dict(o.reasons.most_common()),
            "problems": problems,
        })
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    md = ["# db_crashtest.py with ringmerge", "",
          "Profiles, minimum shares and checks: scripts/crashtest_report.py; excluded (stock "
          "bug) flags: scripts/exclusions.toml.", "",
          "| kind | mode | profile | minutes | exit | db_stress runs | verification failures | "
          "harness timeouts | accelerated | fallback | accelerated share | minimum | "
          "compressed / dict / range del inputs | ok |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        share = outcomes.share_text(r["accelerated_subcompactions"], r["fallback_subcompactions"])
        mn = r["share_minimum"]
        mn = f"{100 * mn['share']:.0f}%, {mn['accelerated']}" if mn else "-"
        inp = " / ".join(str(v) for v in r["inputs"].values())
        md.append(f"| {r['kind']} | {r['mode']} | {r['profile']} | {r['seconds'] / 60:.1f} | "
                  f"{r['exit']} | {r['db_stress_runs']} | {r['verification_failures']} | "
                  f"{r['harness_timeouts']} | {r['accelerated_subcompactions']} | "
                  f"{r['fallback_subcompactions']} | {share} | {mn} | {inp} | "
                  f"{'yes' if r['ok'] else 'NO'} |")
    md += ["", "Profiles:", ""]
    for n in dict.fromkeys(r["profile"] for r in rows):
        md.append(f"- {n}: {PROFILES[n]['about']} (`{' '.join(PROFILES[n]['flags'])}`)")
    problems = [p for r in rows for p in r["problems"]]
    if problems:
        md += ["", "Failed checks:", ""] + [f"- {p}" for p in problems]
    for r in rows:
        if r["fallback_reasons"]:
            md += ["", f"{r['kind']} {r['mode']} {r['profile']} fallback reasons:", ""]
            md += [f"- {n} x {k}" for k, n in r["fallback_reasons"].items()]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    return 1 if problems or not rows else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--kinds", required=True)
    p.add_argument("--modes", required=True)
    p.add_argument("--profiles", default="rotate")
    p = sub.add_parser("flags")
    p.add_argument("profile")
    p = sub.add_parser("excluded-flags")
    p.add_argument("--kind")
    p = sub.add_parser("report")
    p.add_argument("out")
    a = ap.parse_args()
    if a.cmd == "plan":
        for run in plan(a.kinds, a.modes, a.profiles):
            print(*run)
    elif a.cmd == "flags":
        if a.profile not in PROFILES:
            print(f"crashtest: unknown profile {a.profile}", file=sys.stderr)
            return 2
        print("\n".join(COMMON_FLAGS + PROFILES[a.profile]["flags"]))
    elif a.cmd == "excluded-flags":
        try:
            print("\n".join(exclusions.crashtest_flags(kind=a.kind)))
        except (exclusions.ExclusionError, OSError) as e:
            print(f"crashtest: {e}", file=sys.stderr)
            return 1
    elif a.cmd == "report":
        return report(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
