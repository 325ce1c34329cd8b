#include "thread_pool.h"

#include <cstdlib>
#include <new>
#include <stdexcept>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace fastattn {

Scratch::~Scratch() {
  for (void* p : ptr_) std::free(p);
}

void* Scratch::get(int slot, size_t bytes) {
  if (bytes == 0) bytes = 64;
  if (size_[slot] < bytes) {
    std::free(ptr_[slot]);
    ptr_[slot] = nullptr;
    size_[slot] = 0;
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) throw std::bad_alloc();
    ptr_[slot] = p;
    size_[slot] = rounded;
  }
  return ptr_[slot];
}

OpError::OpError(const char* code, const char* field, const std::string& message)
    : std::runtime_error(std::string(field) + ": " + message), code_(code), field_(field) {}
OpError::~OpError() = default;

void throwOutOfRange(const char* field, const char* what, int64_t value, const char* unit, int64_t at, int64_t limit) {
  throw OpError("INVALID_INPUT", field,
                std::string(what) + " " + std::to_string(value) + " of " + unit + " " + std::to_string(at) +
                    " is outside [0, " + std::to_string(limit) + ")");
}

bool Job::failed() const {
  std::lock_guard<std::mutex> lock(errorMutex_);
  return !errorCode_.empty();
}

void Job::error(std::string& code, std::string& message) const {
  std::lock_guard<std::mutex> lock(errorMutex_);
  code = errorCode_;
  message = errorMessage_;
}

void Job::error(std::string& code, std::string& message, std::string& field) const {
  std::lock_guard<std::mutex> lock(errorMutex_);
  code = errorCode_;
  message = errorMessage_;
  field = errorField_;
}

void Job::fail(const char* code, const std::string& message, const char* field) {
  {
    std::lock_guard<std::mutex> lock(errorMutex_);
    if (errorCode_.empty()) {
      errorCode_ = code;
      errorMessage_ = message;
      errorField_ = field;
    }
  }
  cancelled_.store(true);  // the result is lost anyway: skip the remaining items
}

void Job::execute(int64_t item, Scratch& scratch) {
  if (cancelled_.load()) {
    skipped_.fetch_add(1);
  } else {
    // Nothing may escape a worker thread: an exception there would terminate the process.
    try {
      runItem(item, scratch);
    } catch (const OpError& e) {
      fail(e.code(), e.what(), e.field());
    } catch (const std::bad_alloc&) {
      fail("OOM", "out of memory in the attention kernel's working buffers");
    } catch (const std::exception& e) {
      fail("INTERNAL", std::string("attention kernel failed: ") + e.what());
    } catch (...) {
      fail("INTERNAL", "attention kernel failed with an unknown exception");
    }
  }
  if (finished_.fetch_add(1) + 1 == items_) finish();
}

namespace {

/**
 * Linux: when the pool has one worker per CPU the process may use (the default), gives worker i
 * CPU i of that set. Woken together by one notify, unpinned workers were often placed on the
 * same CPU, and a call of a few milliseconds (decode) then ran on one core until the load
 * balancer moved a thread: on the 2-vCPU VM, f16 decode 32K took 5-6 ms or 10-11 ms (one thread
 * doing every item, total CPU time unchanged) at random. A pool of fewer workers is not pinned,
 * so that several such pools do not pile onto the same CPUs.
 */
void pinWorkers(std::vector<std::thread>& workers) {
#if defined(__linux__)
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  if (cpus.size() != workers.size()) return;
  for (size_t i = 0; i < workers.size(); ++i) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus[i], &one);
    pthread_setaffinity_np(workers[i].native_handle(), sizeof one, &one);  // best effort
  }
#else
  (void)workers;
#endif
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads < 1) threads = 1;
  workers_.reserve(size_t(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { workerLoop(); });
  pinWorkers(workers_);
}

ThreadPool::~ThreadPool() { shutdown(); }

void ThreadPool::submit(std::shared_ptr<Job> job) {
  if (job->items() == 0) {
    job->finish();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw std::runtime_error("the thread pool was shut down");
    queue_.push_back(std::move(job));
  }
  wake_.notify_all();
}

void ThreadPool::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    for (auto& job : queue_) job->cancel();
  }
  wake_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  workers_.clear();
}

void ThreadPool::workerLoop() {
  Scratch scratch;
  for (;;) {
    std::shared_ptr<Job> job;
    int64_t item = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued job has been handed out
      job = queue_.front();
      item = job->next_++;
      if (job->next_ >= job->items()) queue_.pop_front();
    }
    job->execute(item, scratch);
  }
}

}  // namespace fastattn
