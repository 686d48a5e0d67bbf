// ringmerge: the range tombstones of an accelerated compaction's inputs,
// handled as RocksDB 6.29.5's VersionSet::MakeInputIterator handles them.
//
// In 6.29.5 the compaction input is a plain merging iterator of point
// entries (no tombstone sentinels, no CompactionMergingIterator): the
// tombstones only reach the subcompaction's range-del aggregator, added by
// TableCache::NewIterator for every input file the input iterator opens.
// ringmerge's stream carries the point entries, so all that remains is to add
// the tombstones of exactly those files, through the same call.
#pragma once

#include <cstdint>
#include <string>

#include "rocksdb/slice.h"
#include "rocksdb/status.h"

namespace ROCKSDB_NAMESPACE {

class Compaction;
class RangeDelAggregator;
struct FileOptions;
struct ReadOptions;

namespace ringmerge_internal {

// Adds to `range_del_agg` the tombstones of every input file 6.29.5's
// MakeInputIterator opens for the subcompaction [start, end) (nullptr:
// unbounded) when the compaction drains its input: every L0 file; on each
// deeper level, the file LevelIterator seeks to (FindFile(start), or the
// first), whatever its smallest key, then each next one whose smallest user
// key is below `end`, truncated to the compaction's atomic unit boundaries as
// LevelIterator passes them. `*used` counts the files that hold tombstones.
// Fails, with `*reason`, when a table cannot be opened (nothing is written
// yet; tombstones already added are the ones the stock input would add again,
// and it skips files already added).
Status AddRangeTombstones(const Compaction& c, const Slice* start,
                          const Slice* end, const ReadOptions& read_options,
                          const FileOptions& file_options,
                          RangeDelAggregator* range_del_agg, uint64_t* used,
                          std::string* reason);

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
