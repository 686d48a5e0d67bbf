// ringmerge: see ringmerge_compaction_input.h.
#include "ringmerge_compaction_input.h"

#include <utility>
#include <vector>

#include "db/column_family.h"
#include "db/compaction/compaction.h"
#include "db/dbformat.h"
#include "db/internal_stats.h"
#include "options/db_options.h"
#include "ringmerge_api.h"
#include "ringmerge_eligibility.h"
#include "ringmerge_range_deletions.h"
#include "ringmerge_read_hooks.h"
#include "ringmerge_report.h"
#include "ringmerge_stream.h"
#include "ringmerge_write_behind.h"
#include "rocksdb/file_system.h"
#include "test_util/sync_point.h"

namespace ROCKSDB_NAMESPACE {

using ringmerge_internal::AccountedFile;
using ringmerge_internal::CxxFields;
using ringmerge_internal::RangeDelFiles;
using ringmerge_internal::RingmergeStream;
using ringmerge_internal::SubcompactionReport;

struct RingmergeCompactionInput::Rep {
  explicit Rep(SubcompactionReport r) : report(std::move(r)) {}
  ~Rep() {
    if (internal_stats != nullptr) {
      internal_stats->DecrNumRunningCompactionSortedRuns(sorted_runs);
    }
  }

  void CountSortedRuns(InternalStats* stats, uint64_t runs) {
    if (stats == nullptr) {
      return;
    }
    // The same accounting (and test hook) as CompactionMergingIterator's.
    TEST_SYNC_POINT("CompactionMergingIterator::UpdateInternalStats");
    internal_stats = stats;
    sorted_runs = runs;
    internal_stats->IncrNumRunningCompactionSortedRuns(sorted_runs);
  }

