// ringmerge: whether ringmerge can serve a compaction exactly, and what it
// reads of each input.
//
// The merge orders keys with memcmp, reads the files itself and decodes their
// blocks in Rust, so it needs the bytewise comparator, block-based tables
// whose codecs it decodes, and files it may read directly: the default POSIX
// file system's, or a wrapped file system's whose files are verified to be
// plain local files (when the operator allows it). Anything else keeps the
// stock path, with the reason in the LOG.
#pragma once

#include <optional>
#include <string>

#include "ringmerge_api.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"

namespace ROCKSDB_NAMESPACE {

class ColumnFamilyData;
class Comparator;
class Compaction;
class FileSystem;
struct FileMetaData;
struct FileOptions;
struct ImmutableDBOptions;
struct MutableCFOptions;
struct ReadOptions;

namespace ringmerge_internal {

// The order the merge sorts user keys in for `ucmp` (see UserKeyOrder in
// src/contract.rs); false when ringmerge does not merge in that order.
bool UserKeyOrderOf(const Comparator* ucmp, ringmerge::UserKeyOrder* order);

// Why the compaction as a whole cannot be served (comparator, table format,
// file system); empty when it can.
std::string CheckCompaction(const Compaction& c,
                            const ImmutableDBOptions& db_options);

// Whether `meta` overlaps the subcompaction's [start, end) on user keys:
// VersionSet::MakeInputIterator skips the files that do not.
bool Overlaps(const Comparator* ucmp, const FileMetaData& meta,
              const std::optional<Slice>& start,
              const std::optional<Slice>& end);

// Why an input of [start, end) cannot be served, decided from the table
// properties CompactionJob already loaded (today: a codec ringmerge does not
// decode); empty when none is known to be unservable. Deciding the common
// reasons here, before DescribeFile looks any table up in the table cache,
// keeps a compaction that falls back from costing a lookup stock would not.
std::string CheckInputProperties(const Compaction& c,
                                 const std::optional<Slice>& start,
                                 const std::optional<Slice>& end);

// The DB's FileSystem when it is not the default POSIX one (its files are
// verified and read directly); nullptr on the default one.
const FileSystem* WrappedFileSystem(const ImmutableDBOptions& db_options);

// What DescribeFile needs of the subcompaction: the same for every input.
struct InputScope {
  ColumnFamilyData* cfd = nullptr;
  const MutableCFOptions* mopts = nullptr;
  const FileOptions* file_options = nullptr;
  const ReadOptions* read_options = nullptr;
  // The subcompaction's start as a seek key, and its end user key; nullptr
  // when unbounded.
  const Slice* start_ikey = nullptr;
  const Slice* end_user_key = nullptr;
  // See WrappedFileSystem.
  const FileSystem* wrapped_fs = nullptr;
  // The column family writes its files with their keys' timestamps (or has
  // none); every input must store its keys the same way.
  bool timestamps_persisted = true;
};

// Describes one input file for the merge (path, footer facts, the data blocks
// that may hold keys in the scope's bounds, the compression dictionary), or
// says in `*reason` why it cannot be served. `*has_range_deletions` tells
// whether the file holds range tombstones.
Status DescribeFile(const InputScope& scope, const FileMetaData& meta,
                    ringmerge::InputFile* out, bool* has_range_deletions,
                    std::string* reason);

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
