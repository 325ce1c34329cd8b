// The addon's own worker threads. Attention calls never run on the JS thread, nor on libuv's
// small shared pool (4 threads, also used by fs and dns): each backend owns `threads` workers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernel/flash_fwd.h"

namespace fastattn {

/**
 * An error an item reports with its FastAttentionError code and field (bad data found at run time).
 * Defined out of line (thread_pool.cpp): the per-ISA kernel files throw it, and an inline member
 * would be emitted there as a weak symbol the linker might pick for every caller.
 */
class OpError : public std::runtime_error {
 public:
  OpError(const char* code, const char* field, const std::string& message);
  ~OpError() override;
  const char* code() const { return code_; }
  const char* field() const { return field_; }

 private:
  const char* code_;
  const char* field_;
};

/**
 * Throws OpError(INVALID_INPUT, field, "<what> <value> of <unit> <at> is outside [0, <limit>)").
 * The message is built here, in a portable file, for the same reason OpError is out of line.
 */
[[noreturn]] void throwOutOfRange(const char* field, const char* what, int64_t value, const char* unit, int64_t at,
                                  int64_t limit);

/**
 * A batch of independent items. Workers claim items one at a time (dynamic scheduling: causal
 * items differ in length); the worker that completes the last one calls finish(). Items not yet
 * started when cancel() is called are skipped.
 */
class Job {
 public:
  explicit Job(int64_t items) : items_(items) {}
  virtual ~Job() = default;
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  int64_t items() const { return items_; }
  void cancel() { cancelled_.store(true); }
  /** True when some item was skipped because of cancel() (not because of an error). */
  bool aborted() const { return skipped_.load() > 0 && !failed(); }
  bool failed() const;
  /** The first error an item threw: a FastAttentionError code, a message and the field, if any. */
  void error(std::string& code, std::string& message) const;
  void error(std::string& code, std::string& message, std::string& field) const;

 protected:
  virtual void runItem(int64_t item, Scratch& scratch) = 0;
  /** Called exactly once, on a worker thread, after every item ran or was skipped. */
  virtual void finish() = 0;
  void fail(const char* code, const std::string& message, const char* field = "");

 private:
  friend class ThreadPool;
  void execute(int64_t item, Scratch& scratch);

  const int64_t items_;
  int64_t next_ = 0;  // guarded by the pool's mutex
  std::atomic<int64_t> finished_{0};
  std::atomic<int64_t> skipped_{0};
  std::atomic<bool> cancelled_{false};
  mutable std::mutex errorMutex_;
  std::string errorCode_;
  std::string errorMessage_;
  std::string errorField_;
};

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /** Queues a job; throws std::runtime_error after shutdown(). */
  void submit(std::shared_ptr<Job> job);
  /** Cancels queued work, lets running items end, joins the workers. Idempotent. */
  void shutdown();
  int threads() const { return int(workers_.size()); }

 private:
  void workerLoop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace fastattn
