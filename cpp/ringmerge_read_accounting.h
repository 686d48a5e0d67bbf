// ringmerge: RocksDB's accounting of file reads, as ringmerge's reads see it.
//
// Every stock compaction read goes through RandomAccessFileReader::Read, which
// accounts it: statistics (NON_LAST_LEVEL_READ_BYTES/COUNT or the LAST_LEVEL
// ones, the per-temperature tickers, the SST_READ_MICROS and
// FILE_READ_COMPACTION_MICROS histograms), the column family's per-level read
// latency histogram, and the listeners that asked for file I/O events
// (OnFileReadFinish, OnIOError). ringmerge's reads bypass that class, so the
// patched RocksDB hands the merge a ReadAccounting, and the Rust reader calls
// account_read once for each read that finished, failed or not, so an
// operator's dashboards and listeners keep seeing compaction reads.
//
// Plain C++ on purpose, like ringmerge_read_throttle.h: the cxx bridge
// compiles against this header without RocksDB's; the implementation is in
// ringmerge_read_hooks.cc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringmerge {

class ReadAccounting {
 public:
  virtual ~ReadAccounting() = default;
  // One finished read of input file `file` (the files of the merge's
  // CompactionInput, run after run, in order): `len` bytes at `offset`,
  // started at `start_unix_nanos` (wall clock) and taking `duration_nanos`;
  // `err` is 0, or the errno it failed with. Called from whichever thread
  // runs the merge's reads (the compaction thread or its merge-ahead
  // companion), so it must be thread-safe.
  virtual void Done(size_t file, uint64_t offset, uint64_t len,
                    uint64_t start_unix_nanos, uint64_t duration_nanos,
                    int32_t err) const = 0;
};

inline void account_read(const ReadAccounting& accounting, size_t file,
                         uint64_t offset, uint64_t len,
                         uint64_t start_unix_nanos, uint64_t duration_nanos,
                         int32_t err) {
  accounting.Done(file, offset, len, start_unix_nanos, duration_nanos, err);
}

}  // namespace ringmerge
