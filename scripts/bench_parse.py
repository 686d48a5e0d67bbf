"""Reading what a benchmark run left: db_bench's output (result lines, its --histogram=1 blocks,
the statistics dump's histograms, tickers and write stalls), `/usr/bin/time -v`'s report and the
DB's LOG (compaction events and ringmerge's outcomes, through scripts/outcomes.py, the one parser
of ringmerge's LOG lines).

Python 3.11 standard library only.
"""

from __future__ import annotations

import re

import outcomes
from bench_common import BenchError

HIST_RE = r"^{name} P50 : \S+ P95 : \S+ P99 : \S+ P100 : \S+ COUNT : (\d+) SUM : (\d+)\s*$"
TICKER_RE = r"^{name} COUNT : (\d+)\s*$"


def parse_hist(text: str, name: str) -> tuple[int, int]:
    m = re.search(HIST_RE.format(name=re.escape(name)), text, re.M)
    if not m:
        raise BenchError(f"histogram {name} not found in db_bench output")
    return int(m.group(1)), int(m.group(2))


def parse_ticker(text: str, name: str) -> int:
    m = re.search(TICKER_RE.format(name=re.escape(name)), text, re.M)
    if not m:
        raise BenchError(f"ticker {name} not found in db_bench output")
    return int(m.group(1))


def parse_ops(text: str, bench: str) -> dict:
    m = re.search(rf"^{re.escape(bench)}\s*:\s*([\d.]+) micros/op (\d+) ops/sec ([\d.]+) seconds "
                  rf"(\d+) operations;(.*)$", text, re.M)
    if not m:
        raise BenchError(f"no '{bench} : ... ops/sec' result line in db_bench output")
    return {"micros_per_op": float(m.group(1)), "ops_per_s": int(m.group(2)),
            "seconds": float(m.group(3)), "operations": int(m.group(4)),
            "tail": m.group(5).strip()}


def parse_db_bench_hist(text: str, op: str) -> dict | None:
    """db_bench --histogram=1 block 'Microseconds per <op>:' -> count/avg/percentiles, or None."""
    m = re.search(rf"^Microseconds per {re.escape(op)}:\s*\n"
                  rf"Count: (\d+) Average: ([\d.]+)\s+StdDev: [\d.]+\s*\n"
                  rf"Min: \S+\s+Median: \S+\s+Max: (\S+)\s*\n"
                  rf"Percentiles: P50: ([\d.]+) P75: ([\d.]+) P99: ([\d.]+) P99\.9: ([\d.]+)"
                  rf" P99\.99: ([\d.]+)", text, re.M)
    if not m:
        if re.search(rf"^Microseconds per {re.escape(op)}:", text, re.M):
            raise BenchError(f"cannot parse db_bench's 'Microseconds per {op}' histogram")
        return None
    return {"count": int(m.group(1)), "avg_us": float(m.group(2)), "max_us": float(m.group(3)),
            "p50_us": float(m.group(4)), "p99_us": float(m.group(6)),
            "p999_us": float(m.group(7)), "source": "db_bench"}


STATS_HIST_RE = (r"^{name} P50 : ([\d.]+) P95 : ([\d.]+) P99 : ([\d.]+) P100 : ([\d.]+) "
                 r"COUNT : (\d+) SUM : (\d+)\s*$")


def parse_stats_hist(text: str, name: str) -> dict:
    m = re.search(STATS_HIST_RE.format(name=re.escape(name)), text, re.M)
    if not m:
        raise BenchError(f"statistics histogram {name} not found in db_bench output")
    return {"p50_us": float(m.group(1)), "p99_us": float(m.group(3)),
            "max_us": float(m.group(4)), "count": int(m.group(5)), "sum_us": int(m.group(6)),
            "source": "stats"}


STALL_COUNT_RE = re.compile(r"^Write Stall \(count\): (cf-.*)$", re.M)


