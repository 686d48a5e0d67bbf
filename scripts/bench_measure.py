"""What the benchmarks measure beside db_bench's own statistics: every thread's CPU by thread
group (sampled from /proc), the syscalls perf counts (raw_syscalls:sys_enter over every thread),
and the disk: its rough bandwidths and the I/O floor of a compaction (its reads and writes with
no CPU work).

Python 3.11 standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from bench_common import COMPACTION_COMM, BenchError, drop_caches, run

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
