// ringmerge: see ringmerge_compaction_input.h.
#include "ringmerge_compaction_input.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>

#include "db/column_family.h"
#include "db/compaction/compaction.h"
#include "db/dbformat.h"
#include "db/internal_stats.h"
#include "db/range_del_aggregator.h"
#include "db/table_cache.h"
#include "file/filename.h"
#include "logging/event_logger.h"
#include "logging/logging.h"
#include "monitoring/iostats_context_imp.h"
#include "options/db_options.h"
#include "ringmerge/src/bridge.rs.h"
#include "ringmerge_read_accounting.h"
#include "ringmerge_write_behind.h"
#include "rocksdb/comparator.h"
#include "rocksdb/file_system.h"
#include "rocksdb/listener.h"
#include "rocksdb/rate_limiter.h"
#include "rocksdb/statistics.h"
#include "table/block_based/block_based_table_reader.h"
#include "table/block_based/uncompression_dict_reader.h"
#include "table/compaction_merging_iterator.h"
#include "util/compression.h"
#include "test_util/sync_point.h"
#include "trace_replay/block_cache_tracer.h"
#include "util/string_util.h"
#include "util/compression.h"

namespace ROCKSDB_NAMESPACE {

namespace {

// ringmerge's merged stream of point entries, batch by batch from Rust.
class RingmergeStream : public InternalIterator {
 public:
  RingmergeStream(rust::Box<ringmerge::CompactionMerge> merge,
                  const InternalKeyComparator* icmp)
      : merge_(std::move(merge)), icmp_(icmp) {}

  bool Valid() const override { return valid_; }
  void SeekToFirst() override;
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

  const ringmerge::CompactionMerge& merge() const { return *merge_; }

 private:
  void FetchBatch();
  void Unsupported(const char* op) {
    valid_ = false;
    status_ = Status::NotSupported(std::string("ringmerge input: ") + op);
  }

  rust::Box<ringmerge::CompactionMerge> merge_;
  const InternalKeyComparator* icmp_;
  const char* data_ = nullptr;
  const ringmerge::BatchEntry* entries_ = nullptr;
  size_t count_ = 0;
  size_t pos_ = 0;
  bool started_ = false;
  bool valid_ = false;
  Status status_;
};

}  // namespace

struct RingmergeCompactionInput::Rep {
  RingmergeStream* stream = nullptr;  // owned by the iterator
  uint64_t dict_files = 0;
  uint64_t range_del_files = 0;
  // Name of the DB's wrapped FileSystem whose files were verified and are read
  // directly (RINGMERGE_WRAPPED_FS=verify); empty on the default file system.
  std::string wrapped_fs;
  std::string io_priority;
  // The sorted runs this input merges, counted in the column family's
  // rocksdb.num-running-compaction-sorted-runs while it lives, as stock's
  // CompactionMergingIterator counts its children.
  InternalStats* internal_stats = nullptr;
  uint64_t sorted_runs = 0;
  // Output write-behind: the queue bound (0: off) and the totals of this
  // subcompaction's output files (which may outlive this input).
  uint64_t write_behind_limit = 0;
  std::shared_ptr<RingmergeWriteBehindShared> write_behind =
      std::make_shared<RingmergeWriteBehindShared>();
  // The priority the merge's reads request from the DB's rate_limiter
  // ("IO_LOW", "IO_USER"); empty when reads are not rate limited.
  std::string read_rate_limit;

  ~Rep() {
    if (internal_stats != nullptr) {
      internal_stats->DecrNumRunningCompactionSortedRuns(sorted_runs);
    }
  }
};

namespace {

// RINGMERGE_MODE=bpf: the BPF program loads in the background from process
// start (static initialization), off the first compaction's critical path.
const bool kBpfPreloadStarted = [] {
  ringmerge::preload_from_env();
  return true;
}();

// The DB's rate_limiter for ringmerge's reads: the same RequestToken calls
// (OpType::kRead, the compaction's rate_limiter_priority, the DB's statistics
// for the rate limiter's tickers) RandomAccessFileReader::Read makes before
// each piece of a compaction read, in pieces of at most one burst.
class RingmergeReadThrottle : public ringmerge::ReadThrottle {
 public:
  RingmergeReadThrottle(std::shared_ptr<RateLimiter> limiter,
                        std::shared_ptr<Statistics> stats,
                        Env::IOPriority priority)
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

// RocksDB's accounting of ringmerge's reads: what RandomAccessFileReader::Read
// records for each stock compaction read (RecordIOStats' tickers, the
// SST_READ_MICROS and FILE_READ_COMPACTION_MICROS histograms as its StopWatch
// records them, the per-level read latency histogram, and OnFileReadFinish /
// OnIOError for listeners that asked for file I/O), one call per read.
// IOSTATS' bytes_read is added on the compaction thread as batches are taken
// (its context is thread-local); its per-temperature counters are not kept.
class RingmergeReadAccounting : public ringmerge::ReadAccounting {
 public:
  struct File {
    std::string path;
    Temperature temperature;
    bool is_last_level;
    // The column family's read latency histogram of the input's level: the
    // ColumnFamilyData (and its InternalStats) outlive the merge, which ends
    // before the compaction's input is destroyed.
    HistogramImpl* read_hist;
  };

