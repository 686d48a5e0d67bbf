// ringmerge: see ringmerge_read_hooks.h.
#include "ringmerge_read_hooks.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "monitoring/histogram.h"
#include "monitoring/statistics.h"
#include "options/db_options.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/rate_limiter.h"
#include "rocksdb/statistics.h"
#include "util/string_util.h"

namespace ROCKSDB_NAMESPACE {
namespace ringmerge_internal {

namespace {

// The same RequestToken calls (OpType::kRead, IO_LOW, the DB's statistics for
// the rate limiter's tickers) RandomAccessFileReader::Read makes before each
// piece of a buffered compaction read, in pieces of at most one burst.
class ReadThrottleImpl : public ringmerge::ReadThrottle {
 public:
  ReadThrottleImpl(std::shared_ptr<RateLimiter> limiter,
                   std::shared_ptr<Statistics> stats, Env::IOPriority priority)
      : limiter_(std::move(limiter)),
        stats_(std::move(stats)),
        priority_(priority) {}

  void Request(uint64_t bytes) const override {
    while (bytes > 0) {
      const size_t ask = static_cast<size_t>(
          std::min<uint64_t>(bytes, std::numeric_limits<size_t>::max()));
      const size_t granted = limiter_->RequestToken(
          ask, /*alignment=*/0, priority_, stats_.get(),
          RateLimiter::OpType::kRead);
      if (granted == 0) {
        return;  // A limiter granting nothing would never let the read go.
      }
      bytes -= std::min<uint64_t>(granted, bytes);
    }
  }

 private:
  // Shared ownership: the merge (and this object) may outlive the compaction
  // job on the merge-ahead companion thread until the stream is destroyed.
  std::shared_ptr<RateLimiter> limiter_;
  std::shared_ptr<Statistics> stats_;
  Env::IOPriority priority_;
};

// What RandomAccessFileReader::Read records for each stock compaction read
// (the per-temperature tickers, the SST_READ_MICROS histogram as its
// StopWatch records it, the per-level read latency histogram, and
// OnFileReadFinish / OnIOError for listeners that asked for file I/O), one
// call per read. IOSTATS' bytes_read is added on the compaction thread as
// batches are taken (its context is thread-local); its per-temperature
// counters are not kept.
class ReadAccountingImpl : public ringmerge::ReadAccounting {
 public:
  ReadAccountingImpl(std::vector<AccountedFile> files,
                     std::shared_ptr<Statistics> stats,
                     std::vector<std::shared_ptr<EventListener>> listeners)
      : files_(std::move(files)),
        stats_(std::move(stats)),
        listeners_(std::move(listeners)) {}

  void Done(size_t file, uint64_t offset, uint64_t len,
            uint64_t start_unix_nanos, uint64_t duration_nanos,
            int32_t err) const override {
    if (file >= files_.size()) {
      return;
    }
    const AccountedFile& f = files_[file];
    if (stats_ != nullptr) {
      RecordStatistics(f, len, duration_nanos / 1000);
    }
    if (!listeners_.empty()) {
      Notify(f, offset, len, start_unix_nanos, duration_nanos, err);
    }
  }

 private:
  void RecordStatistics(const AccountedFile& f, uint64_t len,
                        uint64_t micros) const {
    Statistics* stats = stats_.get();
    // No (NON_)LAST_LEVEL_READ_* tickers: 6.29.5 does not have them.
    switch (f.temperature) {
      case Temperature::kHot:
        RecordTick(stats, HOT_FILE_READ_BYTES, len);
        RecordTick(stats, HOT_FILE_READ_COUNT, 1);
        break;
      case Temperature::kWarm:
        RecordTick(stats, WARM_FILE_READ_BYTES, len);
        RecordTick(stats, WARM_FILE_READ_COUNT, 1);
        break;
      case Temperature::kCold:
        RecordTick(stats, COLD_FILE_READ_BYTES, len);
        RecordTick(stats, COLD_FILE_READ_COUNT, 1);
        break;
      default:
        break;
    }
    // No FILE_READ_COMPACTION_MICROS: 6.29.5 has only SST_READ_MICROS.
    if (stats->get_stats_level() > StatsLevel::kExceptTimers &&
        stats->HistEnabledForType(SST_READ_MICROS)) {
      stats->reportTimeToHistogram(SST_READ_MICROS, micros);
    }
    if (f.read_hist != nullptr) {
      f.read_hist->Add(micros);
    }
  }

