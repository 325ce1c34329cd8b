// A call's output arrays (out and lse), allocated and NaN-poisoned on a worker thread and handed
// to JavaScript without a copy. Allocating and filling them on the JS thread blocked the event
// loop for 50-90 ms on a large call (hundreds of ms for a burst of calls).
#pragma once

#include <napi.h>

#include <cstddef>

#include "kernel/flash_fwd.h"

namespace fastattn {

class HostOutput {
 public:
  HostOutput(DType dtype, size_t outLength, size_t lseLength)
      : dtype_(dtype), outLength_(outLength), lseLength_(lseLength) {}
  ~HostOutput();
  HostOutput(const HostOutput&) = delete;
  HostOutput& operator=(const HostOutput&) = delete;

  /**
   * On a worker: allocates both arrays and fills them with NaN, so that an element the kernel
   * fails to write cannot pass a test by accident. Throws std::bad_alloc.
   */
  void allocate();
  bool allocated() const { return out_ != nullptr && lse_ != nullptr; }
  void* out() const { return out_; }
  float* lse() const { return lse_; }
  size_t outLength() const { return outLength_; }
  size_t lseLength() const { return lseLength_; }

  /** On the JS thread, once allocate() has run: typed arrays that own the memory from then on. */
  Napi::Value takeOut(Napi::Env env);
  Napi::Value takeLse(Napi::Env env);

 private:
  size_t outBytes() const { return outLength_ * (dtype_ == DType::F32 ? 4 : 2); }

  DType dtype_;
  size_t outLength_;
  size_t lseLength_;
  void* out_ = nullptr;
  float* lse_ = nullptr;
};

}  // namespace fastattn
