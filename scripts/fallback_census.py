#!/usr/bin/env python3
"""What still falls back, and whether it should (issue 20): a census of the fallback reasons in
the RINGMERGE_OUTCOME_LOG files that test runs leave.

    python3 scripts/fallback_census.py target/suites target/crashtest
        [--out census.md] [--json census.json] [--strict]

Inputs are outcome files, or directories whose *.outcomes are read (not recursively):
scripts/rocksdb-suites.sh leaves target/suites/<suite>.<mode>.<shard>.outcomes, scripts/crashtest.sh
target/crashtest/<kind>.<mode>.<profile>.outcomes. Outcomes are grouped by source (the suite, or
the crash test's profile) and mode, from the file name. A RocksDB LOG given as a file is read too
(outcomes.parse reads its lines; the column family stays out of the reason).

Each fallback reason is folded into a class: the reason without what varies between runs of the
same cause (file numbers, paths, sizes, offsets, error numbers, debug dumps). BY_DESIGN judges each
class. A class it does not know is `unclassified`: printed, and with --strict the exit status is 1,
so a new kind of fallback gets a verdict before it becomes the norm. Exit 2: no outcome file found.
"""
import argparse
import collections
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outcomes  # noqa: E402

# (pattern on the class, verdict, why), first match wins. Verdicts: "yes" (by design: stock is the
# right path), "no" (not yet built: ringmerge could serve it), "error" (the inputs could not be
# read; stock reads them again and reports any real problem: expected under fault injection only).
# The reasons come from cpp/rocksdb-*/ringmerge_eligibility.cc, src/wrapped_fs.rs, src/sst_map.rs.
BY_DESIGN = [
    (r"comparator \S+ is (not|neither) ", "yes",
     "the merge orders keys bytewise or reverse bytewise, with or without a u64 timestamp "
     "(block::key::UserKeyOrder); custom comparators order them otherwise"),
    (r"table format is not block-based", "yes",
     "ringmerge decodes block-based tables only (compaction_job_test's mock table, PlainTable, "
     "Cuckoo keep stock)"),
    (r"input #N is compressed with \S+, which ringmerge does not decode", "yes",
     "no decoder for BZip2, Xpress or unknown codecs; this build writes none of them"),
    (r"input #N (does not persist|persists) timestamps, unlike its column family", "yes",
     "a column family that changed persist_user_defined_timestamps: the merge appends the "
     "minimum timestamp to every key or to none"),
    (r"input #N has format_version < N", "yes",
     "below format_version 2 compressed blocks carry no size prefix; files old enough for stock"),
    (r"file system \S+ is not the default POSIX file system", "yes",
     "RINGMERGE_WRAPPED_FS=refuse (default): direct reads would bypass the wrapper's fault "
     "injection, accounting or rate limit; verify is the operator's opt-in (README)"),
    (r"input #N on file system \S+: ", "yes",
     "RINGMERGE_WRAPPED_FS=verify: the OS file is not the file RocksDB reads (in-memory, remote "
     "or encrypting file system), so it cannot be read directly"),
    (r"opening the merge: .*entry larger than N GiB", "yes",
     "the merge's batches address entries with 32-bit offsets (src/compaction.rs)"),
    (r"(cannot open table|reading the (compression dictionary|index|range tombstones)"
     r"( of #N)?): ", "error",
     "reading what the merge needs failed (fault injection, a damaged file); stock reads the "
     "same inputs and reports any real problem"),
]
BY_DESIGN = [(re.compile(p), v, why) for p, v, why in BY_DESIGN]

# What varies between fallbacks of one cause. Numbers only when they stand alone, so names that
# carry digits (LZ4, BZip2, Uint64Comparator, RocksDB_SE_v3.10) stay whole.
_FOLDS = [
    (re.compile(r"\{[^{}]*\}"), "{...}"),  # Debug dumps: the footers of a footer mismatch
    (re.compile(r"(?<![\w.])/[^\s:()]+"), "<path>"),
    (re.compile(r"#\d+"), "#N"),
    (re.compile(r"(?<![\w.])(0x[0-9a-fA-F]+|\d+(\.\d+)?)(?![\w.])"), "N"),
    (re.compile(r"\s+"), " "),
]


def reason_class(reason):
    """The class of a fallback reason: the reason with its variable parts folded."""
    for pattern, repl in _FOLDS:
        reason = pattern.sub(repl, reason)
    return reason.strip()


def judge(cls):
    """(verdict, why) of a class; ("unclassified", "") when BY_DESIGN does not know it."""
    for pattern, verdict, why in BY_DESIGN:
        if pattern.match(cls):
            return verdict, why
    return "unclassified", ""


CRASH_KINDS = ("blackbox", "whitebox")  # scripts/crashtest.sh --kinds


