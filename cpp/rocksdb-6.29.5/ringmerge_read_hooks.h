// ringmerge: the ReadThrottle and ReadAccounting the merge's reads call back
// (see ringmerge_read_throttle.h and ringmerge_read_accounting.h),
// implemented over the DB's RateLimiter, Statistics, per-level read latency
// histograms and EventListeners, as RocksDB 6.29.5's
// RandomAccessFileReader::Read applies them to every stock compaction read.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ringmerge_read_accounting.h"
#include "ringmerge_read_throttle.h"
#include "rocksdb/advanced_options.h"

namespace ROCKSDB_NAMESPACE {

class HistogramImpl;
struct ImmutableDBOptions;

namespace ringmerge_internal {

// What RocksDB accounts per read of one input file.
// No is_last_level: 6.29.5 has no (NON_)LAST_LEVEL_READ_* tickers.
struct AccountedFile {
  std::string path;
  Temperature temperature;
  // The column family's read latency histogram of the input's level, or
  // nullptr: the ColumnFamilyData (and its InternalStats) outlive the merge,
  // which ends before the compaction's input is destroyed.
  HistogramImpl* read_hist;
};

// The DB's rate_limiter for the merge's reads, when it limits reads (mode
// kReadsOnly or kAllIo); then `*priority_name` is the priority the reads
// request: "IO_LOW", as every 6.29.5 compaction read does (its ReadOptions
// has no rate_limiter_priority). nullptr (and `*priority_name` untouched)
// otherwise.
std::unique_ptr<ringmerge::ReadThrottle> NewReadThrottle(
    const ImmutableDBOptions& db_options, std::string* priority_name);

// The accounting of the merge's reads of `files` (the merge's inputs, run
// after run, in order), when there is anything to account to: statistics, or
// listeners that asked for file I/O events. nullptr otherwise.
std::unique_ptr<ringmerge::ReadAccounting> NewReadAccounting(
    const ImmutableDBOptions& db_options, std::vector<AccountedFile> files);

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
