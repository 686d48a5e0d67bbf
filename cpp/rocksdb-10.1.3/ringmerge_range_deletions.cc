// ringmerge: see ringmerge_range_deletions.h.
#include "ringmerge_range_deletions.h"

#include "db/column_family.h"
#include "db/compaction/compaction.h"
#include "db/range_del_aggregator.h"
#include "db/table_cache.h"
#include "options/cf_options.h"
#include "rocksdb/options.h"
#include "table/compaction_merging_iterator.h"
#include "table/iterator_wrapper.h"
#include "trace_replay/block_cache_tracer.h"

namespace ROCKSDB_NAMESPACE {
namespace ringmerge_internal {

// Each input file's tombstones go to the range-del aggregator (truncated to
// the file, or for deeper levels to the compaction's atomic unit boundaries,
// as LevelIterator passes them), and each file's TruncatedRangeDelIterator
// (truncated to the file) feeds CompactionMergingIterator, which emits the
// tombstones' start keys as sentinel entries among the point entries. Here
// the point entries are ringmerge's stream (one child) and every file with
// tombstones is a child with no point entries: the merged order is by
// internal key, so the sequence equals stock's. Only files the stock
// iterators would open are used: for deeper levels LevelIterator stops
// before a file whose smallest key reaches `end` (iterate_upper_bound).
std::unique_ptr<InternalIterator> InterleaveRangeDeletions(
    const Compaction& c, const std::optional<Slice>& end,
    const ReadOptions& read_options, const FileOptions& file_options,
    RangeDelAggregator* range_del_agg, const RangeDelFiles& files,
    std::unique_ptr<InternalIterator> stream, uint64_t* used,
    std::string* reason) {
  ColumnFamilyData* cfd = c.column_family_data();
  const MutableCFOptions& mopts = c.mutable_cf_options();
  const InternalKeyComparator* icmp = &cfd->internal_comparator();
  const Comparator* ucmp = cfd->user_comparator();
  std::vector<InternalIterator*> children;
  std::vector<std::pair<std::unique_ptr<TruncatedRangeDelIterator>,
                        std::unique_ptr<TruncatedRangeDelIterator>**>>
      tombstones;
  children.push_back(stream.release());
  tombstones.emplace_back(nullptr, nullptr);
  const SequenceNumber level_read_seq =
      read_options.snapshot != nullptr
          ? read_options.snapshot->GetSequenceNumber()
          : kMaxSequenceNumber;
  *used = 0;
  Status s;
  for (const auto& [which, i] : files) {
    const FileMetaData& meta = *c.input_levels(which)->files[i].file_metadata;
    const int level = c.level(which);
    const InternalKey* smallest_ck = nullptr;
    const InternalKey* largest_ck = nullptr;
    if (level != 0) {
      // LevelIterator's iterate_upper_bound test: without timestamps.
      if (end.has_value() &&
          ucmp->CompareWithoutTimestamp(meta.smallest.user_key(), *end) >= 0) {
        continue;
      }
      const auto* bounds = c.boundaries(which);
      if (bounds != nullptr && i < bounds->size()) {
        smallest_ck = (*bounds)[i].smallest;
        largest_ck = (*bounds)[i].largest;
      }
    }
    std::unique_ptr<TruncatedRangeDelIterator> range_del_iter;
    // The point iterator it also returns is dropped unpositioned (no I/O).
    std::unique_ptr<InternalIterator> point(cfd->table_cache()->NewIterator(
        read_options, file_options, *icmp, meta, range_del_agg, mopts,
        /*table_reader_ptr=*/nullptr, /*file_read_hist=*/nullptr,
        TableReaderCaller::kCompaction, /*arena=*/nullptr,
        /*skip_filters=*/false, level,
        level == 0 ? MaxFileSizeForL0MetaPin(mopts) : 0, smallest_ck,
        largest_ck, /*allow_unprepared_value=*/false,
        level == 0 ? nullptr : &level_read_seq, &range_del_iter));
    s = point->status();
    if (!s.ok()) {
      break;
    }
    if (range_del_iter != nullptr) {
      children.push_back(NewEmptyInternalIterator<Slice>(/*arena=*/nullptr));
      tombstones.emplace_back(std::move(range_del_iter), nullptr);
      (*used)++;
    }
  }
  // The merging iterator owns the children (the stream included) from here.
  std::unique_ptr<InternalIterator> merged(NewCompactionMergingIterator(
      icmp, children.data(), static_cast<int>(children.size()), tombstones,
      /*arena=*/nullptr, /*stats=*/nullptr));
  if (!s.ok()) {
    // Nothing is written yet. Tombstones already added to the aggregator are
    // the ones MakeInputIterator adds again (it skips files already added).
    *reason = "reading range tombstones: " + s.ToString();
    return nullptr;
  }
  return merged;
}

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
