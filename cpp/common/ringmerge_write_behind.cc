// ringmerge: see ringmerge_write_behind.h.
#include "ringmerge_write_behind.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace ROCKSDB_NAMESPACE {

namespace {

// Queued calls, however small: a Flush or PrepareWrite per append is common.
constexpr size_t kMaxQueuedOps = 256;
// Buffered writes: start writeback of what was written, except the last MiB
// (which the next write may still touch), as WritableFileWriter does with
// bytes_per_sync.
constexpr uint64_t kWritebackStep = 1 << 20;
constexpr uint64_t kWritebackPage = 4096;

uint64_t MicrosSince(std::chrono::steady_clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - t)
          .count());
}

uint64_t ThreadCpuMicros() {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
    return 0;
  }
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 +
         static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace

RingmergeWriteBehindShared::~RingmergeWriteBehindShared() {
  for (const PooledBuffer& b : pool) {
    free(b.data);
  }
}

RingmergeWriteBehindFile::RingmergeWriteBehindFile(
    std::unique_ptr<FSWritableFile> target, size_t max_pending_bytes,
    std::shared_ptr<RingmergeWriteBehindShared> shared)
    : FSWritableFileOwnerWrapper(std::move(target)),
      max_pending_bytes_(max_pending_bytes),
      // Direct writes need buffers aligned as the file requires; 64 keeps
      // buffered copies on cache lines.
      alignment_(std::max<size_t>(
          64, this->target()->use_direct_io()
                  ? this->target()->GetRequiredBufferAlignment()
                  : 0)),
      direct_(this->target()->use_direct_io()),
      shared_(std::move(shared)),
      ops_(kMaxQueuedOps) {
  shared_->files.fetch_add(1, std::memory_order_relaxed);
  this->target()->GetPreallocationStatus(&prealloc_block_size_,
                                         &last_prealloc_block_);
  {
    // The buffers the subcompaction's previous output file left.
    std::lock_guard<std::mutex> lock(shared_->pool_mu);
    auto& pool = shared_->pool;
    for (size_t i = 0; i < pool.size();) {
      if (pool[i].alignment >= alignment_ &&
          free_bytes_ + pool[i].capacity <= max_pending_bytes_) {
        free_buffers_.push_back(Buffer(pool[i].data, pool[i].capacity));
        free_bytes_ += pool[i].capacity;
        pool[i] = pool.back();
        pool.pop_back();
      } else {
        i++;
      }
    }
  }
  try {
    writer_ = std::thread([this] { WriterLoop(); });
  } catch (const std::system_error&) {
    // No thread to be had (resource limits): every call runs on the caller's
    // thread, as without write-behind.
    synchronous_ = true;
  }
}

RingmergeWriteBehindFile::~RingmergeWriteBehindFile() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  if (writer_.joinable()) {
    // The writer finishes what is queued (skipping it after an error) first:
  // WritableFileWriter Closes before destroying, so normally nothing is left.
    writer_.join();
  }
  {
    // Left for the subcompaction's next output file (freed with the shared
    // state when the subcompaction's files are all gone).
    std::lock_guard<std::mutex> lock(shared_->pool_mu);
    for (Buffer& b : free_buffers_) {
      shared_->pool.push_back({b.data, b.capacity, alignment_});
    }
  }
  free_buffers_.clear();
  error_.PermitUncheckedError();
}

RingmergeWriteBehindFile::Buffer RingmergeWriteBehindFile::TakeBuffer(
    size_t len) {
  for (size_t i = 0; i < free_buffers_.size(); i++) {
    if (free_buffers_[i].capacity >= len) {
      Buffer b = free_buffers_[i];
      free_buffers_[i] = free_buffers_.back();
      free_buffers_.pop_back();
      free_bytes_ -= b.capacity;
      return b;
    }
  }
  // None large enough: allocate (rounded up, so a buffer serves the usual
  // 1 MiB writes from then on). A smaller free buffer is dropped to keep the
  // total within the bound.
  if (!free_buffers_.empty() &&
      free_bytes_ + pending_bytes_ + len > max_pending_bytes_) {
    free_bytes_ -= free_buffers_.back().capacity;
    free(free_buffers_.back().data);
    free_buffers_.pop_back();
  }
  Buffer b;
  b.capacity = (std::max<size_t>(len, 1) + alignment_ - 1) / alignment_ * alignment_;
  b.data = static_cast<char*>(aligned_alloc(alignment_, b.capacity));
  if (b.data == nullptr) {
    b.capacity = 0;
  }
  return b;
}

