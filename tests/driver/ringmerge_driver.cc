// ringmerge_driver: builds a deterministic RocksDB database, compacts it, and
// dumps what the compactions wrote, so the same scenario run under
// RINGMERGE_MODE=off (stock) and RINGMERGE_MODE=native can be compared byte
// for byte. Built by the patched RocksDB's CMake (it links librocksdb.a).
//
//   ringmerge_driver run     --db DIR --out FILE [scenario flags]  build+compact+dump
//   ringmerge_driver build   --db DIR --expect FILE [scenario flags]  build only
//   ringmerge_driver compact --db DIR [--direct] [--truncate NAME@LEN]
//                                      CompactRange, prints status; --truncate
//                                      cuts DIR/NAME to LEN bytes after the DB
//                                      opened it (its table reader is open)
//   ringmerge_driver verify  --db DIR --expect FILE     reads back every key
//   ringmerge_driver worker  --job JOBS/<id> [--kill-at claim|file|write]
//                                      runs one remote compaction job a
//                                      primary with --remote JOBS wrote (see
//                                      FolderCompactionService), exits 0
//   ringmerge_driver load    --db DIR --keys N [--value-size B] [--write-buffer-mb M]
//                            [--compaction-threads T]
//                                      a live database: N random 16-byte keys
//                                      (db_bench fillrandom's shape, no WAL)
//                                      with automatic compactions on, then waits
//                                      for them; prints the write rate, the
//                                      stall time and the compactions' totals
//                                      (and with --remote the workers' CPU)
//   ringmerge_driver bench   --db DIR [--drop-caches] [scenario flags]
//                                      build (holding its snapshots), drop the
//                                      page cache, CompactRange, print the job
//                                      lines: a timed compaction (the LOG's
//                                      compaction_finished events) with
//                                      snapshots held, for the benchmarks
//
// --fs picks the DB's file system (every command of one DB must use the same):
//   default      FileSystem::Default() (the POSIX file system)
//   env-wrapper  an EnvWrapper over Env::Default(), as RocksDB's test SpecialEnv
//                is: the DB sees a LegacyFileSystemWrapper, passing bytes through
//   xor          a FileSystemWrapper that stores .sst files XOR 0x5a on disk
//                and undoes it on read (a stand-in for an encrypting FS)
//   mem          NewMemEnv: files live in memory, nothing at the paths on disk
//
// --remote JOBS (run, compact, bench) compacts through a CompactionService
// whose jobs are folders JOBS/<id>/ (JOBS on the DB's file system: the
// primary installs the outputs by renaming them); --remote-spawn starts one
// `worker` per job, otherwise an external `worker` must take them;
// --remote-timeout S (default 600) gives a job up; a job given up (worker
// dead or timed out) is compacted locally, or with --on-worker-death fail
// fails the compaction (RocksDB's error path: a background error).
// A worker's RINGMERGE_* settings are its own environment's; a spawned worker
// inherits the primary's. RINGMERGE_DRIVER_KILL_AT=claim|file|write in a worker's
// environment is its --kill-at (the test hook for a worker that dies).
//
// Scenario flags include --compression and --bottommost-compression
// (none|snappy|lz4|lz4hc|zstd|zlib; values are made compressible then),
// --max-dict-bytes N, --index-type binary|hash|partitioned|first-key,
// --range-del (one wide DeleteRange) and --range-dels N (N narrow ones in
// every L0 and base-level file), --large-values M1,M2,... (one value of each
// size, in MiB, among the small ones: the k-th in the k-th file written, base
// levels first, wrapping around; each value is one data block larger than
// ringmerge's read size); see ParseFlags for the rest.
//
// The dump lists, per compaction, RocksDB's own job stats (records in, out,
// replaced, deletions, output files and bytes), then every live file per
// level with its boundaries, codec, index partitions and range-deletion count,
// every internal key in it (user key, sequence number, type, value length and
// value hash), and finally the count and hash of what a reader sees.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rocksdb/compaction_filter.h"
#include "rocksdb/comparator.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/listener.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/options.h"
#include "rocksdb/rate_limiter.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/sst_file_reader.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/statistics.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/options_util.h"
#include "utilities/merge_operators.h"

using namespace ROCKSDB_NAMESPACE;

namespace {

struct Flags {
  std::string cmd, db, out, expect;
  uint64_t seed = 1;
  int l0_files = 4;
  int keys_per_file = 2000;
  int key_min = 16, key_max = 16;
  int value_min = 100, value_max = 100;
  int base_levels = 2;  // pre-populate L2 and L1 before the L0 files
  int delete_pct = 10;
  int merge_pct = 0;
  int universe_factor = 3;  // key universe = factor * keys_per_file
  int snapshots = 0;        // hold a snapshot after every Nth L0 file
  int single_delete_pct = 0;  // keys written once, then SingleDeleted a file later
  bool compaction_filter = false;  // drops some values, changes others
  // User-defined timestamps (BytewiseComparatorWithU64Ts): see BuildTimestamped;
  // not persisted: the files store keys without them.
  bool timestamps = false;
  bool timestamps_not_persisted = false;
  // ReverseBytewiseComparator (with --timestamps: ReverseBytewiseComparatorWithU64Ts).
  bool reverse = false;
  bool range_del = false;
  // > 0: after every Nth L0 file, ingest an SST of overwrites (SstFileWriter +
  // IngestExternalFile); overlapping the DB, it gets a global seqno.
  int ingest = 0;
  int range_dels = 0;  // narrow DeleteRanges in every L0 and base-level file
  // --large-values: sizes in MiB of values written once each, the k-th in the
  // k-th file (base levels, deepest first, then L0), wrapping around.
  std::vector<int> large_values_mib;
  bool direct = false;
  bool force_bottommost = false;  // recompact the last level too
  int subcompactions = 1;
  uint64_t target_file_size = 256 << 10;
  std::string compression = "none";
  std::string bottommost_compression;  // empty: same as --compression
  uint32_t max_dict_bytes = 0;         // > 0: compression dictionaries
  // > 0: ZSTD trains the dictionary on up to this many sampled bytes (or
  // finalizes it, see zstd_dict_trainer); 0: the raw samples are the dictionary.
  uint32_t zstd_max_train_bytes = 0;
  bool zstd_dict_trainer = true;  // ZDICT_trainFromBuffer; false: ZDICT_finalizeDictionary
  std::string index_type = "binary";   // binary|hash|partitioned|first-key
  // Values that compress (3 of every 4 words from a small set); on by default
  // whenever a compression is set, so blocks really are stored compressed.
  bool compressible = false;
  std::string fs = "default";
  std::string truncate;  // NAME@LEN, compact only
  bool drop_caches = false;  // bench only: sync and drop the page cache first
  // > 0: a rate_limiter of this many bytes/s that limits reads only
  // (kReadsOnly, as db_bench --rate_limit_bg_reads); run and compact print the
  // bytes it let through during the final compaction.
  int64_t rate_limit_reads = 0;
  // Statistics on, and a listener that asks for file I/O events: run and
  // compact print how the final CompactRange's table file reads were
  // accounted (listener calls and bytes, statistics tickers and histogram).
  bool read_accounting = false;
  // Remote compaction (primary): the jobs folder, whether the primary starts
  // the workers itself, and how long it waits for one job.
  std::string remote;
  bool remote_spawn = false;
  int remote_timeout = 600;
  bool remote_fail_on_death = false;  // --on-worker-death fail
  // load: how many keys, memtable size, compaction threads.
  uint64_t load_keys = 0;
  int write_buffer_mb = 64;
  int compaction_threads = 2;
  // The worker command: its job folder and the test hook.
  std::string job, kill_at;
};

[[noreturn]] void Die(const std::string& msg) {
  fprintf(stderr, "ringmerge_driver: %s\n", msg.c_str());
  exit(2);
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  if (argc < 2) Die("usage: ringmerge_driver run|build|compact|verify --db DIR ...");
  f.cmd = argv[1];
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--db") f.db = next();
    else if (a == "--out") f.out = next();
    else if (a == "--expect") f.expect = next();
    else if (a == "--seed") f.seed = strtoull(next().c_str(), nullptr, 10);
    else if (a == "--l0-files") f.l0_files = atoi(next().c_str());
    else if (a == "--keys-per-file") f.keys_per_file = atoi(next().c_str());
    else if (a == "--key-min") f.key_min = atoi(next().c_str());
    else if (a == "--key-max") f.key_max = atoi(next().c_str());
    else if (a == "--value-min") f.value_min = atoi(next().c_str());
    else if (a == "--value-max") f.value_max = atoi(next().c_str());
    else if (a == "--value-size") f.value_min = f.value_max = atoi(next().c_str());
    else if (a == "--keys") f.load_keys = strtoull(next().c_str(), nullptr, 10);
    else if (a == "--write-buffer-mb") f.write_buffer_mb = atoi(next().c_str());
    else if (a == "--compaction-threads") f.compaction_threads = atoi(next().c_str());
    else if (a == "--base-levels") f.base_levels = atoi(next().c_str());
    else if (a == "--delete-pct") f.delete_pct = atoi(next().c_str());
    else if (a == "--merge-pct") f.merge_pct = atoi(next().c_str());
    else if (a == "--single-delete-pct") f.single_delete_pct = atoi(next().c_str());
    else if (a == "--compaction-filter") f.compaction_filter = true;
    else if (a == "--timestamps") f.timestamps = true;
    else if (a == "--reverse") f.reverse = true;
    else if (a == "--timestamps-not-persisted") f.timestamps = f.timestamps_not_persisted = true;
    else if (a == "--universe-factor") f.universe_factor = atoi(next().c_str());
    else if (a == "--snapshots") f.snapshots = atoi(next().c_str());
    else if (a == "--range-del") f.range_del = true;
    else if (a == "--ingest") f.ingest = atoi(next().c_str());
    else if (a == "--range-dels") f.range_dels = atoi(next().c_str());
    else if (a == "--large-values") {
      std::string list = next();
      for (size_t p = 0; p < list.size();) {
        size_t q = list.find(',', p);
        if (q == std::string::npos) q = list.size();
        int mib = atoi(list.substr(p, q - p).c_str());
        if (mib <= 0 || mib > 1024) Die("--large-values wants sizes in MiB, 1 to 1024");
        f.large_values_mib.push_back(mib);
        p = q + 1;
      }
    }
    else if (a == "--direct") f.direct = true;
    else if (a == "--force-bottommost") f.force_bottommost = true;
    else if (a == "--subcompactions") f.subcompactions = atoi(next().c_str());
    else if (a == "--target-file-size") f.target_file_size = strtoull(next().c_str(), nullptr, 10);
    else if (a == "--compression") f.compression = next();
    else if (a == "--bottommost-compression") f.bottommost_compression = next();
    else if (a == "--max-dict-bytes") f.max_dict_bytes = static_cast<uint32_t>(atoi(next().c_str()));
    else if (a == "--zstd-max-train-bytes") f.zstd_max_train_bytes = static_cast<uint32_t>(atoi(next().c_str()));
    else if (a == "--zstd-dict-trainer") f.zstd_dict_trainer = next() != "0";
    else if (a == "--index-type") f.index_type = next();
    else if (a == "--compressible") f.compressible = true;
    else if (a == "--fs") f.fs = next();
    else if (a == "--truncate") f.truncate = next();
    else if (a == "--drop-caches") f.drop_caches = true;
    else if (a == "--rate-limit-reads") f.rate_limit_reads = strtoll(next().c_str(), nullptr, 10);
    else if (a == "--read-accounting") f.read_accounting = true;
    else if (a == "--remote") f.remote = next();
    else if (a == "--remote-spawn") f.remote_spawn = true;
    else if (a == "--remote-timeout") f.remote_timeout = atoi(next().c_str());
    else if (a == "--on-worker-death") {
      std::string v = next();
      if (v != "local" && v != "fail") Die("--on-worker-death wants local|fail");
      f.remote_fail_on_death = v == "fail";
    }
    else if (a == "--job") f.job = next();
    else if (a == "--kill-at") f.kill_at = next();
    else Die("unknown flag " + a);
  }
  if (f.cmd == "worker") {
    // Everything else comes from the job's flags file.
    if (f.job.empty()) Die("worker needs --job JOBS/<id>");
    return f;
  }
  if (f.db.empty()) Die("--db is required");
  // A worker is another process: it cannot see an in-memory file system.
  if (!f.remote.empty() && f.fs == "mem") Die("--remote needs an on-disk --fs");
  if (f.key_min < 8 || f.key_max < f.key_min) Die("need 8 <= key-min <= key-max");
  if (f.compression != "none" || !f.bottommost_compression.empty()) f.compressible = true;
  return f;
}