  void Notify(const AccountedFile& f, uint64_t offset, uint64_t len,
              uint64_t start_unix_nanos, uint64_t duration_nanos,
              int32_t err) const {
    IOStatus io_s;
    if (err != 0) {
      io_s = IOStatus::IOError("While reading " + f.path + " at offset " +
                                   std::to_string(offset),
                               errnoStr(err).c_str());
    }
    const FileOperationInfo::FinishTimePoint finish =
        FileOperationInfo::FinishNow();
    const FileOperationInfo::StartTimePoint start{
        FileOperationInfo::SystemTimePoint(
            std::chrono::nanoseconds(start_unix_nanos)),
        finish - std::chrono::nanoseconds(duration_nanos)};
    // No temperature argument: 6.29.5's FileOperationInfo has none.
    FileOperationInfo info(FileOperationType::kRead, f.path, start, finish,
                           io_s);
    info.offset = offset;
    info.length = static_cast<size_t>(len);
    for (const auto& listener : listeners_) {
      listener->OnFileReadFinish(info);
    }
    if (!io_s.ok()) {
      IOErrorInfo error_info(io_s, FileOperationType::kRead, f.path,
                             static_cast<size_t>(len), offset);
      for (const auto& listener : listeners_) {
        listener->OnIOError(error_info);
      }
    }
    info.status.PermitUncheckedError();
    io_s.PermitUncheckedError();
  }

  std::vector<AccountedFile> files_;
  // Shared ownership, as ReadThrottleImpl's: the merge-ahead companion may
  // still read after the compaction thread has moved on.
  std::shared_ptr<Statistics> stats_;
  std::vector<std::shared_ptr<EventListener>> listeners_;
};

const char* IOPriorityName(Env::IOPriority p) {
  switch (p) {
    case Env::IO_LOW:
      return "IO_LOW";
    case Env::IO_MID:
      return "IO_MID";
    case Env::IO_HIGH:
      return "IO_HIGH";
    case Env::IO_USER:
      return "IO_USER";
    default:
      return "IO_TOTAL";
  }
}

}  // namespace

std::unique_ptr<ringmerge::ReadThrottle> NewReadThrottle(
    const ImmutableDBOptions& db_options, std::string* priority_name) {
  if (db_options.rate_limiter == nullptr ||
      !db_options.rate_limiter->IsRateLimited(RateLimiter::OpType::kRead)) {
    return nullptr;
  }
  // 6.29.5 reads for compaction always ask at IO_LOW
  // (random_access_file_reader.cc).
  const Env::IOPriority priority = Env::IO_LOW;
  *priority_name = IOPriorityName(priority);
  return std::unique_ptr<ringmerge::ReadThrottle>(new ReadThrottleImpl(
      db_options.rate_limiter, db_options.statistics, priority));
}

std::unique_ptr<ringmerge::ReadAccounting> NewReadAccounting(
    const ImmutableDBOptions& db_options, std::vector<AccountedFile> files) {
  std::vector<std::shared_ptr<EventListener>> io_listeners;
  for (const auto& listener : db_options.listeners) {
    if (listener->ShouldBeNotifiedOnFileIO()) {
      io_listeners.push_back(listener);
    }
  }
  if (db_options.statistics == nullptr && io_listeners.empty()) {
    return nullptr;
  }
  return std::unique_ptr<ringmerge::ReadAccounting>(new ReadAccountingImpl(
      std::move(files), db_options.statistics, std::move(io_listeners)));
}

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
