// ringmerge: the range tombstones of an accelerated compaction's inputs,
// handled exactly as VersionSet::MakeInputIterator handles them.
//
// ringmerge's stream carries point entries only. Stock's input also carries
// each range tombstone's start key as a sentinel entry, interleaved by
// CompactionMergingIterator, and adds the tombstones to the subcompaction's
// range-del aggregator. Here RocksDB's own CompactionMergingIterator does the
// interleaving, over the stream and the inputs' TruncatedRangeDelIterators.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rocksdb/slice.h"
#include "table/internal_iterator.h"

namespace ROCKSDB_NAMESPACE {

class Compaction;
class RangeDelAggregator;
struct FileOptions;
struct ReadOptions;

namespace ringmerge_internal {

// Input files that hold range tombstones, as (input level index, file index)
// pairs of the compaction's input_levels().
using RangeDelFiles = std::vector<std::pair<size_t, size_t>>;

// Returns `stream` with the tombstones of `files` interleaved (a
// CompactionMergingIterator that owns the stream) and adds them to
// `range_del_agg`; `*used` counts the files whose tombstones it reads (those
// the stock iterators would open). On error, nullptr and `*reason`.
std::unique_ptr<InternalIterator> InterleaveRangeDeletions(
    const Compaction& c, const std::optional<Slice>& end,
    const ReadOptions& read_options, const FileOptions& file_options,
    RangeDelAggregator* range_del_agg, const RangeDelFiles& files,
    std::unique_ptr<InternalIterator> stream, uint64_t* used,
    std::string* reason);

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
