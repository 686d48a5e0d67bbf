// ringmerge: the compaction input RocksDB 6.29.5's CompactionJob reads in
// place of VersionSet::MakeInputIterator when ringmerge can serve the
// compaction exactly.
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
// C++11: MariaDB compiles its RocksDB with -std=gnu++11.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ringmerge_report.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"
#include "table/internal_iterator.h"

namespace ROCKSDB_NAMESPACE {

class Compaction;
class CompactionRangeDelAggregator;
class FSWritableFile;
struct ImmutableDBOptions;

// The accelerated input: ringmerge's merged stream of point entries. As in
// 6.29.5's own input (a plain merging iterator), range tombstones are not in
// the stream: they go to the subcompaction's range-del aggregator, from the
// files MakeInputIterator would open them from (see
// ringmerge_range_deletions.h).
class RingmergeCompactionInput : public InternalIterator {
 public:
  // Returns the accelerated input, or nullptr when ringmerge is off or cannot
  // serve this subcompaction exactly: then the stock input is to be used, and
  // why was logged ("ringmerge: fallback subcompaction ...") and added to
  // `job_stats` (nothing is logged when ringmerge is off, which is stock
  // RocksDB). `start`/`end` are the subcompaction's bounds (nullptr:
  // unbounded). `job_stats` may be nullptr, else outlives the input.
  // `writes_delayed`: the DB's WriteController delays or stops writes (what
  // 10.x turns into an IO_USER rate-limiter priority for the compaction;
  // 6.29.5's ReadOptions has no such priority, so the patch passes the signal
  // itself).
  static std::unique_ptr<RingmergeCompactionInput> Open(
      const Compaction* compaction, const Slice* start, const Slice* end,
      const ImmutableDBOptions& db_options, const FileOptions& file_options,
      const ReadOptions& read_options,
      CompactionRangeDelAggregator* range_del_agg, uint32_t job_id,
      uint32_t sub_job_id, const RingmergeJobStats* job_stats,
      bool writes_delayed);

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
  // No IsDeleteRangeSentinelKey: 6.29.5 has none (and no sentinel keys).

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
  // The stream itself (a RingmergeStream).
  std::unique_ptr<InternalIterator> iter_;
  Status unsupported_;
};

}  // namespace ROCKSDB_NAMESPACE
