"""What both benchmarks (scripts/bench_compaction.py, scripts/bench_workloads.py) share: where
things are, the db_bench configuration they start from (scripts/db_bench_paper.flags), the I/O
modes, how a variant's name becomes its environment and flags, and the file chores of a run
(dropping the page cache, copying a DB, hashing db_bench).

Python 3.11 standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DB_BENCH = REPO / "target/rocksdb/bin/db_bench"
DEFAULT_OUT = REPO / "target/bench"
TIME_BIN = "/usr/bin/time"
COMPACTION_COMM = "rocksdb:low"
# ringmerge's output write-behind threads (one per output file being written): their syscalls are
# the compaction's writes moved off the compaction thread, reported beside it.
WRITE_BEHIND_COMM = "ringmerge-wb"

# The paper's db_bench configuration (no WAL, no block cache, no compression, 64 MiB memtables x 2,
# one flush thread, 16-byte keys, 1 KiB values, seed 42): one flag per line in this file, which
# tests/db_bench.rs reads too. Each benchmark adds its own flags after these.
PAPER_FLAGS_FILE = Path(__file__).resolve().parent / "db_bench_paper.flags"


def read_flags(path: Path) -> list[str]:
    """The flags of a flags file: one per line; blank lines and '#' comments ignored."""
    flags = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            flags.append(line)
    return flags


PAPER_FLAGS = read_flags(PAPER_FLAGS_FILE)

IO_MODES = {
    "buffered": ["--use_direct_reads=0", "--use_direct_io_for_flush_and_compaction=0"],
    "direct": ["--use_direct_reads=1", "--use_direct_io_for_flush_and_compaction=1"],
}


class BenchError(RuntimeError):
    pass


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, text=True, **kw)


def drop_caches() -> None:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        raise BenchError(f"cannot drop the page cache (/proc/sys/vm/drop_caches): {e}; run as root")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_head() -> str | None:
    p = run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    return p.stdout.strip() if p.returncode == 0 else None


def db_files(db: Path) -> tuple[int, int]:
    ssts = list(db.glob("*.sst"))
    return len(ssts), sum(f.stat().st_size for f in ssts)


def copy_db(src: Path, dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    p = run(["cp", "-a", "--reflink=never", str(src), str(dst)], capture_output=True)
    if p.returncode != 0:
        raise BenchError(f"cp -a {src} {dst} failed: {p.stderr}")
    # Start from a clean info log so LOG holds only this run.
    for f in list(dst.glob("LOG")) + list(dst.glob("LOG.old.*")) + [dst / "BENCH_INPUT.json"]:
        if f.exists():
            f.unlink()


def variant_env(variant: str) -> dict[str, str]:
    """The RINGMERGE_* environment of a variant (see `variant_spec`)."""
    return variant_spec(variant)[0]


def variant_flags(variant: str) -> list[str]:
    """The db_bench flags a variant adds (see `variant_spec`)."""
    return variant_spec(variant)[1]


def variant_spec(variant: str) -> tuple[dict[str, str], list[str]]:
    """A variant's name says what it runs: BASE[-inline][-subN][+KEY=VALUE...].

    BASE: stock -> RINGMERGE_MODE=off; any other name X -> RINGMERGE_MODE=X (native, bpf).
    -inline: RINGMERGE_MERGE_AHEAD=off (the merge in line on the compaction thread).
    -subN: db_bench --subcompactions=N (stock's own way to use N cores for one compaction).
    +KEY=VALUE: RINGMERGE_KEY=VALUE (e.g. native+WRITE_BEHIND=off, native+INFLIGHT=8388608).
    Examples: stock-sub2, native-inline+WRITE_BEHIND=off."""
    name, *extras = variant.split("+")
    env: dict[str, str] = {}
    flags: list[str] = []
    m = re.fullmatch(r"(.+?)(-inline)?(?:-sub(\d+))?", name)
    if not m:
        raise BenchError(f"cannot parse variant {variant!r}")
    base, inline, sub = m.groups()
    env["RINGMERGE_MODE"] = "off" if base == "stock" else base
    if inline:
        env["RINGMERGE_MERGE_AHEAD"] = "off"
    if sub:
        flags.append(f"--subcompactions={int(sub)}")
    for x in extras:
        k, sep, v = x.partition("=")
        if not sep or not re.fullmatch(r"[A-Z_]+", k):
            raise BenchError(f"variant {variant!r}: {x!r} is not KEY=VALUE (RINGMERGE_ omitted)")
        env[f"RINGMERGE_{k}"] = v
    return env, flags


def env_text(env: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in env.items())


def finish_report(out: Path, text: str, results: dict, failed_checks: list[str]) -> int:
    """Writes a benchmark's report.md (its text, then its failed checks) and results.json (with
    git_head and failed_checks added), prints the report, and returns the exit status: 1 when a
    check failed (a comparison void: nothing ran, nothing was accelerated), else 0."""
    if failed_checks:
        text += "\nFailed checks:\n\n" + "".join(f"- {b}\n" for b in failed_checks)
    (out / "report.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"git_head": git_head(), **results, "failed_checks": failed_checks}, indent=1))
    print(text)
    return 1 if failed_checks else 0
