// ringmerge: see ringmerge_range_deletions.h.
#include "ringmerge_range_deletions.h"

#include <cinttypes>
#include <cstdio>
#include <memory>

#include "db/column_family.h"
#include "db/compaction/compaction.h"
#include "db/dbformat.h"
#include "db/range_del_aggregator.h"
#include "db/table_cache.h"
#include "db/version_set.h"
#include "options/cf_options.h"
#include "rocksdb/options.h"
#include "rocksdb/table_properties.h"
#include "table/internal_iterator.h"
#include "table/table_reader.h"
#include "trace_replay/block_cache_tracer.h"

namespace ROCKSDB_NAMESPACE {
namespace ringmerge_internal {

namespace {

// The files of input level `which` (a deeper level) the LevelIterator of
// MakeInputIterator opens, as [*first, *last): Seek(start) opens the file
// FindFile picks (SeekToFirst without start: file 0) whatever its smallest
// key; SkipEmptyFileForward then opens each next file until one's smallest
// key reaches iterate_upper_bound (KeyReachedUpperBound). A file that ends
// out of bound has a key at or past `end`, so the next file's smallest is past
// it too: the same stop.
void LevelFilesOpened(const InternalKeyComparator& icmp,
                      const LevelFilesBrief& flevel, const Slice* start_ikey,
                      const Slice* end, size_t* first, size_t* last) {
  const Comparator* ucmp = icmp.user_comparator();
  *first = start_ikey != nullptr
               ? static_cast<size_t>(FindFile(icmp, flevel, *start_ikey))
               : 0;
  *last = *first;
  if (*first >= flevel.num_files) {
    return;  // Seek past the level: no file is opened.
  }
  for (*last = *first + 1; *last < flevel.num_files; ++*last) {
    if (end != nullptr &&
        ucmp->CompareWithoutTimestamp(
            ExtractUserKey(flevel.files[*last].smallest_key),
            /*a_has_ts=*/true, *end, /*b_has_ts=*/false) >= 0) {
      break;
    }
  }
}

// "#123": how reasons name an input file.
std::string FileName(const FileMetaData& meta) {
  char num[64];
  snprintf(num, sizeof(num), "#%" PRIu64, meta.fd.GetNumber());
  return num;
}

}  // namespace

Status AddRangeTombstones(const Compaction& c, const Slice* start,
                          const Slice* end, const ReadOptions& read_options,
                          const FileOptions& file_options,
                          RangeDelAggregator* range_del_agg, uint64_t* used,
                          std::string* reason) {
  ColumnFamilyData* cfd = c.column_family_data();
  const MutableCFOptions& mopts = *c.mutable_cf_options();
  const InternalKeyComparator& icmp = cfd->internal_comparator();
  IterKey start_ikey;
  Slice start_slice;
  if (start != nullptr) {
    start_ikey.SetInternalKey(*start, kMaxSequenceNumber, kValueTypeForSeek);
    start_slice = start_ikey.GetInternalKey();
  }
  *used = 0;
  for (size_t which = 0; which < c.num_input_levels(); which++) {
    const LevelFilesBrief* flevel = c.input_levels(which);
    if (flevel->num_files == 0) {
      continue;
    }
    const int level = c.level(which);
    size_t first = 0;
    size_t last = flevel->num_files;  // L0: every file, at construction
    if (level != 0) {
      LevelFilesOpened(icmp, *flevel, start != nullptr ? &start_slice : nullptr,
                       end, &first, &last);
    }
    const std::vector<AtomicCompactionUnitBoundary>* bounds =
        level != 0 ? c.boundaries(which) : nullptr;
    for (size_t i = first; i < last; i++) {
      const FileMetaData& meta = *flevel->files[i].file_metadata;
      const InternalKey* smallest_ck = nullptr;
      const InternalKey* largest_ck = nullptr;
      if (bounds != nullptr && i < bounds->size()) {
        smallest_ck = (*bounds)[i].smallest;
        largest_ck = (*bounds)[i].largest;
      }
      // The call MakeInputIterator (L0) or LevelIterator::NewFileIterator
      // (deeper) makes; it adds the file's tombstones to the aggregator
      // (once per file: AddFile). The point iterator it returns is dropped
      // unpositioned (no data block is read).
      TableReader* table_reader = nullptr;
      std::unique_ptr<InternalIterator> point(cfd->table_cache()->NewIterator(
          read_options, file_options, icmp, meta, range_del_agg,
          mopts.prefix_extractor, &table_reader, /*file_read_hist=*/nullptr,
          TableReaderCaller::kCompaction, /*arena=*/nullptr,
          /*skip_filters=*/false, level,
          level == 0 ? MaxFileSizeForL0MetaPin(mopts) : 0, smallest_ck,
          largest_ck, /*allow_unprepared_value=*/false));
      Status s = point->status();
      if (!s.ok()) {
        *reason = "reading the range tombstones of " + FileName(meta) + ": " +
                  s.ToString();
        return s;
      }
      if (table_reader != nullptr &&
          table_reader->GetTableProperties() != nullptr &&
          table_reader->GetTableProperties()->num_range_deletions > 0) {
        (*used)++;
      }
    }
  }
  return Status::OK();
}

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