  SubcompactionReport report;
  RingmergeStream* stream = nullptr;  // owned by the iterator
  CxxFields fields;
  // The totals of this subcompaction's write-behind output files (which may
  // outlive this input).
  std::shared_ptr<RingmergeWriteBehindShared> write_behind =
      std::make_shared<RingmergeWriteBehindShared>();
  // The sorted runs this input merges, counted in the column family's
  // rocksdb.num-running-compaction-sorted-runs while it lives, as stock's
  // CompactionMergingIterator counts its children.
  InternalStats* internal_stats = nullptr;
  uint64_t sorted_runs = 0;
};

namespace {

// The subcompaction's inputs as the merge reads them.
struct Inputs {
  ringmerge::CompactionInput input{};
  // What RocksDB accounts per read of each input, in the order the files go
  // into input.runs (the index the merge's reads report).
  std::vector<AccountedFile> accounted_files;
  uint64_t dict_files = 0;
  RangeDelFiles range_del_files;
};

// The same runs as VersionSet::MakeInputIterator: one per L0 file, one per
// deeper level; files wholly outside [start, end) are skipped as it skips
// them. Fails, with `*reason`, on the first input that cannot be served.
// Fills in everything of out->input but its I/O priority.
Status DescribeInputs(const Compaction& c, const std::optional<Slice>& start,
                      const std::optional<Slice>& end,
                      const ImmutableDBOptions& db_options,
                      const FileOptions& file_options,
                      const ReadOptions& read_options, Inputs* out,
                      std::string* reason) {
  ColumnFamilyData* cfd = c.column_family_data();
  const size_t ts_sz = cfd->user_comparator()->timestamp_size();
  // The first key at or after start, every version of it: with timestamps
  // the newest one (the largest timestamp) comes first, as stock's clipping
  // bound has it (CompactionJob::ProcessKeyValueCompaction).
  const std::string max_ts(ts_sz, '\xff');
  const Slice max_ts_slice(max_ts);
  IterKey start_ikey;
  Slice start_slice;
  if (start.has_value()) {
    start_ikey.SetInternalKey(*start, kMaxSequenceNumber, kValueTypeForSeek);
    if (ts_sz > 0) {
      start_ikey.UpdateInternalKey(kMaxSequenceNumber, kValueTypeForSeek,
                                   &max_ts_slice);
    }
    start_slice = start_ikey.GetInternalKey();
  }
  ringmerge_internal::InputScope scope;
  scope.cfd = cfd;
  scope.mopts = &c.mutable_cf_options();
  scope.file_options = &file_options;
  scope.read_options = &read_options;
  scope.start_ikey = start.has_value() ? &start_slice : nullptr;
  scope.end_user_key = end.has_value() ? &*end : nullptr;
  scope.wrapped_fs = ringmerge_internal::WrappedFileSystem(db_options);
  scope.timestamps_persisted =
      ts_sz == 0 || cfd->ioptions().persist_user_defined_timestamps;

  for (size_t which = 0; which < c.num_input_levels(); which++) {
    const LevelFilesBrief* flevel = c.input_levels(which);
    const int level = c.level(which);
    ringmerge::SortedRun level_run{};
    for (size_t i = 0; i < flevel->num_files; i++) {
      const FileMetaData& meta = *flevel->files[i].file_metadata;
      if (!ringmerge_internal::Overlaps(cfd->user_comparator(), meta, start,
                                        end)) {
        continue;
      }
      ringmerge::InputFile file{};
      bool has_range_deletions = false;
      Status s = ringmerge_internal::DescribeFile(scope, meta, &file,
                                                  &has_range_deletions, reason);
      if (!s.ok()) {
        return s;
      }
      if (!file.compression_dict.empty()) {
        out->dict_files++;
      }
      if (has_range_deletions) {
        out->range_del_files.emplace_back(which, i);
      }
      out->accounted_files.push_back(AccountedFile{
          std::string(file.path.data(), file.path.size()), meta.temperature,
          level == cfd->ioptions().num_levels - 1,
          cfd->internal_stats() != nullptr
              ? cfd->internal_stats()->GetFileReadHist(level)
              : nullptr});
      if (level == 0) {
        ringmerge::SortedRun run{};
        run.files.push_back(std::move(file));
        out->input.runs.push_back(std::move(run));
      } else {
        level_run.files.push_back(std::move(file));
      }
    }
    if (!level_run.files.empty()) {
      out->input.runs.push_back(std::move(level_run));
    }
  }
  // CheckCompaction let only comparators with an order through.
  if (!ringmerge_internal::UserKeyOrderOf(cfd->user_comparator(),
                                          &out->input.user_key_order)) {
    *reason = "comparator has no merge order";
    return Status::NotSupported(*reason);
  }
  out->input.timestamps_not_persisted = !scope.timestamps_persisted;
  // The bounds go without their timestamps (what the merge compares them
  // with: every version of a key is in or out alike).
  if (start.has_value()) {
    out->input.has_start = true;
    out->input.start = ringmerge_internal::ToBytes(
        ts_sz > 0 ? StripTimestampFromUserKey(*start, ts_sz) : *start);
  }
  if (end.has_value()) {
    out->input.has_end = true;
    out->input.end = ringmerge_internal::ToBytes(
        ts_sz > 0 ? StripTimestampFromUserKey(*end, ts_sz) : *end);
  }
  out->input.use_direct_reads = db_options.use_direct_reads;
  return Status::OK();
}

// The compaction's reads and queued writes yield to foreground and flush I/O
// (the idle I/O class) unless RocksDB itself says writes are delayed or
// stopped, when it raises the compaction's rate-limiter priority to IO_USER
// (CompactionJob::GetRateLimiterPriority): then they compete as stock's do.
// Returns the ioprio_set value (0: the thread's own) and sets its name.
int ChooseIOPriority(const ringmerge::Settings& settings,
                     const ReadOptions& read_options, std::string* name) {
  if (settings.compaction_io_priority == 0) {
    *name = "inherit";
    return 0;
  }
  if (settings.io_priority_auto &&
      read_options.rate_limiter_priority == Env::IO_USER) {
    *name = "inherit(writes_delayed)";
    return 0;
  }
  *name = "idle";
  return settings.compaction_io_priority;
}

// Opens the merge of `inputs` (consumed), its reads passing the DB's
// rate_limiter and accounted as stock compaction reads are; sets the
// priority the reads request from the rate_limiter, if they do.
rust::Box<ringmerge::MergedStream> OpenMerge(
    const ImmutableDBOptions& db_options, const ReadOptions& read_options,
    Inputs* inputs, std::string* read_rate_limit) {
  std::unique_ptr<ringmerge::ReadThrottle> throttle =
      ringmerge_internal::NewReadThrottle(db_options, read_options,
                                          read_rate_limit);
  std::unique_ptr<ringmerge::ReadAccounting> accounting =
      ringmerge_internal::NewReadAccounting(db_options,
                                            std::move(inputs->accounted_files));
  return ringmerge::open_merged_stream(
      std::move(inputs->input), std::move(throttle), std::move(accounting));
}

}  // namespace

std::unique_ptr<RingmergeCompactionInput> RingmergeCompactionInput::Open(
    const Compaction* c, const std::optional<Slice>& start,
    const std::optional<Slice>& end, const ImmutableDBOptions& db_options,
    const FileOptions& file_options, const ReadOptions& read_options,
    RangeDelAggregator* range_del_agg, int job_id, uint32_t sub_job_id,
    const RingmergeJobStats* job_stats) {
  const ringmerge::Settings& settings = ringmerge_internal::ProcessSettings();
  ColumnFamilyData* cfd = c->column_family_data();
  const SubcompactionReport report(db_options.info_log, cfd->GetName(), job_id,
                                   sub_job_id, job_stats);
  // Nothing is written yet when any step below fails: the stock input is
  // used, and it reports any real problem with the inputs itself.
  auto fall_back = [&report](const std::string& reason) {
    report.Fallback(reason);
    return nullptr;
  };
  if (!settings.accelerate) {
    // Stock RocksDB; only settings that were not understood are logged.
    if (!settings.warning.empty()) {
      return fall_back(std::string(settings.warning));
    }
    return nullptr;
  }
  std::string reason = ringmerge_internal::CheckCompaction(*c, db_options);
  if (reason.empty()) {
    reason = ringmerge_internal::CheckInputProperties(*c, start, end);
  }
  if (!reason.empty()) {
    return fall_back(reason);
  }

  Inputs inputs;
  Status s = DescribeInputs(*c, start, end, db_options, file_options,
                            read_options, &inputs, &reason);
  if (!s.ok()) {
    return fall_back(reason.empty() ? s.ToString() : reason);
  }
  const uint64_t sorted_runs = inputs.input.runs.size();
  const RangeDelFiles range_del_files = std::move(inputs.range_del_files);
  CxxFields fields;
  fields.dict_files = inputs.dict_files;
  fields.write_behind_limit = settings.write_behind;
  const FileSystem* wrapped_fs =
      ringmerge_internal::WrappedFileSystem(db_options);
  if (wrapped_fs != nullptr) {
    fields.wrapped_fs = wrapped_fs->Name();
  }
  const int io_priority =
      ChooseIOPriority(settings, read_options, &fields.io_priority);
  inputs.input.io_priority = io_priority;

  rust::Box<ringmerge::MergedStream> merge =
      OpenMerge(db_options, read_options, &inputs, &fields.read_rate_limit);
  s = ringmerge_internal::ToStatus(merge->status());
  if (!s.ok()) {
    return fall_back("opening the merge: " + s.ToString());
  }
  report.WarnOncePerProcess(settings, merge->summary());

  auto rep = std::make_unique<Rep>(report);
  rep->fields = std::move(fields);
  rep->write_behind->io_priority = io_priority;
  rep->CountSortedRuns(cfd->internal_stats(), sorted_runs);
  auto stream = std::make_unique<RingmergeStream>(std::move(merge),
                                                  &cfd->internal_comparator());
  rep->stream = stream.get();
  std::unique_ptr<InternalIterator> iter = std::move(stream);
  if (!range_del_files.empty()) {
    iter = ringmerge_internal::InterleaveRangeDeletions(
        *c, end, read_options, file_options, range_del_agg, range_del_files,
        std::move(iter), &rep->fields.range_del_files, &reason);
    if (iter == nullptr) {
      return fall_back(reason);
    }
  }
  return std::unique_ptr<RingmergeCompactionInput>(
      new RingmergeCompactionInput(std::move(rep), std::move(iter)));
}

RingmergeCompactionInput::RingmergeCompactionInput(
    std::unique_ptr<Rep> rep, std::unique_ptr<InternalIterator> iter)
    : rep_(std::move(rep)), iter_(std::move(iter)) {}

RingmergeCompactionInput::~RingmergeCompactionInput() = default;

void RingmergeCompactionInput::SeekToLast() {
  unsupported_ = Status::NotSupported("ringmerge input: SeekToLast");
}
void RingmergeCompactionInput::SeekForPrev(const Slice&) {
  unsupported_ = Status::NotSupported("ringmerge input: SeekForPrev");
}
void RingmergeCompactionInput::Prev() {
  unsupported_ = Status::NotSupported("ringmerge input: Prev");
}

Status RingmergeCompactionInput::status() const {
  return unsupported_.ok() ? iter_->status() : unsupported_;
}

void RingmergeCompactionInput::WrapOutputFile(
    std::unique_ptr<FSWritableFile>* file) {
  if (rep_->fields.write_behind_limit == 0) {
    return;
  }
  *file = std::make_unique<RingmergeWriteBehindFile>(
      std::move(*file), static_cast<size_t>(rep_->fields.write_behind_limit),
      rep_->write_behind);
}

void RingmergeCompactionInput::Finish(const Status& status) const {
  ringmerge::SubcompactionSummary summary = rep_->stream->merge().summary();
  ringmerge_internal::FillCxxFields(rep_->fields, *rep_->write_behind,
                                    &summary);
  rep_->report.Accelerated(summary, status);
}

}  // namespace ROCKSDB_NAMESPACE
