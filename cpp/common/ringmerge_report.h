// ringmerge: what accelerated compactions report, in the DB's LOG and in
// the compaction_finished event.
//
// Every figure comes from one schema, ringmerge::SubcompactionSummary: Rust
// fills the merge's fields and produces the LOG line's figures
// (summary_log_line) and the job's totals (JobReport, which also appends each
// outcome to the outcome log when the settings name one). This side fills the
// fields only RocksDB's side knows and writes the lines.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ringmerge_api.h"
#include "rocksdb/status.h"

namespace ROCKSDB_NAMESPACE {

class EventLoggerStream;
class Logger;
struct RingmergeWriteBehindShared;

// One compaction job's outcomes, for the compaction_finished event; its
// subcompactions' threads add to it at once.
class RingmergeJobStats {
 public:
  // Also starts loading the BPF program (once per process, when the settings
  // ask for the BPF merge), so its verification overlaps this job's start
  // rather than delaying its first merge; the patched CompactionJob creates
  // this when a job starts.
  RingmergeJobStats();

  void AddAccelerated(const ringmerge::SubcompactionSummary& summary) const;
  void AddFallback(const std::string& reason) const;
  // The ringmerge_* fields; none when no subcompaction reached ringmerge.
  void AppendToEvent(EventLoggerStream& stream) const;
  // Whether any subcompaction was accelerated or fell back (nothing to report
  // with RINGMERGE_MODE=off).
  bool HasOutcomes() const;

 private:
  rust::Box<ringmerge::JobReport> report_;
};

namespace ringmerge_internal {

// The fields of ringmerge::SubcompactionSummary only the C++ side knows
// (marked "C++" in src/contract.rs), but for the write-behind totals, which
// RingmergeWriteBehindShared counts.
struct CxxFields {
  // Input files that carry a compression dictionary, and those whose range
  // tombstones went to the compaction (10.1.3: interleaved as sentinels;
  // 6.29.5: added to the range-del aggregator).
  uint64_t dict_files = 0;
  uint64_t range_del_files = 0;
  // The wrapped FileSystem whose files were verified and are read directly;
  // empty on the default POSIX file system.
  std::string wrapped_fs;
  // The I/O class of the reads and write-behind writes: "idle", "inherit" or
  // "inherit(writes_delayed)".
  std::string io_priority;
  // The priority the reads request from the DB's rate_limiter; empty when
  // reads are not rate limited.
  std::string read_rate_limit;
  // The write-behind queue bound; 0: off.
  uint64_t write_behind_limit = 0;
};

// Fills `summary`'s C++ fields.
void FillCxxFields(const CxxFields& fields,
                   const RingmergeWriteBehindShared& write_behind,
                   ringmerge::SubcompactionSummary* summary);

// Where one subcompaction reports: lines "[<cf>] [JOB <id>] ringmerge: ..."
// in the DB's LOG, and its job's totals.
class SubcompactionReport {
 public:
  // `job_stats` may be nullptr (no totals), else outlives this report.
  SubcompactionReport(std::shared_ptr<Logger> info_log, std::string cf_name,
                      int job_id, uint32_t sub_job_id,
                      const RingmergeJobStats* job_stats);

  // The subcompaction runs stock, for `reason`.
  void Fallback(const std::string& reason) const;
  // The accelerated subcompaction ended with `status`.
  void Accelerated(const ringmerge::SubcompactionSummary& summary,
                   const Status& status) const;
  // What holds for the whole process, logged once, in the LOG of the DB that
  // meets it first: settings that were not understood, and the BPF merge
  // being unavailable (each accelerated line repeats the reason).
  void WarnOncePerProcess(const ringmerge::Settings& settings,
                          const ringmerge::SubcompactionSummary& opened) const;

 private:
  std::shared_ptr<Logger> info_log_;
  std::string cf_name_;
  int job_id_;
  uint32_t sub_job_id_;
  const RingmergeJobStats* job_stats_;
};

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
