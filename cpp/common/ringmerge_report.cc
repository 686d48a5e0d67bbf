// ringmerge: see ringmerge_report.h.
#include "ringmerge_report.h"

#include <atomic>
#include <cinttypes>
#include <mutex>

#include "logging/event_logger.h"
#include "logging/logging.h"
#include "ringmerge_write_behind.h"
#include "rocksdb/env.h"

// A LOG line prefixed "[cpp/<file>:<line>] " as RocksDB's ROCKS_LOG_* prefix
// theirs "[db/<file>:<line>] ". Those macros cut __FILE__ by the length of
// RocksDB's source root (RocksLogShorterFileName), which for a file outside
// RocksDB's tree leaves a meaningless piece of its path, or runs past its end.
#define ROCKS_LOG_RINGMERGE(LVL, LGR, FMT, ...)             \
  Log((LVL), (LGR),                                         \
      "[cpp/common/ringmerge_report.cc:"                    \
      ROCKS_LOG_TOSTRING(__LINE__) "] " FMT, ##__VA_ARGS__)

namespace ROCKSDB_NAMESPACE {

RingmergeJobStats::RingmergeJobStats() : report_(ringmerge::new_job_report()) {
  ringmerge::preload_bpf();
}

void RingmergeJobStats::AddAccelerated(
    const ringmerge::SubcompactionSummary& summary) const {
  report_->add_accelerated(summary);
}

void RingmergeJobStats::AddFallback(const std::string& reason) const {
  report_->add_fallback(rust::Str(reason.data(), reason.size()));
}

bool RingmergeJobStats::HasOutcomes() const {
  return !report_->event_fields().empty();
}

void RingmergeJobStats::AppendToEvent(EventLoggerStream& stream) const {
  for (const ringmerge::EventField& field : report_->event_fields()) {
    stream << std::string(field.key);
    if (field.is_text) {
      stream << std::string(field.text);
    } else {
      stream << field.number;
    }
  }
}

namespace ringmerge_internal {

void FillCxxFields(const CxxFields& fields,
                   const RingmergeWriteBehindShared& write_behind,
                   ringmerge::SubcompactionSummary* summary) {
  summary->dict_files = fields.dict_files;
  summary->range_del_files = fields.range_del_files;
  summary->wrapped_fs = fields.wrapped_fs;
  summary->io_priority = fields.io_priority;
  summary->read_rate_limit = fields.read_rate_limit;
  summary->write_behind_limit = fields.write_behind_limit;
  const auto get = [](const std::atomic<uint64_t>& counter) {
    return counter.load(std::memory_order_relaxed);
  };
  summary->write_behind_files = get(write_behind.files);
  summary->write_behind_bytes = get(write_behind.bytes);
  summary->write_behind_write_micros = get(write_behind.write_micros);
  summary->write_behind_full_wait_micros = get(write_behind.full_wait_micros);
  summary->write_behind_drain_wait_micros =
      get(write_behind.drain_wait_micros);
  summary->write_behind_cpu_micros = get(write_behind.writer_cpu_micros);
}

SubcompactionReport::SubcompactionReport(std::shared_ptr<Logger> info_log,
                                         std::string cf_name, int job_id,
                                         uint32_t sub_job_id,
                                         const RingmergeJobStats* job_stats)
    : info_log_(std::move(info_log)),
      cf_name_(std::move(cf_name)),
      job_id_(job_id),
      sub_job_id_(sub_job_id),
      job_stats_(job_stats) {}

void SubcompactionReport::Fallback(const std::string& reason) const {
  ROCKS_LOG_RINGMERGE(InfoLogLevel::INFO_LEVEL, info_log_,
                      "[%s] [JOB %d] ringmerge: fallback subcompaction %" PRIu32
                      ": %s",
                      cf_name_.c_str(), job_id_, sub_job_id_, reason.c_str());
  if (job_stats_ != nullptr) {
    job_stats_->AddFallback(reason);
  }
}

void SubcompactionReport::Accelerated(
    const ringmerge::SubcompactionSummary& summary,
    const Status& status) const {
  const std::string figures(ringmerge::summary_log_line(summary));
  ROCKS_LOG_RINGMERGE(InfoLogLevel::INFO_LEVEL, info_log_,
                      "[%s] [JOB %d] ringmerge: accelerated subcompaction "
                      "%" PRIu32 ": %s status=%s",
                      cf_name_.c_str(), job_id_, sub_job_id_, figures.c_str(),
                      status.ToString().c_str());
  if (job_stats_ != nullptr) {
    job_stats_->AddAccelerated(summary);
  }
}

void SubcompactionReport::WarnOncePerProcess(
    const ringmerge::Settings& settings,
    const ringmerge::SubcompactionSummary& opened) const {
  if (!opened.bpf_unavailable.empty()) {
    static std::once_flag once;
    std::call_once(once, [&] {
      ROCKS_LOG_RINGMERGE(InfoLogLevel::WARN_LEVEL, info_log_,
                          "ringmerge: RINGMERGE_MODE=bpf but the BPF merge is "
                          "unavailable, merging natively: %s",
                          std::string(opened.bpf_unavailable).c_str());
    });
  }
  if (!settings.warning.empty()) {
    static std::once_flag once;
    std::call_once(once, [&] {
      ROCKS_LOG_RINGMERGE(InfoLogLevel::WARN_LEVEL, info_log_, "ringmerge: %s",
                          std::string(settings.warning).c_str());
    });
  }
}

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
