#include "attention_job.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "numeric/half.h"

namespace fastattn {

AttentionJob::AttentionJob(const AttnParams& params, const KernelTable& kernel, int threads,
                           std::function<void()> done)
    : CallJob(params, params.itemCount(), std::move(done)), kernel_(kernel) {
  if (params_.splitKV > 1) partialRows_ = size_t(params_.batch * params_.headsQ * params_.seqQ * params_.splitKV);
  // Every worker that takes an item needs one item's scratch (kept and reused across calls, but
  // counted for each call that needs it), plus the partials and the merge's accumulator row.
  const size_t workers = size_t(std::min<int64_t>(threads, params_.itemCount()));
  const size_t mergeRow = params_.splitKV > 1 ? size_t(params_.headDim) * sizeof(double) : 0;
  workspaceBytes_ = kernel.scratchBytes(params_) * workers +
                    partialRows_ * (size_t(params_.headDim) + 1) * sizeof(float) + mergeRow;
}

void AttentionJob::prepare() {
  if (partialRows_ == 0) return;
  // Every split item writes all of its rows' partials (empty splits too): no fill needed.
  partialOut_.reset(new float[partialRows_ * size_t(params_.headDim)]);
  partialLse_.reset(new float[partialRows_]);
  params_.partialOut = partialOut_.get();
  params_.partialLse = partialLse_.get();
}

void AttentionJob::runWork(int64_t item, Scratch& scratch) { kernel_.runItem(params_, item, scratch); }

namespace {

void store(const AttnParams& p, int64_t at, double x) {
  switch (p.dtype) {
    case DType::F32:
      static_cast<float*>(p.out)[at] = float(x);
      break;
    case DType::F16:
      static_cast<uint16_t*>(p.out)[at] = f32ToF16(float(x));
      break;
    case DType::BF16:
      static_cast<uint16_t*>(p.out)[at] = f32ToBf16(float(x));
      break;
  }
}

}  // namespace

// out = sum_s exp(lse_s - lse) out_s with lse = log sum_s exp(lse_s): exact, in double. Splits
// without a contributing key have lse_s = -Infinity and weigh nothing. A NaN partial makes the
// row NaN (a NaN or +Infinity score in that split). When no split contributed, the row is empty
// (zeros, -Infinity) if it sees no key, and NaN if it sees keys whose scores were all -Infinity.
void AttentionJob::finishWork() {
  if (params_.splitKV > 1) mergeSplitKV(params_);
}

void mergeSplitKV(const AttnParams& p) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const int64_t rows = p.batch * p.headsQ * p.seqQ;
  const int64_t hd = p.headDim;
  std::vector<double> acc(size_t(hd), 0.0);
  for (int64_t row = 0; row < rows; ++row) {
    // row enumerates the lse layout [b][h][pos]; the output row is [b][pos][h].
    const int64_t pos = row % p.seqQ;
    const int64_t bh = row / p.seqQ;
    const int64_t h = bh % p.headsQ;
    const int64_t b = bh / p.headsQ;
    const int64_t at = ((b * p.seqQ + pos) * p.headsQ + h) * hd;
    const float* lse = p.partialLse + row * p.splitKV;
    double mx = -std::numeric_limits<double>::infinity();
    bool nan = false;
    for (int64_t s = 0; s < p.splitKV; ++s) {
      if (std::isnan(lse[s]) || lse[s] == std::numeric_limits<float>::infinity()) nan = true;
      else mx = std::max(mx, double(lse[s]));
    }
    if (!nan && !std::isfinite(mx)) {
      int64_t lo, hi;
      visibleKeys(p, b, pos, lo, hi);
      nan = lo < hi;
      if (!nan) {
        p.lse[row] = -std::numeric_limits<float>::infinity();
        for (int64_t d = 0; d < hd; ++d) store(p, at + d, 0.0);
        continue;
      }
    }
    if (nan) {
      p.lse[row] = float(kNaN);
      for (int64_t d = 0; d < hd; ++d) store(p, at + d, kNaN);
      continue;
    }
    std::fill(acc.begin(), acc.end(), 0.0);
    double total = 0.0;
    for (int64_t s = 0; s < p.splitKV; ++s) total += std::exp(double(lse[s]) - mx);
    for (int64_t s = 0; s < p.splitKV; ++s) {
      const double w = std::exp(double(lse[s]) - mx) / total;
      if (w == 0.0) continue;  // an empty split: its (zero) partial is never read
      const float* o = p.partialOut + (row * p.splitKV + s) * hd;
      for (int64_t d = 0; d < hd; ++d) acc[size_t(d)] += w * double(o[d]);
    }
    p.lse[row] = float(mx + std::log(total));
    for (int64_t d = 0; d < hd; ++d) store(p, at + d, acc[size_t(d)]);
  }
}

}  // namespace fastattn