void RingmergeWriteBehindFile::ReturnBuffer(Buffer buf) {
  if (buf.data == nullptr) {
    return;
  }
  if (free_bytes_ + pending_bytes_ + buf.capacity > max_pending_bytes_) {
    free(buf.data);
    return;
  }
  free_bytes_ += buf.capacity;
  free_buffers_.push_back(buf);
}

void RingmergeWriteBehindFile::Describe(
    Op* op, OpKind kind, size_t len, uint64_t offset, uint64_t nbytes,
    const IOOptions& options, const DataVerificationInfo* verification_info) {
  op->kind = kind;
  op->flush_after = false;
  op->len = len;
  op->offset = offset;
  op->nbytes = nbytes;
  op->options = options;
  op->has_checksum = verification_info != nullptr;
  if (op->has_checksum) {
    op->checksum.assign(verification_info->checksum.data(),
                        verification_info->checksum.size());
  }
}

IOStatus RingmergeWriteBehindFile::Enqueue(
    OpKind kind, const Slice& data, uint64_t offset, uint64_t nbytes,
    const IOOptions& options, const DataVerificationInfo* verification_info) {
  if (synchronous_) {
    Op op;
    Describe(&op, kind, data.size(), offset, nbytes, options,
             verification_info);
    op.buf.data = const_cast<char*>(data.data());  // only read by Execute
    return Execute(op);
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (!error_.ok()) {
    return error_;
  }
  const size_t len = data.size();
  // Room for the op, and for its copy unless the queue is empty (a write
  // larger than the bound is accepted alone).
  auto has_room = [&] {
    return !error_.ok() || queued_ == 0 ||
           (queued_ < ops_.size() && pending_bytes_ + len <= max_pending_bytes_);
  };
  if (!has_room()) {
    const auto t = std::chrono::steady_clock::now();
    callers_waiting_++;
    space_cv_.wait(lock, has_room);
    callers_waiting_--;
    shared_->full_wait_micros.fetch_add(MicrosSince(t),
                                       std::memory_order_relaxed);
    if (!error_.ok()) {
      return error_;
    }
  }
  // The slot after the queued ones is invisible to the writer until queued_
  // grows, and this file has one caller (its WritableFileWriter): fill it and
  // copy the data without the lock, so the writer never waits for the copy.
  Op& op = ops_[(head_ + queued_) % ops_.size()];
  Buffer buf;
  if (len > 0) {
    buf = TakeBuffer(len);
    if (buf.data == nullptr) {
      return IOStatus::IOError("ringmerge write-behind: out of memory");
    }
    pending_bytes_ += buf.capacity;
  }
  lock.unlock();
  Describe(&op, kind, len, offset, nbytes, options, verification_info);
  op.buf = buf;
  if (len > 0) {
    memcpy(op.buf.data, data.data(), len);
  }
  lock.lock();
  queued_++;
  const bool wake = writer_waiting_;
  lock.unlock();
  if (wake) {
    work_cv_.notify_one();
  }
  shared_->bytes.fetch_add(len, std::memory_order_relaxed);
  return IOStatus::OK();
}

IOStatus RingmergeWriteBehindFile::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  if (queued_ > 0) {
    const auto t = std::chrono::steady_clock::now();
    callers_waiting_++;
    space_cv_.wait(lock, [&] { return queued_ == 0; });
    callers_waiting_--;
    shared_->drain_wait_micros.fetch_add(MicrosSince(t),
                                        std::memory_order_relaxed);
  }
  return error_;
}