// splitmix64: a bijection, so distinct key indexes give distinct key prefixes.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t s;
  uint64_t Next() { return s = Mix(s); }
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : Next() % n; }
};

std::string KeyFor(const Flags& f, uint64_t index) {
  uint64_t h = Mix(index ^ 0x5eed);
  int len = f.key_min + static_cast<int>(Mix(index) % (f.key_max - f.key_min + 1));
  std::string k(len, '\0');
  for (int i = 0; i < 8; i++) k[i] = static_cast<char>(h >> (56 - 8 * i));
  for (int i = 8; i < len; i++) k[i] = static_cast<char>('a' + (index + i) % 26);
  return k;
}

// A value of `len` bytes: random, or compressible (3 of every 4 words from a
// small set) when a compression is set.
std::string ValueOfLength(const Flags& f, Rng& rng, size_t len) {
  std::string v(len, '\0');
  uint64_t x = rng.Next();
  static const uint64_t kWords[4] = {0x2d65756c61762d61ULL, 0x3130303030303030ULL,
                                     0x6b6b6b6b6b6b6b6bULL, 0x0102030405060708ULL};
  for (size_t i = 0; i < len; i++) {
    if (i % 8 == 0) x = Mix(x);
    uint64_t w = x;
    if (f.compressible && (x & 3) != 0) w = kWords[(x >> 2) & 3];
    v[i] = static_cast<char>(w >> (8 * (i % 8)));
  }
  return v;
}

std::string ValueFor(const Flags& f, Rng& rng) {
  int len = f.value_min + static_cast<int>(rng.Uniform(f.value_max - f.value_min + 1));
  return ValueOfLength(f, rng, static_cast<size_t>(len));
}

CompressionType ParseCompression(const std::string& c) {
  if (c == "none") return kNoCompression;
  if (c == "snappy") return kSnappyCompression;
  if (c == "lz4") return kLZ4Compression;
  if (c == "lz4hc") return kLZ4HCCompression;
  if (c == "zstd") return kZSTD;
  if (c == "zlib") return kZlibCompression;
  Die("unknown compression " + c);
}

// The Env a test's SpecialEnv is: an EnvWrapper, whose FileSystem RocksDB
// sees as a LegacyFileSystemWrapper (not FileSystem::Default()).
class PassthroughEnv : public EnvWrapper {
 public:
  explicit PassthroughEnv(Env* t) : EnvWrapper(t) {}
  static const char* kClassName() { return "PassthroughEnv"; }
  const char* Name() const override { return kClassName(); }
};

bool IsSst(const std::string& f) {
  return f.size() > 4 && f.compare(f.size() - 4, 4, ".sst") == 0;
}

constexpr char kXor = 0x5a;

std::string Xored(const Slice& s) {
  std::string x(s.data(), s.size());
  for (char& c : x) c ^= kXor;
  return x;
}

class XorWritableFile : public FSWritableFileOwnerWrapper {
 public:
  using FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
  IOStatus Append(const Slice& data, const IOOptions& o,
                  IODebugContext* d) override {
    return target()->Append(Xored(data), o, d);
  }
  IOStatus Append(const Slice& data, const IOOptions& o,
                  const DataVerificationInfo&, IODebugContext* d) override {
    return Append(data, o, d);
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t off,
                            const IOOptions& o, IODebugContext* d) override {
    return target()->PositionedAppend(Xored(data), off, o, d);
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t off,
                            const IOOptions& o, const DataVerificationInfo&,
                            IODebugContext* d) override {
    return PositionedAppend(data, off, o, d);
  }
};

class XorRandomAccessFile : public FSRandomAccessFileOwnerWrapper {
 public:
  using FSRandomAccessFileOwnerWrapper::FSRandomAccessFileOwnerWrapper;
  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, Slice* result,
                char* scratch, IODebugContext* d) const override {
    IOStatus s = target()->Read(offset, n, o, result, scratch, d);
    if (!s.ok()) return s;
    if (result->data() != scratch) {
      memmove(scratch, result->data(), result->size());
    }
    for (size_t i = 0; i < result->size(); i++) scratch[i] ^= kXor;
    *result = Slice(scratch, result->size());
    return s;
  }
  IOStatus MultiRead(FSReadRequest* reqs, size_t num, const IOOptions& o,
                     IODebugContext* d) override {
    for (size_t i = 0; i < num; i++) {
      reqs[i].status = Read(reqs[i].offset, reqs[i].len, o, &reqs[i].result,
                            reqs[i].scratch, d);
    }
    return IOStatus::OK();
  }
  IOStatus ReadAsync(FSReadRequest& req, const IOOptions& o,
                     std::function<void(FSReadRequest&, void*)> cb,
                     void* cb_arg, void** io_handle, IOHandleDeleter* del_fn,
                     IODebugContext* d) override {
    // The base class's synchronous emulation, through this Read.
    return FSRandomAccessFile::ReadAsync(req, o, cb, cb_arg, io_handle,
                                         del_fn, d);
  }
};

