// ringmerge: the ReadThrottle and ReadAccounting the merge's reads call back
// (see ringmerge_read_throttle.h and ringmerge_read_accounting.h),
// implemented over the DB's RateLimiter, Statistics, per-level read latency
// histograms and EventListeners, as RandomAccessFileReader::Read applies them
// to every stock compaction read.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ringmerge_read_accounting.h"
#include "ringmerge_read_throttle.h"
#include "rocksdb/types.h"

namespace ROCKSDB_NAMESPACE {

class HistogramImpl;
struct ImmutableDBOptions;
struct ReadOptions;

namespace ringmerge_internal {

// What RocksDB accounts per read of one input file.
struct AccountedFile {
  std::string path;
  Temperature temperature;
  bool is_last_level;
  // The column family's read latency histogram of the input's level, or
  // nullptr: the ColumnFamilyData (and its InternalStats) outlive the merge,
  // which ends before the compaction's input is destroyed.
  HistogramImpl* read_hist;
};

// The DB's rate_limiter for the merge's reads, when it limits reads (mode
// kReadsOnly or kAllIo) and the read options ask for it; then
// `*priority_name` is the priority the reads request ("IO_LOW", "IO_USER",
// ...). nullptr (and `*priority_name` untouched) otherwise.
std::unique_ptr<ringmerge::ReadThrottle> NewReadThrottle(
    const ImmutableDBOptions& db_options, const ReadOptions& read_options,
    std::string* priority_name);

// The accounting of the merge's reads of `files` (the merge's inputs, run
// after run, in order), when there is anything to account to: statistics, or
// listeners that asked for file I/O events. nullptr otherwise.
std::unique_ptr<ringmerge::ReadAccounting> NewReadAccounting(
    const ImmutableDBOptions& db_options, std::vector<AccountedFile> files);

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
