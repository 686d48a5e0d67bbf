#!/usr/bin/env python3
"""The report of scripts/myrocks.sh: reads what each mode's private server left in
target/myrocks/<mode>/ (sysbench logs, manual.json, data.txt, rocksdb.LOG) and, with --mtr,
target/myrocks/mtr/; writes report.md and results.json there, prints the report, and exits 1 if a
check failed:
- every mode's data (CHECKSUM TABLE, row digests, secondary-index digests) equals mode off's;
- mode off wrote no ringmerge outcome (the hook is inert when off);
- each accelerating mode accelerated >= 95% of the sysbench run's subcompactions, and every
  accelerated one finished with status OK;
- MTR: the failed sets of off and native are equal, or each difference is explained by the
  reruns (a test that fails with ringmerge but never without it in three reruns is a failure).
Ratios are native / off of the same run (the machine is shared and noisy)."""
import argparse
import json
import os
import re
import sys

import outcomes

MIN_SHARE = 0.95
# Statuses stock gives a compaction the DB stops on purpose (shutdown, a paused manual
# compaction): an accelerated subcompaction ending with one of these is not a ringmerge error.
STOCK_STOPS = ("Shutdown in progress", "Incomplete: Manual compaction paused")
MTR_LINE = re.compile(r"^(rocksdb\.\S+)( '[^']*')?\s+(?:w\d+ )?\[ (pass|fail|skipped) \]")


def read_log(path):
    """A LOG copied from a live (or aborted) server: a partly written last line is dropped."""
    text = open(path, errors="replace").read()
    return text[:text.rfind("\n") + 1]


def sysbench(path):
    text = open(path, errors="replace").read()
    tps = re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", text)
    p99 = re.search(r"99th percentile:\s+([\d.]+)", text)
    return {"tps": float(tps.group(1)) if tps else None,
            "p99_ms": float(p99.group(1)) if p99 else None}


def mode_result(d):
    log = read_log(os.path.join(d, "rocksdb.LOG"))
    started = {e["job"]: e for e in outcomes.events(log, "compaction_started")}
    outs = outcomes.parse(log)
    finished = outcomes.events(log, "compaction_finished")
    def totals(jobs):
        return {"jobs": len(jobs),
                "input_bytes": sum(started.get(e["job"], {}).get("input_data_size", 0)
                                   for e in jobs),
                "time_micros": sum(e.get("compaction_time_micros", 0) for e in jobs),
                "cpu_micros": sum(e.get("compaction_time_cpu_micros", 0) for e in jobs)}
    manual_jobs = {j for j, e in started.items() if e.get("compaction_reason") == "ManualCompaction"}
    r = {
        "sysbench": {w: sysbench(os.path.join(d, f"sb-{w}.log"))
                     for w in ("oltp_write_only", "oltp_insert")},
        "manual": json.load(open(os.path.join(d, "manual.json"))),
        "compactions": totals(finished),
        "manual_compactions": totals([e for e in finished if e["job"] in manual_jobs]),
        "accelerated": sum(o.accelerated for o in outs),
        "accelerated_not_ok": [o.line[:300] for o in outs if o.accelerated and not o.ok
                               and not (o.status or "").startswith(STOCK_STOPS)],
        "accelerated_stopped": sum(o.accelerated and (o.status or "").startswith(STOCK_STOPS)
                                   for o in outs),
        "fallback": sum(not o.accelerated for o in outs),
        "fallback_reasons": {},
        "before": open(os.path.join(d, "before.txt")).read().splitlines(),
        "after": open(os.path.join(d, "after.txt")).read().splitlines(),
    }
    # What must agree within the mode: the data before and after the manual compaction, and each
    # table's secondary index read through the index and derived from the primary key.
    r["problems"] = []
    if r["before"] != r["after"]:
        r["problems"].append("data changed in the manual compaction: " + "; ".join(
            f"{x} -> {y}" for x, y in zip(r["before"], r["after"]) if x != y)[:600])
    for f in ("before", "after"):
        vals = {}
        for line in r[f]:
            table, what, value = (line.split(" ", 2) + ["", ""])[:3]
            vals[f"{table} {what}"] = value
        for key, v in vals.items():
            if key.endswith(" index-by-pk"):
                other = vals.get(key.replace("index-by-pk", "index-by-index"))
                if other != v:
                    r["problems"].append(f"{f} compaction: {key} {v} but by the index {other}")
    r["det"] = [x for x in r["after"] if x.startswith("det.")]
    r["corruption"] = corruption(d)
    r["problems"] += r["corruption"].pop("problems")
    det_sum = next((x for x in r["det"] if x.startswith("det.t checksum")), None)
    if r["corruption"]["det_after"] != det_sum:
        r["problems"].append(f"corruption: det.t reads {r['corruption']['det_after']} after the "
                             f"restart, {det_sum} before")
    for o in outs:
        if not o.accelerated:
            k = outcomes.normalize(o.reason)
            r["fallback_reasons"][k] = r["fallback_reasons"].get(k, 0) + 1
    return r