class XorFileSystem : public FileSystemWrapper {
 public:
  explicit XorFileSystem(const std::shared_ptr<FileSystem>& t)
      : FileSystemWrapper(t) {}
  static const char* kClassName() { return "XorFileSystem"; }
  const char* Name() const override { return kClassName(); }
  // No file-system-allocated buffers or async reads: every read goes
  // through XorRandomAccessFile::Read.
  void SupportedOps(int64_t& ops) override { ops = 0; }
  IOStatus NewWritableFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<FSWritableFile>* r,
                           IODebugContext* d) override {
    IOStatus s = target()->NewWritableFile(f, o, r, d);
    if (s.ok() && IsSst(f)) r->reset(new XorWritableFile(std::move(*r)));
    return s;
  }
  IOStatus NewRandomAccessFile(const std::string& f, const FileOptions& o,
                               std::unique_ptr<FSRandomAccessFile>* r,
                               IODebugContext* d) override {
    IOStatus s = target()->NewRandomAccessFile(f, o, r, d);
    if (s.ok() && IsSst(f)) r->reset(new XorRandomAccessFile(std::move(*r)));
    return s;
  }
};

Env* EnvFor(const std::string& fs) {
  if (fs == "default") return Env::Default();
  if (fs == "env-wrapper") {
    static PassthroughEnv env(Env::Default());
    return &env;
  }
  if (fs == "xor") {
    static std::unique_ptr<Env> env = NewCompositeEnv(
        std::make_shared<XorFileSystem>(FileSystem::Default()));
    return env.get();
  }
  if (fs == "mem") {
    static std::unique_ptr<Env> env(NewMemEnv(Env::Default()));
    return env.get();
  }
  Die("unknown --fs " + fs);
}

// Decides from the value alone, so stock and ringmerge see the same decisions:
// values whose first byte is 0 mod 7 are dropped, 0 mod 5 are rewritten.
class DropAndChangeFilter : public CompactionFilter {
 public:
  const char* Name() const override { return "ringmerge.DropAndChange"; }
  bool Filter(int /*level*/, const Slice& /*key*/, const Slice& value,
              std::string* new_value, bool* value_changed) const override {
    if (value.empty()) return false;
    const unsigned char b = static_cast<unsigned char>(value[0]);
    if (b % 7 == 0) return true;
    if (b % 5 == 0) {
      *new_value = "changed:" + value.ToString().substr(0, 8);
      *value_changed = true;
    }
    return false;
  }
};

class JobRecorder : public EventListener {
 public:
  void OnCompactionCompleted(DB*, const CompactionJobInfo& ci) override {
    const CompactionJobStats& s = ci.stats;
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "compaction status=%s base_level=%d output_level=%d reason=%d "
             "input_files=%zu output_files=%zu num_input_records=%" PRIu64
             " num_output_records=%" PRIu64 " num_records_replaced=%" PRIu64
             " num_input_deletion_records=%" PRIu64
             " num_expired_deletion_records=%" PRIu64
             " num_corrupt_keys=%" PRIu64 " raw_key_bytes=%" PRIu64
             " raw_value_bytes=%" PRIu64 " total_output_bytes=%" PRIu64
             " num_output_files=%zu",
             ci.status.ToString().c_str(), ci.base_input_level, ci.output_level,
             static_cast<int>(ci.compaction_reason), ci.input_files.size(),
             ci.output_files.size(), s.num_input_records, s.num_output_records,
             s.num_records_replaced, s.num_input_deletion_records,
             s.num_expired_deletion_records, s.num_corrupt_keys,
             s.total_input_raw_key_bytes, s.total_input_raw_value_bytes,
             s.total_output_bytes, s.num_output_files);
    std::lock_guard<std::mutex> l(mu_);
    lines_.push_back(buf);
    if (s.num_input_files_trivially_moved > 0) {
      totals_.moves++;  // no bytes read or written: not a compaction's work
      return;
    }
    totals_.jobs++;
    totals_.input_bytes += s.total_input_bytes;
    totals_.output_bytes += s.total_output_bytes;
    totals_.elapsed_micros += s.elapsed_micros;
    totals_.cpu_micros += s.cpu_micros;
  }
  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> l(mu_);
    return lines_;
  }
  // Sums over the compactions the primary completed, trivial moves apart.
  // For a remote job these are not the worker's costs (its cpu_micros is a
  // wall time: CompactionServiceCompactionJob::Run sets it so); the folder
  // service measures those (wait4, the worker's own timing).
  struct Totals {
    uint64_t jobs = 0, moves = 0, input_bytes = 0, output_bytes = 0, elapsed_micros = 0,
             cpu_micros = 0;
  };
  Totals Sum() {
    std::lock_guard<std::mutex> l(mu_);
    return totals_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
  Totals totals_;
};

// Counts the reads of table files RocksDB reports to listeners
// (OnFileReadFinish, OnIOError) since Reset(): during a CompactRange, the
// compactions' reads of their inputs (a multi-level CompactRange reads the
// outputs of one level's job as the next one's inputs) and RocksDB's reads of
// each new output when it opens and checks it.
class SstReadCounter : public EventListener {
 public:
  bool ShouldBeNotifiedOnFileIO() override { return true; }
  void Reset() {
    std::lock_guard<std::mutex> l(mu_);
    reads_ = bytes_ = failed_ = io_errors_ = 0;
  }
  static bool IsTable(const std::string& path) {
    return path.size() > 4 && path.compare(path.size() - 4, 4, ".sst") == 0;
  }
  void OnFileReadFinish(const FileOperationInfo& info) override {
    if (!IsTable(info.path)) return;
    std::lock_guard<std::mutex> l(mu_);
    reads_++;
    bytes_ += info.length;
    if (!info.status.ok()) failed_++;
  }
  void OnIOError(const IOErrorInfo& info) override {
    if (!IsTable(info.file_path)) return;
    std::lock_guard<std::mutex> l(mu_);
    io_errors_++;
  }
  std::string Line() {
    std::lock_guard<std::mutex> l(mu_);
    char buf[256];
    snprintf(buf, sizeof(buf),
             "listener_reads=%" PRIu64 " listener_bytes=%" PRIu64
             " listener_failed=%" PRIu64 " listener_io_errors=%" PRIu64,
             reads_, bytes_, failed_, io_errors_);
    return buf;
  }

 private:
  std::mutex mu_;
  uint64_t reads_ = 0, bytes_ = 0, failed_ = 0, io_errors_ = 0;
};

// The --read-accounting listener of this process's DB.
std::shared_ptr<SstReadCounter> read_counter;

// --- Remote compaction: the job folders -------------------------------------

bool PathExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool ReadWhole(const std::string& path, std::string* out) {
  FILE* fp = fopen(path.c_str(), "rb");
  if (!fp) return false;
  out->clear();
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) out->append(buf, n);
  bool ok = !ferror(fp);
  fclose(fp);
  return ok;
}

// Writes path whole; with `sync`, fsyncs it before closing.
bool WriteWhole(const std::string& path, const std::string& data, bool sync = false) {
  FILE* fp = fopen(path.c_str(), "wb");
  if (!fp) return false;
  bool ok = fwrite(data.data(), 1, data.size(), fp) == data.size() && fflush(fp) == 0;
  if (ok && sync) ok = fsync(fileno(fp)) == 0;
  return fclose(fp) == 0 && ok;
}

// Other processes poll for `path`: they see all of it or nothing.
bool PublishFile(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  return WriteWhole(tmp, data, /*sync=*/true) && rename(tmp.c_str(), path.c_str()) == 0;
}

// The value of `key=` in a job's info file ("" if absent).
std::string InfoField(const std::string& info, const std::string& key) {
  size_t at = 0;
  while (at < info.size()) {
    size_t nl = info.find('\n', at);
    if (nl == std::string::npos) nl = info.size();
    if (info.compare(at, key.size() + 1, key + "=") == 0) {
      return info.substr(at + key.size() + 1, nl - at - key.size() - 1);
    }
    at = nl + 1;
  }
  return "";
}

// p unchanged if it does not resolve (the worker then reports the error).
std::string AbsolutePath(const std::string& p) {
  char* r = realpath(p.c_str(), nullptr);
  if (!r) return p;
  std::string out = r;
  free(r);
  return out;
}

// The primary's own arguments after the command (main sets them): a job's
// flags file, from which the worker rebuilds the same Options.
std::vector<std::string> primary_args;

