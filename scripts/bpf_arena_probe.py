#!/usr/bin/env python3
"""Asks the kernel, with one BPF_MAP_CREATE of a one-page BPF arena (no libbpf, no ringmerge
code), whether this process may create BPF arenas, which the BPF merge needs. Prints "ok" and
exits 0, or prints the kernel's answer and exits 1. scripts/test.sh uses it to tell a kernel that
refuses arenas even to root (seen: a 6.18 VM kernel in lockdown integrity mode, EPERM) from a
broken BPF merge, which must fail the suite: the same rule as src/test_support.rs."""
import ctypes
import os
import platform
import struct
import sys

SYS_BPF = {"x86_64": 321, "aarch64": 280}
BPF_MAP_CREATE, BPF_MAP_TYPE_ARENA, BPF_F_MMAPABLE = 0, 33, 1024

nr = SYS_BPF.get(platform.machine())
if nr is None:
    print(f"unknown bpf syscall number on {platform.machine()}")
    sys.exit(1)
libc = ctypes.CDLL(None, use_errno=True)
attr = bytearray(128)  # union bpf_attr, map-create part: type, key, value, entries, flags
struct.pack_into("IIIII", attr, 0, BPF_MAP_TYPE_ARENA, 0, 0, 1, BPF_F_MMAPABLE)
buf = ctypes.create_string_buffer(bytes(attr), len(attr))
fd = libc.syscall(nr, BPF_MAP_CREATE, buf, len(attr))
if fd < 0:
    err = ctypes.get_errno()
    print(f"BPF_MAP_CREATE of a one-page arena: {os.strerror(err)} (errno {err}; kernel "
          f"{platform.release()})")
    sys.exit(1)
os.close(fd)
print("ok")
