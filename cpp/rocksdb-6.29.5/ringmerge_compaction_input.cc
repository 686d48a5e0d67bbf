// ringmerge: see ringmerge_compaction_input.h.
#include "ringmerge_compaction_input.h"

#include <cstddef>
#include <utility>
#include <vector>

#include "db/column_family.h"
#include "db/compaction/compaction.h"
#include "db/dbformat.h"
#include "db/internal_stats.h"
#include "db/range_del_aggregator.h"
#include "options/db_options.h"
#include "ringmerge_api.h"
#include "ringmerge_eligibility.h"
#include "ringmerge_range_deletions.h"
#include "ringmerge_read_hooks.h"
#include "ringmerge_report.h"
#include "ringmerge_stream.h"
#include "ringmerge_write_behind.h"
#include "rocksdb/file_system.h"

namespace ROCKSDB_NAMESPACE {

using ringmerge_internal::AccountedFile;
using ringmerge_internal::CxxFields;
using ringmerge_internal::RingmergeStream;
using ringmerge_internal::SubcompactionReport;

// No sorted-runs counter: 6.29.5 has no num-running-compaction-sorted-runs.
struct RingmergeCompactionInput::Rep {
  explicit Rep(const SubcompactionReport& r)
      : report(r),
        write_behind(std::make_shared<RingmergeWriteBehindShared>()) {}