// A CompactionService whose jobs are folders JOBS/<id>/, shared with the
// workers through the file system only:
//   input   the serialized CompactionServiceInput
//   flags   the primary's flags, one a line (the worker's MakeOptions)
//   info    db=<absolute DB path>, job and subcompaction ids, ...
//   claim   the worker's pid; the worker holds flock(LOCK_EX) on it until exit
//   out/    OpenAndCompact's output directory: the SSTs and the worker's LOG
//   result, status   the serialized CompactionServiceResult and "OK" or the
//           Status, each published whole (tmp + rename), status last
//   dead    the primary gave the job up (worker died or timed out): it ran
//           locally, and a late worker must not start it
//   cancel  CancelAwaitingJobs (DB close): the worker stops its compaction
//   installed   OnInstallation's status
// RocksDB calls Schedule and Wait from each subcompaction's thread.
class FolderCompactionService : public CompactionService {
 public:
  explicit FolderCompactionService(const Flags& f)
      : spawn_(f.remote_spawn), fail_on_death_(f.remote_fail_on_death), timeout_s_(f.remote_timeout) {
    if (mkdir(f.remote.c_str(), 0755) != 0 && errno != EEXIST) {
      Die("mkdir " + f.remote + ": " + strerror(errno));
    }
    // Absolute: the worker's cwd may differ, and the result's output path
    // (under the job folder) is what the primary renames from.
    dir_ = AbsolutePath(f.remote);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) Die("readlink /proc/self/exe");
    exe_.assign(exe, n);
    for (const auto& a : primary_args) flags_ += a + "\n";
  }
  const char* Name() const override { return "RingmergeDriverFolderCompactionService"; }

  CompactionServiceScheduleResponse Schedule(const CompactionServiceJobInfo& info,
                                             const std::string& input) override {
    // job_id is unique within one DB session only; the session id makes the
    // folder unique across runs sharing JOBS.
    char id[128];
    snprintf(id, sizeof(id), "%016" PRIx64 "-%s", info.job_id, info.db_session_id.c_str());
    const std::string job = dir_ + "/" + id, tmp = job + ".tmp";
    char meta[512];
    snprintf(meta, sizeof(meta),
             "job_id=%" PRIu64 "\nsub_job_id=%" PRIu64 "\ndb_id=%s\nsession=%s\n"
             "priority=%d\nreason=%d\nmanual=%d\nfull=%d\nbottommost=%d\n",
             info.job_id >> 32, info.job_id & 0xffffffffu, info.db_id.c_str(),
             info.db_session_id.c_str(), static_cast<int>(info.priority),
             static_cast<int>(info.compaction_reason), info.is_manual_compaction,
             info.is_full_compaction, info.bottommost_level);
    // Built under .tmp and renamed, so a worker scanning JOBS never sees half
    // a job.
    if (mkdir(tmp.c_str(), 0755) != 0 || !WriteWhole(tmp + "/input", input) ||
        !WriteWhole(tmp + "/flags", flags_) ||
        !WriteWhole(tmp + "/info", "db=" + AbsolutePath(info.db_name) + "\n" + meta) ||
        rename(tmp.c_str(), job.c_str()) != 0) {
      fprintf(stderr, "ringmerge_driver: cannot write job %s (%s): compacting locally\n",
              job.c_str(), strerror(errno));
      return CompactionServiceScheduleResponse(CompactionServiceJobStatus::kUseLocal);
    }
    pid_t pid = -1;
    if (spawn_ && (pid = SpawnWorker(job)) < 0) {
      WriteWhole(job + "/dead", "spawn failed\n");
      return CompactionServiceScheduleResponse(CompactionServiceJobStatus::kUseLocal);
    }
    std::lock_guard<std::mutex> l(mu_);
    pids_[id] = pid;
    scheduled_at_[id] = std::chrono::steady_clock::now();
    return CompactionServiceScheduleResponse(id, CompactionServiceJobStatus::kSuccess);
  }

  CompactionServiceJobStatus Wait(const std::string& id, std::string* result) override {
    pid_t pid;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = pids_.find(id);
      if (it == pids_.end()) return CompactionServiceJobStatus::kFailure;
      pid = it->second;
    }
    // Off the list of jobs CancelAwaitingJobs cancels once this returns.
    struct Done {
      FolderCompactionService* s;
      const std::string& id;
      ~Done() {
        std::lock_guard<std::mutex> l(s->mu_);
        s->pids_.erase(id);
        auto at = s->scheduled_at_.find(id);
        if (at != s->scheduled_at_.end()) {
          s->totals_.jobs++;
          s->totals_.wall_micros += static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - at->second)
                  .count());
          s->scheduled_at_.erase(at);
        }
      }
    } done{this, id};
    const std::string job = dir_ + "/" + id;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s_);
    std::string gone;  // why the worker is gone, once it is
    for (;;) {
      // status is published after result: once it is there, both are whole.
      if (PathExists(job + "/status")) {
        if (pid > 0) Reap(pid, 0);  // exiting now; no zombie
        std::string usage;
        if (ReadWhole(job + "/usage", &usage)) {
          std::lock_guard<std::mutex> l(mu_);
          totals_.worker_compact_micros +=
              strtoull(InfoField(usage, "open_and_compact_micros").c_str(), nullptr, 10);
        }
        std::string status;
        if (!ReadWhole(job + "/status", &status) || !ReadWhole(job + "/result", result)) {
          return GiveUp(job, "unreadable result", result);
        }
        // On kFailure RocksDB takes the worker's Status from the result.
        return status == "OK" ? CompactionServiceJobStatus::kSuccess
                              : CompactionServiceJobStatus::kFailure;
      }
      // Checked again after the worker went: it may have published between
      // the status check and its exit.
      if (!gone.empty()) return GiveUp(job, gone, result);
      gone = WorkerGone(job, &pid);
      // Canceled before a worker took it: nobody will answer the cancel.
      if (gone.empty() && canceled_.load() && !PathExists(job + "/claim")) {
        return GiveUp(job, "canceled before a worker claimed it", result);
      }
      if (gone.empty() && std::chrono::steady_clock::now() > deadline) {
        if (pid > 0) {
          kill(pid, SIGKILL);
          Reap(pid, 0);
        }
        return GiveUp(job, "timeout", result);
      }
      if (gone.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // The worker then stops, and publishes Incomplete(kManualCompactionPaused),
  // which RocksDB does not count as a background error.
  void CancelAwaitingJobs() override {
    canceled_ = true;
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& j : pids_) WriteWhole(dir_ + "/" + j.first + "/cancel", "");
  }

  void OnInstallation(const std::string& id, CompactionServiceJobStatus s) override {
    WriteWhole(dir_ + "/" + id + "/installed",
               s == CompactionServiceJobStatus::kSuccess ? "OK\n" : "failed\n");
  }

 private:
  pid_t SpawnWorker(const std::string& job) {
    // The worker's stdout and stderr go to the job folder, not into the
    // primary's output (a test's dump or job lines).
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = job + "/worker.txt";
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::string a0 = "ringmerge_driver", a1 = "worker", a2 = "--job", a3 = job;
    char* argv[] = {&a0[0], &a1[0], &a2[0], &a3[0], nullptr};
    pid_t pid;
    int rc = posix_spawn(&pid, exe_.c_str(), &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      fprintf(stderr, "ringmerge_driver: posix_spawn %s: %s\n", exe_.c_str(), strerror(rc));
      return -1;
    }
    return pid;
  }

  // "" while the job's worker may still publish a result; otherwise why not.
  // A spawned worker is our child (waitpid). An external one holds flock on
  // `claim` while it lives: the kernel drops the lock when it dies, so a free
  // lock on a claim that has its pid written means it is gone (no pid reuse
  // problem). An unclaimed job only times out.
  std::string WorkerGone(const std::string& job, pid_t* pid) {
    char why[64];
    if (*pid > 0) {
      int st;
      if (Reap(*pid, WNOHANG, &st) != *pid) return "";
      *pid = -1;
      if (WIFSIGNALED(st)) snprintf(why, sizeof(why), "worker killed by signal %d", WTERMSIG(st));
      else snprintf(why, sizeof(why), "worker exited %d", WEXITSTATUS(st));
      return why;
    }
    if (spawn_) return "worker gone";  // reaped before
    int fd = open((job + "/claim").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    struct stat st;
    // The worker locks before writing its pid: an empty claim is one being
    // taken, not a dead one.
    bool dead = flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 && st.st_size > 0;
    close(fd);
    return dead ? "claim lock free" : "";
  }

  // The job runs locally instead (RocksDB: "Remote compaction fallback to
  // local by API (Wait)"); `dead` keeps a late worker from using it. With
  // --on-worker-death fail, kFailure without a result: RocksDB fails the
  // subcompaction with Incomplete ("no valid result is returned").
  CompactionServiceJobStatus GiveUp(const std::string& job, const std::string& why,
                                    std::string* result) {
    WriteWhole(job + "/dead", why + "\n");
    fprintf(stderr, "ringmerge_driver: remote job %s: %s; %s\n", job.c_str(), why.c_str(),
            fail_on_death_ ? "failing it" : "compacting it locally");
    result->clear();
    return fail_on_death_ ? CompactionServiceJobStatus::kFailure
                          : CompactionServiceJobStatus::kUseLocal;
  }

  // waitpid that adds the worker's CPU (every thread of it, io_uring's
  // io-wq workers included: they belong to its thread group) to the totals.
  pid_t Reap(pid_t pid, int options, int* status = nullptr) {
    int st = 0;
    struct rusage ru {};
    pid_t r = wait4(pid, &st, options, &ru);
    if (r == pid) {
      std::lock_guard<std::mutex> l(mu_);
      totals_.workers++;
      totals_.worker_cpu_micros +=
          static_cast<uint64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
          static_cast<uint64_t>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    }
    if (status) *status = st;
    return r;
  }

 public:
  // What the jobs cost, seen from the primary: jobs waited for, their wall
  // time from Schedule to the end of Wait, the CPU of the workers it spawned
  // and reaped (external workers' CPU is theirs to report), and the time the
  // workers say their OpenAndCompact took.
  struct Totals {
    uint64_t jobs = 0, wall_micros = 0, workers = 0, worker_cpu_micros = 0,
             worker_compact_micros = 0;
  };
  Totals Sum() {
    std::lock_guard<std::mutex> l(mu_);
    return totals_;
  }

 private:
  std::string dir_, exe_, flags_;
  bool spawn_, fail_on_death_;
  int timeout_s_;
  std::atomic<bool> canceled_{false};
  std::mutex mu_;
  std::map<std::string, pid_t> pids_;  // scheduled, Wait not returned yet
  std::map<std::string, std::chrono::steady_clock::time_point> scheduled_at_;
  Totals totals_;
};

// One service per process: MakeOptions also builds Options for Dump's readers.
std::shared_ptr<FolderCompactionService> RemoteService(const Flags& f) {
  static std::shared_ptr<FolderCompactionService> svc =
      std::make_shared<FolderCompactionService>(f);
  return svc;
}

Options MakeOptions(const Flags& f, std::shared_ptr<JobRecorder> rec) {
  Options o;
  o.create_if_missing = true;
  o.disable_auto_compactions = true;
  o.level_compaction_dynamic_level_bytes = false;
  o.num_levels = 7;
  o.write_buffer_size = 512 << 20;  // flushes happen when the driver says
  o.max_write_buffer_number = 4;
  o.target_file_size_base = f.target_file_size;
  o.max_bytes_for_level_base = 4 * f.target_file_size;
  o.max_subcompactions = f.subcompactions;
  if (f.rate_limit_reads > 0) {
    o.rate_limiter.reset(NewGenericRateLimiter(
        f.rate_limit_reads, 100 * 1000 /* refill_period_us */, 10 /* fairness */,
        RateLimiter::Mode::kReadsOnly));
  }
  o.compression = ParseCompression(f.compression);
  o.compression_opts.max_dict_bytes = f.max_dict_bytes;
  o.compression_opts.zstd_max_train_bytes = f.zstd_max_train_bytes;
  o.compression_opts.use_zstd_dict_trainer = f.zstd_dict_trainer;
  if (!f.bottommost_compression.empty()) {
    // MyRocks-like: one codec for the upper levels, another (and the
    // dictionary, if any) for the bottommost level.
    o.bottommost_compression = ParseCompression(f.bottommost_compression);
    o.bottommost_compression_opts = o.compression_opts;
    o.bottommost_compression_opts.enabled = true;
  }
  o.use_direct_reads = f.direct;
  o.use_direct_io_for_flush_and_compaction = f.direct;
  o.max_open_files = -1;
  o.env = EnvFor(f.fs);
  if (f.merge_pct > 0) o.merge_operator = MergeOperators::CreateUInt64AddOperator();
  if (f.reverse) {
    o.comparator =
        f.timestamps ? ReverseBytewiseComparatorWithU64Ts() : ReverseBytewiseComparator();
  } else if (f.timestamps) {
    o.comparator = BytewiseComparatorWithU64Ts();
  }
  if (f.timestamps_not_persisted) {
    o.persist_user_defined_timestamps = false;
    o.allow_concurrent_memtable_write = false;  // required with it
  }
  if (f.compaction_filter) {
    static DropAndChangeFilter filter;
    o.compaction_filter = &filter;
  }
  if (rec) o.listeners.push_back(rec);
  if (f.read_accounting) {
    read_counter = std::make_shared<SstReadCounter>();
    o.listeners.push_back(read_counter);
    o.statistics = CreateDBStatistics();
  }
  BlockBasedTableOptions t;
  t.block_size = 4096;
  t.no_block_cache = true;
  if (f.index_type == "hash") {
    // The hash index needs a prefix extractor; the keys' first 4 bytes vary.
    t.index_type = BlockBasedTableOptions::kHashSearch;
    o.prefix_extractor.reset(NewFixedPrefixTransform(4));
  } else if (f.index_type == "partitioned") {
    // Small partitions, so every file's index has many.
    t.index_type = BlockBasedTableOptions::kTwoLevelIndexSearch;
    t.metadata_block_size = 256;
  } else if (f.index_type == "first-key") {
    t.index_type = BlockBasedTableOptions::kBinarySearchWithFirstKey;
  } else if (f.index_type != "binary") {
    Die("unknown index type " + f.index_type);
  }
  o.table_factory.reset(NewBlockBasedTableFactory(t));
  if (!f.remote.empty()) o.compaction_service = RemoteService(f);
  return o;
}

std::string Hex(const Slice& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (size_t i = 0; i < s.size(); i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

uint64_t Fnv(const Slice& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < s.size(); i++) {
    h ^= static_cast<unsigned char>(s[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

void PutU64(std::string* v, uint64_t x) {
  v->assign(reinterpret_cast<const char*>(&x), 8);  // uint64add: fixed64 LE
}

// The 8-byte timestamp BytewiseComparatorWithU64Ts keys end with
// (EncodeFixed64: little-endian).
std::string U64Ts(uint64_t ts) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; i++) out[i] = static_cast<char>(ts >> (8 * i));
  return out;
}

// --timestamps: every write carries the next timestamp. Base levels as in
// Build; then L0 files of overwrites (a small key universe) and deletions,
// and halfway through full_history_ts_low goes up to the current timestamp,
// so the later compactions may drop versions older than it (RocksDB's
// CompactionIterator decides; the merge only orders them). The model holds
// each key's newest value.
std::vector<const Snapshot*> BuildTimestamped(const Flags& f, DB* db,
                                              std::map<std::string, std::string>* model) {
  Rng rng{f.seed};
  const uint64_t universe =
      static_cast<uint64_t>(f.keys_per_file) * f.universe_factor;
  WriteOptions wo;
  wo.disableWAL = true;
  uint64_t now = 0;
  // Not persisted, a memtable is flushed only once its timestamps are all
  // below full_history_ts_low (the files drop them): raise it first.
  auto flush = [&]() {
    if (f.timestamps_not_persisted) {
      Check(db->IncreaseFullHistoryTsLow(db->DefaultColumnFamily(), U64Ts(now + 1)),
            "IncreaseFullHistoryTsLow(flush)");
    }
    Check(db->Flush(FlushOptions()), "Flush");
  };
  auto put = [&](const std::string& k) {
    std::string v = ValueFor(f, rng);
    Check(db->Put(wo, k, U64Ts(++now), v), "Put(ts)");
    (*model)[k] = v;
  };
  for (int level = f.base_levels; level >= 1; level--) {
    for (int i = 0; i < f.keys_per_file * 2; i++) put(KeyFor(f, rng.Uniform(universe)));
    flush();
    CompactRangeOptions cro;
    cro.change_level = true;
    cro.target_level = level;
    Check(db->CompactRange(cro, nullptr, nullptr), "CompactRange(base)");
  }
  std::vector<const Snapshot*> snaps;
  for (int file = 0; file < f.l0_files; file++) {
    for (int i = 0; i < f.keys_per_file; i++) {
      std::string k = KeyFor(f, rng.Uniform(universe));
      if (rng.Uniform(100) < static_cast<uint64_t>(f.delete_pct)) {
        Check(db->Delete(wo, k, U64Ts(++now)), "Delete(ts)");
        model->erase(k);
      } else {
        put(k);
      }
    }
    flush();
    if (file == f.l0_files / 2 && !f.timestamps_not_persisted) {
      Check(db->IncreaseFullHistoryTsLow(db->DefaultColumnFamily(), U64Ts(now)),
            "IncreaseFullHistoryTsLow");
    }
    if (f.snapshots > 0 && file % f.snapshots == 0) {
      snaps.push_back(db->GetSnapshot());
    }
  }
  return snaps;
}

// Writes the scenario. Returns the snapshots it holds (released by exit).
std::vector<const Snapshot*> Build(const Flags& f, DB* db,
                                   std::map<std::string, std::string>* model) {
  if (f.timestamps) return BuildTimestamped(f, db, model);
  Rng rng{f.seed};
  const uint64_t universe =
      static_cast<uint64_t>(f.keys_per_file) * f.universe_factor;
  WriteOptions wo;
  wo.disableWAL = true;
  FlushOptions fo;
  auto apply_put = [&](const std::string& k, const std::string& v) {
    Check(db->Put(wo, k, v), "Put");
    (*model)[k] = v;
  };
  // [a, b) bytewise; under --reverse the same keys run from b down to a, so
  // the tombstone is [b, a) in the comparator's order: (a, b] bytewise.
  auto delete_range = [&](const std::string& a, const std::string& b) {
    if (f.reverse) {
      Check(db->DeleteRange(wo, db->DefaultColumnFamily(), b, a), "DeleteRange");
      for (auto it = model->upper_bound(a); it != model->end() && it->first <= b;) {
        it = model->erase(it);
      }
      return;
    }
    Check(db->DeleteRange(wo, db->DefaultColumnFamily(), a, b), "DeleteRange");
    for (auto it = model->lower_bound(a); it != model->end() && it->first < b;) {
      it = model->erase(it);
    }
  };
  // A tombstone over about 1/64 of the key space (keys start with 8 hash
  // bytes), from a random key's prefix on.
  auto narrow_range_del = [&]() {
    std::string a = KeyFor(f, rng.Uniform(universe)).substr(0, 8);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) h = (h << 8) | static_cast<unsigned char>(a[i]);
    uint64_t e = h + (h < ~0ULL - (~0ULL >> 6) ? (~0ULL >> 6) : 0);
    std::string b(8, '\0');
    for (int i = 0; i < 8; i++) b[i] = static_cast<char>(e >> (56 - 8 * i));
    if (a < b) delete_range(a, b);
  };
  // The writes of one file, with `f.range_dels` tombstones spread among them.
  auto range_dels_due = [&](int i, int n) {
    return f.range_dels > 0 && (i + 1) % std::max(1, n / f.range_dels) == 0;
  };
  // --large-values: file number `file_no` (base levels first) gets the values
  // whose index is file_no modulo the number of files, at random keys, after
  // its other writes: nothing in the same memtable overwrites them, so every
  // one reaches its file (later files may overwrite or delete them). No random
  // number is drawn without the flag, so other scenarios are unchanged.
  const int nfiles = std::max(1, f.base_levels + f.l0_files);
  int file_no = 0;
  auto put_large_values = [&]() {
    for (size_t k = 0; k < f.large_values_mib.size(); k++) {
      if (static_cast<int>(k % nfiles) != file_no) continue;
      std::string key = KeyFor(f, rng.Uniform(universe));
      apply_put(key, ValueOfLength(f, rng, static_cast<size_t>(f.large_values_mib[k]) << 20));
    }
  };
  // Base levels, deepest first, each compacted into place with CompactRange.
  for (int level = f.base_levels; level >= 1; level--) {
    for (int i = 0; i < f.keys_per_file * 2; i++) {
      apply_put(KeyFor(f, rng.Uniform(universe)), ValueFor(f, rng));
      if (range_dels_due(i, f.keys_per_file * 2)) narrow_range_del();
    }
    put_large_values();
    file_no++;
    Check(db->Flush(fo), "Flush");
    CompactRangeOptions cro;
    cro.change_level = true;
    cro.target_level = level;
    Check(db->CompactRange(cro, nullptr, nullptr), "CompactRange(base)");
  }
  std::vector<const Snapshot*> snaps;
  // SingleDelete's contract: the key was Put once and not overwritten. These
  // keys live in their own key space ("sd..."): Put in one file, SingleDeleted
  // in the next.
  std::vector<std::string> sd_pending;
  for (int file = 0; file < f.l0_files; file++) {
    for (const std::string& k : sd_pending) {
      Check(db->SingleDelete(wo, k), "SingleDelete");
      model->erase(k);
    }
    sd_pending.clear();
    for (int i = 0; i < f.keys_per_file; i++) {
      std::string k = KeyFor(f, rng.Uniform(universe));
      uint64_t r = rng.Uniform(100);
      if (r < static_cast<uint64_t>(f.single_delete_pct)) {
        char sd[64];
        snprintf(sd, sizeof(sd), "sd%04d%06d", file, i);
        std::string v = ValueFor(f, rng);
        Check(db->Put(wo, sd, v), "Put(sd)");
        (*model)[sd] = v;
        if (file + 1 < f.l0_files) sd_pending.push_back(sd);
        continue;
      }
      if (r < static_cast<uint64_t>(f.single_delete_pct + f.delete_pct)) {
        Check(db->Delete(wo, k), "Delete");
        model->erase(k);
      } else if (r < static_cast<uint64_t>(f.single_delete_pct + f.delete_pct +
                                            f.merge_pct)) {
        std::string v;
        PutU64(&v, 1 + rng.Uniform(5));
        Check(db->Merge(wo, k, v), "Merge");
        model->erase(k);  // the model skips merged keys' values
        (*model)[k] = std::string("\x01merge", 6);
      } else {
        apply_put(k, ValueFor(f, rng));
      }
      if (range_dels_due(i, f.keys_per_file)) narrow_range_del();
    }
    put_large_values();
    file_no++;
    if (f.range_del && file == f.l0_files / 2) {
      std::string a = KeyFor(f, rng.Uniform(universe));
      std::string b = KeyFor(f, rng.Uniform(universe));
      if (b < a) std::swap(a, b);
      delete_range(a, b);
    }
    Check(db->Flush(fo), "Flush");
    if (f.snapshots > 0 && file % f.snapshots == 0) {
      snaps.push_back(db->GetSnapshot());
    }
    if (f.ingest > 0 && file % f.ingest == 0) {
      // Keys of the same universe, so the file overlaps what is there and
      // RocksDB gives it a global seqno (its keys are written with seqno 0).
      std::map<std::string, std::string> kvs;
      for (int i = 0; i < f.keys_per_file / 2; i++) {
        kvs[KeyFor(f, rng.Uniform(universe))] = ValueFor(f, rng);
      }
      const std::string path = f.db + ".ingest-" + std::to_string(file) + ".sst";
      SstFileWriter writer(EnvOptions(), db->GetOptions());
      Check(writer.Open(path), "SstFileWriter::Open");
      for (const auto& kv : kvs) Check(writer.Put(kv.first, kv.second), "SstFileWriter::Put");
      Check(writer.Finish(), "SstFileWriter::Finish");
      Check(db->IngestExternalFile({path}, IngestExternalFileOptions()), "IngestExternalFile");
      for (const auto& kv : kvs) (*model)[kv.first] = kv.second;
    }
  }
  return snaps;
}

void WriteModel(const std::string& path,
                const std::map<std::string, std::string>& model) {
  FILE* fp = fopen(path.c_str(), "w");
  if (!fp) Die("cannot write " + path);
  for (const auto& kv : model) {
    fprintf(fp, "%s %s\n", Hex(kv.first).c_str(),
            kv.second.empty() ? "-" : Hex(kv.second).c_str());
  }
  fclose(fp);
}

void Dump(const Flags& f, DB* db, const std::vector<std::string>& jobs) {
  FILE* fp = f.out.empty() ? stdout : fopen(f.out.c_str(), "w");
  if (!fp) Die("cannot write " + f.out);
  for (const auto& j : jobs) fprintf(fp, "%s\n", j.c_str());
  std::vector<LiveFileMetaData> files;
  db->GetLiveFilesMetaData(&files);
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    if (a.level != b.level) return a.level < b.level;
    return a.smallestkey < b.smallestkey;
  });
  Options o = MakeOptions(f, nullptr);
  for (const auto& m : files) {
    fprintf(fp, "file level=%d smallest=%s largest=%s seqno=[%" PRIu64 ",%" PRIu64
            "] entries=%" PRIu64 " deletions=%" PRIu64 "\n",
            m.level, Hex(m.smallestkey).c_str(), Hex(m.largestkey).c_str(),
            m.smallest_seqno, m.largest_seqno, m.num_entries, m.num_deletions);
    SstFileReader reader(o);
    Check(reader.Open(m.directory + "/" + m.relative_filename), "SstFileReader::Open");
    auto props = reader.GetTableProperties();
    fprintf(fp, "  compression=%s index_partitions=%" PRIu64
            " range_deletions=%" PRIu64 " data_size=%" PRIu64 "\n",
            props->compression_name.c_str(), props->index_partitions,
            props->num_range_deletions, props->data_size);
    auto it = reader.NewTableIterator();
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      Slice ik = it->key();
      if (ik.size() < 8) Die("short internal key");
      uint64_t packed;
      memcpy(&packed, ik.data() + ik.size() - 8, 8);
      Slice uk(ik.data(), ik.size() - 8);
      fprintf(fp, "  %s seq=%" PRIu64 " type=%u vlen=%zu vhash=%016" PRIx64 "\n",
              Hex(uk).c_str(), packed >> 8, static_cast<unsigned>(packed & 0xff),
              it->value().size(), Fnv(it->value()));
    }
    Check(it->status(), "table iterator");
  }
  // What a reader sees (range tombstones applied): count and hash of every
  // visible key and value.
  {
    // A timestamped DB is read as of the newest timestamp.
    const std::string max_ts = U64Ts(~0ULL);
    const Slice max_ts_slice(max_ts);
    ReadOptions ro;
    if (f.timestamps) ro.timestamp = &max_ts_slice;
    std::unique_ptr<Iterator> it(db->NewIterator(ro));
    uint64_t n = 0, h = 0xcbf29ce484222325ULL;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      n++;
      h = h * 31 + Fnv(it->key());
      h = h * 31 + Fnv(it->value());
    }
    Check(it->status(), "db iterator");
    fprintf(fp, "visible keys=%" PRIu64 " hash=%016" PRIx64 "\n", n, h);
  }
  if (fp != stdout) fclose(fp);
}

