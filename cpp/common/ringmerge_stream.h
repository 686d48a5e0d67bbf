// ringmerge: the merged stream of point entries as a RocksDB InternalIterator,
// batch by batch from Rust. A batch's keys and values stay valid until the
// next-but-one batch is fetched (see ringmerge::BatchEntry).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>

#include "db/dbformat.h"
#include "ringmerge_api.h"
#include "table/internal_iterator.h"

namespace ROCKSDB_NAMESPACE {
namespace ringmerge_internal {

class RingmergeStream : public InternalIterator {
 public:
  RingmergeStream(rust::Box<ringmerge::MergedStream> merge,
                  const InternalKeyComparator* icmp)
      : merge_(std::move(merge)), icmp_(icmp) {}

  bool Valid() const override { return valid_; }
  void SeekToFirst() override;
  // Forward only: compaction seeks to its start bound, and a compaction
  // filter's skip-until moves forward.
  void Seek(const Slice& target) override;
  void Next() override;
  void SeekToLast() override { Unsupported("SeekToLast"); }
  void SeekForPrev(const Slice&) override { Unsupported("SeekForPrev"); }
  void Prev() override { Unsupported("Prev"); }
  Slice key() const override {
    assert(valid_);
    const ringmerge::BatchEntry& e = entries_[pos_];
    return Slice(data_ + e.key_offset, e.key_len);
  }
  Slice value() const override {
    assert(valid_);
    // In the batch, or pinned in an input block (zero-copy): valid as long
    // as the batch, see BatchEntry.
    const ringmerge::BatchEntry& e = entries_[pos_];
    return Slice(reinterpret_cast<const char*>(e.value_addr), e.value_len);
  }
  Status status() const override { return status_; }

  const ringmerge::MergedStream& merge() const { return *merge_; }

 private:
  void FetchBatch();
  void Unsupported(const char* op) {
    valid_ = false;
    status_ = Status::NotSupported(std::string("ringmerge input: ") + op);
  }

  rust::Box<ringmerge::MergedStream> merge_;
  const InternalKeyComparator* icmp_;
  const char* data_ = nullptr;
  const ringmerge::BatchEntry* entries_ = nullptr;
  size_t count_ = 0;
  size_t pos_ = 0;
  bool started_ = false;
  bool valid_ = false;
  Status status_;
};

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
