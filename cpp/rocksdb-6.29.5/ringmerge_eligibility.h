// ringmerge: whether ringmerge can serve a compaction exactly, and what it
// reads of each input.
//
// The merge orders keys with memcmp, reads the files itself and decodes their
// blocks in Rust, so it needs a bytewise comparator (RocksDB's, or MyRocks'
// RocksDB_SE_v3.10, which is bytewise by construction), block-based tables
// whose codecs it decodes, and files it may read directly: the default POSIX
// file system's, or a wrapped file system's whose files are verified to be
// plain local files (when the operator allows it). Anything else keeps the
// stock path, with the reason in the LOG.
#pragma once

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

// Whether `meta` may hold user keys in the subcompaction's [start, end)
// (nullptr: unbounded): the files that do not contribute no entry to the
// clipped input, and DescribeFile looks only the others up.
bool Overlaps(const Comparator* ucmp, const FileMetaData& meta,
              const Slice* start, const Slice* end);

// No CheckInputProperties: 6.29.5's Compaction holds no input properties.

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
};

// Describes one input file of `level` for the merge (path, footer facts, the
// data blocks that may hold keys in the scope's bounds, the compression
// dictionary), or says in `*reason` why it cannot be served. (Its range
// tombstones are ringmerge_range_deletions.h's business.)
Status DescribeFile(const InputScope& scope, const FileMetaData& meta,
                    int level, ringmerge::InputFile* out, std::string* reason);

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