Status CompactAll(const Flags& f, DB* db) {
  CompactRangeOptions cro;
  if (f.force_bottommost) {
    cro.bottommost_level_compaction = BottommostLevelCompaction::kForce;
  }
  SstReadCounter* counter = f.read_accounting ? read_counter.get() : nullptr;
  Statistics* stats = db->GetOptions().statistics.get();
  uint64_t read_bytes = 0, read_count = 0, hist_count = 0;
  auto tickers = [&](uint64_t* bytes, uint64_t* count, uint64_t* hist) {
    *bytes = stats->getTickerCount(NON_LAST_LEVEL_READ_BYTES) +
             stats->getTickerCount(LAST_LEVEL_READ_BYTES);
    *count = stats->getTickerCount(NON_LAST_LEVEL_READ_COUNT) +
             stats->getTickerCount(LAST_LEVEL_READ_COUNT);
    HistogramData h;
    stats->histogramData(FILE_READ_COMPACTION_MICROS, &h);
    *hist = h.count;
  };
  if (counter != nullptr) {
    counter->Reset();
    tickers(&read_bytes, &read_count, &hist_count);
  }
  Status s = db->CompactRange(cro, nullptr, nullptr);
  if (counter != nullptr) {
    // Table file reads during the compactions, as listeners and statistics
    // saw them.
    uint64_t b, n, h;
    tickers(&b, &n, &h);
    printf("read_accounting %s stats_read_bytes=%" PRIu64
           " stats_read_count=%" PRIu64 " file_read_compaction_micros_count=%" PRIu64 "\n",
           counter->Line().c_str(), b - read_bytes, n - read_count, h - hist_count);
  }
  if (RateLimiter* limiter = db->GetOptions().rate_limiter.get()) {
    // Every read the limiter let through since the DB opened (compaction
    // reads: user reads do not ask it). Not in the dump: stock and ringmerge
    // read different pieces (blocks with readahead vs coalesced chunks).
    printf("rate_limiter read_bytes_through=%" PRId64 "\n",
           limiter->GetTotalBytesThrough(Env::IO_TOTAL));
  }
  return s;
}

