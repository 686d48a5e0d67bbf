// ringmerge: write-behind for the output files of an accelerated compaction.
//
// RocksDB's table builder hands its output file a buffer at a time (1 MiB by
// default, writable_file_max_buffer_size) and waits for each write: with
// direct I/O a synchronous O_DIRECT pwrite, buffered a copy into the page
// cache and, at the file's end, an fsync of everything. The compaction thread
// waits for the disk while it could be merging. RingmergeWriteBehindFile copies
// each write into a bounded queue and returns; one writer thread per file
// performs the calls on the real file, in the order they were made. The bytes,
// offsets and file are the same; only who waits changes.
//
// Ordering and errors: every call that reads the file's state or promises
// durability (Sync, Fsync, Close, Truncate, GetFileSize, ...) first waits for
// the queue to drain, then runs on the caller's thread. The first error of a
// queued call is kept; later queued calls are skipped, and every later call
// returns that error. RocksDB Syncs and Closes each output before the
// compaction installs it, so a failed write always fails the compaction before
// any output is installed, as the same failure would in the stock path.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rocksdb/file_system.h"

namespace ROCKSDB_NAMESPACE {

// What the output files of one subcompaction share (they may outlive the
// compaction input that reports it): their totals, and the write buffers a
// closed file leaves for the next one, so each output file does not allocate
// (and, through malloc, fragment) its queue afresh.
struct RingmergeWriteBehindShared {
  ~RingmergeWriteBehindShared();
  std::mutex pool_mu;
  // Free buffers: (address, capacity, alignment).
  struct PooledBuffer {
    char* data;
    size_t capacity;
    size_t alignment;
  };
  std::vector<PooledBuffer> pool;
  // An I/O priority (ioprio_set's value) the writer threads take on before
  // their first write; 0 keeps the one they inherit from the compaction thread.
  int io_priority = 0;

  std::atomic<uint64_t> files{0};
  std::atomic<uint64_t> bytes{0};
  // Time the compaction thread waited: for queue space, and for the queue to
  // drain before a Sync/Close/... .
  std::atomic<uint64_t> full_wait_micros{0};
  std::atomic<uint64_t> drain_wait_micros{0};
  // CPU time of the writer threads (the compaction's CPU figure in RocksDB's
  // stats counts only the compaction thread).
  std::atomic<uint64_t> writer_cpu_micros{0};
  // Time the writer threads spent in the file's calls (the disk's share).
  std::atomic<uint64_t> write_micros{0};
};

class RingmergeWriteBehindFile : public FSWritableFileOwnerWrapper {
 public:
  // `max_pending_bytes` bounds the copies waiting to be written (at least one
  // write is always accepted, however large).
  RingmergeWriteBehindFile(std::unique_ptr<FSWritableFile> target,
                           size_t max_pending_bytes,
                           std::shared_ptr<RingmergeWriteBehindShared> shared);
  ~RingmergeWriteBehindFile() override;

  RingmergeWriteBehindFile(const RingmergeWriteBehindFile&) = delete;
  RingmergeWriteBehindFile& operator=(const RingmergeWriteBehindFile&) = delete;

  // Queued.
  IOStatus Append(const Slice& data, const IOOptions& options,
                  IODebugContext* dbg) override;
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const DataVerificationInfo& verification_info,
                  IODebugContext* dbg) override;
  IOStatus PositionedAppend(const Slice& data, uint64_t offset,
                            const IOOptions& options,
                            IODebugContext* dbg) override;
  IOStatus PositionedAppend(const Slice& data, uint64_t offset,
                            const IOOptions& options,
                            const DataVerificationInfo& verification_info,
                            IODebugContext* dbg) override;
  IOStatus Flush(const IOOptions& options, IODebugContext* dbg) override;
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override;
  void PrepareWrite(size_t offset, size_t len, const IOOptions& options,
                    IODebugContext* dbg) override;

