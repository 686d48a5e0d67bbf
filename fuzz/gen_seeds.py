#!/usr/bin/env python3
"""Regenerates the committed seed corpora in fuzz/seeds/<target>/.

Two sources:
* synthetic inputs built here the way RocksDB 10.1.3 writes them (BlockBuilder entries, restart
  array, optional hash index, fv5 footers with every checksum type, plain / delta-encoded /
  first-key index values);
* pieces cut from real SST files (default: the difftest outputs under target/difftest/), located
  by walking footer -> metaindex -> index -> first data block. Only blocks stored uncompressed
  (trailer type byte 0) are used as data/index seeds.

Usage: fuzz/gen_seeds.py [SST ...]   (run from anywhere; writes next to this script)
Only the Python standard library is needed; checksums of synthetic fv6 footers are not computed
here (the footer target can fix them itself, see flags bit 1 in fuzz_targets/footer.rs).
"""
import glob
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")
MAGIC = 0x88E241B785F4CFF7
FOOTER_LEN = 53
TRAILER = 5


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zigzag(v):
    return varint((v << 1) ^ (v >> 63) if v >= 0 else ((-v) << 1) - 1)


def get_varint(buf, p):
    r = shift = 0
    while True:
        b = buf[p]
        p += 1
        r |= (b & 0x7F) << shift
        if b < 0x80:
            return r, p
        shift += 7


def ikey(user, seq, t=1):
    return user + struct.pack("<Q", (seq << 8) | t)


def build_block(entries, restart_interval=16, delta_values=False, hash_buckets=0):
    """entries: list of (key, value, delta_value_or_None). Mirrors BlockBuilder::Add/Finish."""
    buf = bytearray()
    restarts = [0]
    counter = 0
    last = b""
    for key, value, dvalue in entries:
        shared = 0
        if counter >= restart_interval:
            restarts.append(len(buf))
            counter = 0
        else:
            while shared < min(len(key), len(last)) and key[shared] == last[shared]:
                shared += 1
        buf += varint(shared) + varint(len(key) - shared)
        if not delta_values:
            buf += varint(len(value))
        buf += key[shared:]
        buf += dvalue if (delta_values and shared != 0) else value
        last = key
        counter += 1
    for r in restarts:
        buf += struct.pack("<I", r)
    footer = len(restarts)
    if hash_buckets:
        # Bucket contents are restart indices / 254 (collision) / 255 (empty); the decoder only
        # checks they are in range, so a simple pattern is enough for a seed.
        n = hash_buckets | 1
        for i in range(n):
            buf.append([255, 254, i % len(restarts)][i % 3])
        buf += struct.pack("<H", n)
        footer |= 1 << 31
    buf += struct.pack("<I", footer)
    return bytes(buf)


def build_index(handles, delta, first_keys=None, restart_interval=1):
    entries = []
    prev = None
    for i, (k, off, size) in enumerate(handles):
        full = varint(off) + varint(size)
        dv = zigzag(size - prev[1]) if prev else b""
        if first_keys is not None:
            fk = first_keys[i]
            full += varint(len(fk)) + fk
            dv += varint(len(fk)) + fk
        entries.append((k, full, dv if prev else None))
        prev = (off, size)
    return build_block(entries, restart_interval, delta_values=delta)


def footer_v5(ctype, meta, index, fv=5):
    out = bytes([ctype]) + varint(meta[0]) + varint(meta[1]) + varint(index[0]) + varint(index[1])
    out = out.ljust(41, b"\0")
    return out + struct.pack("<IQ", fv, MAGIC)


def footer_v6_unsigned(ctype, base, meta_size):
    out = bytes([ctype, 0x3E, 0x00, 0x7A, 0x00]) + struct.pack("<III", 0, base, meta_size)
    out += b"\0" * 24
    return out + struct.pack("<IQ", 6, MAGIC)


def decode_block(payload, with_value_len=True):
    """Yields (key, value_bytes_or_rest) of a well-formed block (seed extraction only)."""
    (footer,) = struct.unpack_from("<I", payload, len(payload) - 4)
    n = footer & 0x7FFFFFFF
    end = len(payload) - 4
    if footer >> 31:
        (nb,) = struct.unpack_from("<H", payload, len(payload) - 6)
        end = len(payload) - 6 - nb
    data_end = end - 4 * n
    p = 0
    key = b""
    while p < data_end:
        shared, p = get_varint(payload, p)
        non_shared, p = get_varint(payload, p)
        vlen = None
        if with_value_len:
            vlen, p = get_varint(payload, p)
        key = key[:shared] + payload[p:p + non_shared]
        p += non_shared
        if vlen is None:
            yield key, payload[p:data_end]
            return
        yield key, payload[p:p + vlen]
        p += vlen


