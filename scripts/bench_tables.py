"""The benchmarks' figures as table cells and tables: median [min-max] (ratio to stock), the
CPU-by-thread-group table, and the terminal and Markdown renderings of a table.

Python 3.11 standard library only.
"""

from __future__ import annotations

import statistics

from bench_measure import THREAD_GROUPS


def stat(vals: list[float]) -> dict:
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def fmt_num(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def cell(s: dict, key: str, fmt, unit: str = "", mark: str = "",
         hide_equal_range: bool = False) -> str:
    """median [min-max] (ratio to stock); `mark` flags a figure from another source."""
    if key not in s:
        return "n/a"
    st = s[key]
    txt = f"{fmt(st['median'])}{unit}{mark}"
    if st["n"] > 1 and not (hide_equal_range and st["min"] == st["max"]):
        txt += f" [{fmt(st['min'])}-{fmt(st['max'])}]"
    r = s.get("ratio_to_stock", {}).get(key)
    if r is not None and s["variant"] != "stock":
        txt += f" ({r:.2f}x)"
    return txt


def median_thread_cpu(runs: list[dict]) -> dict[str, float]:
    """Median CPU seconds per thread group over runs (a group a run did not have counts 0)."""
    groups = sorted({g for r in runs for g in r.get("thread_cpu_s", {})})
    return {g: statistics.median(r.get("thread_cpu_s", {}).get(g, 0.0) for r in runs)
            for g in groups}


def thread_cpu_rows(summary: list[dict], keys: tuple[str, ...] = ("mode", "variant")
                    ) -> tuple[list[str], list[list[str]]]:
    """Median CPU seconds per thread group (THREAD_GROUPS) of every thread of the process, from
    /proc/PID/task sampled every 50 ms, one row per summary row named by `keys`; `unattributed`
    = time -v's process total minus the threads seen (threads that ended between two samples)."""
    groups = [g for g, _ in THREAD_GROUPS] + ["other", "unattributed_s"]
    seen = [g for g in groups if any(s.get("thread_cpu_s", {}).get(g) for s in summary)]
    hdr = list(keys) + [g.replace("_s", "") for g in seen] + ["process"]
    rows = [[s[k] for k in keys]
            + [f"{s.get('thread_cpu_s', {}).get(g, 0.0):.2f}" for g in seen]
            + [f"{s['process_cpu_s']['median']:.2f}" if "process_cpu_s" in s else "n/a"]
            for s in summary]
    return hdr, rows


def text_table(hdr: list[str], rows: list[list[str]]) -> str:
    w = [max(len(hdr[i]), *(len(r[i]) for r in rows)) if rows else len(hdr[i])
         for i in range(len(hdr))]
    line = lambda cells: "  ".join(c.ljust(w[i]) for i, c in enumerate(cells)).rstrip()
    return "\n".join([line(hdr), line(["-" * x for x in w])] + [line(r) for r in rows])


def md_table(hdr: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)
