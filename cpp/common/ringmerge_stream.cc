// ringmerge: see ringmerge_stream.h.
#include "ringmerge_stream.h"

#include "monitoring/iostats_context_imp.h"

namespace ROCKSDB_NAMESPACE {
namespace ringmerge_internal {

void RingmergeStream::FetchBatch() {
  const bool more = merge_->next_batch();
  // The reads happened on io_uring (or pread) on this thread's behalf: count
  // them where RocksDB counts compaction reads (rocksdb.compact.read.bytes).
  IOSTATS_ADD(bytes_read, merge_->take_bytes_read());
  pos_ = 0;
  if (!more) {
    count_ = 0;
    valid_ = false;
    status_ = ToStatus(merge_->status());
    return;
  }
  rust::Slice<const uint8_t> data = merge_->batch_data();
  rust::Slice<const ringmerge::BatchEntry> entries = merge_->batch_entries();
  data_ = reinterpret_cast<const char*>(data.data());
  entries_ = entries.data();
  count_ = entries.size();
  valid_ = count_ > 0;
}

void RingmergeStream::SeekToFirst() {
  if (started_) {
    return Unsupported("SeekToFirst after iteration started");
  }
  started_ = true;
  FetchBatch();
}

void RingmergeStream::Seek(const Slice& target) {
  if (!started_) {
    SeekToFirst();
  } else if (valid_ && icmp_->Compare(key(), target) > 0) {
    return;  // Already past target: a forward seek is a no-op.
  }
  while (valid_ && icmp_->Compare(key(), target) < 0) {
    Next();
  }
}

void RingmergeStream::Next() {
  assert(valid_);
  if (++pos_ >= count_) {
    FetchBatch();
  }
}

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