class Sst:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        self.size = len(self.data)
        f = self.data[-FOOTER_LEN:]
        self.ctype = f[0]
        (self.fv,) = struct.unpack_from("<I", f, 41)
        if self.fv < 6:
            raise ValueError("only fv6 files are cut for seeds")
        self.base, meta_size = struct.unpack_from("<II", f, 9)
        meta_off = self.size - FOOTER_LEN - TRAILER - meta_size
        self.meta = self.block(meta_off, meta_size)
        self.index_handle = None
        for k, v in decode_block(self.meta):
            if k == b"rocksdb.index":
                off, q = get_varint(v, 0)
                size, _ = get_varint(v, q)
                self.index_handle = (off, size)

    def block(self, off, size):
        return self.data[off:off + size]

    def with_trailer(self, off, size):
        return self.data[off:off + size + TRAILER]


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def synthetic():
    # data_block
    ents = [(ikey(b"key%06d" % (i // 3), 1000 - i, 1 if i % 5 else 0), b"v" * (i % 7), None)
            for i in range(40)]
    write("data_block", "syn-r16", build_block(ents, 16))
    write("data_block", "syn-r1", build_block(ents[:8], 1))
    write("data_block", "syn-hash", build_block(ents[:20], 4, hash_buckets=13))
    write("data_block", "syn-empty", struct.pack("<II", 0, 1))
    write("data_block", "syn-zero-restarts", struct.pack("<I", 0))
    # Big-block mode (see fuzz_targets/data_block.rs): 0xB1 prefix = 65535 zero bytes, i.e. 21845
    # empty entries, then a one-restart array and a plain 32-bit footer.
    big = bytes([0xB1]) + struct.pack("<II", 0, 1)
    write("data_block", "syn-big", big)
    write("index_block", "syn-big", big)
    long = [(ikey(b"z" * 200 + b"%d" % i, 7, 1), b"x" * 300, None) for i in range(3)]
    write("data_block", "syn-multibyte-varints", build_block(long, 2))
    # index_block
    hs = []
    off = 0
    for i in range(12):
        size = 3000 + 37 * i + (1 << 20 if i % 9 == 0 else 0)
        hs.append((ikey(b"sep%04d" % i, 50 - i), off, size))
        off += size + TRAILER
    fks = [ikey(b"first%04d" % i, 60 - i) for i in range(len(hs))]
    write("index_block", "syn-plain", build_index(hs, False))
    write("index_block", "syn-delta-r1", build_index(hs, True))
    write("index_block", "syn-delta-r4", build_index(hs, True, restart_interval=4))
    write("index_block", "syn-plain-firstkey", build_index(hs, False, fks))
    write("index_block", "syn-delta-firstkey", build_index(hs, True, fks, restart_interval=3))
    # footer: flags u8 | v u64 | tail
    for ct in range(5):
        f = footer_v5(ct, (1000, 42), (500, 400), fv=5 if ct % 2 else 4)
        write("footer", "syn-v5-ct%d" % ct, bytes([0]) + struct.pack("<Q", 1100) + f)
    f = footer_v5(1, (1 << 40, 1 << 20), (12345678, 4096), fv=2)
    write("footer", "syn-v2-big-handles", bytes([1]) + struct.pack("<Q", 1 << 41) + f)
    f = footer_v6_unsigned(4, 0x1234567, 300)
    write("footer", "syn-v6-fixsum", bytes([2]) + struct.pack("<Q", 4000) + f)
    # block_trailer: base u32 | offset u64 | block+trailer
    write("block_trailer", "syn-empty-payload", struct.pack("<IQ", 0, 0) + b"\0" + b"\0" * 4)
    write("block_trailer", "syn-small", struct.pack("<IQ", 77, 4096) + b"abc\x01" + b"\xde\xad\xbe\xef")


def from_sst(path, tag):
    s = Sst(path)
    fo = s.size - FOOTER_LEN
    tail = s.data[-FOOTER_LEN:]
    write("footer", "sst-%s" % tag, bytes([0]) + struct.pack("<Q", fo) + tail)
    write("footer", "sst-%s-long-tail" % tag,
          bytes([0]) + struct.pack("<Q", s.size - 200) + s.data[-200:])
    if s.index_handle is None:
        return
    ioff, isize = s.index_handle
    if s.data[ioff + isize] == 0:
        idx = s.block(ioff, isize)
        write("index_block", "sst-%s" % tag, idx)
        write("block_trailer", "sst-%s-index" % tag,
              struct.pack("<IQ", s.base, ioff) + s.with_trailer(ioff, isize))
        # First data block, via the (delta-encoded, fv >= 4) index.
        first = next(decode_block(idx, with_value_len=False), None)
        if first is not None:
            doff, q = get_varint(first[1], 0)
            dsize, _ = get_varint(first[1], q)
            if s.data[doff + dsize] == 0 and dsize <= 16384:
                write("data_block", "sst-%s" % tag, s.block(doff, dsize))
                write("block_trailer", "sst-%s-data" % tag,
                      struct.pack("<IQ", s.base, doff) + s.with_trailer(doff, dsize))
    write("data_block", "sst-%s-metaindex" % tag, s.meta)


def main():
    synthetic()
    paths = sys.argv[1:]
    if not paths:
        root = os.path.join(HERE, "..", "target", "difftest")
        # One small and one large file from a plain and a merge-operator run.
        paths = sorted(glob.glob(os.path.join(root, "merge", "db-native", "*.sst")))[-1:]
        paths += sorted(glob.glob(os.path.join(root, "direct", "db-native", "*.sst")))[:1]
        paths += sorted(glob.glob(os.path.join(root, "range_del", "db-native", "*.sst")))[-1:]
    for p in paths:
        tag = "%s-%s" % (os.path.basename(os.path.dirname(os.path.dirname(p))),
                         os.path.splitext(os.path.basename(p))[0])
        try:
            from_sst(p, tag)
        except (ValueError, IndexError, struct.error) as e:
            print("skipping %s: %s" % (p, e), file=sys.stderr)
    for t in sorted(os.listdir(SEEDS)):
        n = len(os.listdir(os.path.join(SEEDS, t)))
        print("%s: %d seeds" % (t, n))


if __name__ == "__main__":
    main()
