#!/usr/bin/env python3
"""Deterministic manual-compaction benchmark: stock RocksDB 10.1.3 vs ringmerge.

What it does (see /work/shared/notes/stock-baseline.md):

1. Builds an input DB once with db_bench fillrandom (N keys, 16-byte keys, 1 KiB values, seed 42,
   no WAL, no compression, 64 MiB memtables, auto compactions off), cached in WORK/input-nN.
   N=1,000,000 gives ~17 L0 files, ~1 GB.
2. For every rep, I/O mode (buffered / direct) and variant (stock = RINGMERGE_MODE=off,
   native = RINGMERGE_MODE=native, any other name X = RINGMERGE_MODE=X), interleaved:
   copies the input DB to a fresh directory, syncs and drops the page cache, then runs
   `db_bench --benchmarks=compact,stats --use_existing_db=1 --statistics=1 ...` (one
   CompactRange of everything into L1) under `perf record -e raw_syscalls:sys_enter` (every
   thread of the process; the compaction threads, named rocksdb:low, also apart) and
   `/usr/bin/time -v`.
3. Collects per run: compaction wall/CPU time (histogram SUMs, cross-checked against the LOG's
   compaction_finished events), compact read/write bytes, kernel-counted syscalls of every
   thread by kind, peak RSS, and the `ringmerge` LOG lines (accelerated / fallback counts).
4. Prints a summary (median, min-max, ratio to stock in the same I/O mode) and writes
   OUT/results.json (every raw run + summary) and OUT/report.md.

Python 3.11 standard library only. Must run as root (drop_caches, perf tracepoints).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DB_BENCH = REPO / "target/rocksdb/bin/db_bench"
DEFAULT_OUT = REPO / "target/bench"
TIME_BIN = "/usr/bin/time"
COMPACTION_COMM = "rocksdb:low"
# ringmerge's output write-behind threads (one per output file being written): their syscalls are
# the compaction's writes moved off the compaction thread, reported beside it.
WRITE_BEHIND_COMM = "ringmerge-wb"

# Options shared by the fill and the compaction run (the table/DB shape).
COMMON_FLAGS = [
    "--key_size=16",
    "--value_size=1024",
    "--seed=42",
    "--disable_wal=1",
    "--compression_type=none",
    "--write_buffer_size=67108864",
    "--max_write_buffer_number=2",
    "--min_write_buffer_number_to_merge=1",
    # Must stay off in the compact run too: 17 L0 files would otherwise trigger an automatic
    # L0->L1 compaction as soon as the DB opens, racing the manual one.
    "--disable_auto_compactions=1",
    "--cache_size=0",  # NewCache returns null -> no_block_cache
    "--threads=1",
    "--compaction_style=0",
    "--level_compaction_dynamic_level_bytes=0",  # db_bench's default; L0 compacts into L1
    "--subcompactions=1",
]
FILL_FLAGS = ["--benchmarks=fillrandom", "--use_existing_db=0"]
COMPACT_FLAGS = [
    "--benchmarks=compact,stats",
    "--use_existing_db=1",
    "--statistics=1",
    "--compaction_readahead_size=2097152",
]
IO_MODES = {
    "buffered": ["--use_direct_reads=0", "--use_direct_io_for_flush_and_compaction=0"],
    "direct": ["--use_direct_reads=1", "--use_direct_io_for_flush_and_compaction=1"],
}

# Fallback x86_64 syscall names (used only if neither ausyscall nor unistd_64.h is available).
X86_64_SYSCALLS = {
    0: "read", 1: "write", 2: "open", 3: "close", 4: "stat", 5: "fstat", 6: "lstat", 7: "poll",
    8: "lseek", 9: "mmap", 10: "mprotect", 11: "munmap", 12: "brk", 13: "rt_sigaction",
    14: "rt_sigprocmask", 16: "ioctl", 17: "pread64", 18: "pwrite64", 19: "readv", 20: "writev",
    24: "sched_yield", 25: "mremap", 28: "madvise", 35: "nanosleep", 39: "getpid",
    60: "exit", 62: "kill", 72: "fcntl", 74: "fsync", 75: "fdatasync", 76: "truncate",
    77: "ftruncate", 78: "getdents", 79: "getcwd", 82: "rename", 83: "mkdir", 84: "rmdir",
    87: "unlink", 89: "readlink", 96: "gettimeofday", 137: "statfs", 138: "fstatfs",
    157: "prctl", 186: "gettid", 187: "readahead", 200: "tkill", 201: "time", 202: "futex",
    217: "getdents64", 221: "fadvise64", 228: "clock_gettime", 230: "clock_nanosleep",
    231: "exit_group", 234: "tgkill", 257: "openat", 262: "newfstatat", 263: "unlinkat",
    264: "renameat", 277: "sync_file_range", 285: "fallocate", 295: "preadv", 296: "pwritev",
    302: "prlimit64", 306: "syncfs", 316: "renameat2", 318: "getrandom", 327: "preadv2",
    328: "pwritev2", 332: "statx", 334: "rseq", 425: "io_uring_setup", 426: "io_uring_enter",
    427: "io_uring_register", 435: "clone3",
}


class BenchError(RuntimeError):
    pass


def log(msg: str) -> None:
    ts = _dt.datetime.now().strftime("%H:%M:%S")
    print(f"[bench {ts}] {msg}", flush=True)


def die(msg: str) -> "None":
    print(f"bench-compaction: ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, text=True, **kw)


# ----------------------------------------------------------------------------------------------
# Environment checks
# ----------------------------------------------------------------------------------------------

def drop_caches() -> None:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        raise BenchError(f"cannot drop the page cache (/proc/sys/vm/drop_caches): {e}; run as root")


def ensure_perf() -> None:
    if shutil.which("perf") is None:
        raise BenchError("perf not found (Debian package linux-perf); or pass --no-perf")

    def has_tp() -> bool:
        p = run(["perf", "list", "tracepoint"], capture_output=True)
        return "raw_syscalls:sys_enter" in (p.stdout + p.stderr)

    if not has_tp():
        # The tracepoint needs tracefs (or debugfs/tracing); try mounting it.
        for fs, mnt in (("tracefs", "/sys/kernel/tracing"), ("debugfs", "/sys/kernel/debug")):
            if not os.path.ismount(mnt):
                run(["mount", "-t", fs, fs, mnt], capture_output=True)
        if not has_tp():
            raise BenchError("perf does not list the raw_syscalls:sys_enter tracepoint even after "
                             "mounting tracefs; or pass --no-perf")


def syscall_names() -> dict[int, str]:
    names: dict[int, str] = {}
    if shutil.which("ausyscall"):
        p = run(["ausyscall", "--dump"], capture_output=True)
        for line in p.stdout.splitlines():
            m = re.match(r"^(\d+)\s+(\S+)$", line.strip())
            if m:
                names[int(m.group(1))] = m.group(2)
        if names:
            return names
    hdr = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if os.uname().machine == "x86_64" and hdr.exists():
        for line in hdr.read_text().splitlines():
            m = re.match(r"#define __NR_(\w+)\s+(\d+)$", line.strip())
            if m:
                names[int(m.group(2))] = m.group(1)
        if names:
            return names
    return dict(X86_64_SYSCALLS)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_head() -> str | None:
    p = run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    return p.stdout.strip() if p.returncode == 0 else None


# ----------------------------------------------------------------------------------------------
# Input DB
# ----------------------------------------------------------------------------------------------

def db_files(db: Path) -> tuple[int, int]:
    ssts = list(db.glob("*.sst"))
    return len(ssts), sum(f.stat().st_size for f in ssts)


def build_input(db_bench: Path, work: Path, num: int) -> Path:
    fill_cmd_tail = FILL_FLAGS + COMMON_FLAGS + [f"--num={num}"]
    key = hashlib.sha256(" ".join(fill_cmd_tail).encode()).hexdigest()[:10]
    inp = work / f"input-n{num}-{key}"
    meta_path = inp / "BENCH_INPUT.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        n, size = db_files(inp)
        if n == meta["sst_files"] and size == meta["sst_bytes"]:
            log(f"reusing input DB {inp} ({n} L0 files, {size / 1e6:.0f} MB)")
            return inp
        log(f"cached input {inp} does not match its metadata; rebuilding")
    tmp = work / f"{inp.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(inp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [str(db_bench), f"--db={tmp}"] + fill_cmd_tail
    log(f"building input DB: {' '.join(cmd)}")
    t0 = time.monotonic()
    env = dict(os.environ, RINGMERGE_MODE="off")
    with open(work / f"{inp.name}.fill.out", "w") as out:
        p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, text=True)
    if p.returncode != 0:
        tail = (work / f"{inp.name}.fill.out").read_text()[-3000:]
        raise BenchError(f"db_bench fillrandom failed (exit {p.returncode}):\n{tail}")
    n, size = db_files(tmp)
    if n == 0:
        raise BenchError(f"fillrandom produced no .sst files in {tmp}")
    meta = {"num": num, "command": cmd, "sst_files": n, "sst_bytes": size,
            "fill_seconds": round(time.monotonic() - t0, 2),
            "db_bench": str(db_bench), "created": _dt.datetime.now().isoformat()}
    meta_path_tmp = tmp / "BENCH_INPUT.json"
    meta_path_tmp.write_text(json.dumps(meta, indent=2))
    tmp.rename(inp)
    log(f"input DB ready: {n} L0 files, {size / 1e6:.0f} MB, fill took {meta['fill_seconds']} s")
    return inp


def copy_db(src: Path, dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    p = run(["cp", "-a", "--reflink=never", str(src), str(dst)], capture_output=True)
    if p.returncode != 0:
        raise BenchError(f"cp -a {src} {dst} failed: {p.stderr}")
    # Start from a clean info log so LOG holds only this run.
    for f in list(dst.glob("LOG")) + list(dst.glob("LOG.old.*")) + [dst / "BENCH_INPUT.json"]:
        if f.exists():
            f.unlink()


def measure_disk(inp: Path, work: Path) -> dict:
    """Rough sequential bandwidths with dd (1 MiB O_DIRECT, queue depth 1)."""
    res: dict = {"method": "dd bs=1M O_DIRECT at queue depth 1: read of the largest input SST, "
                           "256 MiB write; rough (host caching can inflate it, qd1 can deflate it)"}
    ssts = sorted(inp.glob("*.sst"), key=lambda f: f.stat().st_size, reverse=True)
    if ssts:
        drop_caches()
        p = run(["dd", f"if={ssts[0]}", "of=/dev/null", "bs=1M", "iflag=direct"],
                capture_output=True)
        m = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", p.stderr)
        if p.returncode == 0 and m and float(m.group(2)) > 0:
            res["read_MBps"] = round(int(m.group(1)) / float(m.group(2)) / 1e6, 1)
    tmpf = work / "dd-write-test"
    p = run(["dd", "if=/dev/zero", f"of={tmpf}", "bs=1M", "count=256", "oflag=direct",
             "conv=fsync"], capture_output=True)
    m = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", p.stderr)
    if p.returncode == 0 and m and float(m.group(2)) > 0:
        res["write_MBps"] = round(int(m.group(1)) / float(m.group(2)) / 1e6, 1)
    tmpf.unlink(missing_ok=True)
    return res


def measure_io_floor(inp: Path, work: Path, write_bytes: float, reps: int = 3) -> dict:
    """The compaction's own I/O with no CPU at all: every input SST read (O_DIRECT, 1 MiB,
    sequential) while as many bytes as stock wrote are written (O_DIRECT, 1 MiB, then fsync),
    both at once, as an overlapped compaction would move them. No compaction of these bytes
    can finish faster on this disk, whatever its CPU does. Median of `reps`."""
    ssts = sorted(inp.glob("*.sst"))
    if not ssts or write_bytes <= 0:
        return {}
    count = max(1, int(round(write_bytes / (1 << 20))))
    tmpf = work / "io-floor-write-test"
    reader = "for f in \"$@\"; do dd if=\"$f\" of=/dev/null bs=1M iflag=direct status=none || exit 1; done"
    times = []
    for _ in range(reps):
        drop_caches()
        t0 = time.monotonic()
        r = subprocess.Popen(["bash", "-c", reader, "reader"] + [str(f) for f in ssts])
        w = subprocess.Popen(["dd", "if=/dev/zero", f"of={tmpf}", "bs=1M", f"count={count}",
                              "oflag=direct", "conv=fsync", "status=none"])
        if r.wait() != 0 or w.wait() != 0:
            tmpf.unlink(missing_ok=True)
            return {}
        times.append(time.monotonic() - t0)
        tmpf.unlink(missing_ok=True)
    times.sort()
    return {"method": f"read all {len(ssts)} input SSTs while writing {count} MiB, both O_DIRECT "
                      "1 MiB and concurrent (dd), no CPU work; median of "
                      f"{reps}", "seconds": round(times[len(times) // 2], 3),
            "all_seconds": [round(t, 3) for t in times]}


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------

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


# Thread groups of a RocksDB process, by the name the kernel shows (/proc/PID/task/TID/comm).
THREAD_GROUPS = [
    ("compaction", ("rocksdb:low",)),
    ("flush", ("rocksdb:high",)),
    ("merge-ahead", ("ringmerge-ahead",)),
    ("write-behind", ("ringmerge-wb",)),
    ("io_uring workers", ("iou-wrk", "iou-sqp")),
    ("foreground", ("db_bench", "ringmerge_drive")),
]


def thread_group(comm: str) -> str:
    for group, prefixes in THREAD_GROUPS:
        if comm.startswith(prefixes):
            return group
    return "other"


class ThreadCpuSampler:
    """Per-thread CPU of a running process tree, by polling /proc/PID/task/*/stat (utime+stime)
    every `period` seconds and keeping each thread's last value; threads are grouped by name
    (THREAD_GROUPS). A thread that exits loses at most one period of CPU: `unattributed_s`
    (the process total from time -v minus the sum) says how much went uncounted, so the
    figures are checked against the kernel's own total rather than trusted."""

    def __init__(self, root_pid: int, period: float = 0.05):
        import threading
        self.root = root_pid
        self.period = period
        self.tick = os.sysconf("SC_CLK_TCK")
        self.last: dict[int, tuple[str, int]] = {}
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _pids(self) -> list[int]:
        pids, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                for t in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{t}/children") as f:
                        todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
        return pids

    def _sample(self) -> None:
        for pid in self._pids():
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for t in tids:
                try:
                    with open(f"/proc/{pid}/task/{t}/stat") as f:
                        st = f.read()
                except OSError:
                    continue
                comm = st[st.index("(") + 1:st.rindex(")")]
                fields = st[st.rindex(")") + 2:].split()
                self.last[int(t)] = (comm, int(fields[11]) + int(fields[12]))  # utime, stime

    def _run(self) -> None:
        while not self.stop_ev.is_set():
            self._sample()
            self.stop_ev.wait(self.period)

    def stop(self) -> None:
        self.stop_ev.set()
        self.thread.join()

    def groups(self, process_cpu_s: float | None = None) -> dict[str, float]:
        """CPU seconds per thread group (the `time` wrapper's own thread excluded), and
        `unattributed_s` when the process total is given."""
        out: dict[str, float] = {}
        for comm, ticks in self.last.values():
            if comm in ("time", "perf", "perf-exec"):
                continue  # the wrappers, not the measured process
            g = thread_group(comm)
            out[g] = out.get(g, 0.0) + ticks / self.tick
        out = {k: round(v, 3) for k, v in out.items()}
        if process_cpu_s is not None:
            out["unattributed_s"] = round(process_cpu_s - sum(out.values()), 3)
        return out


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


def parse_log(log_text: str) -> dict:
    events = []
    for line in log_text.splitlines():
        i = line.find("EVENT_LOG_v1 ")
        if i < 0 or "compaction_finished" not in line:
            continue
        try:
            ev = json.loads(line[i + len("EVENT_LOG_v1 "):])
        except json.JSONDecodeError as e:
            raise BenchError(f"unparsable compaction_finished event in LOG: {e}: {line[:200]}")
        if ev.get("event") == "compaction_finished":
            events.append(ev)
    rm_lines = [l for l in log_text.splitlines() if "ringmerge" in l]
    return {
        "compaction_finished": [
            {k: ev.get(k) for k in ("job", "compaction_time_micros", "compaction_time_cpu_micros",
                                    "output_level", "num_output_files", "total_output_size",
                                    "num_input_records", "num_output_records",
                                    "num_subcompactions", "lsm_state")}
            for ev in events
        ],
        "ringmerge_lines": rm_lines,
        "ringmerge_accelerated": sum("ringmerge: accelerated" in l for l in rm_lines),
        "ringmerge_fallback": sum("ringmerge: fallback" in l for l in rm_lines),
        # The BPF program could not load (the kernel, capabilities): the merge ran natively.
        "bpf_unavailable": sum("ringmerge: accelerated" in l and "bpf_unavailable=" in l
                               for l in rm_lines),
    }


PERF_LINE_RE = re.compile(r"^\s*(?P<comm>.*?)\s+(?P<tid>\d+)\s+.*?(?:NR |\bid[=:]\s*)(?P<nr>-?\d+)")


def parse_perf(data: Path, names: dict[int, str]) -> dict:
    """Counts raw_syscalls:sys_enter events of every thread of the traced process tree (the
    headline: work a variant moves to another thread -- merge-ahead companion, write-behind
    writers -- is not work removed), by kind and per thread name, and apart those of the threads
    named rocksdb:low (the compaction threads). io_uring's io-wq workers run reads inside the
    kernel and make no syscalls: their CPU is in the process CPU figure."""
    p = subprocess.run(["perf", "script", "-i", str(data), "-F", "comm,tid,trace"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"perf script failed: {p.stderr[-2000:]}")
    if re.search(r"lost \d+ chunks", p.stderr):
        raise BenchError(f"perf lost events (raise --perf-mmap): {p.stderr[-500:]}")
    by_nr: dict[int, int] = {}
    comp_by_nr: dict[int, int] = {}
    tids: dict[int, int] = {}
    by_comm: dict[str, int] = {}
    for line in p.stdout.splitlines():
        if not line.strip():
            continue
        m = PERF_LINE_RE.match(line)
        if not m:
            raise BenchError(f"cannot parse perf script line: {line!r}")
        comm = m.group("comm")
        by_comm[comm] = by_comm.get(comm, 0) + 1
        nr = int(m.group("nr"))
        by_nr[nr] = by_nr.get(nr, 0) + 1
        if comm != COMPACTION_COMM:
            continue
        comp_by_nr[nr] = comp_by_nr.get(nr, 0) + 1
        tid = int(m.group("tid"))
        tids[tid] = tids.get(tid, 0) + 1

    def named(counts: dict[int, int]) -> dict[str, int]:
        return {names.get(nr, f"syscall_{nr}"): c
                for nr, c in sorted(counts.items(), key=lambda kv: -kv[1])}

    return {"total": sum(by_nr.values()), "by_syscall": named(by_nr),
            "compaction_thread": {"total": sum(comp_by_nr.values()),
                                  "by_syscall": named(comp_by_nr), "threads": len(tids),
                                  "events_per_thread": sorted(tids.values(), reverse=True)},
            "by_comm_all_threads": dict(sorted(by_comm.items(), key=lambda kv: -kv[1]))}


# ----------------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------------

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


def one_run(args, inp: Path, run_dir: Path, variant: str, mode: str, rep: int,
            names: dict[int, str], traced: bool) -> dict:
    db = args.work / "db"
    copy_db(inp, db)
    run_dir.mkdir(parents=True, exist_ok=True)
    drop_caches()

    cmd = ([str(args.db_bench), f"--db={db}"] + COMPACT_FLAGS + COMMON_FLAGS
           + [f"--num={args.num}"] + IO_MODES[mode] + variant_flags(variant) + args.extra)
    time_out = run_dir / "time-v.txt"
    wrapped = [TIME_BIN, "-v", "-o", str(time_out)] + cmd
    perf_data = run_dir / "perf.data"
    if traced:
        # Whole process tree (threads inherit), no kernel-side filter: the compaction threads
        # dominate the event count anyway, and other thread names stay visible.
        wrapped = (["perf", "record", "-e", "raw_syscalls:sys_enter",
                    "-m", args.perf_mmap, "-o", str(perf_data), "--"] + wrapped)
    env = dict(os.environ, **variant_env(variant))
    stdout_f = run_dir / "db_bench.out"
    stderr_f = run_dir / "db_bench.err"
    t0 = time.monotonic()
    with open(stdout_f, "w") as so, open(stderr_f, "w") as se:
        p = subprocess.Popen(wrapped, stdout=so, stderr=se, env=env, text=True)
        sampler = ThreadCpuSampler(p.pid)
        p.wait()
        sampler.stop()
    outer_s = time.monotonic() - t0
    out = stdout_f.read_text()
    err = stderr_f.read_text()
    (run_dir / "command.txt").write_text(
        env_text(variant_env(variant)) + " " + " ".join(wrapped) + "\n")

    def fail(msg: str):
        raise BenchError(f"{variant}/{mode}/rep{rep}: {msg}\n--- stderr (tail) ---\n{err[-3000:]}"
                         f"\n--- stdout (tail) ---\n{out[-2000:]}\n(artifacts: {run_dir})")

    if not time_out.exists():
        fail(f"no /usr/bin/time output (wrapper exit {p.returncode})")
    tv = parse_time_v(time_out.read_text())
    if tv["exit_status"] != 0 or p.returncode != 0:
        fail(f"db_bench failed (exit status {tv['exit_status']}, wrapper exit {p.returncode})")
    if "STATISTICS:" not in out:
        fail("db_bench printed no STATISTICS section")
    if traced and re.search(r"lost \d+ chunks", err):
        fail("perf lost events; raise --perf-mmap")

    try:
        c_count, wall_us = parse_hist(out, "rocksdb.compaction.times.micros")
        c_count_cpu, cpu_us = parse_hist(out, "rocksdb.compaction.times.cpu_micros")
        read_b = parse_ticker(out, "rocksdb.compact.read.bytes")
        write_b = parse_ticker(out, "rocksdb.compact.write.bytes")
        cpu_total_ticker = parse_ticker(out, "rocksdb.compaction.total.time.cpu_micros")
    except BenchError as e:
        fail(str(e))
    if c_count == 0:
        fail("no compaction ran (rocksdb.compaction.times.micros COUNT is 0; "
             "a single L0 file may have been trivially moved -- use a larger --num)")

    log_path = db / "LOG"
    if not log_path.exists():
        fail(f"no LOG in {db}")
    log_text = log_path.read_text(errors="replace")
    lg = parse_log(log_text)
    (run_dir / "ringmerge.log").write_text("\n".join(lg["ringmerge_lines"]) + "\n")
    shutil.copy(log_path, run_dir / "LOG")
    ev = lg["compaction_finished"]
    ev_wall = sum(e["compaction_time_micros"] or 0 for e in ev)
    ev_cpu = sum(e["compaction_time_cpu_micros"] or 0 for e in ev)
    cross = {
        "log_events": len(ev), "log_wall_us": ev_wall, "log_cpu_us": ev_cpu,
        "ok": len(ev) == c_count and ev_wall == wall_us and ev_cpu == cpu_us,
    }
    if not cross["ok"]:
        log(f"  WARNING: statistics ({c_count} compactions, {wall_us} us wall, {cpu_us} us cpu) "
            f"disagree with LOG compaction_finished ({len(ev)} events, {ev_wall} us, {ev_cpu} us)")

    sysc = None
    if traced:
        if not perf_data.exists():
            fail("perf produced no data file")
        try:
            sysc = parse_perf(perf_data, names)
        except BenchError as e:
            fail(str(e))
        if sysc["compaction_thread"]["total"] == 0:
            fail(f"perf recorded no syscalls from threads named {COMPACTION_COMM}")
        if not args.keep_perf_data:
            perf_data.unlink()

    n_in, in_bytes = db_files(inp)
    n_out, out_bytes = db_files(db)
    shutil.rmtree(db, ignore_errors=True)
    return {
        "variant": variant, "mode": mode, "rep": rep, "traced": traced,
        "ringmerge_mode_env": env["RINGMERGE_MODE"],
        "compactions": c_count,
        "wall_s": wall_us / 1e6, "cpu_s": cpu_us / 1e6,
        # Every thread's CPU, db_bench start to end: the compaction CPU figure counts only the
        # compaction thread, not work moved to other threads (write-behind).
        "process_cpu_s": tv["user_s"] + tv["sys_s"],
        "thread_cpu_s": sampler.groups(tv["user_s"] + tv["sys_s"]),
        "compaction_total_cpu_ticker_s": cpu_total_ticker / 1e6,
        "read_bytes": read_b, "write_bytes": write_b,
        "input_files": n_in, "input_bytes": in_bytes,
        "output_files": n_out, "output_bytes": out_bytes,
        "peak_rss_mb": tv["max_rss_kb"] / 1024,
        "time_v": tv,
        "syscalls": sysc,
        "log": {"crosscheck": cross, "compaction_finished": ev,
                "ringmerge_accelerated": lg["ringmerge_accelerated"],
                "ringmerge_fallback": lg["ringmerge_fallback"],
                "bpf_unavailable": lg["bpf_unavailable"],
                "ringmerge_lines": lg["ringmerge_lines"]},
        "db_bench_process_s": round(outer_s, 3),
        "artifacts": str(run_dir),
    }


# ----------------------------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------------------------

def stat(vals: list[float]) -> dict:
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def summarize(runs: list[dict], modes: list[str], variants: list[str]) -> list[dict]:
    out = []
    for mode in modes:
        base = None
        native = None
        for variant in variants:
            all_rs = [r for r in runs if r["mode"] == mode and r["variant"] == variant]
            if not all_rs:
                continue
            # Timings/RSS from untraced runs when there are any (tracing adds per-syscall cost);
            # syscall counts from the traced ones.
            rs = [r for r in all_rs if not r["traced"]] or all_rs
            trs = [r for r in all_rs if r["syscalls"]]
            s = {
                "mode": mode, "variant": variant, "runs": len(rs),
                "wall_s": stat([r["wall_s"] for r in rs]),
                "cpu_s": stat([r["cpu_s"] for r in rs]),
                "process_cpu_s": stat([r["process_cpu_s"] for r in rs]),
                "thread_cpu_s": median_thread_cpu(rs),
                "peak_rss_mb": stat([r["peak_rss_mb"] for r in rs]),
                "read_bytes": stat([r["read_bytes"] for r in rs]),
                "write_bytes": stat([r["write_bytes"] for r in rs]),
                "compactions": stat([r["compactions"] for r in rs]),
                "ringmerge_accelerated": sum(r["log"]["ringmerge_accelerated"] for r in all_rs),
                "ringmerge_fallback": sum(r["log"]["ringmerge_fallback"] for r in all_rs),
                "bpf_unavailable": sum(r["log"]["bpf_unavailable"] for r in all_rs),
                "crosscheck_ok": all(r["log"]["crosscheck"]["ok"] for r in all_rs),
                "traced_runs": len(trs),
            }
            if trs:
                rs = trs
                s["syscalls_total"] = stat([r["syscalls"]["total"] for r in rs])
                kinds: set[str] = set()
                for r in rs:
                    kinds.update(r["syscalls"]["by_syscall"])
                by_kind = {k: statistics.median([r["syscalls"]["by_syscall"].get(k, 0) for r in rs])
                           for k in kinds}
                s["syscalls_by_kind_median"] = dict(sorted(by_kind.items(), key=lambda kv: -kv[1]))
                s["syscalls_compaction_thread"] = stat(
                    [r["syscalls"]["compaction_thread"]["total"] for r in rs])
                s["syscalls_write_behind"] = stat(
                    [r["syscalls"]["by_comm_all_threads"].get(WRITE_BEHIND_COMM, 0) for r in rs])
            if variant == "stock":
                base = s
            if base is not None:
                ratio = {}
                for k in ("wall_s", "cpu_s", "process_cpu_s", "peak_rss_mb", "syscalls_total",
                          "syscalls_compaction_thread"):
                    if k in s and k in base and base[k]["median"]:
                        ratio[k] = s[k]["median"] / base[k]["median"]
                s["ratio_to_stock"] = ratio
            if variant == "native":
                native = s
            if variant == "bpf" and native is not None:
                # Issue 3's gate: the BPF merge's wall time against the native merge's.
                s["ratio_to_native"] = {
                    k: s[k]["median"] / native[k]["median"]
                    for k in ("wall_s", "cpu_s") if native[k]["median"]}
            out.append(s)
    return out


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


def table_rows(summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    hdr = ["mode", "variant", "runs", "compaction wall s", "compaction CPU s",
           "process CPU s", "syscalls (all threads)", "top syscalls", "syscalls (rocksdb:low)",
           "peak RSS MB", "read/write MB",
           "compactions", "accel/fallback"]
    rows = []
    for s in summary:
        top = ", ".join(f"{k} {fmt_num(v)}"
                        for k, v in list(s.get("syscalls_by_kind_median", {}).items())[:3])
        wall = cell(s, "wall_s", lambda v: f"{v:.2f}")
        if "ratio_to_native" in s and "wall_s" in s["ratio_to_native"]:
            wall += f" ({s['ratio_to_native']['wall_s']:.2f}x native)"
        rows.append([
            s["mode"], s["variant"], str(s["runs"]),
            wall,
            cell(s, "cpu_s", lambda v: f"{v:.2f}"),
            cell(s, "process_cpu_s", lambda v: f"{v:.2f}"),
            cell(s, "syscalls_total", fmt_num),
            top or "n/a",
            cell(s, "syscalls_compaction_thread", fmt_num),
            cell(s, "peak_rss_mb", lambda v: f"{v:.0f}"),
            f"{s['read_bytes']['median'] / 1e6:.0f}/{s['write_bytes']['median'] / 1e6:.0f}",
            f"{s['compactions']['median']:.0f}",
            f"{s['ringmerge_accelerated']}/{s['ringmerge_fallback']}"
            + (" (BPF unavailable: merged natively)" if s["bpf_unavailable"] else ""),
        ])
    return hdr, rows


def kinds_table(summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    best: dict[str, float] = {}
    for s in summary:
        for k, v in s.get("syscalls_by_kind_median", {}).items():
            best[k] = max(best.get(k, 0), v)
    kinds = [k for k, _ in sorted(best.items(), key=lambda kv: -kv[1])][:10]
    h2 = ["mode", "variant", "total"] + kinds + ["other kinds", "rocksdb:low",
                                                 WRITE_BEHIND_COMM]
    r2 = []
    for s in summary:
        bk = s.get("syscalls_by_kind_median", {})
        if "syscalls_total" not in s:
            continue
        rest = sum(v for k, v in bk.items() if k not in kinds)
        r2.append([s["mode"], s["variant"], fmt_num(s["syscalls_total"]["median"])]
                  + [fmt_num(bk.get(k, 0)) for k in kinds]
                  + [fmt_num(rest), fmt_num(s["syscalls_compaction_thread"]["median"]),
                     fmt_num(s["syscalls_write_behind"]["median"])])
    return h2, r2


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


def disk_bound(summary: list[dict], disk: dict) -> list[str]:
    lines = []
    rbw, wbw = disk.get("read_MBps"), disk.get("write_MBps")
    if not rbw or not wbw:
        return lines
    for s in summary:
        if s["variant"] != "stock":
            continue
        r_s = s["read_bytes"]["median"] / 1e6 / rbw
        w_s = s["write_bytes"]["median"] / 1e6 / wbw
        lines.append(f"{s['mode']}: read {s['read_bytes']['median'] / 1e6:.0f} MB at {rbw} MB/s "
                     f"= {r_s:.2f} s, write {s['write_bytes']['median'] / 1e6:.0f} MB at {wbw} MB/s "
                     f"= {w_s:.2f} s -> disk bound ~{max(r_s, w_s):.2f} s if overlapped "
                     f"({r_s + w_s:.2f} s if serial)")
    return lines


# ----------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=1_000_000, help="keys in the input DB (1M = ~17 L0 files, ~1 GB)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--modes", default="buffered,direct", help="comma list of: buffered, direct")
    ap.add_argument("--variants", default="stock,stock-sub2,native,bpf",
                    help="comma list; stock -> RINGMERGE_MODE=off, X -> RINGMERGE_MODE=X, "
                         "X-inline -> RINGMERGE_MODE=X RINGMERGE_MERGE_AHEAD=off")
    ap.add_argument("--db-bench", type=Path, default=DEFAULT_DB_BENCH)
    ap.add_argument("--work", type=Path, default=None, help="default OUT/work")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--trace", choices=("separate", "all", "off"), default="separate",
                    help="separate (default): timing reps untraced plus one perf-traced run per "
                         "mode x variant for the syscall counts (perf costs ~10-15%% of wall in "
                         "buffered mode); all: trace every rep; off: no syscall tracing")
    ap.add_argument("--no-perf", action="store_true", help="same as --trace off")
    ap.add_argument("--perf-mmap", default="16M", help="perf record -m (ring buffer per CPU)")
    ap.add_argument("--keep-perf-data", action="store_true")
    ap.add_argument("--no-disk-bound", action="store_true", help="skip the dd bandwidth probe")
    ap.add_argument("--extra", action="append", default=[],
                    help="extra db_bench flag for the compaction run (repeatable)")
    args = ap.parse_args()
    if args.no_perf:
        args.trace = "off"
    args.no_perf = args.trace == "off"

    args.work = (args.work or args.out / "work").resolve()
    args.out = args.out.resolve()
    args.db_bench = args.db_bench.resolve()
    modes = [m for m in args.modes.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    for m in modes:
        if m not in IO_MODES:
            die(f"unknown I/O mode {m!r} (known: {', '.join(IO_MODES)})")
    if not variants or not modes or args.reps < 1 or args.num < 1:
        die("need at least one variant, one mode, --reps >= 1 and --num >= 1")
    if "stock" in variants:  # stock first so ratios have a base
        variants = ["stock"] + [v for v in variants if v != "stock"]
    if os.geteuid() != 0:
        die("must run as root (drop_caches, perf tracepoints)")
    if not (args.db_bench.is_file() and os.access(args.db_bench, os.X_OK)):
        die(f"db_bench not found or not executable: {args.db_bench}")
    if not os.access(TIME_BIN, os.X_OK):
        die(f"{TIME_BIN} missing (apt-get install time)")

    try:
        if not args.no_perf:
            ensure_perf()
        names = syscall_names()
        args.work.mkdir(parents=True, exist_ok=True)
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        runs_dir = args.out / "runs" / stamp

        log(f"db_bench {args.db_bench}; N={args.num}; reps={args.reps}; modes={modes}; "
            f"variants={variants}; work={args.work}; out={args.out}")
        inp = build_input(args.db_bench, args.work, args.num)
        n_in, in_bytes = db_files(inp)
        disk = {} if args.no_disk_bound else measure_disk(inp, args.work)
        if disk:
            log(f"disk probe: read {disk.get('read_MBps')} MB/s, write {disk.get('write_MBps')} MB/s "
                f"({disk['method']})")

        plan = []
        for rep in range(1, args.reps + 1):
            for mi, mode in enumerate(modes):
                k = (rep - 1 + mi) % len(variants)  # rotate variant order to spread drift
                for v in variants[k:] + variants[:k]:
                    plan.append((rep, mode, v, args.trace == "all"))
        if args.trace == "separate":
            for mode in modes:
                for v in variants:
                    plan.append(("trace", mode, v, True))
        runs: list[dict] = []
        t_start = time.monotonic()
        for i, (rep, mode, variant, traced) in enumerate(plan, 1):
            eta = ""
            if runs:
                per = (time.monotonic() - t_start) / len(runs)
                eta = f", ~{per * (len(plan) - len(runs)) / 60:.1f} min left"
            log(f"run {i}/{len(plan)}: rep {rep} {mode:8s} {variant}"
                f"{' (perf-traced)' if traced else ''}{eta}")
            r = one_run(args, inp, runs_dir / f"{i:02d}-{mode}-{variant}-rep{rep}",
                        variant, mode, rep, names, traced)
            runs.append(r)
            sc = r["syscalls"]
            top = (", ".join(f"{k} {v}" for k, v in list(sc["by_syscall"].items())[:3])
                   if sc else "not traced")
            log(f"  wall {r['wall_s']:.2f} s, cpu {r['cpu_s']:.2f} s, {r['compactions']} compaction(s), "
                f"read {r['read_bytes'] / 1e6:.0f} MB, write {r['write_bytes'] / 1e6:.0f} MB, "
                f"RSS {r['peak_rss_mb']:.0f} MB, syscalls of all threads "
                f"{sc['total'] if sc else 'n/a'} ({top}), "
                f"ringmerge accel/fallback {r['log']['ringmerge_accelerated']}/"
                f"{r['log']['ringmerge_fallback']}")
            if sc:
                others = {k: v for k, v in sc["by_comm_all_threads"].items() if k != COMPACTION_COMM}
                log("  syscalls of other threads: "
                    + (", ".join(f"{k} {v}" for k, v in list(others.items())[:5]) or "none"))
    except BenchError as e:
        die(str(e))

    summary = summarize(runs, modes, variants)
    hdr, rows = table_rows(summary)
    bound = disk_bound(summary, disk)
    floor: dict = {}
    stock_rows = [s for s in summary if s["variant"] == "stock"]
    if disk and stock_rows:
        floor = measure_io_floor(inp, args.work, stock_rows[0]["write_bytes"]["median"])
        if floor:
            for s in stock_rows:
                ratio = floor["seconds"] / s["wall_s"]["median"]
                bound.append(f"I/O floor ({floor['method']}): {floor['seconds']:.2f} s "
                             f"{floor['all_seconds']} = {ratio:.2f}x {s['mode']} stock's "
                             f"compaction wall: no variant can go below that ratio here")
    print()
    print(text_table(hdr, rows))
    h2, r2 = kinds_table(summary)
    if r2:
        print("\nSyscalls of every thread by kind (median per run):")
        print(text_table(h2, r2))
    h3, r3 = thread_cpu_rows(summary)
    print("\nCPU by thread group, s (median; every thread of the process):")
    print(text_table(h3, r3))
    if bound:
        print("\nDisk bound (" + disk["method"] + "):")
        for l in bound:
            print("  " + l)
    if any(s["bpf_unavailable"] for s in summary):
        print("\nWARNING: the BPF program could not be loaded (see the LOG's bpf_unavailable=): "
              "rows marked 'BPF unavailable' merged natively")
    if not all(s["crosscheck_ok"] for s in summary):
        print("\nWARNING: statistics and LOG compaction_finished disagreed in some runs "
              "(see results.json runs[].log.crosscheck)")

    result = {
        "benchmark": "deterministic manual compaction (fillrandom input, one CompactRange into L1)",
        "created": _dt.datetime.now().isoformat(),
        "config": {"num": args.num, "reps": args.reps, "modes": modes, "variants": variants,
                   "db_bench": str(args.db_bench), "db_bench_sha256": file_sha256(args.db_bench),
                   "work": str(args.work), "input_db": str(inp), "input_sst_files": n_in,
                   "input_sst_bytes": in_bytes, "common_flags": COMMON_FLAGS,
                   "fill_flags": FILL_FLAGS, "compact_flags": COMPACT_FLAGS, "io_modes": IO_MODES,
                   "extra_flags": args.extra, "trace": args.trace,
                   "syscalls_counted": "every thread of the process",
                   "compaction_thread_comm": COMPACTION_COMM},
        "environment": {"uname": " ".join(os.uname()), "nproc": os.cpu_count(),
                        "git_head": git_head()},
        "disk": disk, "disk_bound": bound, "io_floor": floor,
        "summary": summary, "runs": runs,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    md = [f"# Manual compaction benchmark ({result['created'][:19]})", "",
          f"Input: fillrandom of {args.num:,} keys (16 B keys, 1 KiB values, seed 42, no WAL, "
          f"no compression, 64 MiB memtables, auto compactions off) = {n_in} L0 files, "
          f"{in_bytes / 1e6:.0f} MB; one `compact` (CompactRange into L1) per run on a fresh copy, "
          f"page cache dropped first. Reps: {args.reps}, interleaved. db_bench: `{args.db_bench}`.",
          "",
          "Cells: median [min-max] (ratio of medians to stock in the same I/O mode). Wall and CPU "
          "are the SUMs of `rocksdb.compaction.times.micros` / `.cpu_micros` (the compaction "
          "thread only); process CPU is db_bench's user+sys over its whole run, every thread "
          "(`/usr/bin/time -v`, io_uring's io-wq workers included); syscalls are "
          "`raw_syscalls:sys_enter` events counted by perf over every thread of db_bench's process "
          "(compaction thread, merge-ahead companion, write-behind writers, flush and "
          f"foreground threads), with those of the compaction threads (`{COMPACTION_COMM}`) in "
          "their own column; "
          "peak RSS is db_bench's (`/usr/bin/time -v`); accel/fallback counts `ringmerge:` LOG lines "
          "over all runs. "
          + ("Wall, CPU and RSS come from the untraced reps; syscall counts from one separate "
             "perf-traced run per row." if args.trace == "separate" else
             "Every run was perf-traced." if args.trace == "all" else "Syscalls were not traced."),
          "", md_table(hdr, rows), ""]
    if summary and any("syscalls_by_kind_median" in s for s in summary):
        md += ["## Syscalls of every thread by kind (median per run)", ""]
        h2, r2 = kinds_table(summary)
        md += [md_table(h2, r2), ""]
    md += ["CPU by thread group, seconds (median; every thread of the process, sampled from "
           "/proc/PID/task every 50 ms; `unattributed` = `time -v`'s process total minus the "
           "threads seen):", "", md_table(h3, r3), ""]
    if bound:
        md += [f"## Disk bound ({disk['method']})", ""] + [f"- {l}" for l in bound] + [""]
    md += [f"Raw runs: `results.json`; per-run artifacts (stdout, LOG, ringmerge lines): `{runs_dir}`.", ""]
    (args.out / "report.md").write_text("\n".join(md))
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
