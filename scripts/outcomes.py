"""The one reader of what ringmerge logs, for every script here.

What ringmerge writes (cpp/common/ringmerge_report.cc, from src/report.rs):
- per subcompaction, a line in the DB's LOG:
    [<cf>] [JOB <n>] ringmerge: accelerated subcompaction <k>: tier=2 backend=... merge=...
        runs=.. files=.. ... status=<RocksDB's status of the subcompaction>
    [<cf>] [JOB <n>] ringmerge: fallback subcompaction <k>: <reason>
- with RINGMERGE_OUTCOME_LOG=<path>, the same outcome appended to that file, which outlives the
  DB (RocksDB's test suites delete their DBs and LOGs): "accelerated <fields>" (no status) or
  "fallback <reason>";
- in the LOG's compaction_finished event (the JSON after "EVENT_LOG_v1 "), ringmerge_* fields
  summed over the job's subcompactions (ringmerge_path, ringmerge_accelerated_subcompactions,
  ringmerge_fallback_subcompactions, ringmerge_fallback_reason, ringmerge_backend, ...);
- warnings, once per process: "ringmerge: <text>".

parse_line() turns an outcome line of either form into an Outcome, parse() a whole LOG or outcome
file into the list of them, events() reads EVENT_LOG_v1 events. Outcomes/read() count outcome
files for scripts/suites_run.py and scripts/crashtest_report.py and state the checks they apply.

The BPF marker: when RINGMERGE_MODE=bpf cannot load the program, the compaction is still
accelerated, natively; every accelerated outcome line then carries `merge=native` and
`bpf_unavailable="<why>"` (RingmergeSummary::ToString) and the DB's LOG gets one warning per
process ("RINGMERGE_MODE=bpf but the BPF merge is unavailable, merging natively: <why>").
A loaded BPF merge that leaves a subcompaction with a data block larger than its read size to the
native merge says so with `bpf_declined="<why>"` instead: by design, not a BPF marker.
"""
import collections
import dataclasses
import json
import os
import re

BPF_MARKERS = ("bpf_unavailable", "the BPF merge is unavailable")
ACCELERATING_MODES = ("native", "bpf")

# "[<cf>] [JOB <n>] ringmerge: accelerated|fallback subcompaction <k>: <rest>" in a LOG line.
_LOG_LINE = re.compile(r"(?:\[(?P<cf>[^\]]*)\] \[JOB (?P<job>\d+)\] )?ringmerge: "
                       r"(?P<kind>accelerated|fallback) subcompaction (?P<sub>\d+): (?P<rest>.*)")
# key=value at the start of a word; a quoted value ends at the quote before a space or the end.
_FIELD = re.compile(r'(?<!\S)([a-z][a-z0-9_]*)=(?:"(.*?)"(?=\s|$)|(\S*))')
_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+")


@dataclasses.dataclass
class Outcome:
    """One subcompaction's outcome, from a LOG line or an outcome-file line."""
    accelerated: bool
    subcompaction: int | None = None  # LOG lines only
    fields: dict = dataclasses.field(default_factory=dict)  # numbers as int/float, quotes gone
    status: str | None = None  # accelerated LOG lines: "OK", "Corruption: ...", ...
    reason: str | None = None  # fallbacks
    cf: str | None = None  # LOG lines: the column family
    job: int | None = None  # LOG lines: RocksDB's job number
    line: str = ""  # the line as written

    @property
    def ok(self):
        """An accelerated subcompaction RocksDB finished with status OK (LOG lines only)."""
        return self.accelerated and self.status == "OK"

    @property
    def bpf_unavailable(self):
        """The BPF program did not load (the merge ran natively)."""
        return "bpf_unavailable" in self.fields or any(
            m in (self.reason or "") for m in BPF_MARKERS)

    def get(self, key, default=None):
        return self.fields.get(key, default)


def _value(text):
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def parse_fields(text):
    """(fields, status) of an accelerated outcome's `key=value ...` text. Words that are not
    key=value (`wrapped_fs="X" (footers verified, read directly)`) are skipped; `status=` is
    RocksDB's status and runs to the end of the line."""
    fields, status = {}, None
    for m in _FIELD.finditer(text):
        key = m.group(1)
        if key == "status":
            status = text[m.end(1) + 1:]
            break
        fields[key] = m.group(2) if m.group(2) is not None else _value(m.group(3))
    return fields, status