def corruption(d):
    """The corrupt-SST phase (scripts/myrocks.sh corrupt_phase): the compaction over the file must
    fail with Corruption (MyRocks then aborts the server, by design, in every mode), and after a
    restart det.t must read as before."""
    c = json.load(open(os.path.join(d, "corruption.json")))
    c["file"] = open(os.path.join(d, "corrupted-sst")).read().strip()
    c["errors"] = open(os.path.join(d, "corruption-errors")).read().splitlines()
    number = int(c["file"].split(".")[0])
    log = read_log(os.path.join(d, "rocksdb-corruption.LOG"))
    jobs = {e["job"] for e in outcomes.events(log, "compaction_started")
            if any(number in v for k, v in e.items() if k.startswith("files_L"))}
    c["ringmerge"] = [o.status if o.accelerated else "fallback: " + (o.reason or "")
                      for o in outcomes.parse(log) if o.job in jobs]
    c["problems"] = []
    if not any("Corruption" in e for e in c["errors"]):
        c["problems"].append(f"corruption: no Corruption in the error log after corrupting {c['file']}")
    if any(st and not st.startswith(("Corruption", "fallback")) for st in c["ringmerge"]):
        c["problems"].append(f"corruption: ringmerge's status {c['ringmerge']}")
    return c


def mtr_failed(path):
    fails, counts = set(), {"pass": 0, "fail": 0, "skipped": 0}
    for line in open(path, errors="replace"):
        m = MTR_LINE.match(line)
        if m:
            counts[m.group(3)] += 1
            if m.group(3) == "fail":
                fails.add(m.group(1) + (m.group(2) or ""))
    return fails, counts


