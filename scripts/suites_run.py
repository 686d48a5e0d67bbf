#!/usr/bin/env python3
"""Runs RocksDB gtest binaries under each RINGMERGE_MODE and reports, per binary and mode, the
gtest outcome and what ringmerge did (RINGMERGE_OUTCOME_LOG lines: accelerated vs fallback and a
histogram of fallback reasons). Used by scripts/rocksdb-suites.sh.

Each binary's test list is split into --shards groups run side by side (most of these tests
wait on background compaction threads, so two processes keep two cores busier than one). A group
runs as one process with an explicit --gtest_filter; if it crashes or hangs, the test that was
running is recorded as crashed/timed out and the rest of the group runs in a new process.

Besides gtest's verdicts, a run fails (each recorded in results.json under "problems"):
- exit_failures: a group process that exited non-zero or by a signal although no test of it
  failed (a crash or assert at exit, e.g. in a static destructor, or a hang after the last test);
- in an accelerating mode (native, bpf), with the whole suite run (no --filter): a group that ran
  tests but left no outcome file, or an accelerated share or count below SHARE_MINIMUMS;
- in bpf mode: any outcome or LOG line saying the BPF program did not load (bpf_unavailable);
- in off mode: any outcome line (off must be stock RocksDB, ringmerge never called);
- an excluded test (scripts/exclusions.toml) that passed: the exclusion is stale.
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exclusions  # noqa: E402
import outcomes  # noqa: E402

RUN_RE = re.compile(r"^\[ RUN      \] (\S+)")
OK_RE = re.compile(r"^\[       OK \] (\S+)")
FAIL_RE = re.compile(r"^\[  FAILED  \] ([^\s,]+)")
SKIP_RE = re.compile(r"^\[  SKIPPED \] ([^\s,]+)")

# The stated minimum share of subcompactions ringmerge accelerates per suite, accelerated /
# (accelerated + fallback) over the suite's outcome lines, and the minimum number of accelerated
# subcompactions (so a suite whose compactions stopped reaching ringmerge, 0/0, fails too).
# Applied to the accelerating modes (native, bpf) of whole-suite runs with
# RINGMERGE_WRAPPED_FS=verify. Set from the run of 2026-12-03 (2 cores, Debug -O1 tree, 2 shards;
# the bpf run merged natively, the kernel refusing BPF arenas, so its share is the native
# merge's) minus a margin: about 5 points of share, about 20% of the count. The fallbacks are the
# suites' own cases ringmerge refuses by design: non-bytewise comparators (.uNts, ShortKey,
# UintN), ingested files (global seqno), MemoryFileSystem, mock (non-block-based) tables;
# compaction_job_test builds most of its compactions on mock tables, and is deterministic (4 of
# 37 in both modes), so its margin is one subcompaction.
#   suite:                         (min share, min accelerated)   measured native ; bpf
SHARE_MINIMUMS = {
    "db_compaction_test":           (0.90, 1500),  # 95.8% 1928/2013 ; 96.5% 1966/2037
    "compaction_job_test":          (0.08, 3),     # 10.8% 4/37      ; 10.8% 4/37
    "db_range_del_test":            (0.90, 100),   # 95.0% 132/139   ; 94.9% 131/138
    "db_universal_compaction_test": (0.95, 1800),  # 100% 2288/2288  ; 100% 2379/2379
    # Workers' subcompactions (OpenAndCompact) included since the patch starts a job report there.
    "compaction_service_test":      (0.95, 150),   # 100% 185/185
}


def list_tests(binary, gfilter):
    args = [binary, "--gtest_list_tests"]
    if gfilter:
        args.append("--gtest_filter=" + gfilter)
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    tests, suite = [], None
    for line in out.splitlines():
        if not line.strip():
            continue
        name = line.split("#")[0].rstrip()
        if not line.startswith(" "):
            suite = name.strip()
        else:
            tests.append(suite + name.strip())
    # gtest skips DISABLED_ tests unless asked; they are not part of the run.
    return [t for t in tests if "DISABLED_" not in t]


def run_group(binary, tests, env, log_path, timeout, result):
    remaining = list(tests)
    with open(log_path, "a") as log:
        while remaining:
            args = [binary, "--gtest_filter=" + ":".join(remaining)]
            started, failed_here = [], 0
            proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace")
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            current = None
            for line in proc.stdout:
                log.write(line)
                m = RUN_RE.match(line)
                if m:
                    current = m.group(1)
                    started.append(current)
                    continue
                for regex, key in ((OK_RE, "passed"), (FAIL_RE, "failed"), (SKIP_RE, "skipped")):
                    m = regex.match(line)
                    if m and m.group(1) == current:
                        result[key].append(current)
                        failed_here += key == "failed"
                        current = None
                        break
            rc = proc.wait()
            timed_out = not timer.is_alive() and rc < 0
            timer.cancel()
            log.flush()
            if current is not None:
                # The process died (signal, abort, exit) or was killed inside this test.
                kind = "timed_out" if timed_out else "crashed"
                result[kind].append(current)
                log.write(f"\n[suites_run] {current} {kind} (exit {rc})\n")
            done = set(started)
            remaining = [t for t in remaining if t not in done]
            if current is None and remaining:
                # Exited between tests without running the rest: do not loop forever.
                log.write(f"\n[suites_run] process exited ({rc}) with {len(remaining)} tests "
                          "not run\n")
                result["not_run"].extend(remaining)
                break
            if current is None and rc != 0 and (rc < 0 or failed_here == 0):
                # Every test it started printed OK/FAILED/SKIPPED, yet the process did not exit
                # cleanly: gtest exits 1 when a test failed, so a non-zero exit with no failed
                # test, or a signal (abort, segfault, our timeout's kill) at any time, is a crash
                # or hang outside any test (static destructors, atexit, thread joins at exit).
                last = started[-1] if started else "(no test started)"
                how = ("killed by the timeout" if timed_out else
                       f"signal {-rc}" if rc < 0 else f"exit {rc}")
                msg = f"{os.path.basename(binary)} process {how} after its last test {last}"
                result["exit_failures"].append(msg)
                log.write(f"\n[suites_run] {msg}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--suites", required=True)
    ap.add_argument("--modes", required=True)
    ap.add_argument("--filter", default="")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per process")
    ap.add_argument("--wrapped-fs", default="verify")
    ap.add_argument("--exclusions", default=exclusions.DEFAULT,
                    help="TOML file of exclusions (scripts/exclusions.toml)")
    a = ap.parse_args()
    try:
        known = exclusions.gtest_known(a.exclusions)
        flaky = exclusions.gtest_flaky(a.exclusions)
    except (exclusions.ExclusionError, OSError) as e:
        print(f"[suites] {e}", file=sys.stderr)
        return 2

    os.makedirs(a.out, exist_ok=True)
    results = []
    for mode in a.modes.split(","):
        for suite in a.suites.split(","):
            binary = os.path.join(a.bin, suite)
            tests = list_tests(binary, a.filter)
            groups = [tests[i::a.shards] for i in range(a.shards)]
            result = collections.defaultdict(list)
            threads, outcome_logs, group_results = [], [], []
            start = time.time()
            for i, group in enumerate(groups):
                if not group:
                    continue
                tmp = os.path.join(a.out, "tmp", f"{suite}.{mode}.{i}")
                shutil.rmtree(tmp, ignore_errors=True)
                os.makedirs(tmp)
                outcome = os.path.join(a.out, f"{suite}.{mode}.{i}.outcomes")
                log_path = os.path.join(a.out, f"{suite}.{mode}.{i}.log")
                for p in (outcome, log_path):
                    if os.path.exists(p):
                        os.remove(p)
                outcome_logs.append(outcome)
                env = dict(os.environ, RINGMERGE_MODE=mode, RINGMERGE_OUTCOME_LOG=outcome,
                           RINGMERGE_WRAPPED_FS=a.wrapped_fs, TEST_TMPDIR=tmp)
                # Each group counts its own tests so a missing outcome file is attributed.
                gres = collections.defaultdict(list)
                group_results.append((outcome, gres))
                t = threading.Thread(target=run_group,
                                     args=(binary, group, env, log_path, a.timeout, gres))
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
            for _, gres in group_results:
                for k, v in gres.items():
                    result[k].extend(v)
            # The suites delete their DBs (and LOGs) when a test ends; scan what is left.
            log_hits = outcomes.scan_logs(os.path.join(a.out, "tmp")) if mode == "bpf" else []
            shutil.rmtree(os.path.join(a.out, "tmp"), ignore_errors=True)
            o = outcomes.read(outcome_logs)
            r = {
                "suite": suite, "mode": mode, "wrapped_fs": a.wrapped_fs,
                "filter": a.filter, "tests": len(tests),
                "passed": len(result["passed"]), "failed": sorted(result["failed"]),
                "skipped": len(result["skipped"]), "crashed": sorted(result["crashed"]),
                "timed_out": sorted(result["timed_out"]), "not_run": sorted(result["not_run"]),
                "exit_failures": sorted(result["exit_failures"]),
                "seconds": round(time.time() - start, 1),
                "accelerated_subcompactions": o.accelerated, "fallback_subcompactions": o.fallback,
                "merge_engines": dict(o.merge_engines),
                "fallback_reasons": dict(o.reasons.most_common()),
            }
            # Failures listed in scripts/exclusions.toml (for this wrapped_fs) do not count; a
            # listed test that passed means the entry is stale.
            listed = {t for (s, m, t), fs in known.items()
                      if s == suite and m == mode and fs == a.wrapped_fs}
            r["known_failures"] = [t for t in r["failed"] if t in listed]
            r["failed"] = [t for t in r["failed"] if t not in listed]
            r["flaky_reruns"] = rerun_flaky(binary, suite, mode, a, flaky, r)
            problems = [f"{suite} {mode}: excluded test {t} passed: delete its entry in "
                        "scripts/exclusions.toml" for t in sorted(listed & set(result["passed"]))]
            problems += [f"{suite} {mode}: {m}" for m in r["exit_failures"]]
            problems += check_outcomes(suite, mode, a, o, group_results, log_hits, r)
            r["problems"] = problems
            results.append(r)
            print(f"[suites] {suite} {mode}: {r['passed']}/{r['tests']} passed, "
                  f"{len(r['failed'])} failed (+{len(r['known_failures'])} known), "
                  f"{len(r['crashed'])} crashed, "
                  f"{len(r['timed_out'])} timed out, {r['skipped']} skipped; "
                  f"accelerated {o.accelerated}, fallback {o.fallback} ({o.share_text()}; "
                  f"{r['share_check']}) ({r['seconds']} s)", flush=True)
            for p in problems:
                print(f"[suites] FAIL {p}", flush=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_md(results, os.path.join(a.out, "results.md"))
    bad = sum(len(r["failed"]) + len(r["crashed"]) + len(r["timed_out"]) + len(r["not_run"])
              + len(r["problems"]) for r in results)
    return 1 if bad else 0


def rerun_flaky(binary, suite, mode, a, flaky, r):
    """Reruns each failed test listed stock-flaky (scripts/exclusions.toml) alone, up to its
    retries; a test that passes a rerun leaves r["failed"]. Returns what happened, one line per
    test, for the report: a flaky pass is shown, never hidden."""
    notes = []
    for test in list(r["failed"]):
        entry = flaky.get((suite, mode, test))
        if entry is None or entry[0] != a.wrapped_fs:
            continue
        retries = entry[1]
        for attempt in range(1, retries + 1):
            tmp = os.path.join(a.out, "tmp", f"{suite}.{mode}.rerun")
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            env = dict(os.environ, RINGMERGE_MODE=mode, RINGMERGE_WRAPPED_FS=a.wrapped_fs,
                       RINGMERGE_OUTCOME_LOG=os.path.join(a.out, f"{suite}.{mode}.rerun.outcomes"),
                       TEST_TMPDIR=tmp)
            gres = collections.defaultdict(list)
            run_group(binary, [test], env, os.path.join(a.out, f"{suite}.{mode}.rerun.log"),
                      a.timeout, gres)
            shutil.rmtree(tmp, ignore_errors=True)
            if test in gres["passed"]:
                r["failed"].remove(test)
                notes.append(f"{test}: failed, passed solo rerun {attempt} of {retries} "
                             "(stock-flaky, scripts/exclusions.toml)")
                break
        else:
            notes.append(f"{test}: failed, and all {retries} solo reruns failed")
    for n in notes:
        print(f"[suites] {suite} {mode}: {n}", flush=True)
    return notes


def check_outcomes(suite, mode, a, o, group_results, log_hits, r):
    """The outcome checks of one suite and mode (see the module doc); sets r["share_check"]."""
    what = f"{suite} {mode}"
    problems = []
    whole = not a.filter
    if mode in outcomes.ACCELERATING_MODES:
        minimum = SHARE_MINIMUMS.get(suite)
        if not whole:
            r["share_check"] = "share not enforced (--filter)"
        elif a.wrapped_fs != "verify":
            r["share_check"] = f"share not enforced (RINGMERGE_WRAPPED_FS={a.wrapped_fs})"
        elif minimum is None:
            r["share_check"] = "share not enforced"
            problems.append(f"{what}: no stated minimum share in SHARE_MINIMUMS "
                            "(scripts/suites_run.py)")
        else:
            min_share, min_acc = minimum
            r["share_check"] = f"minimum {100 * min_share:.0f}% and {min_acc}"
            r["share_minimum"] = {"share": min_share, "accelerated": min_acc}
            msg = outcomes.share_problem(o, min_share, min_acc, what)
            if msg:
                problems.append(msg)
        if whole:
            for path, gres in group_results:
                ran = len(gres["passed"]) + len(gres["failed"]) + len(gres["crashed"])
                if ran and path in o.missing:
                    problems.append(f"{what}: a group ran {ran} tests but wrote no outcome file "
                                    f"({path}): ringmerge was never called")
        if mode == "bpf":
            problems += outcomes.bpf_problems(o, log_hits, what)
    else:
        r["share_check"] = "none expected"
        if o.accelerated + o.fallback:
            problems.append(f"{what}: {o.accelerated + o.fallback} outcome lines in mode {mode} "
                            "(stock RocksDB must not call ringmerge)")
    return problems


def write_md(results, path):
    lines = ["# RocksDB 10.1.3 gtest suites with ringmerge", "",
             "Known failures (see scripts/exclusions.toml) are not counted as failed. Minimum "
             "accelerated share and count: SHARE_MINIMUMS in scripts/suites_run.py.", "",
             "| suite | mode | tests | passed | failed | known | crashed | timed out | skipped | "
             "exit failures | accelerated | fallback | accelerated share | share check | "
             "seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        share = outcomes.share_text(r["accelerated_subcompactions"], r["fallback_subcompactions"])
        lines.append(f"| {r['suite']} | {r['mode']} | {r['tests']} | {r['passed']} | "
                     f"{len(r['failed'])} | {len(r['known_failures'])} | {len(r['crashed'])} | "
                     f"{len(r['timed_out'])} | "
                     f"{r['skipped']} | {len(r['exit_failures'])} | "
                     f"{r['accelerated_subcompactions']} | "
                     f"{r['fallback_subcompactions']} | {share} | {r['share_check']} | "
                     f"{r['seconds']} |")
    problems = [p for r in results for p in r["problems"]]
    if problems:
        lines += ["", "## Failed checks", ""] + [f"- {p}" for p in problems]
    for r in results:
        lines += ["", f"## {r['suite']} ({r['mode']}, RINGMERGE_WRAPPED_FS={r['wrapped_fs']})"]
        if r["filter"]:
            lines.append(f"gtest filter: `{r['filter']}`")
        for key in ("failed", "known_failures", "flaky_reruns", "crashed", "timed_out",
                    "not_run", "exit_failures"):
            if r[key]:
                lines.append(f"- {key}: " + ", ".join(f"`{t}`" for t in r[key]))
        if r["merge_engines"]:
            lines.append("- merge engines: " + ", ".join(
                f"{k} {v}" for k, v in sorted(r["merge_engines"].items())))
        if r["fallback_reasons"]:
            lines += ["", "| fallback reason | subcompactions |", "|---|---|"]
            for reason, n in r["fallback_reasons"].items():
                lines.append(f"| {reason.replace('|', '/')} | {n} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