// --- Remote compaction: the worker ---------------------------------------

// The test hooks --kill-at file|write. `file`: the worker dies as its first
// output table is about to be created (RocksDB fires the event before it
// opens the file, so out/ holds no SST yet). `write`: it dies after the first
// write to an output table, leaving a partial SST in out/.
class KillOnTableFile : public EventListener {
 public:
  explicit KillOnTableFile(bool after_write) : after_write_(after_write) {}
  bool ShouldBeNotifiedOnFileIO() override { return after_write_; }
  void OnTableFileCreationStarted(const TableFileCreationBriefInfo& info) override {
    if (!after_write_) Die("--kill-at file", info.file_path);
  }
  void OnFileWriteFinish(const FileOperationInfo& info) override {
    if (IsSst(info.path)) Die("--kill-at write", info.path);
  }

 private:
  static void Die(const char* hook, const std::string& path) {
    fprintf(stderr, "worker: %s: SIGKILL at %s\n", hook, path.c_str());
    fflush(stderr);
    raise(SIGKILL);
  }
  bool after_write_;
};

// The same Flags the primary parsed, from a job's flags file (one a line).
Flags JobFlags(const std::string& text) {
  std::vector<std::string> args = {"ringmerge_driver", "options"};
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    args.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(&a[0]);
  Flags f = ParseFlags(static_cast<int>(argv.size()), argv.data());
  f.remote.clear();  // the worker compacts; it does not schedule
  return f;
}

