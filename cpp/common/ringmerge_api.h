// ringmerge: ringmerge's Rust API (src/api.rs, through the header cxx
// generates from it) as the rest of the glue uses it: the process's settings,
// and conversions between cxx's types and RocksDB's.
#pragma once

#include <cstdint>

#include "ringmerge/src/api.rs.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"

namespace ROCKSDB_NAMESPACE {
namespace ringmerge_internal {

// What the glue needs of ringmerge's configuration, read the first time it is
// asked for: like a DB option, it does not change under a running DB.
const ringmerge::Settings& ProcessSettings();

// The merge's outcome as a RocksDB Status; a bug in ringmerge (a panic Rust
// caught) becomes Aborted.
Status ToStatus(const ringmerge::MergeStatus& s);

rust::Vec<uint8_t> ToBytes(const Slice& s);

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
