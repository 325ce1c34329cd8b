// Device memory: allocation, host <-> device copies through pinned staging, device-side fills.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "context.h"
#include "js_args.h"

namespace fa {

void* Context::staging() {
  if (!staging_) {
    FA_CU(cuMemAllocHost(&staging_, kStagingChunk), "cuMemAllocHost_v2");
    stagingBytes_ = kStagingChunk;
  }
  return staging_;
}

Napi::Value Context::Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    const double bytes = info[0].As<Napi::Number>().DoubleValue();
    CUdeviceptr p = 0;
    FA_CU(cuMemAlloc(&p, static_cast<size_t>(std::max(bytes, 1.0))), "cuMemAlloc_v2");
    return Napi::BigInt::New(env, static_cast<uint64_t>(p));
  });
}

Napi::Value Context::Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!ctx_) return env.Undefined();  // the context already released everything
    std::lock_guard<std::mutex> lock(mu_);  // never free under a running job
    current();
    FA_CU(cuMemFree(ptrArg(info[0])), "cuMemFree_v2");
    return env.Undefined();
  });
}

Napi::Value Context::MemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    size_t free = 0, total = 0;
    FA_CU(cuMemGetInfo(&free, &total), "cuMemGetInfo_v2");
    Napi::Object o = Napi::Object::New(env);
    o.Set("free", static_cast<double>(free));
    o.Set("total", static_cast<double>(total));
    return o;
  });
}

// Host <-> device through pinned staging, in chunks, so pageable JS memory never needs pinning.
Napi::Value Context::Upload(const Napi::CallbackInfo& info) {
  const CUdeviceptr dst = ptrArg(info[0]);
  Napi::TypedArray src = info[1].As<Napi::TypedArray>();
  const char* host = viewData(src);
  const size_t bytes = src.ByteLength();
  return submit(
      info,
      [this, dst, host, bytes]() {
        char* stage = static_cast<char*>(staging());
        for (size_t off = 0; off < bytes; off += stagingBytes_) {
          const size_t n = std::min(stagingBytes_, bytes - off);
          std::memcpy(stage, host + off, n);
          FA_CU(cuMemcpyHtoDAsync(dst + off, stage, n, stream_), "cuMemcpyHtoDAsync_v2");
          FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
        }
      },
      nullptr, {src});
}

Napi::Value Context::Download(const Napi::CallbackInfo& info) {
  const CUdeviceptr src = ptrArg(info[0]);
  Napi::TypedArray dst = info[1].As<Napi::TypedArray>();
  char* host = viewData(dst);
  const size_t bytes = dst.ByteLength();
  return submit(
      info,
      [this, src, host, bytes]() {
        char* stage = static_cast<char*>(staging());
        for (size_t off = 0; off < bytes; off += stagingBytes_) {
          const size_t n = std::min(stagingBytes_, bytes - off);
          FA_CU(cuMemcpyDtoHAsync(stage, src + off, n, stream_), "cuMemcpyDtoHAsync_v2");
          FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
          std::memcpy(host + off, stage, n);
        }
      },
      nullptr, {dst});
}

Napi::Value Context::Memset(const Napi::CallbackInfo& info) {
  const CUdeviceptr dst = ptrArg(info[0]);
  const unsigned char value = static_cast<unsigned char>(info[1].As<Napi::Number>().Uint32Value());
  const size_t bytes = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
  return submit(info, [this, dst, value, bytes]() {
    FA_CU(cuMemsetD8Async(dst, value, bytes, stream_), "cuMemsetD8Async");
    FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
  });
}

// copy(dst, src, bytes): device-to-device, stream-ordered, then synchronized (byte offsets are
// applied by the caller to the addresses: 64-bit BigInt arithmetic, so > 4 GiB offsets are fine).
Napi::Value Context::Copy(const Napi::CallbackInfo& info) {
  const CUdeviceptr dst = ptrArg(info[0]), src = ptrArg(info[1]);
  const size_t bytes = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
  return submit(info, [this, dst, src, bytes]() {
    if (bytes > 0) FA_CU(cuMemcpyDtoDAsync(dst, src, bytes, stream_), "cuMemcpyDtoDAsync_v2");
    FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
  });
}

// fill(ptr, count, dtype, seed): uniform pseudo-random values in [-1, 1) (common/combine's fill kernel).
Napi::Value Context::Fill(const Napi::CallbackInfo& info) {
  const CUdeviceptr dst = ptrArg(info[0]);
  const uint64_t count = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  const std::string dtype = info[2].As<Napi::String>().Utf8Value();
  const uint64_t seed = static_cast<uint64_t>(info[3].As<Napi::Number>().DoubleValue());
  return submit(info, [this, dst, count, dtype, seed]() {
    CUfunction f = function("common/combine", "fa_fill_" + dtype);
    struct {
      CUdeviceptr x;
      uint64_t n, seed;
    } a{dst, count, seed};
    void* args[] = {&a.x, &a.n, &a.seed};
    const unsigned blocks = static_cast<unsigned>(std::min<uint64_t>((count + 255) / 256, uint64_t(sms_) * 16));
    FA_CU(cuLaunchKernel(f, std::max(blocks, 1u), 1, 1, 256, 1, 1, 0, stream_, args, nullptr), "cuLaunchKernel(fill)");
    FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
  });
}

}  // namespace fa
