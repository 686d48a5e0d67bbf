// ringmerge: the DB's read rate limit as ringmerge's reads see it.
//
// RocksDB passes every compaction read through the DB's rate_limiter
// (RandomAccessFileReader::Read: RateLimiter::RequestToken with
// OpType::kRead and the compaction's rate_limiter_priority) when the limiter
// limits reads. ringmerge's reads bypass RandomAccessFileReader, so the
// patched RocksDB hands the merge a ReadThrottle instead, and the Rust reader
// calls request_read with each read's length before submitting it.
//
// Plain C++ on purpose: the cxx bridge compiles against this header without
// RocksDB's; the implementation over RateLimiter is in
// ringmerge_read_hooks.cc.
#pragma once

#include <cstdint>

namespace ringmerge {

class ReadThrottle {
 public:
  virtual ~ReadThrottle() = default;
  // Blocks until `bytes` may be read. Called from whichever thread runs the
  // merge's reads (the compaction thread or its merge-ahead companion), so it
  // must be thread-safe.
  virtual void Request(uint64_t bytes) const = 0;
};

inline void request_read(const ReadThrottle& throttle, uint64_t bytes) {
  throttle.Request(bytes);
}

}  // namespace ringmerge