def source_of(path):
    """(source, mode) of an outcome file, from its name: a crash test's <kind>.<mode>.<profile>
    (source "crash:<profile>") or a suite's <suite>.<mode>.<shard> (the shard may be "rerun",
    suites_run.py's reruns of stock-flaky tests); else (name, "?")."""
    name = os.path.basename(path)
    stem = name[:-len(".outcomes")] if name.endswith(".outcomes") else name
    parts = stem.split(".")
    if len(parts) != 3:
        return stem, "?"
    first, mode, last = parts
    return (f"crash:{last}" if first in CRASH_KINDS else first), mode


def outcome_files(inputs):
    """The outcome files of the inputs, each once; complaints on stderr for inputs with none."""
    files, seen = [], set()
    for p in inputs:
        if os.path.isdir(p):
            found = sorted(glob.glob(os.path.join(p, "*.outcomes")))
            if not found:
                print(f"fallback_census: no *.outcomes in {p}", file=sys.stderr)
        elif os.path.isfile(p):
            found = [p]
        else:
            print(f"fallback_census: {p}: no such file or directory", file=sys.stderr)
            found = []
        for f in found:
            if os.path.realpath(f) not in seen:
                seen.add(os.path.realpath(f))
                files.append(f)
    return files


def census(files):
    """The census of `files` as the JSON report's dict."""
    sources = {}  # "source/mode" -> its counts
    counts = collections.defaultdict(collections.Counter)  # class -> {source/mode: n}
    examples = {}
    for path in files:
        source, mode = source_of(path)
        key = f"{source}/{mode}"
        sources.setdefault(key, {"source": source, "mode": mode, "files": 0, "accelerated": 0,
                                 "fallback": 0})["files"] += 1
        with open(path, errors="replace") as f:
            for o in outcomes.parse(f.read()):
                if o.accelerated:
                    sources[key]["accelerated"] += 1
                    continue
                sources[key]["fallback"] += 1
                cls = reason_class(o.reason)
                counts[cls][key] += 1
                examples.setdefault(cls, o.reason)
    classes = []
    for cls, per_source in counts.items():
        verdict, why = judge(cls)
        classes.append({"class": cls, "verdict": verdict, "why": why, "example": examples[cls],
                        "total": sum(per_source.values()),
                        "counts": dict(sorted(per_source.items()))})
    classes.sort(key=lambda c: (-c["total"], c["class"]))
    acc = sum(s["accelerated"] for s in sources.values())
    fb = sum(s["fallback"] for s in sources.values())
    return {
        "files": files,
        "sources": [dict(label=k, **v, share=share(v["accelerated"], v["fallback"]))
                    for k, v in sorted(sources.items())],
        "totals": {"accelerated": acc, "fallback": fb, "share": share(acc, fb)},
        "classes": classes,
        "unclassified": sum(c["verdict"] == "unclassified" for c in classes),
    }


def share(accelerated, fallback):
    """The accelerated fraction of subcompactions, None when none ran."""
    return accelerated / (accelerated + fallback) if accelerated + fallback else None


def cell(text):
    return text.replace("|", "\\|")


def markdown(c):
    sources = c["sources"]
    out = [f"Fallback census of {len(c['files'])} outcome files", "",
           "| source/mode | files | accelerated | fallback | accelerated share |",
           "|---|---:|---:|---:|---:|"]
    for s in sources + [dict(label="all", files=len(c["files"]), **c["totals"])]:
        out.append(f"| {s['label']} | {s['files']} | {s['accelerated']} | {s['fallback']} | "
                   f"{outcomes.share_text(s['accelerated'], s['fallback'])} |")
    if not c["classes"]:
        return "\n".join(out + ["", "No fallback.", ""])
    # Only the sources something fell back in get a column.
    cols = [s["label"] for s in sources if s["fallback"]]
    out += ["", "| # | fallback class | by design | " + " | ".join(cols) + " | total | why |",
            "|---:|---|---|" + "---:|" * (len(cols) + 1) + "---|"]
    for i, k in enumerate(c["classes"], 1):
        per = " | ".join(str(k["counts"].get(s, "")) for s in cols)
        out.append(f"| {i} | `{cell(k['class'])}` | {k['verdict']} | {per} | {k['total']} | "
                   f"{cell(k['why'])} |")
    out += ["", "One full reason per class:", ""]
    out += [f"{i}. `{k['example']}`" for i, k in enumerate(c["classes"], 1)]
    if c["unclassified"]:
        out += ["", f"{c['unclassified']} unclassified class(es): add a verdict to BY_DESIGN in "
                    "scripts/fallback_census.py"]
    return "\n".join(out + [""])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="outcome files, or directories of *.outcomes")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--json", help="write the census as JSON here")
    ap.add_argument("--strict", action="store_true", help="exit 1 on unclassified classes")
    args = ap.parse_args()
    files = outcome_files(args.inputs)
    if not files:
        print("fallback_census: no outcome file found", file=sys.stderr)
        return 2
    c = census(files)
    md = markdown(c)
    sys.stdout.write(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(c, f, indent=1)
    return 1 if args.strict and c["unclassified"] else 0


if __name__ == "__main__":
    sys.exit(main())
