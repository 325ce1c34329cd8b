// Device work off the JS thread: a Job runs on libuv's thread pool (Napi::AsyncWorker) and settles
// a promise, with the native error's code when it fails.
#pragma once
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

namespace fa {

// Runs `work` on the thread pool; `done` turns its result into a JS value on the JS thread.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done);
  Napi::Promise Promise() { return deferred_.Promise(); }
  std::vector<Napi::ObjectReference> keep;  // JS objects whose memory the work reads or writes

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::string code_ = "INTERNAL", cudaError_, call_, field_;
};

}  // namespace fa