def mtr_result(d):
    r = {"modes": {}, "differences": [], "problems": []}
    for mode in ("off", "native"):
        fails, counts = mtr_failed(os.path.join(d, f"{mode}.log"))
        o = outcomes.read([os.path.join(d, f"{mode}.outcomes")])
        r["modes"][mode] = {"counts": counts, "failed": sorted(fails),
                            "seconds": int(open(os.path.join(d, f"{mode}.seconds")).read()),
                            "accelerated": o.accelerated, "fallback": o.fallback,
                            "fallback_reasons": dict(o.reasons.most_common())}
        if counts["pass"] == 0:
            r["problems"].append(f"MTR {mode}: no test passed (see {d}/{mode}.log)")
    off, native = (set(r["modes"][m]["failed"]) for m in ("off", "native"))
    for t in sorted(off ^ native):
        name = t.split(" ")[0]
        reruns = {}
        for mode in ("off", "native"):
            p = os.path.join(d, f"rerun-{mode}-{name}.log")
            _, c = mtr_failed(p) if os.path.exists(p) else (None, {"pass": 0, "fail": 0})
            reruns[mode] = c
        only_native = t in native
        # With ringmerge, it failed; without, never (first run and three reruns): ours.
        ours = only_native and reruns["native"]["fail"] > 0 and reruns["off"]["fail"] == 0
        verdict = ("ringmerge difference" if ours else
                   "flaky in stock (failed without ringmerge in a rerun)"
                   if reruns["off"]["fail"] else
                   "flaky (passed every rerun in both modes)" if only_native else
                   "failed without ringmerge only")
        r["differences"].append({"test": t, "failed_in": "native" if only_native else "off",
                                 "reruns": reruns, "verdict": verdict})
        if ours:
            r["problems"].append(f"MTR {t} fails with ringmerge and not without it: {reruns}")
    if r["modes"]["native"]["accelerated"] == 0:
        r["problems"].append("MTR native: no subcompaction accelerated (was the plugin swapped?)")
    if r["modes"]["off"]["accelerated"] + r["modes"]["off"]["fallback"]:
        r["problems"].append("MTR off: ringmerge outcome lines with RINGMERGE_MODE=off")
    return r


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def per_mb(micros, nbytes):
    return micros / 1e3 / (nbytes / 2**20) if nbytes else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--modes", required=True)
    ap.add_argument("--tables", type=int, required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--mtr", action="store_true")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",")
             if not os.path.exists(os.path.join(a.out, f"{m}.skipped"))]
    skipped = {m: open(os.path.join(a.out, f"{m}.skipped")).read().strip()
               for m in a.modes.split(",") if m not in modes}
    problems = []
    if "off" not in modes:
        problems.append("no mode off to compare against")
    res = {}
    for m in modes:
        try:
            res[m] = mode_result(os.path.join(a.out, m))
        except OSError as e:
            problems.append(f"{m}: the run left no result ({e})")
    base = res.get("off")
    for m, r in res.items():
        problems += [f"{m}: {p}" for p in r["problems"]]
        if m == "off":
            if r["accelerated"] + r["fallback"]:
                problems.append(f"off: {r['accelerated'] + r['fallback']} ringmerge outcome lines")
            continue
        if base and r["det"] != base["det"]:
            diff = [f"{x} != {y}" for x, y in zip(r["det"], base["det"]) if x != y]
            problems.append(f"{m}: det.t differs from off: " + "; ".join(diff[:4]))
        tot = r["accelerated"] + r["fallback"]
        if not tot or r["accelerated"] / tot < MIN_SHARE:
            problems.append(f"{m}: {r['accelerated']} of {tot} subcompactions accelerated "
                            f"(minimum {MIN_SHARE:.0%})")
        if r["accelerated_not_ok"]:
            problems.append(f"{m}: accelerated subcompactions not OK: {r['accelerated_not_ok'][:2]}")
    mtr = mtr_result(os.path.join(a.out, "mtr")) if a.mtr else None
    if mtr:
        problems += mtr["problems"]

    L = ["# ringmerge under MyRocks (MariaDB 1:10.11.18, RocksDB 6.29.5)", "",
         "A deterministic SQL load (det.t: batches of 50,000 rows, updates, deletes), then "
         f"sysbench: {a.tables} tables x {a.rows} rows (oltp_insert prepare), then "
         f"oltp_write_only and oltp_insert, {a.events} events each, 4 client threads; a "
         "memtable flush; then a full manual compaction (rocksdb_compact_cf='default'). "
         "Ratios: mode / off, same run.", ""]
    for m, why in skipped.items():
        L.append(f"Mode {m} not run: {why}")
    L += ["| mode | write_only tps | p99 ms | insert tps | p99 ms | compactions | input MB | "
          "compaction ms/MB | CPU ms/MB | manual: wall s | server CPU s | CPU ms/MB | "
          "peak RSS MiB | accelerated | fallback | det.t = off |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, r in res.items():
        c, man, mc = r["compactions"], r["manual"], r["manual_compactions"]
        sw, si = r["sysbench"]["oltp_write_only"], r["sysbench"]["oltp_insert"]
        same = "-" if m == "off" or not base else ("yes" if r["det"] == base["det"] else "NO")
        L.append(f"| {m} | {sw['tps']} | {sw['p99_ms']} | {si['tps']} | {si['p99_ms']} | "
                 f"{c['jobs']} | {c['input_bytes'] / 2**20:.0f} | "
                 f"{per_mb(c['time_micros'], c['input_bytes']):.2f} | "
                 f"{per_mb(c['cpu_micros'], c['input_bytes']):.2f} | "
                 f"{man['wall_seconds']:.2f} | {man['cpu_seconds']:.2f} | "
                 f"{per_mb(man['cpu_seconds'] * 1e6, mc['input_bytes']) or 0:.2f} | "
                 f"{man['peak_rss_kib'] / 1024:.0f} | {r['accelerated']} | {r['fallback']} | "
                 f"{same} |")
    if base:
        L += ["", "| mode / off | write_only tps | insert tps | compaction time per MB | "
              "compaction CPU per MB (compaction thread) | manual compaction wall | "
              "manual compaction server CPU (all threads) | peak RSS |", "|---|---|---|---|---|---|---|---|"]
        bc = base["compactions"]
        for m, r in res.items():
            if m == "off":
                continue
            c = r["compactions"]
            L.append(
                f"| {m} | {ratio(r['sysbench']['oltp_write_only']['tps'], base['sysbench']['oltp_write_only']['tps'])} | "
                f"{ratio(r['sysbench']['oltp_insert']['tps'], base['sysbench']['oltp_insert']['tps'])} | "
                f"{ratio(per_mb(c['time_micros'], c['input_bytes']), per_mb(bc['time_micros'], bc['input_bytes']))} | "
                f"{ratio(per_mb(c['cpu_micros'], c['input_bytes']), per_mb(bc['cpu_micros'], bc['input_bytes']))} | "
                f"{ratio(r['manual']['wall_seconds'], base['manual']['wall_seconds'])} | "
                f"{ratio(r['manual']['cpu_seconds'], base['manual']['cpu_seconds'])} | "
                f"{ratio(r['manual']['peak_rss_kib'], base['manual']['peak_rss_kib'])} |")
    for m, r in res.items():
        if r["fallback_reasons"]:
            L += ["", f"Fallbacks ({m}): " + "; ".join(f"{k}: {v}" for k, v in
                                                       r["fallback_reasons"].items())]
    L += ["", "A corrupt SST (bytes flipped in a fresh L0 file), then a compaction over it:", ""]
    for m, r in res.items():
        c = r["corruption"]
        err = c["errors"][0].split("] ", 1)[-1][:200] if c["errors"] else "none"
        L.append(f"- {m}: server {'aborted (MyRocks on a background Corruption)' if c['server_aborted'] else 'stayed up'}; "
                 f"error log: `{err}`; ringmerge's line for that job: "
                 f"{c['ringmerge'] or 'not in the LOG (lost with the process)'}; after a restart "
                 f"`{c['det_after']}`")
    aborted = {m: r["corruption"]["server_aborted"] for m, r in res.items()}
    if len(set(aborted.values())) > 1:
        problems.append(f"corruption: the server aborted in some modes only: {aborted}")
    if base:
        L += ["", "Data read back after the manual compaction (mode off; det.t must be equal in "
              "every mode, sbtest.* equal before and after the compaction in each mode, every "
              "index-by-index equal to its index-by-pk):", ""] + [f"- `{x}`" for x in base["after"]]
    if mtr:
        L += ["", "## MTR suite `rocksdb` (Debian's mariadb-test 1:10.11.18)", "",
              "| mode | passed | failed | skipped | minutes | accelerated | fallback | "
              "accelerated share |", "|---|---|---|---|---|---|---|---|"]
        for m, x in mtr["modes"].items():
            c = x["counts"]
            L.append(f"| {m} | {c['pass']} | {c['fail']} | {c['skipped']} | "
                     f"{x['seconds'] / 60:.1f} | {x['accelerated']} | {x['fallback']} | "
                     f"{outcomes.share_text(x['accelerated'], x['fallback'])} |")
        same = sorted(set(mtr["modes"]["off"]["failed"]) & set(mtr["modes"]["native"]["failed"]))
        L += ["", "Failed in both modes: " + (", ".join(f"`{t}`" for t in same) or "none")]
        for dd in mtr["differences"]:
            L.append(f"- `{dd['test']}` failed only with ringmerge "
                     f"{dd['failed_in']}; reruns (3 each): off {dd['reruns']['off']}, native "
                     f"{dd['reruns']['native']}: {dd['verdict']}")
        if mtr["modes"]["native"]["fallback_reasons"]:
            L.append("- native fallbacks: " + "; ".join(
                f"{k}: {v}" for k, v in mtr["modes"]["native"]["fallback_reasons"].items()))
    L += ["", "## Checks", ""] + ([f"- FAILED: {p}" for p in problems] or ["- all passed"])
    text = "\n".join(L) + "\n"
    open(os.path.join(a.out, "report.md"), "w").write(text)
    json.dump({"modes": res, "skipped": skipped, "mtr": mtr, "problems": problems,
               "config": vars(a)}, open(os.path.join(a.out, "results.json"), "w"), indent=1)
    print(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