void RingmergeWriteBehindFile::WriterLoop() {
  pthread_setname_np(pthread_self(), "ringmerge-wb");
  if (shared_->io_priority != 0) {
    // Best effort, like RocksDB's own Env::LowerThreadPoolIOPriority: a kernel
    // that refuses leaves the inherited priority.
    syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0 /* this thread */,
            shared_->io_priority);
  }
  const uint64_t cpu_start = ThreadCpuMicros();
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    writer_waiting_ = true;
    work_cv_.wait(lock, [&] { return queued_ > 0 || stop_; });
    writer_waiting_ = false;
    if (queued_ == 0) {
      break;  // stop_, and nothing left
    }
    Op& op = ops_[head_];
    const bool skip = !error_.ok();
    executing_ = true;
    lock.unlock();
    // The op is the writer's alone until it is popped below.
    const auto t = std::chrono::steady_clock::now();
    IOStatus s = skip ? IOStatus::OK() : Execute(op);
    shared_->write_micros.fetch_add(MicrosSince(t), std::memory_order_relaxed);
    lock.lock();
    if (!s.ok() && error_.ok()) {
      error_ = s;
    }
    s.PermitUncheckedError();
    pending_bytes_ -= op.buf.capacity;
    ReturnBuffer(op.buf);
    op.buf = Buffer();
    op.options.property_bag.clear();
    head_ = (head_ + 1) % ops_.size();
    queued_--;
    executing_ = false;
    if (callers_waiting_ > 0) {
      space_cv_.notify_all();
    }
  }
  lock.unlock();
  shared_->writer_cpu_micros.fetch_add(ThreadCpuMicros() - cpu_start,
                                      std::memory_order_relaxed);
}

IOStatus RingmergeWriteBehindFile::Execute(Op& op) {
  IOStatus s = ExecuteOne(op);
  if (s.ok() && op.flush_after) {
    s = target()->Flush(op.options, nullptr);
  }
  return s;
}

IOStatus RingmergeWriteBehindFile::ExecuteOne(Op& op) {
  const Slice data(op.buf.data, op.len);
  DataVerificationInfo v;
  v.checksum = Slice(op.checksum);
  switch (op.kind) {
    case OpKind::kAppend: {
      IOStatus s = op.has_checksum
                       ? target()->Append(data, op.options, v, nullptr)
                       : target()->Append(data, op.options, nullptr);
      if (s.ok() && !direct_) {
        // Start writeback now, not at the final fsync (which then waits only
        // for the tail); a hint, so its result does not fail the file.
        written_end_ += op.len;
        if (written_end_ >= writeback_started_ + 2 * kWritebackStep) {
          const uint64_t to =
              (written_end_ - kWritebackStep) / kWritebackPage * kWritebackPage;
          target()
              ->RangeSync(writeback_started_, to - writeback_started_,
                          op.options, nullptr)
              .PermitUncheckedError();
          writeback_started_ = to;
        }
      }
      return s;
    }
    case OpKind::kPositionedAppend:
      return op.has_checksum
                 ? target()->PositionedAppend(data, op.offset, op.options, v,
                                              nullptr)
                 : target()->PositionedAppend(data, op.offset, op.options,
                                              nullptr);
    case OpKind::kFlush:
      return target()->Flush(op.options, nullptr);
    case OpKind::kRangeSync:
      return target()->RangeSync(op.offset, op.nbytes, op.options, nullptr);
    case OpKind::kPrepareWrite:
      target()->PrepareWrite(static_cast<size_t>(op.offset),
                             static_cast<size_t>(op.nbytes), op.options,
                             nullptr);
      return IOStatus::OK();
  }
  return IOStatus::OK();
}

IOStatus RingmergeWriteBehindFile::Append(const Slice& data,
                                          const IOOptions& options,
                                          IODebugContext* /*dbg*/) {
  return Enqueue(OpKind::kAppend, data, 0, 0, options, nullptr);
}

IOStatus RingmergeWriteBehindFile::Append(
    const Slice& data, const IOOptions& options,
    const DataVerificationInfo& verification_info, IODebugContext* /*dbg*/) {
  return Enqueue(OpKind::kAppend, data, 0, 0, options, &verification_info);
}

IOStatus RingmergeWriteBehindFile::PositionedAppend(const Slice& data,
                                                    uint64_t offset,
                                                    const IOOptions& options,
                                                    IODebugContext* /*dbg*/) {
  return Enqueue(OpKind::kPositionedAppend, data, offset, 0, options, nullptr);
}

IOStatus RingmergeWriteBehindFile::PositionedAppend(
    const Slice& data, uint64_t offset, const IOOptions& options,
    const DataVerificationInfo& verification_info, IODebugContext* /*dbg*/) {
  return Enqueue(OpKind::kPositionedAppend, data, offset, 0, options,
                 &verification_info);
}

IOStatus RingmergeWriteBehindFile::Flush(const IOOptions& options,
                                         IODebugContext* /*dbg*/) {
  if (!synchronous_) {
    // WritableFileWriter Flushes after each buffer it writes: fold that into
    // the queued write (not yet started by the writer) it follows.
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) {
      return error_;
    }
    if (queued_ > 0 && (queued_ > 1 || !executing_)) {
      Op& tail = ops_[(head_ + queued_ - 1) % ops_.size()];
      if (tail.kind == OpKind::kAppend ||
          tail.kind == OpKind::kPositionedAppend) {
        tail.flush_after = true;
        return IOStatus::OK();
      }
    }
  }
  return Enqueue(OpKind::kFlush, Slice(), 0, 0, options, nullptr);
}

