#!/usr/bin/env python3
"""Runs RocksDB gtest binaries under each RINGMERGE_MODE and reports, per binary and mode, the
gtest outcome and what ringmerge did (RINGMERGE_OUTCOME_LOG lines: accelerated vs fallback and a
histogram of fallback reasons). Used by scripts/rocksdb-suites.sh.

Each binary's test list is split into --shards groups run side by side (most of these tests
wait on background compaction threads, so two processes keep two cores busier than one). A group
runs as one process with an explicit --gtest_filter; if it crashes or hangs, the test that was
running is recorded as crashed/timed out and the rest of the group runs in a new process.
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

RUN_RE = re.compile(r"^\[ RUN      \] (\S+)")
OK_RE = re.compile(r"^\[       OK \] (\S+)")
FAIL_RE = re.compile(r"^\[  FAILED  \] ([^\s,]+)")
SKIP_RE = re.compile(r"^\[  SKIPPED \] ([^\s,]+)")


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
            started = []
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


def normalize(reason):
    r = re.sub(r"/\S+?\.sst", "<sst>", reason)
    r = re.sub(r"#\d+", "#N", r)
    r = re.sub(r"\(Footer[^)]*\)|\{[^}]*\}", "", r)
    r = re.sub(r"\d{2,}", "N", r)
    return r.strip()


def count_outcomes(paths):
    acc, fb, reasons = 0, 0, collections.Counter()
    acc_failed = collections.Counter()
    for p in paths:
        if not os.path.exists(p):
            continue
        with open(p, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("accelerated "):
                    acc += 1
                elif line.startswith("fallback "):
                    fb += 1
                    reasons[normalize(line[len("fallback "):])] += 1
    return acc, fb, reasons, acc_failed


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
    ap.add_argument("--known-failures", default="",
                    help="file of '<suite> <mode> <test>' lines that fail by design")
    a = ap.parse_args()
    known = set()
    if a.known_failures:
        with open(a.known_failures) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    known.add(tuple(line.split()[:3]))

    os.makedirs(a.out, exist_ok=True)
    results = []
    for mode in a.modes.split(","):
        for suite in a.suites.split(","):
            binary = os.path.join(a.bin, suite)
            tests = list_tests(binary, a.filter)
            groups = [tests[i::a.shards] for i in range(a.shards)]
            result = collections.defaultdict(list)
            threads, outcome_logs = [], []
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
                t = threading.Thread(target=run_group,
                                     args=(binary, group, env, log_path, a.timeout, result))
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
            shutil.rmtree(os.path.join(a.out, "tmp"), ignore_errors=True)
            acc, fb, reasons, _ = count_outcomes(outcome_logs)
            r = {
                "suite": suite, "mode": mode, "wrapped_fs": a.wrapped_fs,
                "filter": a.filter, "tests": len(tests),
                "passed": len(result["passed"]), "failed": sorted(result["failed"]),
                "skipped": len(result["skipped"]), "crashed": sorted(result["crashed"]),
                "timed_out": sorted(result["timed_out"]), "not_run": sorted(result["not_run"]),
                "seconds": round(time.time() - start, 1),
                "accelerated_subcompactions": acc, "fallback_subcompactions": fb,
                "fallback_reasons": dict(reasons.most_common()),
            }
            # Failures listed as by design (with RINGMERGE_WRAPPED_FS=verify) do not count.
            r["known_failures"] = [t for t in r["failed"] if (suite, mode, t) in known
                                   and a.wrapped_fs == "verify"]
            r["failed"] = [t for t in r["failed"] if t not in r["known_failures"]]
            results.append(r)
            print(f"[suites] {suite} {mode}: {r['passed']}/{r['tests']} passed, "
                  f"{len(r['failed'])} failed (+{len(r['known_failures'])} known), "
                  f"{len(r['crashed'])} crashed, "
                  f"{len(r['timed_out'])} timed out, {r['skipped']} skipped; "
                  f"accelerated {acc}, fallback {fb} ({r['seconds']} s)", flush=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_md(results, os.path.join(a.out, "results.md"))
    bad = sum(len(r["failed"]) + len(r["crashed"]) + len(r["timed_out"]) + len(r["not_run"])
              for r in results)
    return 1 if bad else 0


def write_md(results, path):
    lines = ["# RocksDB 10.1.3 gtest suites with ringmerge", "",
             "Known failures (by design, see scripts/suites-known-failures.txt) are not counted "
             "as failed.", "",
             "| suite | mode | tests | passed | failed | known | crashed | timed out | skipped | "
             "accelerated | fallback | accelerated share | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        tot = r["accelerated_subcompactions"] + r["fallback_subcompactions"]
        share = f"{100.0 * r['accelerated_subcompactions'] / tot:.1f}%" if tot else "-"
        lines.append(f"| {r['suite']} | {r['mode']} | {r['tests']} | {r['passed']} | "
                     f"{len(r['failed'])} | {len(r['known_failures'])} | {len(r['crashed'])} | "
                     f"{len(r['timed_out'])} | "
                     f"{r['skipped']} | {r['accelerated_subcompactions']} | "
                     f"{r['fallback_subcompactions']} | {share} | {r['seconds']} |")
    for r in results:
        lines += ["", f"## {r['suite']} ({r['mode']}, RINGMERGE_WRAPPED_FS={r['wrapped_fs']})"]
        if r["filter"]:
            lines.append(f"gtest filter: `{r['filter']}`")
        for key in ("failed", "known_failures", "crashed", "timed_out", "not_run"):
            if r[key]:
                lines.append(f"- {key}: " + ", ".join(f"`{t}`" for t in r[key]))
        if r["fallback_reasons"]:
            lines += ["", "| fallback reason | subcompactions |", "|---|---|"]
            for reason, n in r["fallback_reasons"].items():
                lines.append(f"| {reason.replace('|', '/')} | {n} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