  RingmergeReadAccounting(std::vector<File> files,
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
    const File& f = files_[file];
    Statistics* stats = stats_.get();
    if (stats != nullptr) {
      RecordTick(stats,
                 f.is_last_level ? LAST_LEVEL_READ_BYTES
                                 : NON_LAST_LEVEL_READ_BYTES,
                 len);
      RecordTick(stats,
                 f.is_last_level ? LAST_LEVEL_READ_COUNT
                                 : NON_LAST_LEVEL_READ_COUNT,
                 1);
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
      const uint64_t micros = duration_nanos / 1000;
      if (stats->get_stats_level() > StatsLevel::kExceptTimers) {
        for (uint32_t h : {static_cast<uint32_t>(SST_READ_MICROS),
                           static_cast<uint32_t>(FILE_READ_COMPACTION_MICROS)}) {
          if (stats->HistEnabledForType(h)) {
            stats->reportTimeToHistogram(h, micros);
          }
        }
      }
      if (f.read_hist != nullptr) {
        f.read_hist->Add(micros);
      }
    }
    if (listeners_.empty()) {
      return;
    }
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
    FileOperationInfo info(FileOperationType::kRead, f.path, start, finish,
                           io_s, f.temperature);
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

 private:
  std::vector<File> files_;
  // Shared ownership, as RingmergeReadThrottle's: the merge-ahead companion
  // may still read after the compaction thread has moved on.
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

const ringmerge::Settings& ProcessSettings() {
  // Read once: the mode is a property of the process, like an option.
  static const ringmerge::Settings settings = ringmerge::settings_from_env();
  return settings;
}

const ringmerge::WrappedFsPolicy& WrappedFs() {
  static const ringmerge::WrappedFsPolicy policy =
      ringmerge::wrapped_fs_policy_from_env();
  return policy;
}

Status ToStatus(const ringmerge::MergeStatus& s) {
  std::string msg(s.message.data(), s.message.size());
  switch (s.code) {
    case ringmerge::StatusCode::Ok:
      return Status::OK();
    case ringmerge::StatusCode::IOError:
      return Status::IOError(msg);
    case ringmerge::StatusCode::Corruption:
      return Status::Corruption(msg);
    case ringmerge::StatusCode::NotSupported:
      return Status::NotSupported(msg);
    default:
      return Status::Aborted(msg);
  }
}

// The table reader of an input file: the pinned one (max_open_files=-1), or
// one from the table cache, which opens the file exactly as the stock
// compaction iterator would.
class TableRef {
 public:
  TableRef(ColumnFamilyData* cfd, const MutableCFOptions& mopts,
           const FileMetaData& meta, const ReadOptions& ro,
           const FileOptions& fopts, Status* s)
      : cache_(cfd->table_cache()) {
    reader_ = meta.fd.table_reader;
    if (reader_ == nullptr) {
      *s = cache_->FindTable(ro, fopts, cfd->internal_comparator(), meta,
                             &handle_, mopts, /*no_io=*/false);
      if (s->ok()) {
        reader_ = cache_->get_cache().Value(handle_);
      }
    }
  }
  ~TableRef() {
    if (handle_ != nullptr) {
      cache_->get_cache().Release(handle_);
    }
  }
  TableRef(const TableRef&) = delete;
  TableRef& operator=(const TableRef&) = delete;
  TableReader* get() const { return reader_; }

 private:
  TableCache* cache_;
  TableCache::TypedHandle* handle_ = nullptr;
  TableReader* reader_ = nullptr;
};

// The codec a table's blocks may be compressed with, from its
// `compression_name` property (what BlockBasedTable sets
// blocks_maybe_compressed from): true when ringmerge decodes it exactly as
// UncompressData does (src/block/compression.rs). BZip2 and Xpress are not
// decoded (and this build writes neither); any other name (a future or
// custom codec) is unknown, so such files keep the stock path.
bool CodecDecodable(const std::string& name) {
  // TEST HOOK: RINGMERGE_FAULT_CODEC=<compression_name> treats that codec as
  // undecodable, so the fallback can be tested end to end with a codec this
  // build writes (every codec it writes is decodable).
  static const std::string fault = [] {
    const char* v = getenv("RINGMERGE_FAULT_CODEC");
    return std::string(v != nullptr ? v : "");
  }();
  if (!fault.empty() && name == fault) {
    return false;
  }
  for (CompressionType t : {kSnappyCompression, kZlibCompression,
                            kLZ4Compression, kLZ4HCCompression, kZSTD}) {
    if (name == CompressionTypeToString(t)) {
      return true;
    }
  }
  return false;
}

rust::Vec<uint8_t> ToBytes(const Slice& s) {
  rust::Vec<uint8_t> v;
  v.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    v.push_back(static_cast<uint8_t>(s[i]));
  }
  return v;
}

// Describes one input file for Rust, or says why it cannot be served.
// Block handles come from the table's index. For binary-search, hash and
// binary-search-with-first-key indexes that index block is already in memory
// (no I/O); a partitioned index's iterator reads the partitions it walks (from
// the block cache if there is one, else from the file, as the stock compaction
// iterator would).
Status DescribeFile(ColumnFamilyData* cfd, const MutableCFOptions& mopts,
                    const FileOptions& file_options,
                    const FileMetaData& meta, const ReadOptions& ro,
                    const Slice* start_ikey, const Slice* end_user_key,
                    const FileSystem* wrapped_fs, ringmerge::InputFile* out,
                    bool* has_range_deletions,
                    std::string* reason) {
  Status s;
  TableRef table(cfd, mopts, meta, ro, file_options, &s);
  if (!s.ok()) {
    *reason = "cannot open table: " + s.ToString();
    return s;
  }
  auto* bbt = static_cast<BlockBasedTable*>(table.get());
  const BlockBasedTable::Rep* rep = bbt->get_rep();
  const auto& props = rep->table_properties;
  char num[64];
  snprintf(num, sizeof(num), "#%" PRIu64, meta.fd.GetNumber());
  if (props == nullptr) {
    *reason = std::string("input ") + num + " has no table properties";
  } else if (rep->blocks_maybe_compressed &&
             !CodecDecodable(props->compression_name)) {
    *reason = std::string("input ") + num + " is compressed with " +
              props->compression_name + ", which ringmerge does not decode";
  } else if (rep->global_seqno != kDisableGlobalSequenceNumber) {
    *reason = std::string("input ") + num + " has a global seqno (ingested)";
  } else if (!rep->user_defined_timestamps_persisted) {
    *reason = std::string("input ") + num + " does not persist timestamps";
  } else if (rep->footer.format_version() < 2) {
    // Below 2, compressed blocks carry no varint size prefix (and LZ4 a
    // platform-dependent one); such files are old enough to keep stock.
    *reason = std::string("input ") + num + " has format_version < 2";
  }
  if (!reason->empty()) {
    return Status::NotSupported(*reason);
  }

  BlockCacheLookupContext lookup_context{TableReaderCaller::kCompaction};
  out->blocks_maybe_compressed = rep->blocks_maybe_compressed;
  *has_range_deletions = props->num_range_deletions > 0;
  if (rep->blocks_maybe_compressed && rep->uncompression_dict_reader) {
    // The dictionary every block of this file was compressed with
    // (CompressionOptions::max_dict_bytes > 0): pinned in the reader when
    // there is no block cache, else looked up or read like stock does.
    CachableEntry<UncompressionDict> dict;
    s = rep->uncompression_dict_reader->GetOrReadUncompressionDictionary(
        /*prefetch_buffer=*/nullptr, ro, /*get_context=*/nullptr,
        &lookup_context, &dict);
    if (!s.ok()) {
      *reason = std::string("reading the compression dictionary of ") + num +
                ": " + s.ToString();
      return s;
    }
    if (dict.GetValue() != nullptr) {
      out->compression_dict = ToBytes(dict.GetValue()->GetRawDict());
    }
  }

  out->path = TableFileName(cfd->ioptions().cf_paths, meta.fd.GetNumber(),
                            meta.fd.GetPathId());
  out->file_size = meta.fd.GetFileSize();
  out->checksum_type = static_cast<uint8_t>(rep->footer.checksum_type());
  out->base_context_checksum = rep->footer.base_context_checksum();
  if (wrapped_fs != nullptr) {
    // RocksDB read this table through a wrapped FileSystem; ringmerge would
    // read the OS file at the same path. Only when that is the same file (a
    // regular file of the same size whose footer is the footer RocksDB parsed)
    // are the bytes the same; then every block is checksum-verified as usual.
    ringmerge::ExpectedFooter expected;
    expected.checksum_type = static_cast<uint8_t>(rep->footer.checksum_type());
    expected.format_version = rep->footer.format_version();
    expected.base_context_checksum = rep->footer.base_context_checksum();
    expected.metaindex_offset = rep->footer.metaindex_handle().offset();
    expected.metaindex_size = rep->footer.metaindex_handle().size();
    rust::String mismatch = ringmerge::verify_local_file(
        rust::Str(out->path.data(), out->path.size()), out->file_size,
        expected);
    if (!mismatch.empty()) {
      *reason = std::string("input ") + num + " on file system " +
                wrapped_fs->Name() + ": " + std::string(mismatch);
      return Status::NotSupported(*reason);
    }
  }

  IndexBlockIter iiter_on_stack;
  InternalIteratorBase<IndexValue>* iiter = rep->index_reader->NewIterator(
      ro, /*disable_prefix_seek=*/true, &iiter_on_stack,
      /*get_context=*/nullptr, &lookup_context);
  std::unique_ptr<InternalIteratorBase<IndexValue>> iiter_owner;
  if (iiter != &iiter_on_stack) {
    iiter_owner.reset(iiter);
  }
  // The first block that can hold a key >= start is the first whose separator
  // is >= start's seek key; after the first block whose separator's user key
  // is >= end, no block can hold a key < end.
  if (start_ikey != nullptr) {
    iiter->Seek(*start_ikey);
  } else {
    iiter->SeekToFirst();
  }
  const Comparator* ucmp = cfd->user_comparator();
  // One allocation for the whole index (it grows one block at a time otherwise).
  out->block_handles.reserve(2 * props->num_data_blocks);
  for (; iiter->Valid(); iiter->Next()) {
    const BlockHandle& h = iiter->value().handle;
    out->block_handles.push_back(h.offset());
    out->block_handles.push_back(h.size());
    if (end_user_key != nullptr &&
        ucmp->Compare(iiter->user_key(), *end_user_key) >= 0) {
      break;
    }
  }
  s = iiter->status();
  if (!s.ok()) {
    *reason = std::string("reading the index of ") + num + ": " + s.ToString();
  }
  return s;
}

}  // namespace

std::unique_ptr<RingmergeCompactionInput> RingmergeCompactionInput::Open(
    const Compaction* c, const std::optional<Slice>& start,
    const std::optional<Slice>& end, const ImmutableDBOptions& db_options,
    const FileOptions& file_options, const ReadOptions& read_options,
    RangeDelAggregator* range_del_agg, std::string* reason) {
  reason->clear();
  const ringmerge::Settings& settings = ProcessSettings();
  if (settings.mode == ringmerge::Mode::Off) {
    // Stock RocksDB; only a RINGMERGE_MODE that was not understood is logged.
    reason->assign(settings.warning.data(), settings.warning.size());
    return nullptr;
  }
  ColumnFamilyData* cfd = c->column_family_data();
  const MutableCFOptions& mopts = c->mutable_cf_options();
  // Eligibility. The merge orders keys with memcmp and reads the files
  // itself, so it needs the bytewise comparator, block-based tables and the
  // plain POSIX file system, or (RINGMERGE_WRAPPED_FS=verify) a wrapped one
  // whose files are verified to be plain local files (DescribeFile);
  // anything else keeps the stock path.
  if (cfd->user_comparator() != BytewiseComparator()) {
    *reason = std::string("comparator ") + cfd->user_comparator()->Name() +
              " is not the bytewise comparator";
  } else if (mopts.table_factory == nullptr ||
             !mopts.table_factory->IsInstanceOf(
                 TableFactory::kBlockBasedTableName())) {
    *reason = "table format is not block-based";
  } else if (db_options.fs.get() != FileSystem::Default().get() &&
             !WrappedFs().verify) {
    *reason = std::string("file system ") + db_options.fs->Name() +
              " is not the default POSIX file system (" +
              (WrappedFs().warning.empty()
                   ? std::string("RINGMERGE_WRAPPED_FS=verify would check "
                                 "its files and read them directly")
                   : std::string(WrappedFs().warning)) +
              ")";
  }
  if (!reason->empty()) {
    return nullptr;
  }

  IterKey start_ikey;
  Slice start_slice;
  if (start.has_value()) {
    start_ikey.SetInternalKey(*start, kMaxSequenceNumber, kValueTypeForSeek);
    start_slice = start_ikey.GetInternalKey();
  }
  const Slice* start_ptr = start.has_value() ? &start_slice : nullptr;
  const Slice* end_ptr = end.has_value() ? &*end : nullptr;
  const Comparator* ucmp = cfd->user_comparator();
  const FileSystem* wrapped_fs =
      db_options.fs.get() != FileSystem::Default().get() ? db_options.fs.get()
                                                         : nullptr;

  ringmerge::CompactionInput input;
  // What RocksDB accounts per read of each input, in the order the files go
  // into input.runs (the index the merge's reads report).
  std::vector<RingmergeReadAccounting::File> accounted_files;
  uint64_t dict_files = 0;
  // Input files (level index, file index) that hold range tombstones.
  std::vector<std::pair<size_t, size_t>> range_del_files;
  input.use_direct_reads = db_options.use_direct_reads;
  // The compaction's reads and queued writes yield to foreground and flush I/O
  // (the idle I/O class) unless RocksDB itself says writes are delayed or
  // stopped, when it raises the compaction's rate-limiter priority to IO_USER
  // (CompactionJob::GetRateLimiterPriority): then they compete as stock's do.
  int io_priority = settings.compaction_io_priority;
  std::string io_priority_name = io_priority != 0 ? "idle" : "inherit";
  if (io_priority != 0 && settings.io_priority_auto &&
      read_options.rate_limiter_priority == Env::IO_USER) {
    io_priority = 0;
    io_priority_name = "inherit(writes_delayed)";
  }
  input.io_priority = io_priority;
  input.merge_in_bpf = settings.mode == ringmerge::Mode::Bpf;
  input.memory_budget = settings.memory_budget;
  input.merge_ahead = settings.merge_ahead;
  if (start.has_value()) {
    input.has_start = true;
    input.start = ToBytes(*start);
  }
  if (end.has_value()) {
    input.has_end = true;
    input.end = ToBytes(*end);
  }

  // Whether an input overlaps [start, end): MakeInputIterator skips the rest.
  auto overlaps = [&](const FileMetaData& meta) {
    return !(start.has_value() &&
             ucmp->Compare(*start, meta.largest.user_key()) > 0) &&
           !(end.has_value() &&
             ucmp->Compare(*end, meta.smallest.user_key()) < 0);
  };
  // The common reasons to fall back are in the table properties CompactionJob
  // already loaded (GetOrInitInputTableProperties): decide them from there,
  // before DescribeFile looks any table up in the table cache, so a compaction
  // that falls back costs no table-cache lookup the stock path would not make.
  const TablePropertiesCollection& input_props = c->GetInputTableProperties();
  const std::string no_compression = CompressionTypeToString(kNoCompression);
  for (size_t which = 0; which < c->num_input_levels(); which++) {
    const LevelFilesBrief* flevel = c->input_levels(which);
    for (size_t i = 0; i < flevel->num_files; i++) {
      const FileMetaData& meta = *flevel->files[i].file_metadata;
      if (!overlaps(meta)) {
        continue;
      }
      auto it = input_props.find(TableFileName(
          cfd->ioptions().cf_paths, meta.fd.GetNumber(), meta.fd.GetPathId()));
      if (it == input_props.end() || it->second == nullptr) {
        continue;  // DescribeFile decides from the open table.
      }
      char num[64];
      snprintf(num, sizeof(num), "#%" PRIu64, meta.fd.GetNumber());
      const std::string& codec = it->second->compression_name;
      // The same test as BlockBasedTable's blocks_maybe_compressed, then the
      // one DescribeFile makes on the open table.
      if (codec != no_compression && !CodecDecodable(codec)) {
        *reason = std::string("input ") + num + " is compressed with " +
                  codec + ", which ringmerge does not decode";
      }
      if (!reason->empty()) {
        return nullptr;
      }
    }
  }

  // The same runs as VersionSet::MakeInputIterator: one per L0 file, one per
  // deeper level; files wholly outside [start, end) are skipped as it does.
  for (size_t which = 0; which < c->num_input_levels(); which++) {
    const LevelFilesBrief* flevel = c->input_levels(which);
    const bool l0 = c->level(which) == 0;
    ringmerge::SortedRun level_run;
    for (size_t i = 0; i < flevel->num_files; i++) {
      const FileMetaData& meta = *flevel->files[i].file_metadata;
      if (!overlaps(meta)) {
        continue;
      }
      ringmerge::InputFile file;
      bool has_range_deletions = false;
      Status s = DescribeFile(cfd, mopts, file_options, meta, read_options,
                              start_ptr, end_ptr, wrapped_fs, &file,
                              &has_range_deletions, reason);
      if (!s.ok()) {
        if (reason->empty()) *reason = s.ToString();
        return nullptr;
      }
      if (!file.compression_dict.empty()) {
        dict_files++;
      }
      if (has_range_deletions) {
        range_del_files.emplace_back(which, i);
      }
      accounted_files.push_back(RingmergeReadAccounting::File{
          std::string(file.path.data(), file.path.size()), meta.temperature,
          c->level(which) == cfd->ioptions().num_levels - 1,
          cfd->internal_stats() != nullptr
              ? cfd->internal_stats()->GetFileReadHist(c->level(which))
              : nullptr});
      if (l0) {
        ringmerge::SortedRun run;
        run.files.push_back(std::move(file));
        input.runs.push_back(std::move(run));
      } else {
        level_run.files.push_back(std::move(file));
      }
    }
    if (!level_run.files.empty()) {
      input.runs.push_back(std::move(level_run));
    }
  }

  const uint64_t sorted_runs = input.runs.size();
  // Reads pass the DB's rate_limiter as stock compaction reads do, when it
  // limits reads (Mode kReadsOnly or kAllIo) and the read options ask for it.
  std::unique_ptr<ringmerge::ReadThrottle> throttle;
  std::string read_rate_limit;
  if (db_options.rate_limiter != nullptr &&
      read_options.rate_limiter_priority != Env::IO_TOTAL &&
      db_options.rate_limiter->IsRateLimited(RateLimiter::OpType::kRead)) {
    throttle = std::make_unique<RingmergeReadThrottle>(
        db_options.rate_limiter, db_options.statistics,
        read_options.rate_limiter_priority);
    read_rate_limit = IOPriorityName(read_options.rate_limiter_priority);
  }
  // Reads are accounted as stock's are, when there is anything to account to:
  // statistics, or listeners that asked for file I/O events.
  std::unique_ptr<ringmerge::ReadAccounting> accounting;
  std::vector<std::shared_ptr<EventListener>> io_listeners;
  for (const auto& listener : db_options.listeners) {
    if (listener->ShouldBeNotifiedOnFileIO()) {
      io_listeners.push_back(listener);
    }
  }
  if (db_options.statistics != nullptr || !io_listeners.empty()) {
    accounting = std::make_unique<RingmergeReadAccounting>(
        std::move(accounted_files), db_options.statistics,
        std::move(io_listeners));
  }
  rust::Box<ringmerge::CompactionMerge> merge = ringmerge::open_merge(
      std::move(input), std::move(throttle), std::move(accounting));
  Status s = ToStatus(merge->status());
  if (!s.ok()) {
    // Nothing is written yet: the stock path runs and reports any real
    // problem with the inputs itself.
    *reason = "opening the merge: " + s.ToString();
    return nullptr;
  }
  ringmerge::MergeSummary opened = merge->summary();
  if (!opened.bpf_unavailable.empty()) {
    // Once per process in the LOG of the DB that met it first; every compaction line repeats
    // the reason (bpf_unavailable=...).
    static std::once_flag once;
    std::call_once(once, [&] {
      ROCKS_LOG_WARN(db_options.info_log,
                     "ringmerge: RINGMERGE_MODE=bpf but the BPF merge is unavailable, "
                     "merging natively: %s",
                     std::string(opened.bpf_unavailable).c_str());
    });
  }
  if (!settings.warning.empty()) {
    static std::once_flag warned;
    std::call_once(warned, [&] {
      ROCKS_LOG_WARN(db_options.info_log, "ringmerge: %s",
                     std::string(settings.warning).c_str());
    });
  }
  auto rep = std::make_unique<Rep>();
  rep->write_behind_limit = settings.write_behind;
  rep->write_behind->io_priority = io_priority;
  rep->io_priority = io_priority_name;
  rep->read_rate_limit = std::move(read_rate_limit);
  rep->dict_files = dict_files;
  rep->range_del_files = range_del_files.size();
  if (cfd->internal_stats() != nullptr) {
    // The same accounting (and test hook) as CompactionMergingIterator's.
    TEST_SYNC_POINT("CompactionMergingIterator::UpdateInternalStats");
    rep->internal_stats = cfd->internal_stats();
    rep->sorted_runs = sorted_runs;
    rep->internal_stats->IncrNumRunningCompactionSortedRuns(sorted_runs);
  }
  if (wrapped_fs != nullptr) {
    rep->wrapped_fs = wrapped_fs->Name();
  }
  const InternalKeyComparator* icmp = &cfd->internal_comparator();
  auto stream = std::make_unique<RingmergeStream>(std::move(merge), icmp);
  rep->stream = stream.get();
  if (range_del_files.empty()) {
    return std::unique_ptr<RingmergeCompactionInput>(
        new RingmergeCompactionInput(std::move(rep), std::move(stream)));
  }

  // Range tombstones, exactly as MakeInputIterator handles them: each input
  // file's tombstones go to the range-del aggregator (truncated to the file,
  // or for deeper levels to the compaction's atomic unit boundaries, as
  // LevelIterator passes them), and each file's TruncatedRangeDelIterator
  // (truncated to the file) feeds CompactionMergingIterator, which emits the
  // tombstones' start keys as sentinel entries among the point entries. Here
  // the point entries are ringmerge's stream (one child) and every file with
  // tombstones is a child with no point entries: the merged order is by
  // internal key, so the sequence equals stock's. Only files the stock
  // iterators would open are used: for deeper levels LevelIterator stops
  // before a file whose smallest key reaches `end` (iterate_upper_bound).
  std::vector<InternalIterator*> children;
  std::vector<std::pair<std::unique_ptr<TruncatedRangeDelIterator>,
                        std::unique_ptr<TruncatedRangeDelIterator>**>>
      tombstones;
  children.push_back(stream.release());
  tombstones.emplace_back(nullptr, nullptr);
  const SequenceNumber level_read_seq =
      read_options.snapshot != nullptr
          ? read_options.snapshot->GetSequenceNumber()
          : kMaxSequenceNumber;
  uint64_t used = 0;
  Status ts;
  for (const auto& [which, i] : range_del_files) {
    const LevelFilesBrief* flevel = c->input_levels(which);
    const FileMetaData& meta = *flevel->files[i].file_metadata;
    const int level = c->level(which);
    const InternalKey* smallest_ck = nullptr;
    const InternalKey* largest_ck = nullptr;
    if (level != 0) {
      if (end.has_value() && ucmp->Compare(meta.smallest.user_key(), *end) >= 0) {
        continue;
      }
      const auto* bounds = c->boundaries(which);
      if (bounds != nullptr && i < bounds->size()) {
        smallest_ck = (*bounds)[i].smallest;
        largest_ck = (*bounds)[i].largest;
      }
    }
    std::unique_ptr<TruncatedRangeDelIterator> range_del_iter;
    // The point iterator it also returns is dropped unpositioned (no I/O).
    std::unique_ptr<InternalIterator> point(cfd->table_cache()->NewIterator(
        read_options, file_options, *icmp, meta, range_del_agg, mopts,
        /*table_reader_ptr=*/nullptr, /*file_read_hist=*/nullptr,
        TableReaderCaller::kCompaction, /*arena=*/nullptr,
        /*skip_filters=*/false, level,
        level == 0 ? MaxFileSizeForL0MetaPin(mopts) : 0, smallest_ck,
        largest_ck, /*allow_unprepared_value=*/false,
        level == 0 ? nullptr : &level_read_seq, &range_del_iter));
    ts = point->status();
    if (!ts.ok()) {
      break;
    }
    if (range_del_iter != nullptr) {
      children.push_back(NewEmptyInternalIterator<Slice>(/*arena=*/nullptr));
      tombstones.emplace_back(std::move(range_del_iter), nullptr);
      used++;
    }
  }
  // The merging iterator owns the children (the stream included) from here.
  std::unique_ptr<InternalIterator> merged(NewCompactionMergingIterator(
      icmp, children.data(), static_cast<int>(children.size()), tombstones,
      /*arena=*/nullptr, /*stats=*/nullptr));
  if (!ts.ok()) {
    // Nothing is written yet. Tombstones already added to the aggregator are
    // the ones MakeInputIterator adds again (it skips files already added).
    *reason = "reading range tombstones: " + ts.ToString();
    return nullptr;
  }
  rep->range_del_files = used;
  return std::unique_ptr<RingmergeCompactionInput>(
      new RingmergeCompactionInput(std::move(rep), std::move(merged)));
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

namespace {

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

}  // namespace

void RingmergeCompactionInput::WrapOutputFile(
    std::unique_ptr<FSWritableFile>* file) {
  if (rep_->write_behind_limit == 0) {
    return;
  }
  *file = std::make_unique<RingmergeWriteBehindFile>(
      std::move(*file), static_cast<size_t>(rep_->write_behind_limit),
      rep_->write_behind);
}

RingmergeSummary RingmergeCompactionInput::Summary() const {
  ringmerge::MergeSummary m = rep_->stream->merge().summary();
  RingmergeSummary s;
  s.backend = std::string(m.backend);
  s.io_uring_fallback_reason = std::string(m.io_uring_fallback_reason);
  s.runs = m.runs;
  s.files = m.files;
  s.blocks = m.blocks;
  s.compressed_blocks = m.compressed_blocks;
  s.dict_files = rep_->dict_files;
  s.range_del_files = rep_->range_del_files;
  s.entries = m.entries;
  s.bytes_read = m.bytes_read;
  s.reads_submitted = m.reads_submitted;
  s.io_uring_enter_calls = m.io_uring_enter_calls;
  s.short_reads = m.short_reads;
  s.wait_micros = m.wait_micros;
  s.merge_micros = m.merge_micros;
  s.merge_engine = std::string(m.merge_engine);
  s.bpf_unavailable = std::string(m.bpf_unavailable);
  s.bpf_calls = m.bpf_calls;
  s.ahead = m.ahead;
  s.ahead_wait_micros = m.ahead_wait_micros;
  s.ahead_cpu_micros = m.ahead_cpu_micros;
  s.ahead_unavailable = std::string(m.ahead_unavailable);
  s.ahead_attrs_unapplied = std::string(m.ahead_attrs_unapplied);
  s.wrapped_fs = rep_->wrapped_fs;
  s.io_priority = rep_->io_priority;
  s.read_rate_limit = rep_->read_rate_limit;
  s.rate_limit_wait_micros = m.rate_limit_wait_micros;
  const RingmergeWriteBehindShared& wb = *rep_->write_behind;
  s.write_behind_limit = rep_->write_behind_limit;
  s.write_behind_files = wb.files.load(std::memory_order_relaxed);
  s.write_behind_bytes = wb.bytes.load(std::memory_order_relaxed);
  s.write_behind_full_wait_micros =
      wb.full_wait_micros.load(std::memory_order_relaxed);
  s.write_behind_drain_wait_micros =
      wb.drain_wait_micros.load(std::memory_order_relaxed);
  s.write_behind_cpu_micros =
      wb.writer_cpu_micros.load(std::memory_order_relaxed);
  s.write_behind_write_micros = wb.write_micros.load(std::memory_order_relaxed);
  return s;
}

std::string RingmergeSummary::ToString() const {
  char buf[512];
  snprintf(buf, sizeof(buf),
           "tier=2 backend=%s merge=%s runs=%" PRIu64 " files=%" PRIu64
           " blocks=%" PRIu64 " compressed_blocks=%" PRIu64
           " dict_files=%" PRIu64 " range_del_files=%" PRIu64
           " entries=%" PRIu64 " bytes_read=%" PRIu64
           " reads_submitted=%" PRIu64 " io_uring_enter=%" PRIu64
           " short_reads=%" PRIu64 " read_wait_ms=%.1f merge_ms=%.1f",
           backend.c_str(), merge_engine.c_str(), runs, files, blocks,
           compressed_blocks, dict_files, range_del_files, entries, bytes_read,
           reads_submitted, io_uring_enter_calls, short_reads,
           wait_micros / 1000.0, merge_micros / 1000.0);
  std::string out(buf);
  if (bpf_calls > 0) {
    out += " bpf_calls=" + std::to_string(bpf_calls);
  }
  if (!bpf_unavailable.empty()) {
    out += " bpf_unavailable=\"" + bpf_unavailable + "\"";
  }
  if (ahead) {
    snprintf(buf, sizeof(buf),
             " merge_ahead=on ahead_wait_ms=%.1f ahead_cpu_ms=%.1f",
             ahead_wait_micros / 1000.0, ahead_cpu_micros / 1000.0);
    out += buf;
    if (!ahead_attrs_unapplied.empty()) {
      out += " ahead_attrs_unapplied=\"" + ahead_attrs_unapplied + "\"";
    }
  } else if (!ahead_unavailable.empty()) {
    out += " merge_ahead_unavailable=\"" + ahead_unavailable + "\"";
  } else {
    out += " merge_ahead=off";
  }
  if (!io_priority.empty()) {
    out += " io_priority=" + io_priority;
  }
  if (!wrapped_fs.empty()) {
    // The operator chose RINGMERGE_WRAPPED_FS=verify: say whose reads were
    // bypassed (fault injection, accounting) in every line.
    out += " wrapped_fs=\"" + wrapped_fs + "\" (footers verified, read directly)";
  }
  if (!read_rate_limit.empty()) {
    snprintf(buf, sizeof(buf), " read_rate_limit=%s rate_limit_wait_ms=%.1f",
             read_rate_limit.c_str(), rate_limit_wait_micros / 1000.0);
    out += buf;
  }
  if (!io_uring_fallback_reason.empty()) {
    out += " io_uring_unavailable=\"" + io_uring_fallback_reason + "\"";
  }
  if (write_behind_limit == 0) {
    out += " write_behind=off";
  } else {
    snprintf(buf, sizeof(buf),
             " write_behind=%" PRIu64 " wb_files=%" PRIu64
             " wb_bytes=%" PRIu64
             " wb_write_ms=%.1f wb_full_wait_ms=%.1f wb_drain_wait_ms=%.1f"
             " wb_cpu_ms=%.1f",
             write_behind_limit, write_behind_files, write_behind_bytes,
             write_behind_write_micros / 1000.0,
             write_behind_full_wait_micros / 1000.0,
             write_behind_drain_wait_micros / 1000.0,
             write_behind_cpu_micros / 1000.0);
    out += buf;
  }
  return out;
}

namespace {

// RINGMERGE_OUTCOME_LOG=<path>: one line per subcompaction ("accelerated ..."
// or "fallback <reason>") appended to a file that outlives the DB. RocksDB's
// own test suites delete their DB directories (and LOGs) when a test ends;
// this is how a suite run still reports what share of its compactions
// ringmerge served.
void AppendOutcome(const std::string& line) {
  static std::mutex mu;
  static FILE* out = [] {
    const char* path = getenv("RINGMERGE_OUTCOME_LOG");
    return path != nullptr && *path != '\0' ? fopen(path, "ae") : nullptr;
  }();
  if (out == nullptr) {
    return;
  }
  std::lock_guard<std::mutex> lock(mu);
  fprintf(out, "%s\n", line.c_str());
  fflush(out);
}

}  // namespace

void RingmergeJobStats::AddAccelerated(const RingmergeSummary& s) {
  AppendOutcome("accelerated " + s.ToString());
  std::lock_guard<std::mutex> lock(mu_);
  accelerated_++;
  total_.backend = s.backend;
  total_.merge_engine = s.merge_engine;
  total_.bpf_calls += s.bpf_calls;
  total_.ahead = total_.ahead || s.ahead;
  total_.ahead_wait_micros += s.ahead_wait_micros;
  total_.ahead_cpu_micros += s.ahead_cpu_micros;
  if (!s.read_rate_limit.empty()) {
    total_.read_rate_limit = s.read_rate_limit;
  }
  total_.rate_limit_wait_micros += s.rate_limit_wait_micros;
  total_.runs += s.runs;
  total_.files += s.files;
  total_.blocks += s.blocks;
  total_.compressed_blocks += s.compressed_blocks;
  total_.dict_files += s.dict_files;
  total_.range_del_files += s.range_del_files;
  total_.entries += s.entries;
  total_.bytes_read += s.bytes_read;
  total_.reads_submitted += s.reads_submitted;
  total_.io_uring_enter_calls += s.io_uring_enter_calls;
  total_.short_reads += s.short_reads;
  total_.wait_micros += s.wait_micros;
  total_.merge_micros += s.merge_micros;
  total_.write_behind_limit = s.write_behind_limit;
  total_.write_behind_files += s.write_behind_files;
  total_.write_behind_bytes += s.write_behind_bytes;
  total_.write_behind_full_wait_micros += s.write_behind_full_wait_micros;
  total_.write_behind_drain_wait_micros += s.write_behind_drain_wait_micros;
}

void RingmergeJobStats::AddFallback(const std::string& reason) {
  AppendOutcome("fallback " + reason);
  std::lock_guard<std::mutex> lock(mu_);
  fallbacks_++;
  fallback_reason_ = reason;
}

void RingmergeJobStats::AppendToEvent(EventLoggerStream& stream) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (accelerated_ == 0 && fallbacks_ == 0) {
    return;
  }
  stream << "ringmerge_path" << (accelerated_ > 0 ? "accelerated" : "stock");
  stream << "ringmerge_accelerated_subcompactions" << accelerated_;
  stream << "ringmerge_fallback_subcompactions" << fallbacks_;
  if (fallbacks_ > 0) {
    stream << "ringmerge_fallback_reason" << fallback_reason_;
  }
  if (accelerated_ > 0) {
    stream << "ringmerge_backend" << total_.backend;
    stream << "ringmerge_merge" << total_.merge_engine;
    stream << "ringmerge_blocks" << total_.blocks;
    stream << "ringmerge_compressed_blocks" << total_.compressed_blocks;
    stream << "ringmerge_bytes_read" << total_.bytes_read;
    stream << "ringmerge_reads_submitted" << total_.reads_submitted;
    stream << "ringmerge_io_uring_enter_calls" << total_.io_uring_enter_calls;
    stream << "ringmerge_read_wait_micros" << total_.wait_micros;
    stream << "ringmerge_merge_micros" << total_.merge_micros;
    stream << "ringmerge_merge_ahead" << (total_.ahead ? "on" : "off");
    stream << "ringmerge_merge_ahead_wait_micros" << total_.ahead_wait_micros;
    stream << "ringmerge_merge_ahead_cpu_micros" << total_.ahead_cpu_micros;
    if (!total_.read_rate_limit.empty()) {
      stream << "ringmerge_read_rate_limit" << total_.read_rate_limit;
      stream << "ringmerge_rate_limit_wait_micros"
             << total_.rate_limit_wait_micros;
    }
    stream << "ringmerge_write_behind" << total_.write_behind_limit;
    stream << "ringmerge_write_behind_bytes" << total_.write_behind_bytes;
    stream << "ringmerge_write_behind_wait_micros"
           << total_.write_behind_full_wait_micros +
                  total_.write_behind_drain_wait_micros;
  }
}

}  // namespace ROCKSDB_NAMESPACE