IOStatus RingmergeWriteBehindFile::RangeSync(uint64_t offset, uint64_t nbytes,
                                             const IOOptions& options,
                                             IODebugContext* /*dbg*/) {
  return Enqueue(OpKind::kRangeSync, Slice(), offset, nbytes, options, nullptr);
}

void RingmergeWriteBehindFile::PrepareWrite(size_t offset, size_t len,
                                            const IOOptions& options,
                                            IODebugContext* /*dbg*/) {
  // FSWritableFile::PrepareWrite allocates only when a write crosses into a
  // new preallocation block; RocksDB calls it for every appended block, so
  // only the calls that cross are queued (the file's own PrepareWrite then
  // does the same computation). Preallocation is a hint with no status; an
  // error is reported by the writes themselves.
  if (prealloc_block_size_ == 0) {
    return;
  }
  const size_t new_last =
      (offset + len + prealloc_block_size_ - 1) / prealloc_block_size_;
  if (new_last <= last_prealloc_block_) {
    return;
  }
  last_prealloc_block_ = new_last;
  Enqueue(OpKind::kPrepareWrite, Slice(), offset, len, options, nullptr)
      .PermitUncheckedError();
}

IOStatus RingmergeWriteBehindFile::Truncate(uint64_t size,
                                            const IOOptions& options,
                                            IODebugContext* dbg) {
  IOStatus s = Drain();
  return s.ok() ? target()->Truncate(size, options, dbg) : s;
}

IOStatus RingmergeWriteBehindFile::Close(const IOOptions& options,
                                         IODebugContext* dbg) {
  // Closed even after an error, so the descriptor is released; the first
  // error is what the caller sees.
  IOStatus pending = Drain();
  IOStatus s = target()->Close(options, dbg);
  if (!pending.ok()) {
    s.PermitUncheckedError();
    return pending;
  }
  return s;
}

IOStatus RingmergeWriteBehindFile::Sync(const IOOptions& options,
                                        IODebugContext* dbg) {
  IOStatus s = Drain();
  return s.ok() ? target()->Sync(options, dbg) : s;
}

IOStatus RingmergeWriteBehindFile::Fsync(const IOOptions& options,
                                         IODebugContext* dbg) {
  IOStatus s = Drain();
  return s.ok() ? target()->Fsync(options, dbg) : s;
}

uint64_t RingmergeWriteBehindFile::GetFileSize(const IOOptions& options,
                                               IODebugContext* dbg) {
  Drain().PermitUncheckedError();
  return target()->GetFileSize(options, dbg);
}

IOStatus RingmergeWriteBehindFile::InvalidateCache(size_t offset,
                                                   size_t length) {
  IOStatus s = Drain();
  return s.ok() ? target()->InvalidateCache(offset, length) : s;
}

IOStatus RingmergeWriteBehindFile::Allocate(uint64_t offset, uint64_t len,
                                            const IOOptions& options,
                                            IODebugContext* dbg) {
  IOStatus s = Drain();
  return s.ok() ? target()->Allocate(offset, len, options, dbg) : s;
}

void RingmergeWriteBehindFile::SetPreallocationBlockSize(size_t size) {
  Drain().PermitUncheckedError();
  target()->SetPreallocationBlockSize(size);
  target()->GetPreallocationStatus(&prealloc_block_size_, &last_prealloc_block_);
}

void RingmergeWriteBehindFile::GetPreallocationStatus(
    size_t* block_size, size_t* last_allocated_block) {
  Drain().PermitUncheckedError();
  target()->GetPreallocationStatus(block_size, last_allocated_block);
}

void RingmergeWriteBehindFile::SetWriteLifeTimeHint(
    Env::WriteLifeTimeHint hint) {
  Drain().PermitUncheckedError();
  target()->SetWriteLifeTimeHint(hint);
}

void RingmergeWriteBehindFile::SetIOPriority(Env::IOPriority pri) {
  Drain().PermitUncheckedError();
  FSWritableFileOwnerWrapper::SetIOPriority(pri);
  target()->SetIOPriority(pri);
}

}  // namespace ROCKSDB_NAMESPACE
