// Timing with CUDA events on the context's stream: attention launches and the copy yardstick.
#include <algorithm>
#include <memory>
#include <vector>

#include "context.h"
#include "js_args.h"

namespace fa {
namespace {

Napi::Value toArray(Napi::Env env, const std::vector<double>& v) {
  Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = v[i];
  return a;
}

}  // namespace

// Times `fn` with events on the stream: one (start, stop) pair per iteration, after warm-up.
std::vector<double> Context::timed(int warmup, int iters, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<CUevent> ev(2 * iters, nullptr);
  std::vector<double> ms(iters, 0.0);
  try {
    for (auto& e : ev) FA_CU(cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate");
    for (int i = 0; i < iters; ++i) {
      FA_CU(cuEventRecord(ev[2 * i], stream_), "cuEventRecord");
      fn();
      FA_CU(cuEventRecord(ev[2 * i + 1], stream_), "cuEventRecord");
    }
    FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize(timing)");
    for (int i = 0; i < iters; ++i) {
      float t = 0;
      FA_CU(cuEventElapsedTime(&t, ev[2 * i], ev[2 * i + 1]), "cuEventElapsedTime");
      ms[i] = t;
    }
  } catch (...) {
    for (auto e : ev)
      if (e) driver().cuEventDestroy(e);
    throw;
  }
  for (auto e : ev) driver().cuEventDestroy(e);
  return ms;
}

// timeAttention(desc, warmup, iters): one figure per launch, in ms.
Napi::Value Context::TimeAttention(const Napi::CallbackInfo& info) {
  auto l = std::make_shared<Launch>(parseLaunch(info[0].As<Napi::Object>()));
  const int warmup = info[1].As<Napi::Number>().Int32Value(), iters = info[2].As<Napi::Number>().Int32Value();
  auto result = std::make_shared<std::vector<double>>();
  return submit(
      info, [this, l, warmup, iters, result]() { *result = timed(warmup, iters, [&] { enqueue(*l); }); },
      [result](Napi::Env env) { return toArray(env, *result); });
}

// timeAttentionSets([desc...], warmup, rounds, perFigure = 1): rounds x (every desc once),
// enqueued back to back, one figure per perFigure launches (an event pair around them, the time
// divided by perFigure). The host enqueues ahead of the device (as a decode loop does), so the
// host's launch latency is not in the figures; the descs rotate over input sets so that problems
// smaller than L2 are still read from memory. perFigure > 1 leaves no event between most launches,
// so programmatic dependent launch can overlap one launch's start with the previous one's end.
Napi::Value Context::TimeAttentionSets(const Napi::CallbackInfo& info) {
  Napi::Array arr = info[0].As<Napi::Array>();
  auto ls = std::make_shared<std::vector<Launch>>();
  for (uint32_t i = 0; i < arr.Length(); ++i) ls->push_back(parseLaunch(arr.Get(i).As<Napi::Object>()));
  const int warmup = info[1].As<Napi::Number>().Int32Value(), rounds = info[2].As<Napi::Number>().Int32Value();
  const int perFigure = info.Length() > 3 && info[3].IsNumber() ? std::max(1, info[3].As<Napi::Number>().Int32Value()) : 1;
  auto result = std::make_shared<std::vector<double>>();
  return submit(
      info,
      [this, ls, warmup, rounds, perFigure, result]() {
        for (int w = 0; w < warmup; ++w)
          for (auto& l : *ls) enqueue(l);
        size_t n = 0;
        const int launches = rounds * static_cast<int>(ls->size());
        *result = timed(0, std::max(1, launches / perFigure), [&] {
          for (int i = 0; i < perFigure; ++i) enqueue((*ls)[n++ % ls->size()]);
        });
        for (auto& ms : *result) ms /= perFigure;
      },
      [result](Napi::Env env) { return toArray(env, *result); });
}

// timeCopy(dst, src, bytes, warmup, iters): a device-to-device copy per iteration, in ms.
Napi::Value Context::TimeCopy(const Napi::CallbackInfo& info) {
  const CUdeviceptr dst = ptrArg(info[0]), src = ptrArg(info[1]);
  const size_t bytes = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
  const int warmup = info[3].As<Napi::Number>().Int32Value(), iters = info[4].As<Napi::Number>().Int32Value();
  auto result = std::make_shared<std::vector<double>>();
  return submit(
      info,
      [this, dst, src, bytes, warmup, iters, result]() {
        *result = timed(warmup, iters, [&] { FA_CU(cuMemcpyDtoDAsync(dst, src, bytes, stream_), "cuMemcpyDtoDAsync_v2"); });
      },
      [result](Napi::Env env) { return toArray(env, *result); });
}

}  // namespace fa
