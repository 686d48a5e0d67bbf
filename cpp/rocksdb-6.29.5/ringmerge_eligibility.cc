// ringmerge: see ringmerge_eligibility.h.
#include "ringmerge_eligibility.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>

#include "db/column_family.h"
#include "db/compaction/compaction.h"
#include "db/table_cache.h"
#include "file/filename.h"
#include "options/cf_options.h"
#include "options/db_options.h"
#include "rocksdb/comparator.h"
#include "rocksdb/file_system.h"
#include "table/block_based/block_based_table_reader.h"
#include "table/block_based/uncompression_dict_reader.h"
#include "trace_replay/block_cache_tracer.h"
#include "util/compression.h"

namespace ROCKSDB_NAMESPACE {
namespace ringmerge_internal {

namespace {

// "#123": how reasons name an input file.
std::string FileName(const FileMetaData& meta) {
  char num[64];
  snprintf(num, sizeof(num), "#%" PRIu64, meta.fd.GetNumber());
  return num;
}

// Whether ringmerge decodes the codec a table's blocks may be compressed
// with, from its `compression_name` property (what BlockBasedTable sets
// blocks_maybe_compressed from), exactly as UncompressData does
// (src/block/compression.rs). BZip2 and Xpress are not decoded (and this build
// writes neither); any other name (a future or custom codec) is unknown, so
// such files keep the stock path.
bool CodecDecodable(const std::string& name) {
  // TEST HOOK: a codec the settings name is treated as undecodable, so the
  // fallback can be tested end to end with a codec this build writes (every
  // codec it writes is decodable).
  const rust::String& fault = ProcessSettings().fault_undecodable_codec;
  if (!fault.empty() && Slice(fault.data(), fault.size()) == Slice(name)) {
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

std::string UndecodableCodecReason(const FileMetaData& meta,
                                   const std::string& codec) {
  return "input " + FileName(meta) + " is compressed with " + codec +
         ", which ringmerge does not decode";
}

// MyRocks' comparator for every column family but the "rev:" ones
// (storage/rocksdb/rdb_comparator.h, Rdb_pk_comparator): Compare is
// Slice::compare, i.e. memcmp then length, exactly the bytewise order.
// "rev:RocksDB_SE_v3.10" (Rdb_rev_comparator) is its reverse: -Slice::compare.
const char* const kMyRocksBytewiseComparatorName = "RocksDB_SE_v3.10";
const char* const kMyRocksReverseComparatorName = "rev:RocksDB_SE_v3.10";

int Sign(int v) { return (v > 0) - (v < 0); }

// Whether a comparator named `name` orders user keys as memcmp does
// (`sign` 1) or its reverse (-1): the name, no timestamps, and a few probe
// pairs ordered as `sign` x Slice::compare (so another comparator reusing
// the name is not taken on trust alone).
bool OrdersAs(const Comparator* ucmp, const char* name, int sign) {
  if (std::strcmp(ucmp->Name(), name) != 0 || ucmp->timestamp_size() != 0) {
    return false;
  }
  // Lengths, byte order past the common prefix, bytes as unsigned.
  static const char* const kProbes[][2] = {
      {"", "a"},      {"a", ""},      {"a", "b"},      {"b", "a"},
      {"a", "ab"},    {"ab", "a"},    {"abc", "abd"},  {"x", "x"},
      {"\x01", "\xff"}, {"\xff", "\x01"}, {"\x7f", "\x80"}, {"\x80", "\x7f"},
  };
  for (const auto& p : kProbes) {
    const Slice a(p[0]);
    const Slice b(p[1]);
    if (Sign(ucmp->Compare(a, b)) != sign * Sign(a.compare(b))) {
      return false;
    }
  }
  return true;
}

// The table reader of an input file: the pinned one (max_open_files=-1), or
// one from the table cache, which opens the file exactly as the stock
// compaction iterator would: TableCache::NewIterator's FindTable arguments
// for TableReaderCaller::kCompaction. (The first opener decides the cached
// reader's statistics and read histogram, so the defaults, which record read
// statistics, would change later stock reads' accounting.)
class TableRef {
 public:
  TableRef(ColumnFamilyData* cfd, const MutableCFOptions& mopts,
           const FileMetaData& meta, int level, const ReadOptions& ro,
           const FileOptions& fopts, Status* s)
      : cache_(cfd->table_cache()), handle_(nullptr), reader_(nullptr) {
    reader_ = meta.fd.table_reader;
    if (reader_ == nullptr) {
      *s = cache_->FindTable(
          ro, fopts, cfd->internal_comparator(), meta.fd, &handle_,
          mopts.prefix_extractor, ro.read_tier == kBlockCacheTier,
          /*record_read_stats=*/false, /*file_read_hist=*/nullptr,
          /*skip_filters=*/false, level,
          /*prefetch_index_and_filter_in_cache=*/true,
          level == 0 ? MaxFileSizeForL0MetaPin(mopts) : 0, meta.temperature);
      if (s->ok()) {
        reader_ = cache_->GetTableReaderFromHandle(handle_);
      }
    }
  }
  ~TableRef() {
    if (handle_ != nullptr) {
      cache_->ReleaseHandle(handle_);
    }
  }
  TableRef(const TableRef&) = delete;
  TableRef& operator=(const TableRef&) = delete;
  TableReader* get() const { return reader_; }

 private:
  TableCache* cache_;
  Cache::Handle* handle_;
  TableReader* reader_;
};

// Why the open table cannot be served; empty when it can.
std::string CheckTable(const BlockBasedTable::Rep& rep,
                       const FileMetaData& meta) {
  const auto& props = rep.table_properties;
  if (props == nullptr) {
    return "input " + FileName(meta) + " has no table properties";
  }
  if (rep.blocks_maybe_compressed && !CodecDecodable(props->compression_name)) {
    return UndecodableCodecReason(meta, props->compression_name);
  }
  // No user_defined_timestamps_persisted check: 6.29.5 never strips them.
  if (rep.footer.format_version() < 2) {
    // Below 2, compressed blocks carry no varint size prefix (and LZ4 a
    // platform-dependent one); such files are old enough to keep stock.
    return "input " + FileName(meta) + " has format_version < 2";
  }
  return "";
}

// RocksDB read this table through a wrapped FileSystem; ringmerge would read
// the OS file at the same path. Only when that is the same file (a regular
// file of the same size whose footer is the footer RocksDB parsed) are the
// bytes the same; then every block is checksum-verified as usual. Returns why
// not; empty when it is.
std::string VerifyLocalFile(const BlockBasedTable::Rep& rep,
                            const ringmerge::InputFile& file) {
  ringmerge::ExpectedFooter expected{};
  expected.checksum_type = static_cast<uint8_t>(rep.footer.checksum_type());
  expected.format_version = rep.footer.format_version();
  // 0: 6.29.5's footer has no context checksum (format_version <= 5).
  expected.base_context_checksum = 0;
  expected.metaindex_offset = rep.footer.metaindex_handle().offset();
  expected.metaindex_size = rep.footer.metaindex_handle().size();
  return std::string(ringmerge::verify_local_file(
      rust::Str(file.path.data(), file.path.size()), file.file_size,
      expected));
}

// The data blocks that may hold keys in the scope's bounds, from the table's
// index. For binary-search, hash and binary-search-with-first-key indexes
// that index block is already in memory (no I/O); a partitioned index's
// iterator reads the partitions it walks (from the block cache if there is
// one, else from the file, as the stock compaction iterator would).
Status ListBlocks(const InputScope& scope, const BlockBasedTable::Rep& rep,
                  BlockCacheLookupContext* lookup_context,
                  ringmerge::InputFile* out) {
  IndexBlockIter iiter_on_stack;
  InternalIteratorBase<IndexValue>* iiter = rep.index_reader->NewIterator(
      *scope.read_options, /*disable_prefix_seek=*/true, &iiter_on_stack,
      /*get_context=*/nullptr, lookup_context);
  std::unique_ptr<InternalIteratorBase<IndexValue>> iiter_owner;
  if (iiter != &iiter_on_stack) {
    iiter_owner.reset(iiter);
  }
  // The first block that can hold a key >= start is the first whose separator
  // is >= start's seek key; after the first block whose separator's user key
  // is >= end, no block can hold a key < end.
  if (scope.start_ikey != nullptr) {
    iiter->Seek(*scope.start_ikey);
  } else {
    iiter->SeekToFirst();
  }
  const Comparator* ucmp = scope.cfd->user_comparator();
  // One allocation for the whole index (it grows a block at a time otherwise).
  out->block_handles.reserve(2 * rep.table_properties->num_data_blocks);
  for (; iiter->Valid(); iiter->Next()) {
    const BlockHandle& h = iiter->value().handle;
    out->block_handles.push_back(h.offset());
    out->block_handles.push_back(h.size());
    if (scope.end_user_key != nullptr &&
        ucmp->Compare(iiter->user_key(), *scope.end_user_key) >= 0) {
      break;
    }
  }
  return iiter->status();
}

}  // namespace

bool UserKeyOrderOf(const Comparator* ucmp, ringmerge::UserKeyOrder* order) {
  if (ucmp == BytewiseComparator() ||
      OrdersAs(ucmp, kMyRocksBytewiseComparatorName, 1)) {
    *order = ringmerge::UserKeyOrder::Bytewise;
  } else if (ucmp == ReverseBytewiseComparator() ||
             OrdersAs(ucmp, kMyRocksReverseComparatorName, -1)) {
    *order = ringmerge::UserKeyOrder::ReverseBytewise;
  } else {
    return false;
  }
  return true;
}

std::string CheckCompaction(const Compaction& c,
                            const ImmutableDBOptions& db_options) {
  const ColumnFamilyData* cfd = c.column_family_data();
  const Comparator* ucmp = cfd->user_comparator();
  ringmerge::UserKeyOrder order;
  if (!UserKeyOrderOf(ucmp, &order)) {
    return std::string("comparator ") + ucmp->Name() +
           " is not bytewise or its reverse (ringmerge merges with RocksDB's "
           "bytewise comparators or MyRocks' " + kMyRocksBytewiseComparatorName +
           " and " + kMyRocksReverseComparatorName + ")";
  }
  // 6.29.5 keeps the table factory in the immutable CF options.
  const std::shared_ptr<TableFactory>& table_factory =
      cfd->ioptions()->table_factory;
  if (table_factory == nullptr ||
      !table_factory->IsInstanceOf(TableFactory::kBlockBasedTableName())) {
    return "table format is not block-based";
  }
  const ringmerge::Settings& settings = ProcessSettings();
  if (WrappedFileSystem(db_options) != nullptr && !settings.verify_wrapped_fs) {
    return std::string("file system ") + db_options.fs->Name() +
           " is not the default POSIX file system (" +
           (settings.wrapped_fs_warning.empty()
                ? std::string("RINGMERGE_WRAPPED_FS=verify would check its "
                              "files and read them directly")
                : std::string(settings.wrapped_fs_warning)) +
           ")";
  }
  return "";
}

bool Overlaps(const Comparator* ucmp, const FileMetaData& meta,
              const Slice* start, const Slice* end) {
  // end is exclusive: a file whose smallest user key is end holds none below.
  return !(start != nullptr &&
           ucmp->Compare(*start, meta.largest.user_key()) > 0) &&
         !(end != nullptr &&
           ucmp->Compare(meta.smallest.user_key(), *end) >= 0);
}

const FileSystem* WrappedFileSystem(const ImmutableDBOptions& db_options) {
  return db_options.fs.get() != FileSystem::Default().get()
             ? db_options.fs.get()
             : nullptr;
}

Status DescribeFile(const InputScope& scope, const FileMetaData& meta,
                    int level, ringmerge::InputFile* out,
                    std::string* reason) {
  Status s;
  TableRef table(scope.cfd, *scope.mopts, meta, level, *scope.read_options,
                 *scope.file_options, &s);
  if (!s.ok()) {
    *reason = "cannot open table: " + s.ToString();
    return s;
  }
  const BlockBasedTable::Rep& rep =
      *static_cast<BlockBasedTable*>(table.get())->get_rep();
  *reason = CheckTable(rep, meta);
  if (!reason->empty()) {
    return Status::NotSupported(*reason);
  }

  BlockCacheLookupContext lookup_context(TableReaderCaller::kCompaction);
  out->blocks_maybe_compressed = rep.blocks_maybe_compressed;
  // An ingested file's keys are read with its global seqno (their own is 0),
  // as RocksDB's block iterators do; 0 keeps them as stored (the same then).
  out->global_seqno =
      rep.global_seqno == kDisableGlobalSequenceNumber ? 0 : rep.global_seqno;
  if (rep.blocks_maybe_compressed && rep.uncompression_dict_reader) {
    // The dictionary every block of this file was compressed with
    // (CompressionOptions::max_dict_bytes > 0): pinned in the reader when
    // there is no block cache, else looked up or read like stock does.
    CachableEntry<UncompressionDict> dict;
    s = rep.uncompression_dict_reader->GetOrReadUncompressionDictionary(
        /*prefetch_buffer=*/nullptr, /*no_io=*/false,
        /*get_context=*/nullptr, &lookup_context, &dict);
    if (!s.ok()) {
      *reason = "reading the compression dictionary of " + FileName(meta) +
                ": " + s.ToString();
      return s;
    }
    if (dict.GetValue() != nullptr) {
      out->compression_dict = ToBytes(dict.GetValue()->GetRawDict());
    }
  }

  out->path = TableFileName(scope.cfd->ioptions()->cf_paths,
                            meta.fd.GetNumber(), meta.fd.GetPathId());
  out->file_size = meta.fd.GetFileSize();
  out->checksum_type = static_cast<uint8_t>(rep.footer.checksum_type());
  // 0: 6.29.5's footer has no context checksum (format_version <= 5).
  out->base_context_checksum = 0;
  if (scope.wrapped_fs != nullptr) {
    const std::string mismatch = VerifyLocalFile(rep, *out);
    if (!mismatch.empty()) {
      *reason = "input " + FileName(meta) + " on file system " +
                scope.wrapped_fs->Name() + ": " + mismatch;
      return Status::NotSupported(*reason);
    }
  }

  s = ListBlocks(scope, rep, &lookup_context, out);
  if (!s.ok()) {
    *reason = "reading the index of " + FileName(meta) + ": " + s.ToString();
  }
  return s;
}

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
