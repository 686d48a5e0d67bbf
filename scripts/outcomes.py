"""Reads what ringmerge did in a test run: the RINGMERGE_OUTCOME_LOG files (one line per
subcompaction, "accelerated <summary>" or "fallback <reason>", written by
cpp/ringmerge_compaction_input.cc) and any RocksDB LOG files left behind, and states the checks
scripts/suites_run.py and scripts/crashtest_report.py apply to them.

The BPF marker: when RINGMERGE_MODE=bpf cannot load the program, the compaction is still
accelerated, natively; every accelerated outcome line then carries `merge=native` and
`bpf_unavailable="<why>"` (RingmergeSummary::ToString) and the DB's LOG gets one warning per
process ("RINGMERGE_MODE=bpf but the BPF merge is unavailable, merging natively: <why>").
"""
import collections
import os
import re

BPF_MARKERS = ("bpf_unavailable", "the BPF merge is unavailable")
ACCELERATING_MODES = ("native", "bpf")


def normalize(reason):
    r = re.sub(r"/\S+?\.sst", "<sst>", reason)
    r = re.sub(r"#\d+", "#N", r)
    r = re.sub(r"\(Footer[^)]*\)|\{[^}]*\}", "", r)
    r = re.sub(r"\d{2,}", "N", r)
    return r.strip()


class Outcomes:
    """Counts over a set of outcome files."""

    def __init__(self):
        self.accelerated = 0
        self.fallback = 0
        self.reasons = collections.Counter()
        self.merge_engines = collections.Counter()  # accelerated lines by merge=...
        self.bpf_unavailable = []  # (path, line) samples, at most 3
        self.bpf_unavailable_lines = 0
        self.missing = []  # paths that do not exist
        self.empty = []  # paths that exist with no outcome line
        self.lines_by_path = {}

    def share(self):
        tot = self.accelerated + self.fallback
        return self.accelerated / tot if tot else 0.0

    def share_text(self):
        return share_text(self.accelerated, self.fallback)


def share_text(accelerated, fallback):
    """The accelerated share of subcompactions as the reports print it ("-" when none ran)."""
    tot = accelerated + fallback
    return f"{100.0 * accelerated / tot:.1f}%" if tot else "-"


def read(paths):
    o = Outcomes()
    for p in paths:
        if not os.path.exists(p):
            o.missing.append(p)
            continue
        n = 0
        with open(p, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("accelerated "):
                    o.accelerated += 1
                    m = re.search(r" merge=(\S+)", line)
                    o.merge_engines[m.group(1) if m else "?"] += 1
                elif line.startswith("fallback "):
                    o.fallback += 1
                    o.reasons[normalize(line[len("fallback "):])] += 1
                else:
                    continue
                n += 1
                if any(m in line for m in BPF_MARKERS):
                    o.bpf_unavailable_lines += 1
                    if len(o.bpf_unavailable) < 3:
                        o.bpf_unavailable.append((p, line[:300]))
        o.lines_by_path[p] = n
        if n == 0:
            o.empty.append(p)
    return o


def scan_logs(root, limit=3):
    """(path, line) of RocksDB LOG files under root that carry a BPF marker."""
    hits = []
    if not root or not os.path.isdir(root):
        return hits
    for d, _, files in os.walk(root):
        for name in files:
            if not (name == "LOG" or name.startswith("LOG.old")):
                continue
            p = os.path.join(d, name)
            try:
                with open(p, errors="replace") as f:
                    for line in f:
                        if any(m in line for m in BPF_MARKERS):
                            hits.append((p, line.rstrip("\n")[:300]))
                            break
            except OSError:
                continue
            if len(hits) >= limit:
                return hits
    return hits


def share_problem(o, min_share, min_accelerated, what):
    """A failure message when the accelerated share or count is below its stated minimum."""
    tot = o.accelerated + o.fallback
    if o.accelerated < min_accelerated:
        return (f"{what}: {o.accelerated} accelerated subcompactions (of {tot}), below the "
                f"stated minimum {min_accelerated}")
    if o.share() < min_share:
        return (f"{what}: accelerated share {o.share_text()} ({o.accelerated}/{tot}), below the "
                f"stated minimum {100.0 * min_share:.0f}%")
    return None


def bpf_problems(o, log_hits, what):
    """Failure messages for a RINGMERGE_MODE=bpf run whose BPF program did not run."""
    out = []
    if o.bpf_unavailable_lines:
        p, line = o.bpf_unavailable[0]
        out.append(f"{what}: {o.bpf_unavailable_lines} outcome lines carry bpf_unavailable (the "
                   f"BPF program did not load; the run merged natively), e.g. {p}: {line}")
    native = o.merge_engines.get("native", 0)
    if native and not o.bpf_unavailable_lines:
        out.append(f"{what}: {native} accelerated subcompactions merged natively "
                   "(merge=native) in a bpf run")
    for p, line in log_hits:
        out.append(f"{what}: LOG {p}: {line}")
    return out
