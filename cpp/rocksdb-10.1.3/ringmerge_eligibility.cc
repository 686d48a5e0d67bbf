// ringmerge: see ringmerge_eligibility.h.
#include "ringmerge_eligibility.h"

#include <cinttypes>
#include <cstdio>
#include <memory>

#include "db/column_family.h"
#include "db/compaction/compaction.h"
#include "db/table_cache.h"
#include "file/filename.h"
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

// Why the open table cannot be served; empty when it can.
std::string CheckTable(const BlockBasedTable::Rep& rep,
                       const FileMetaData& meta, bool timestamps_persisted) {
  const auto& props = rep.table_properties;
  if (props == nullptr) {
    return "input " + FileName(meta) + " has no table properties";
  }
  if (rep.blocks_maybe_compressed && !CodecDecodable(props->compression_name)) {
    return UndecodableCodecReason(meta, props->compression_name);
  }
  // One way for the whole subcompaction: the merge appends the minimum
  // timestamp to every key or to none (a column family that changed
  // persist_user_defined_timestamps can hold files of both kinds).
  if (rep.user_defined_timestamps_persisted != timestamps_persisted) {
    return "input " + FileName(meta) +
           (timestamps_persisted
                ? " does not persist timestamps, unlike its column family"
                : " persists timestamps, unlike its column family");
  }
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
  expected.base_context_checksum = rep.footer.base_context_checksum();
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
    // Without timestamps, as stock picks files (MakeInputIterator): every
    // version of the end key is past the end.
    if (scope.end_user_key != nullptr &&
        ucmp->CompareWithoutTimestamp(iiter->user_key(),
                                      *scope.end_user_key) >= 0) {
      break;
    }
  }
  return iiter->status();
}

}  // namespace

bool UserKeyOrderOf(const Comparator* ucmp, ringmerge::UserKeyOrder* order) {
  // RocksDB's built-in comparators are singletons: compared by address.
  if (ucmp == BytewiseComparator()) {
    *order = ringmerge::UserKeyOrder::Bytewise;
  } else if (ucmp == BytewiseComparatorWithU64Ts()) {
    *order = ringmerge::UserKeyOrder::BytewiseU64Ts;
  } else if (ucmp == ReverseBytewiseComparator()) {
    *order = ringmerge::UserKeyOrder::ReverseBytewise;
  } else if (ucmp == ReverseBytewiseComparatorWithU64Ts()) {
    *order = ringmerge::UserKeyOrder::ReverseBytewiseU64Ts;
  } else {
    return false;
  }
  return true;
}

std::string CheckCompaction(const Compaction& c,
                            const ImmutableDBOptions& db_options) {
  const Comparator* ucmp = c.column_family_data()->user_comparator();
  const MutableCFOptions& mopts = c.mutable_cf_options();
  ringmerge::UserKeyOrder order;
  if (!UserKeyOrderOf(ucmp, &order)) {
    return std::string("comparator ") + ucmp->Name() +
           " is not one of RocksDB's bytewise or reverse bytewise comparators "
           "(with or without u64 timestamps)";
  }
  if (mopts.table_factory == nullptr ||
      !mopts.table_factory->IsInstanceOf(
          TableFactory::kBlockBasedTableName())) {
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
              const std::optional<Slice>& start,
              const std::optional<Slice>& end) {
  // Without timestamps, as VersionSet::MakeInputIterator skips files.
  return !(start.has_value() &&
           ucmp->CompareWithoutTimestamp(*start, meta.largest.user_key()) >
               0) &&
         !(end.has_value() &&
           ucmp->CompareWithoutTimestamp(*end, meta.smallest.user_key()) < 0);
}

std::string CheckInputProperties(const Compaction& c,
                                 const std::optional<Slice>& start,
                                 const std::optional<Slice>& end) {
  const ColumnFamilyData* cfd = c.column_family_data();
  const TablePropertiesCollection& input_props = c.GetInputTableProperties();
  const std::string no_compression = CompressionTypeToString(kNoCompression);
  for (size_t which = 0; which < c.num_input_levels(); which++) {
    const LevelFilesBrief* flevel = c.input_levels(which);
    for (size_t i = 0; i < flevel->num_files; i++) {
      const FileMetaData& meta = *flevel->files[i].file_metadata;
      if (!Overlaps(cfd->user_comparator(), meta, start, end)) {
        continue;
      }
      auto it = input_props.find(TableFileName(
          cfd->ioptions().cf_paths, meta.fd.GetNumber(), meta.fd.GetPathId()));
      if (it == input_props.end() || it->second == nullptr) {
        continue;  // DescribeFile decides from the open table.
      }
      // The same test as BlockBasedTable's blocks_maybe_compressed, then the
      // one DescribeFile makes on the open table.
      const std::string& codec = it->second->compression_name;
      if (codec != no_compression && !CodecDecodable(codec)) {
        return UndecodableCodecReason(meta, codec);
      }
    }
  }
  return "";
}

const FileSystem* WrappedFileSystem(const ImmutableDBOptions& db_options) {
  return db_options.fs.get() != FileSystem::Default().get()
             ? db_options.fs.get()
             : nullptr;
}

Status DescribeFile(const InputScope& scope, const FileMetaData& meta,
                    ringmerge::InputFile* out, bool* has_range_deletions,
                    std::string* reason) {
  Status s;
  TableRef table(scope.cfd, *scope.mopts, meta, *scope.read_options,
                 *scope.file_options, &s);
  if (!s.ok()) {
    *reason = "cannot open table: " + s.ToString();
    return s;
  }
  const BlockBasedTable::Rep& rep =
      *static_cast<BlockBasedTable*>(table.get())->get_rep();
  *reason = CheckTable(rep, meta, scope.timestamps_persisted);
  if (!reason->empty()) {
    return Status::NotSupported(*reason);
  }

  BlockCacheLookupContext lookup_context{TableReaderCaller::kCompaction};
  out->blocks_maybe_compressed = rep.blocks_maybe_compressed;
  // An ingested file's keys are read with its global seqno (their own is 0),
  // as RocksDB's block iterators do; 0 keeps them as stored (the same then).
  out->global_seqno =
      rep.global_seqno == kDisableGlobalSequenceNumber ? 0 : rep.global_seqno;
  *has_range_deletions = rep.table_properties->num_range_deletions > 0;
  if (rep.blocks_maybe_compressed && rep.uncompression_dict_reader) {
    // The dictionary every block of this file was compressed with
    // (CompressionOptions::max_dict_bytes > 0): pinned in the reader when
    // there is no block cache, else looked up or read like stock does.
    CachableEntry<UncompressionDict> dict;
    s = rep.uncompression_dict_reader->GetOrReadUncompressionDictionary(
        /*prefetch_buffer=*/nullptr, *scope.read_options,
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

  out->path = TableFileName(scope.cfd->ioptions().cf_paths,
                            meta.fd.GetNumber(), meta.fd.GetPathId());
  out->file_size = meta.fd.GetFileSize();
  out->checksum_type = static_cast<uint8_t>(rep.footer.checksum_type());
  out->base_context_checksum = rep.footer.base_context_checksum();
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
