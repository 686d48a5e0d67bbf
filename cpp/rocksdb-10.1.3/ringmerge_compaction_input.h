// ringmerge: the compaction input RocksDB's CompactionJob reads in place of
// VersionSet::MakeInputIterator when ringmerge can serve the compaction
// exactly.
//
// The iterator yields every version of every key of the inputs, merged in
// internal-key order and clipped to the subcompaction's [start, end) the way
// ClippingIterator clips, so RocksDB's own CompactionIterator still makes
// every decision (hidden versions, deletions, snapshots, seqno zeroing, merge
// operands, compaction filters) and the output is stock's by construction.
// What ringmerge replaces is the I/O and the merge underneath: one pread per
// 4 KiB block becomes a few large io_uring reads per input, verified and
// decoded in Rust.
//
// Compiled as part of the patched RocksDB (it needs RocksDB's internal
// headers); included only by compaction_job.cc under ROCKSDB_RINGMERGE.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ringmerge_report.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"
#include "table/internal_iterator.h"

namespace ROCKSDB_NAMESPACE {

class Compaction;
class FSWritableFile;
class RangeDelAggregator;
struct ImmutableDBOptions;

// The accelerated input: ringmerge's merged stream of point entries, and,
// when inputs hold range deletions, their tombstone start keys interleaved as
// sentinel entries exactly as stock's input has them, with the tombstones
// added to the subcompaction's range-del aggregator as MakeInputIterator adds
// them (see ringmerge_range_deletions.h).
class RingmergeCompactionInput : public InternalIterator {
 public:
  // Returns the accelerated input, or nullptr when ringmerge is off or cannot
  // serve this subcompaction exactly: then the stock input is to be used, and
  // why was logged ("ringmerge: fallback subcompaction ...") and added to
  // `job_stats` (nothing is logged when ringmerge is off, which is stock
  // RocksDB). `job_stats` may be nullptr, else outlives the input.
  static std::unique_ptr<RingmergeCompactionInput> Open(
      const Compaction* compaction, const std::optional<Slice>& start,
      const std::optional<Slice>& end, const ImmutableDBOptions& db_options,
      const FileOptions& file_options, const ReadOptions& read_options,
      RangeDelAggregator* range_del_agg, int job_id, uint32_t sub_job_id,
      const RingmergeJobStats* job_stats);

  ~RingmergeCompactionInput() override;

  bool Valid() const override { return unsupported_.ok() && iter_->Valid(); }
  void SeekToFirst() override { iter_->SeekToFirst(); }
  // Forward only: compaction seeks to its start bound, and a compaction
  // filter's skip-until moves forward. A backward seek is NotSupported.
  void Seek(const Slice& target) override { iter_->Seek(target); }
  void SeekToLast() override;
  void SeekForPrev(const Slice& target) override;
  void Next() override { iter_->Next(); }
  void Prev() override;
  Slice key() const override { return iter_->key(); }
  Slice value() const override { return iter_->value(); }
  Status status() const override;
  bool IsDeleteRangeSentinelKey() const override {
    return iter_->IsDeleteRangeSentinelKey();
  }

  // Called for each output file this subcompaction opens: puts it behind a
  // write-behind queue (see ringmerge_write_behind.h) unless the settings
  // turn write-behind off.
  void WrapOutputFile(std::unique_ptr<FSWritableFile>* file);

  // Called once the subcompaction's entries are all processed, with its
  // status: logs the accelerated line ("ringmerge: accelerated subcompaction
  // ...") and adds the subcompaction's figures to the job's.
  void Finish(const Status& status) const;

 private:
  struct Rep;
  RingmergeCompactionInput(std::unique_ptr<Rep> rep,
                           std::unique_ptr<InternalIterator> iter);

  std::unique_ptr<Rep> rep_;
  // The stream itself, or a CompactionMergingIterator that owns it.
  std::unique_ptr<InternalIterator> iter_;
  Status unsupported_;
};

}  // namespace ROCKSDB_NAMESPACE