def parse_stall_causes(text: str) -> dict[str, int]:
    """RocksDB's write stalls by cause (the column family's "Write Stall (count)" line of the
    last stats dump): l0-file-count-limit-*, memtable-limit-*, pending-compaction-bytes-*
    delays and stops. Empty when db_bench printed no stats."""
    found = STALL_COUNT_RE.findall(text)
    if not found:
        return {}
    causes = {}
    for part in found[-1].split(","):
        k, _, v = part.strip().partition(":")
        if v.strip().isdigit():
            causes[k.strip()] = int(v)
    return causes


def parse_time_v(text: str) -> dict:
    def grab(label: str) -> str:
        m = re.search(rf"^\s*{re.escape(label)}:\s*(.+)$", text, re.M)
        if not m:
            raise BenchError(f"'{label}' not found in /usr/bin/time -v output")
        return m.group(1).strip()

    el = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    secs = 0.0
    for part in el.split(":"):
        secs = secs * 60 + float(part)
    return {
        "max_rss_kb": int(grab("Maximum resident set size (kbytes)")),
        "exit_status": int(grab("Exit status")),
        "elapsed_s": secs,
        "user_s": float(grab("User time (seconds)")),
        "sys_s": float(grab("System time (seconds)")),
        "major_faults": int(grab("Major (requiring I/O) page faults")),
        "fs_inputs": int(grab("File system inputs")),
        "fs_outputs": int(grab("File system outputs")),
    }


def log_events(log_text: str, name: str) -> list[dict]:
    """The LOG's EVENT_LOG_v1 events named `name` (compaction_finished, compaction_started)."""
    try:
        return outcomes.events(log_text, name)
    except ValueError as e:
        raise BenchError(str(e)) from None


def parse_log(log_text: str) -> dict:
    """A run's LOG: its compaction_finished events, the lines that mention ringmerge (kept beside
    the run), and ringmerge's outcomes per subcompaction with their counts (any status)."""
    events = log_events(log_text, "compaction_finished")
    outs = outcomes.parse(log_text)
    return {
        "compaction_finished": [
            {k: ev.get(k) for k in ("job", "compaction_time_micros", "compaction_time_cpu_micros",
                                    "output_level", "num_output_files", "total_output_size",
                                    "num_input_records", "num_output_records",
                                    "num_subcompactions", "lsm_state")}
            for ev in events
        ],
        "ringmerge_lines": outcomes.ringmerge_lines(log_text),
        "outcomes": outs,
        "ringmerge_accelerated": sum(o.accelerated for o in outs),
        "ringmerge_fallback": sum(not o.accelerated for o in outs),
        # The BPF program could not load (the kernel, capabilities): the merge ran natively.
        "bpf_unavailable": sum(o.accelerated and "bpf_unavailable" in o.fields for o in outs),
    }


HELPER_CPU_FIELDS = ("ahead_cpu_ms", "wb_cpu_ms")


def helper_cpu_us(lg: dict) -> float:
    """CPU of ringmerge's helper threads (merge-ahead companion, write-behind writers) summed over
    the run's accelerated subcompactions that finished with status=OK, as statistics count only
    finished compactions, in microseconds. A writer's CPU counts the output files closed when the
    line was written (all but the last)."""
    return sum(float(o.fields[k]) * 1000.0 for o in lg["outcomes"] if o.ok
               for k in HELPER_CPU_FIELDS if k in o.fields)


def ringmerge_outcomes(lg: dict) -> dict:
    """Subcompactions ringmerge finished with status=OK; ones cut short by DB shutdown (a
    compaction still running when db_bench closes the DB, which statistics never count) are
    reported separately."""
    return {
        "ringmerge_accelerated": sum(o.ok for o in lg["outcomes"]),
        "ringmerge_aborted": sum(o.accelerated and not o.ok for o in lg["outcomes"]),
        "ringmerge_fallback": lg["ringmerge_fallback"],
    }