def parse_line(line):
    """The Outcome of a LOG line or an outcome-file line, or None for any other line."""
    line = line.rstrip("\n")
    if line.startswith("accelerated "):
        fields, status = parse_fields(line[len("accelerated "):])
        return Outcome(True, fields=fields, status=status, line=line)
    if line.startswith("fallback "):
        return Outcome(False, reason=line[len("fallback "):], line=line)
    if "ringmerge: " not in line:
        return None
    m = _LOG_LINE.search(line)
    if not m:
        return None
    sub = int(m.group("sub"))
    job = int(m.group("job")) if m.group("job") else None
    if m.group("kind") == "fallback":
        return Outcome(False, subcompaction=sub, reason=m.group("rest"), cf=m.group("cf"),
                       job=job, line=line)
    fields, status = parse_fields(m.group("rest"))
    return Outcome(True, subcompaction=sub, fields=fields, status=status, cf=m.group("cf"),
                   job=job, line=line)


def parse(text):
    """Every outcome of a LOG's or an outcome file's text, in order."""
    return [o for o in map(parse_line, text.splitlines()) if o is not None]


def ringmerge_lines(text):
    """Every line of a LOG that mentions ringmerge (outcomes, warnings, events' ringmerge_*
    fields): what the benchmarks keep beside each run as ringmerge.log."""
    return [line for line in text.splitlines() if "ringmerge" in line]


def events(text, name=None):
    """The LOG's EVENT_LOG_v1 events (the JSON after the marker), only those named `name` when
    given. ValueError on an event that does not parse."""
    out = []
    for line in text.splitlines():
        i = line.find("EVENT_LOG_v1 ")
        if i < 0 or (name is not None and name not in line):
            continue
        try:
            ev = json.loads(line[i + len("EVENT_LOG_v1 "):])
        except json.JSONDecodeError as e:
            raise ValueError(f"unparsable {name or 'EVENT_LOG_v1'} event in LOG: {e}: "
                             f"{line[:200]}") from None
        if name is None or ev.get("event") == name:
            out.append(ev)
    return out


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
        # Accelerated lines by numeric field above 0 (compressed_blocks, dict_files, ...).
        self.nonzero = collections.Counter()
        self.bpf_unavailable = []  # (path, line) samples, at most 3
        self.bpf_unavailable_lines = 0
        # Accelerated lines whose BPF merge, loaded, left a block larger than its read size to
        # the native merge (bpf_declined=...): by design, not a sign of a missing BPF.
        self.bpf_declined_lines = 0
        self.missing = []  # paths that do not exist
        self.empty = []  # paths that exist with no outcome line
        self.lines_by_path = {}

    def share(self):
        tot = self.accelerated + self.fallback
        return self.accelerated / tot if tot else 0.0

    def share_text(self):
        return share_text(self.accelerated, self.fallback)

    def add(self, o, path):
        if o.accelerated:
            self.accelerated += 1
            self.merge_engines[o.get("merge", "?")] += 1
            if "bpf_declined" in o.fields:
                self.bpf_declined_lines += 1
            self.nonzero.update(k for k, v in o.fields.items()
                                if not isinstance(v, str) and v > 0)
        else:
            self.fallback += 1
            self.reasons[normalize(o.reason)] += 1
        if o.bpf_unavailable:
            self.bpf_unavailable_lines += 1
            if len(self.bpf_unavailable) < 3:
                self.bpf_unavailable.append((path, o.line[:300]))


def share_text(accelerated, fallback):
    """The accelerated share of subcompactions as the reports print it ("-" when none ran)."""
    tot = accelerated + fallback
    return f"{100.0 * accelerated / tot:.1f}%" if tot else "-"


def read(paths):
    """Counts over the outcome files at `paths` (RINGMERGE_OUTCOME_LOG files)."""
    o = Outcomes()
    for p in paths:
        if not os.path.exists(p):
            o.missing.append(p)
            continue
        n = 0
        with open(p, errors="replace") as f:
            for line in f:
                out = parse_line(line)
                if out is not None:
                    o.add(out, p)
                    n += 1
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
    # Subcompactions with a block larger than the read size merge natively by design.
    native = o.merge_engines.get("native", 0) - o.bpf_declined_lines
    if native > 0 and not o.bpf_unavailable_lines:
        out.append(f"{what}: {native} accelerated subcompactions merged natively "
                   "(merge=native) in a bpf run")
    for p, line in log_hits:
        out.append(f"{what}: LOG {p}: {line}")
    return out