  // Drain, then the target's.
  IOStatus Truncate(uint64_t size, const IOOptions& options,
                    IODebugContext* dbg) override;
  IOStatus Close(const IOOptions& options, IODebugContext* dbg) override;
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override;
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override;
  uint64_t GetFileSize(const IOOptions& options, IODebugContext* dbg) override;
  IOStatus InvalidateCache(size_t offset, size_t length) override;
  IOStatus Allocate(uint64_t offset, uint64_t len, const IOOptions& options,
                    IODebugContext* dbg) override;
  void SetPreallocationBlockSize(size_t size) override;
  void GetPreallocationStatus(size_t* block_size,
                              size_t* last_allocated_block) override;
  void SetWriteLifeTimeHint(Env::WriteLifeTimeHint hint) override;
  // Kept here (WritableFileWriter asks the file it holds) and on the target.
  void SetIOPriority(Env::IOPriority pri) override;
  // The queue is the only path to the file: no Sync may run beside it.
  bool IsSyncThreadSafe() const override { return false; }

 private:
  enum class OpKind : uint8_t {
    kAppend,
    kPositionedAppend,
    kFlush,
    kRangeSync,
    kPrepareWrite
  };
  struct Buffer {
    // A constructor, not `Buffer{data, capacity}`: with member initializers
    // that is aggregate initialization only from C++14 (6.29.5 builds C++11).
    Buffer() : data(nullptr), capacity(0) {}
    Buffer(char* d, size_t c) : data(d), capacity(c) {}
    char* data;
    size_t capacity;
  };
  struct Op {
    OpKind kind = OpKind::kFlush;
    // An append followed by a Flush: the writer Flushes after the write (the
    // Flush does not need an op, nor a wake-up, of its own).
    bool flush_after = false;
    Buffer buf;
    size_t len = 0;
    uint64_t offset = 0;
    uint64_t nbytes = 0;
    bool has_checksum = false;
    std::string checksum;
    IOOptions options;
  };

  // Fills in a call's description (all but its buffer).
  static void Describe(Op* op, OpKind kind, size_t len, uint64_t offset,
                       uint64_t nbytes, const IOOptions& options,
                       const DataVerificationInfo* verification_info);
  IOStatus Enqueue(OpKind kind, const Slice& data, uint64_t offset,
                   uint64_t nbytes, const IOOptions& options,
                   const DataVerificationInfo* verification_info);
  // Waits until every queued call has run; returns the first error.
  IOStatus Drain();
  void WriterLoop();
  IOStatus Execute(Op& op);
  IOStatus ExecuteOne(Op& op);
  Buffer TakeBuffer(size_t len);  // mu_ held
  void ReturnBuffer(Buffer buf);  // mu_ held

  const size_t max_pending_bytes_;
  const size_t alignment_;
  const bool direct_;
  std::shared_ptr<RingmergeWriteBehindShared> shared_;

  std::mutex mu_;
  std::condition_variable work_cv_;   // writer: an op was queued, or stop
  std::condition_variable space_cv_;  // callers: an op finished
  // Ring of queued ops; ops_[head_] is the one the writer runs.
  std::vector<Op> ops_;
  size_t head_ = 0;
  size_t queued_ = 0;
  size_t pending_bytes_ = 0;
  std::vector<Buffer> free_buffers_;
  size_t free_bytes_ = 0;
  IOStatus error_;
  bool stop_ = false;
  // The writer thread could not be started: calls go straight to the file.
  bool synchronous_ = false;
  // The writer is running ops_[head_] (outside the lock), or waiting for work;
  // a caller is waiting for room or for the queue to drain. Wake-ups are
  // futex calls: they are made only for a thread that waits.
  bool executing_ = false;
  bool writer_waiting_ = false;
  int callers_waiting_ = 0;
  // PrepareWrite's preallocation state, mirrored (as FSWritableFile keeps it)
  // so only the calls that would allocate are queued: RocksDB makes one per
  // appended block.
  size_t prealloc_block_size_ = 0;
  size_t last_prealloc_block_ = 0;
  // Buffered writes: how far the writer has started writeback
  // (sync_file_range), so the fsync at the file's end waits for the tail only.
  uint64_t written_end_ = 0;
  uint64_t writeback_started_ = 0;
  std::thread writer_;
};

}  // namespace ROCKSDB_NAMESPACE
