#include "attention_job.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "numeric/half.h"

namespace fastattn {

AttentionJob::AttentionJob(const AttnParams& params, const KernelTable& kernel, int threads,
                           std::function<void()> done)
    : Job(params.itemCount()), params_(params), kernel_(kernel), done_(std::move(done)) {
  if (params_.splitKV > 1) {
    const size_t rows = size_t(params_.batch * params_.headsQ * params_.seqQ * params_.splitKV);
    partialOut_.resize(rows * size_t(params_.headDim));
    partialLse_.resize(rows);
    params_.partialOut = partialOut_.data();
    params_.partialLse = partialLse_.data();
  }
  // Every worker that takes an item needs one item's scratch (kept and reused across calls, but
  // counted for each call that needs it), plus the partials and the merge's accumulator row.
  const size_t workers = size_t(std::min<int64_t>(threads, params_.itemCount()));
  const size_t mergeRow = params_.splitKV > 1 ? size_t(params_.headDim) * sizeof(double) : 0;
  workspaceBytes_ = kernel.scratchBytes(params_) * workers + (partialOut_.size() + partialLse_.size()) * sizeof(float) +
                    mergeRow;
}

void AttentionJob::runItem(int64_t item, Scratch& scratch) { kernel_.runItem(params_, item, scratch); }

void AttentionJob::finish() {
  if (params_.splitKV > 1 && !failed() && !aborted()) {
    try {
      mergeSplits();
    } catch (...) {
      fail("INTERNAL", "merging the split-KV partials failed");
    }
  }
  done_();
}

// out = sum_s exp(lse_s - lse) out_s with lse = log sum_s exp(lse_s): exact, in double. Splits
// without an allowed key have lse_s = -Infinity and weigh nothing; a row without any stays 0.
void AttentionJob::mergeSplits() {
  const AttnParams& p = params_;
  const int64_t rows = p.batch * p.headsQ * p.seqQ;
  const int64_t hd = p.headDim;
  std::vector<double> acc(size_t(hd), 0.0);
  for (int64_t row = 0; row < rows; ++row) {
    // row enumerates the lse layout [b][h][pos]; the output row is [b][pos][h].
    const int64_t pos = row % p.seqQ;
    const int64_t bh = row / p.seqQ;
    const int64_t h = bh % p.headsQ;
    const int64_t b = bh / p.headsQ;
    const float* lse = p.partialLse + row * p.splitKV;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t s = 0; s < p.splitKV; ++s) mx = std::max(mx, double(lse[s]));
    std::fill(acc.begin(), acc.end(), 0.0);
    double total = 0.0;
    if (std::isfinite(mx)) {
      for (int64_t s = 0; s < p.splitKV; ++s) total += std::exp(double(lse[s]) - mx);
      for (int64_t s = 0; s < p.splitKV; ++s) {
        const double w = std::exp(double(lse[s]) - mx) / total;
        if (w == 0.0) continue;
        const float* o = p.partialOut + (row * p.splitKV + s) * hd;
        for (int64_t d = 0; d < hd; ++d) acc[size_t(d)] += w * double(o[d]);
      }
    }
    p.lse[row] = std::isfinite(mx) ? float(mx + std::log(total)) : -std::numeric_limits<float>::infinity();
    const int64_t at = ((b * p.seqQ + pos) * p.headsQ + h) * hd;
    for (int64_t d = 0; d < hd; ++d) {
      const float x = float(acc[size_t(d)]);
      switch (p.dtype) {
        case DType::F32:
          static_cast<float*>(p.out)[at + d] = x;
          break;
        case DType::F16:
          static_cast<uint16_t*>(p.out)[at + d] = f32ToF16(x);
          break;
        case DType::BF16:
          static_cast<uint16_t*>(p.out)[at + d] = f32ToBf16(x);
          break;
      }
    }
  }
}

}  // namespace fastattn