// What OpenAndCompact cannot read from the OPTIONS file: every pointer
// option MakeOptions sets. The override replaces them unconditionally, so a
// default left here would clear the primary's (table_factory: nullptr, and
// column family sanitization dereferences it).
CompactionServiceOptionsOverride OverrideFor(const Options& o) {
  CompactionServiceOptionsOverride ov;
  ov.env = o.env;
  ov.file_checksum_gen_factory = o.file_checksum_gen_factory;
  ov.comparator = o.comparator;
  ov.merge_operator = o.merge_operator;
  ov.compaction_filter = o.compaction_filter;
  ov.compaction_filter_factory = o.compaction_filter_factory;
  ov.prefix_extractor = o.prefix_extractor;
  ov.table_factory = o.table_factory;
  ov.sst_partitioner_factory = o.sst_partitioner_factory;
  ov.table_properties_collector_factories = o.table_properties_collector_factories;
  ov.listeners = o.listeners;
  ov.statistics = o.statistics;
  return ov;
}

// `worker --job JOBS/<id>`: claims the job, compacts it with
// DB::OpenAndCompact into JOBS/<id>/out, publishes result and status.
// Exits 0 when it published (whatever the compaction's status), 3 when the
// job was not its to run.
// load's database: db_bench fillrandom's shape in the paper's configuration
// (no WAL, no block cache, two memtables of --write-buffer-mb, one flush
// thread) with automatic compactions on, --compaction-threads of them, files
// and L1 sized from the memtable as RocksDB's defaults are (64 MiB, 256 MiB).
void LoadOptions(const Flags& f, Options* o) {
  const uint64_t mem = static_cast<uint64_t>(f.write_buffer_mb) << 20;
  o->disable_auto_compactions = false;
  o->write_buffer_size = mem;
  o->max_write_buffer_number = 2;
  o->min_write_buffer_number_to_merge = 1;
  o->max_background_flushes = 1;
  o->max_background_compactions = f.compaction_threads;
  o->target_file_size_base = mem;
  o->max_bytes_for_level_base = 4 * mem;
  o->statistics = CreateDBStatistics();
}

// Writes --keys random keys (uniform over [0, keys), as fillrandom), waits
// for the compactions they cause, and prints one `load` line (the write rate
// and RocksDB's stall time), one `load_compactions` line (the compactions the
// primary completed: their input and output bytes, and the time and CPU
// their stats report) and, with --remote, one `load_remote` line (jobs, their
// wall time seen from the primary, the spawned workers' CPU).
int RunLoad(const Flags& f, DB* db, const Options& o, JobRecorder* rec) {
  if (f.load_keys == 0) Die("load needs --keys N");
  if (f.value_max < 16) Die("load wants --value-size >= 16");
  Rng rng{f.seed};
  char key[17];
  std::string value(static_cast<size_t>(f.value_max), '\0');
  WriteOptions wo;
  wo.disableWAL = true;
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&t0] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (uint64_t i = 0; i < f.load_keys; i++) {
    snprintf(key, sizeof(key), "%016" PRIx64, rng.Uniform(f.load_keys));
    // Half random, half a copy (db_bench's values compress to about half).
    for (size_t j = 0; j + 8 <= value.size() / 2; j += 8) {
      uint64_t x = rng.Next();
      memcpy(&value[j], &x, 8);
    }
    memcpy(&value[value.size() / 2], value.data(), value.size() - value.size() / 2);
    Check(db->Put(wo, Slice(key, 16), value), "Put");
  }
  const double write_s = since();
  // The memtable's last keys go to L0 too, and everything they cause runs
  // before the line is printed (not at close, where it would be canceled).
  WaitForCompactOptions wait;
  wait.flush = true;
  Check(db->WaitForCompact(wait), "WaitForCompact");
  const double total_s = since();
  const uint64_t stall = o.statistics->getTickerCount(STALL_MICROS);
  const double mb = static_cast<double>(f.load_keys) * (16 + value.size()) / (1 << 20);
  printf("load keys=%" PRIu64 " value_size=%zu write_s=%.3f ops_per_s=%.0f write_mb_per_s=%.2f "
         "stall_s=%.3f total_s=%.3f\n",
         f.load_keys, value.size(), write_s, f.load_keys / write_s, mb / write_s, stall / 1e6,
         total_s);
  const JobRecorder::Totals c = rec->Sum();
  printf("load_compactions jobs=%" PRIu64 " trivial_moves=%" PRIu64
         " input_mb=%.2f output_mb=%.2f job_s=%.3f job_cpu_s=%.3f\n",
         c.jobs, c.moves, c.input_bytes / 1048576.0, c.output_bytes / 1048576.0, c.elapsed_micros / 1e6,
         c.cpu_micros / 1e6);
  if (!f.remote.empty()) {
    const FolderCompactionService::Totals r = RemoteService(f)->Sum();
    printf("load_remote jobs=%" PRIu64 " wall_s=%.3f worker_compact_s=%.3f workers_reaped=%" PRIu64
           " worker_cpu_s=%.3f\n",
           r.jobs, r.wall_micros / 1e6, r.worker_compact_micros / 1e6, r.workers,
           r.worker_cpu_micros / 1e6);
  }
  return 0;
}

