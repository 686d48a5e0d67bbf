// ringmerge: the compaction input RocksDB's CompactionJob reads in place of
// VersionSet::MakeInputIterator when ringmerge can serve the compaction exactly.
//
// The iterator yields every version of every key of the inputs, merged in
// internal-key order and clipped to the subcompaction's [start, end) the way
// ClippingIterator clips, so RocksDB's own CompactionIterator still makes every
// decision (hidden versions, deletions, snapshots, seqno zeroing, merge
// operands, compaction filters) and the output is stock's by construction.
// What ringmerge replaces is the I/O and the merge underneath: one pread per
// 4 KiB block becomes a few large io_uring reads per input, verified and
// decoded in Rust.
//
// Compiled as part of the patched RocksDB (it needs RocksDB's internal headers);
// included only by compaction_job.cc under ROCKSDB_RINGMERGE.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"
#include "table/internal_iterator.h"

namespace ROCKSDB_NAMESPACE {

class Compaction;
class EventLoggerStream;
class FSWritableFile;
struct ImmutableDBOptions;

// One subcompaction's figures, as reported in the LOG and the event. The LOG
// line starts with `tier=2`: ringmerge feeds the merged stream of all versions
// to RocksDB's own CompactionIterator (the tier 2); tier 1, which
// would bypass CompactionIterator, is not built.
struct RingmergeSummary {
  std::string backend;
  std::string io_uring_fallback_reason;
  uint64_t runs = 0;
  uint64_t files = 0;
  uint64_t blocks = 0;
  // Of `blocks`, those that were compressed (decoded by ringmerge).
  uint64_t compressed_blocks = 0;
  // Input files that carry a compression dictionary.
  uint64_t dict_files = 0;
  // Input files whose range tombstones were interleaved as sentinels.
  uint64_t range_del_files = 0;
  uint64_t entries = 0;
  uint64_t bytes_read = 0;
  uint64_t reads_submitted = 0;
  uint64_t io_uring_enter_calls = 0;
  uint64_t short_reads = 0;
  uint64_t wait_micros = 0;
  uint64_t merge_micros = 0;
  // "native", "bpf-linear" or "bpf-heap"; why RINGMERGE_MODE=bpf merged natively.
  std::string merge_engine;
  std::string bpf_unavailable;
  uint64_t bpf_calls = 0;
  // Merge-ahead (RINGMERGE_MERGE_AHEAD): whether the merge ran on the
  // compaction thread's companion thread, how long the compaction thread
  // waited for its batches, the companion's CPU time, and why it was asked
  // for but not used.
  bool ahead = false;
  uint64_t ahead_wait_micros = 0;
  uint64_t ahead_cpu_micros = 0;
  std::string ahead_unavailable;
  // The compaction thread's scheduling attributes (nice, policy, I/O priority,
  // CPUs) the companion could not take on; empty when it took all.
  std::string ahead_attrs_unapplied;
  // Non-empty when the DB's FileSystem is a wrapper whose files ringmerge
  // verified and read directly (RINGMERGE_WRAPPED_FS=verify).
  std::string wrapped_fs;
  // The I/O class of the compaction's reads and write-behind writes: "idle",
  // "inherit", or "inherit (writes delayed)" (RINGMERGE_IO_PRIORITY=auto).
  std::string io_priority;
  // The priority ringmerge's reads requested from the DB's rate_limiter
  // (empty: reads not rate limited) and the time they waited for it.
  std::string read_rate_limit;
  uint64_t rate_limit_wait_micros = 0;
  // Output write-behind (RINGMERGE_WRITE_BEHIND): the queue bound (0: off)
  // and, over the output files opened so far, bytes queued, the compaction
  // thread's waits (queue full; queue draining before Sync/Close) and the
  // writer threads' CPU time (of the files already closed).
  uint64_t write_behind_limit = 0;
  uint64_t write_behind_files = 0;
  uint64_t write_behind_bytes = 0;
  uint64_t write_behind_full_wait_micros = 0;
  uint64_t write_behind_drain_wait_micros = 0;
  uint64_t write_behind_cpu_micros = 0;
  uint64_t write_behind_write_micros = 0;

  std::string ToString() const;
};

class RangeDelAggregator;

// The accelerated input: ringmerge's merged stream of point entries, and,
// when inputs hold range deletions, their tombstone start keys interleaved as
// sentinel entries exactly as CompactionMergingIterator emits them (RocksDB's
// own CompactionMergingIterator does the interleaving, over the stream and the
// inputs' TruncatedRangeDelIterators), with the tombstones added to the
// subcompaction's range-del aggregator as MakeInputIterator adds them.
class RingmergeCompactionInput : public InternalIterator {
 public:
  // Returns the accelerated input, or nullptr when ringmerge is off or cannot
  // serve this compaction exactly; then `*fallback_reason` says why (it stays
  // empty when RINGMERGE_MODE=off, which is stock RocksDB with no LOG line).
  static std::unique_ptr<RingmergeCompactionInput> Open(
      const Compaction* compaction, const std::optional<Slice>& start,
      const std::optional<Slice>& end, const ImmutableDBOptions& db_options,
      const FileOptions& file_options, const ReadOptions& read_options,
      RangeDelAggregator* range_del_agg, std::string* fallback_reason);

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

  RingmergeSummary Summary() const;

  // Called for each output file this subcompaction opens: puts it behind a
  // write-behind queue (see ringmerge_write_behind.h) unless
  // RINGMERGE_WRITE_BEHIND=off.
  void WrapOutputFile(std::unique_ptr<FSWritableFile>* file);

 private:
  struct Rep;
  RingmergeCompactionInput(std::unique_ptr<Rep> rep,
                           std::unique_ptr<InternalIterator> iter);

  std::unique_ptr<Rep> rep_;
  // The stream itself, or a CompactionMergingIterator that owns it.
  std::unique_ptr<InternalIterator> iter_;
  Status unsupported_;
};

// Totals over one job's subcompactions, for the compaction_finished event.
class RingmergeJobStats {
 public:
  void AddAccelerated(const RingmergeSummary& s);
  void AddFallback(const std::string& reason);
  void AppendToEvent(EventLoggerStream& stream) const;

 private:
  mutable std::mutex mu_;
  uint64_t accelerated_ = 0;
  uint64_t fallbacks_ = 0;
  std::string fallback_reason_;
  RingmergeSummary total_;
};

}  // namespace ROCKSDB_NAMESPACE
