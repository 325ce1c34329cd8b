#include "job.h"

#include <new>

#include "driver.h"
#include "js_errors.h"

namespace fa {

Job::Job(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done)
    : Napi::AsyncWorker(env, "fastattention-cuda"), deferred_(Napi::Promise::Deferred::New(env)),
      work_(std::move(work)), done_(std::move(done)) {}

void Job::Execute() {
  try {
    work_();
  } catch (const CudaError& e) {
    code_ = e.code, cudaError_ = e.name, call_ = e.call, SetError(e.what());
  } catch (const FaError& e) {
    code_ = e.code, field_ = e.field, SetError(e.what());
  } catch (const std::bad_alloc&) {
    code_ = "OOM", SetError("host allocation failed");
  } catch (const std::exception& e) {
    code_ = "INTERNAL", SetError(e.what());
  }
}

void Job::OnOK() {
  Napi::HandleScope scope(Env());
  try {
    deferred_.Resolve(done_ ? done_(Env()) : Env().Undefined());
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

void Job::OnError(const Napi::Error& e) {
  Napi::HandleScope scope(Env());
  deferred_.Reject(toJsError(Env(), e.Message(), code_, cudaError_, call_, field_).Value());
}

}  // namespace fa