// A DB built with merge operands, opened without --merge-pct, has no merge
// operator: RocksDB does not check that at open, and a Get on a merge operand
// then dereferences the null operator (a crash in stock's read path). Say so
// instead, from what the DB's latest OPTIONS file persisted.
void RefuseMissingMergeOperator(const Flags& f, const Options& o) {
  if (o.merge_operator) return;
  std::string name, text;
  if (!GetLatestOptionsFileName(f.db, o.env, &name).ok()) return;  // DB::Open will say why
  if (!ReadWhole(f.db + "/" + name, &text)) return;
  for (size_t at = 0; (at = text.find("merge_operator=", at)) != std::string::npos;) {
    at += strlen("merge_operator=");
    std::string v = text.substr(at, text.find('\n', at) - at);
    if (v != "nullptr") {
      Die(f.db + " was built with a merge operator (" + v + "): pass the --merge-pct it was built with");
    }
  }
}

int RunWorker(const Flags& wf) {
  const std::string job = wf.job;
  std::string kill_at = wf.kill_at;
  if (kill_at.empty() && getenv("RINGMERGE_DRIVER_KILL_AT")) {
    kill_at = getenv("RINGMERGE_DRIVER_KILL_AT");
  }
  if (!kill_at.empty() && kill_at != "claim" && kill_at != "file" && kill_at != "write") {
    Die("unknown --kill-at " + kill_at);
  }
  if (PathExists(job + "/dead") || PathExists(job + "/cancel")) {
    printf("worker: %s was given up by the primary\n", job.c_str());
    return 3;
  }
  // O_EXCL: one worker per job. The lock is held until this process exits
  // (the fd stays open): the primary's sign that an external worker lives.
  int claim = open((job + "/claim").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (claim < 0) {
    if (errno == EEXIST) {
      printf("worker: %s is claimed already\n", job.c_str());
      return 3;
    }
    Die("claim " + job + ": " + strerror(errno));
  }
  if (flock(claim, LOCK_EX) != 0) Die("flock claim: " + std::string(strerror(errno)));
  std::string pid = std::to_string(getpid()) + "\n";
  if (write(claim, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
    Die("write claim: " + std::string(strerror(errno)));
  }
  if (kill_at == "claim") {
    fprintf(stderr, "worker: --kill-at claim: SIGKILL\n");
    fflush(stderr);
    raise(SIGKILL);
  }

  std::string flags, info, input;
  if (!ReadWhole(job + "/flags", &flags) || !ReadWhole(job + "/info", &info) ||
      !ReadWhole(job + "/input", &input)) {
    Die("cannot read job " + job);
  }
  Flags f = JobFlags(flags);
  Options o = MakeOptions(f, nullptr);
  CompactionServiceOptionsOverride ov = OverrideFor(o);
  if (kill_at == "file" || kill_at == "write") {
    ov.listeners.push_back(std::make_shared<KillOnTableFile>(kill_at == "write"));
  }
  const std::string db = InfoField(info, "db");
  // The primary's CancelAwaitingJobs, seen through the `cancel` file.
  std::atomic<bool> canceled{false}, finished{false};
  std::thread watcher([&] {
    while (!finished.load()) {
      if (PathExists(job + "/cancel")) canceled = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  OpenAndCompactOptions oco;
  oco.canceled = &canceled;
  std::string result;
  const auto t0 = std::chrono::steady_clock::now();
  Status s = DB::OpenAndCompact(oco, db, job + "/out", input, &result, ov);
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
  finished = true;
  watcher.join();
  // How long OpenAndCompact took here (opening the inputs, compacting,
  // closing): the worker's side of the job, stock or accelerated alike (the
  // result's job stats time the primary's wait, not this).
  WriteWhole(job + "/usage", "open_and_compact_micros=" + std::to_string(took) + "\n");
  if (!PublishFile(job + "/result", result) ||
      !PublishFile(job + "/status", s.ok() ? "OK" : s.ToString())) {
    Die("cannot publish the result of " + job + ": " + strerror(errno));
  }
  printf("worker: %s db=%s status=%s result_bytes=%zu\n", job.c_str(), db.c_str(),
         s.ToString().c_str(), result.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f = ParseFlags(argc, argv);
  if (f.cmd == "worker") return RunWorker(f);
  // What a remote job's worker rebuilds its Options from.
  for (int i = 2; i < argc; i++) primary_args.push_back(argv[i]);
  auto rec = std::make_shared<JobRecorder>();
  Options o = MakeOptions(f, rec);
  if (f.cmd == "load") LoadOptions(f, &o);
  if (f.cmd == "run" || f.cmd == "build" || f.cmd == "bench" || f.cmd == "load") {
    Check(DestroyDB(f.db, o), "DestroyDB");
  } else {
    o.create_if_missing = false;
    RefuseMissingMergeOperator(f, o);
  }
  DB* raw = nullptr;
  Check(DB::Open(o, f.db, &raw), "DB::Open");
  std::unique_ptr<DB> db(raw);
  if (f.cmd == "load") return RunLoad(f, db.get(), o, rec.get());
  if (f.cmd == "run" || f.cmd == "build") {
    std::map<std::string, std::string> model;
    std::vector<const Snapshot*> snaps = Build(f, db.get(), &model);
    if (!f.expect.empty()) WriteModel(f.expect, model);
    if (f.cmd == "run") {
      Status s = CompactAll(f, db.get());
      if (!s.ok()) Die("CompactRange: " + s.ToString());
      Dump(f, db.get(), rec->Lines());
    }
    for (auto* s : snaps) db->ReleaseSnapshot(s);
  } else if (f.cmd == "bench") {
    std::map<std::string, std::string> model;
    std::vector<const Snapshot*> snaps = Build(f, db.get(), &model);
    if (f.drop_caches) {
      // The inputs come from disk, as in a DB that has been running a while.
      sync();
      FILE* dc = fopen("/proc/sys/vm/drop_caches", "w");
      if (!dc || fputs("3", dc) < 0 || fclose(dc) != 0) {
        Die(std::string("cannot drop the page cache (root needed): ") + strerror(errno));
      }
    }
    // Only the timed CompactRange's jobs (Build's base levels compacted before it).
    const size_t built = rec->Lines().size();
    Status s = CompactAll(f, db.get());
    printf("compact status: %s snapshots_held=%zu\n", s.ToString().c_str(), snaps.size());
    const std::vector<std::string> jobs = rec->Lines();
    for (size_t i = built; i < jobs.size(); i++) printf("%s\n", jobs[i].c_str());
    for (auto* sn : snaps) db->ReleaseSnapshot(sn);
    if (!s.ok()) return 1;
  } else if (f.cmd == "compact") {
    if (!f.truncate.empty()) {
      // A file cut short under a running DB (a failing disk, an operator's
      // mistake): its reader is open with the old footer and index, and the
      // compaction runs into the end of the file mid-stream.
      size_t at = f.truncate.rfind('@');
      if (at == std::string::npos) Die("--truncate wants NAME@LEN");
      std::string path = f.db + "/" + f.truncate.substr(0, at);
      off_t len = static_cast<off_t>(strtoull(f.truncate.c_str() + at + 1, nullptr, 10));
      if (::truncate(path.c_str(), len) != 0) Die("truncate " + path + ": " + strerror(errno));
    }
    Status s = CompactAll(f, db.get());
    printf("compact status: %s\n", s.ToString().c_str());
    for (const auto& j : rec->Lines()) printf("%s\n", j.c_str());
    return s.ok() ? 0 : 1;
  } else if (f.cmd == "verify") {
    if (f.expect.empty()) Die("verify needs --expect");
    if (f.timestamps) Die("verify reads without timestamps: not for a --timestamps DB");
    FILE* fp = fopen(f.expect.c_str(), "r");
    if (!fp) Die("cannot read " + f.expect);
    char kh[1 << 14], vh[1 << 14];
    uint64_t ok = 0, corrupt = 0, mismatch = 0;
    auto unhex = [](const char* h) {
      std::string out;
      for (size_t i = 0; h[i] && h[i + 1]; i += 2) {
        auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
        out.push_back(static_cast<char>(nib(h[i]) << 4 | nib(h[i + 1])));
      }
      return out;
    };
    while (fscanf(fp, "%16383s %16383s", kh, vh) == 2) {
      std::string k = unhex(kh), v = unhex(strcmp(vh, "-") == 0 ? "" : vh), got;
      Status s = db->Get(ReadOptions(), k, &got);
      if (s.IsCorruption()) corrupt++;
      else if (!s.ok() || (v != std::string("\x01merge", 6) && got != v)) mismatch++;
      else ok++;
    }
    fclose(fp);
    printf("verify ok=%" PRIu64 " corrupt=%" PRIu64 " mismatch=%" PRIu64 "\n", ok,
           corrupt, mismatch);
    return mismatch == 0 ? 0 : 1;
  } else {
    Die("unknown command " + f.cmd);
  }
  Check(db->Close(), "Close");
  return 0;
}
