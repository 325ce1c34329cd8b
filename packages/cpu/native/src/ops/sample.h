// The sample op on the cpu (sample.cpp): one row per step of a work item.
#pragma once

#include <cstdint>

#include "kernel/flash_fwd.h"

namespace fastattn {

/** Logits [rows][vocab] and each row's parameters ([rows] arrays), outputs [rows]. */
struct SampleParams {
  const float* logits = nullptr;
  int64_t rows = 0, vocab = 0, logitsRowStride = 0;
  const float* temperature = nullptr;
  const int32_t* topK = nullptr;
  const float* topP = nullptr;
  const float* minP = nullptr;
  const float* repetitionPenalty = nullptr;
  const float* presencePenalty = nullptr;
  const float* frequencyPenalty = nullptr;
  const int32_t* seed = nullptr;      // uint32 bits
  const int32_t* counters = nullptr;  // the generator step of each row
  const int32_t* counts = nullptr;    // [rows][vocab] tokens seen, or nullptr
  int64_t countsRowStride = 0;
  int32_t* tokens = nullptr;
  float* logprobs = nullptr;  // or nullptr
  int64_t rowsPerItem = 1;
};

void sampleRows(const SampleParams& p, int64_t item, Scratch& scratch);

}  // namespace fastattn