  SubcompactionReport report;
  RingmergeStream* stream = nullptr;  // owned by the iterator
  CxxFields fields;
  // The totals of this subcompaction's write-behind output files (which may
  // outlive this input).
  std::shared_ptr<RingmergeWriteBehindShared> write_behind;
};

namespace {

// The subcompaction's inputs as the merge reads them.
struct Inputs {
  // Every cxx shared struct is value-initialized ({}): below C++14 the
  // generated structs have no default member initializers (CXX_DEFAULT_VALUE
  // expands to nothing), and MariaDB compiles RocksDB as gnu++11. An
  // indeterminate has_end once made a merge stop at an empty end key.
  ringmerge::CompactionInput input{};
  // What RocksDB accounts per read of each input, in the order the files go
  // into input.runs (the index the merge's reads report).
  std::vector<AccountedFile> accounted_files;
  uint64_t dict_files = 0;
};

// The same runs as VersionSet::MakeInputIterator: one per L0 file, one per
// deeper level; files with no user key in [start, end) are left out (their
// entries would all be clipped). Fails, with `*reason`, on the first input
// that cannot be served. Fills in everything of out->input but its I/O
// priority.
Status DescribeInputs(const Compaction& c, const Slice* start,
                      const Slice* end, const ImmutableDBOptions& db_options,
                      const FileOptions& file_options,
                      const ReadOptions& read_options, Inputs* out,
                      std::string* reason) {
  ColumnFamilyData* cfd = c.column_family_data();
  IterKey start_ikey;
  Slice start_slice;
  if (start != nullptr) {
    start_ikey.SetInternalKey(*start, kMaxSequenceNumber, kValueTypeForSeek);
    start_slice = start_ikey.GetInternalKey();
  }
  ringmerge_internal::InputScope scope;
  scope.cfd = cfd;
  scope.mopts = c.mutable_cf_options();
  scope.file_options = &file_options;
  scope.read_options = &read_options;
  scope.start_ikey = start != nullptr ? &start_slice : nullptr;
  scope.end_user_key = end;
  scope.wrapped_fs = ringmerge_internal::WrappedFileSystem(db_options);

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
      Status s =
          ringmerge_internal::DescribeFile(scope, meta, level, &file, reason);
      if (!s.ok()) {
        return s;
      }
      if (!file.compression_dict.empty()) {
        out->dict_files++;
      }
      AccountedFile accounted;
      accounted.path = std::string(file.path.data(), file.path.size());
      accounted.temperature = meta.temperature;
      accounted.read_hist = cfd->internal_stats() != nullptr
                                ? cfd->internal_stats()->GetFileReadHist(level)
                                : nullptr;
      out->accounted_files.push_back(std::move(accounted));
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
  if (start != nullptr) {
    out->input.has_start = true;
    out->input.start = ringmerge_internal::ToBytes(*start);
  }
  if (end != nullptr) {
    out->input.has_end = true;
    out->input.end = ringmerge_internal::ToBytes(*end);
  }
  out->input.use_direct_reads = db_options.use_direct_reads;
  return Status::OK();
}

// The compaction's reads and queued writes yield to foreground and flush I/O
// (the idle I/O class) unless RocksDB's WriteController delays or stops
// writes (`writes_delayed`, the condition under which 10.x raises the
// compaction's rate-limiter priority to IO_USER): then they compete as stock's
// do. Returns the ioprio_set value (0: the thread's own) and sets its name.
int ChooseIOPriority(const ringmerge::Settings& settings, bool writes_delayed,
                     std::string* name) {
  if (settings.compaction_io_priority == 0) {
    *name = "inherit";
    return 0;
  }
  if (settings.io_priority_auto && writes_delayed) {
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
    const ImmutableDBOptions& db_options, Inputs* inputs,
    std::string* read_rate_limit) {
  std::unique_ptr<ringmerge::ReadThrottle> throttle =
      ringmerge_internal::NewReadThrottle(db_options, read_rate_limit);
  std::unique_ptr<ringmerge::ReadAccounting> accounting =
      ringmerge_internal::NewReadAccounting(db_options,
                                            std::move(inputs->accounted_files));
  return ringmerge::open_merged_stream(
      std::move(inputs->input), std::move(throttle), std::move(accounting));
}

}  // namespace

std::unique_ptr<RingmergeCompactionInput> RingmergeCompactionInput::Open(
    const Compaction* c, const Slice* start, const Slice* end,
    const ImmutableDBOptions& db_options, const FileOptions& file_options,
    const ReadOptions& read_options,
    CompactionRangeDelAggregator* range_del_agg, uint32_t job_id,
    uint32_t sub_job_id, const RingmergeJobStats* job_stats,
    bool writes_delayed) {
  const ringmerge::Settings& settings = ringmerge_internal::ProcessSettings();
  ColumnFamilyData* cfd = c->column_family_data();
  const SubcompactionReport report(db_options.info_log, cfd->GetName(),
                                   static_cast<int>(job_id), sub_job_id,
                                   job_stats);
  // Nothing is written yet when any step below fails: the stock input is
  // used, and it reports any real problem with the inputs itself.
  auto fall_back = [&report](const std::string& reason) -> std::nullptr_t {
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
  // No input table properties check: 6.29.5's Compaction does not hold them.
  std::string reason = ringmerge_internal::CheckCompaction(*c, db_options);
  if (!reason.empty()) {
    return fall_back(reason);
  }

  Inputs inputs;
  Status s = DescribeInputs(*c, start, end, db_options, file_options,
                            read_options, &inputs, &reason);
  if (!s.ok()) {
    return fall_back(reason.empty() ? s.ToString() : reason);
  }
  CxxFields fields;
  fields.dict_files = inputs.dict_files;
  fields.write_behind_limit = settings.write_behind;
  const FileSystem* wrapped_fs =
      ringmerge_internal::WrappedFileSystem(db_options);
  if (wrapped_fs != nullptr) {
    fields.wrapped_fs = wrapped_fs->Name();
  }
  const int io_priority =
      ChooseIOPriority(settings, writes_delayed, &fields.io_priority);
  inputs.input.io_priority = io_priority;

  rust::Box<ringmerge::MergedStream> merge =
      OpenMerge(db_options, &inputs, &fields.read_rate_limit);
  s = ringmerge_internal::ToStatus(merge->status());
  if (!s.ok()) {
    return fall_back("opening the merge: " + s.ToString());
  }
  // The tombstones stock's input would add, added now. On failure the stock
  // input is used: it skips the files already added (AddFile), whose
  // tombstones are the same.
  s = ringmerge_internal::AddRangeTombstones(
      *c, start, end, read_options, file_options, range_del_agg,
      &fields.range_del_files, &reason);
  if (!s.ok()) {
    return fall_back(reason.empty() ? s.ToString() : reason);
  }
  report.WarnOncePerProcess(settings, merge->summary());

  std::unique_ptr<Rep> rep(new Rep(report));
  rep->fields = std::move(fields);
  rep->write_behind->io_priority = io_priority;
  std::unique_ptr<RingmergeStream> stream(
      new RingmergeStream(std::move(merge), &cfd->internal_comparator()));
  rep->stream = stream.get();
  return std::unique_ptr<RingmergeCompactionInput>(
      new RingmergeCompactionInput(std::move(rep), std::move(stream)));
}

RingmergeCompactionInput::RingmergeCompactionInput(
    std::unique_ptr<Rep> rep, std::unique_ptr<InternalIterator> iter)
    : rep_(std::move(rep)), iter_(std::move(iter)) {}

RingmergeCompactionInput::~RingmergeCompactionInput() {}

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
  std::unique_ptr<FSWritableFile> wrapped(new RingmergeWriteBehindFile(
      std::move(*file), static_cast<size_t>(rep_->fields.write_behind_limit),
      rep_->write_behind));
  *file = std::move(wrapped);
}

void RingmergeCompactionInput::Finish(const Status& status) const {
  ringmerge::SubcompactionSummary summary = rep_->stream->merge().summary();
  ringmerge_internal::FillCxxFields(rep_->fields, *rep_->write_behind,
                                    &summary);
  rep_->report.Accelerated(summary, status);
}

}  // namespace ROCKSDB_NAMESPACE
