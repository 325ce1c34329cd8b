#include "microbench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

namespace fastattn {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/** Runs fn(thread index) on `threads` threads started together; returns the wall time. */
template <typename Fn>
double runTogether(int threads, Fn fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      fn(t);
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto t0 = Clock::now();
  go.store(true);
  for (auto& th : pool) th.join();
  return secondsSince(t0);
}

}  // namespace

double measureFmaPeak(const KernelTable& kernel, int threads, double seconds) {
  // Calibrate on one thread, then run every thread for about `seconds`; best of three.
  int64_t iters = 1 << 16;
  for (;;) {
    const auto t0 = Clock::now();
    kernel.fmaLoop(iters, 1.0f);
    const double dt = secondsSince(t0);
    if (dt > 0.02) {
      iters = std::max<int64_t>(1, int64_t(double(iters) * seconds / dt));
      break;
    }
    iters *= 4;
  }
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<double> flops(size_t(threads), 0.0);
    const double dt = runTogether(threads, [&](int t) { flops[size_t(t)] = kernel.fmaLoop(iters, 1.0f + float(t)); });
    double total = 0.0;
    for (double f : flops) total += f;
    best = std::max(best, total / dt);
  }
  return best;
}

double measureReadBandwidth(const KernelTable& kernel, int threads, size_t bytes, int reps) {
  const size_t count = bytes / sizeof(float) / size_t(threads) / 64 * 64;
  std::vector<float*> slices(size_t(threads), nullptr);
  // Each thread allocates and first-touches its own slice (NUMA-local pages, no lazy zero-fill
  // faults inside the timed loop).
  runTogether(threads, [&](int t) {
    auto* p = static_cast<float*>(std::aligned_alloc(64, count * sizeof(float)));
    if (p != nullptr) std::fill(p, p + count, 1.0f);
    slices[size_t(t)] = p;
  });
  bool ok = true;
  for (float* p : slices) ok = ok && p != nullptr;
  double best = 0.0;
  if (ok) {
    std::vector<float> sums(size_t(threads), 0.0f);
    for (int rep = 0; rep < reps; ++rep) {
      const double dt = runTogether(threads, [&](int t) { sums[size_t(t)] = kernel.readStream(slices[size_t(t)], count); });
      best = std::max(best, double(count * sizeof(float)) * threads / dt);
    }
  }
  for (float* p : slices) std::free(p);
  if (!ok) throw std::bad_alloc();
  return best;
}

uint64_t xorStream(const void* data, size_t bytes) {
  typedef uint64_t v8 __attribute__((vector_size(64), aligned(8), may_alias));
  const auto* p = static_cast<const char*>(data);
  v8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  size_t i = 0;
  for (; i + 256 <= bytes; i += 256) {
    a0 ^= *reinterpret_cast<const v8*>(p + i);
    a1 ^= *reinterpret_cast<const v8*>(p + i + 64);
    a2 ^= *reinterpret_cast<const v8*>(p + i + 128);
    a3 ^= *reinterpret_cast<const v8*>(p + i + 192);
  }
  const v8 s = (a0 ^ a1) ^ (a2 ^ a3);
  uint64_t r = 0;
  for (int k = 0; k < 8; ++k) r ^= s[k];
  for (; i + 8 <= bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    r ^= w;
  }
  return r;
}

}  // namespace fastattn
