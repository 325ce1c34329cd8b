#include "ops/attention_op.h"

#include <algorithm>
#include <memory>
#include <string>

#include "attention_job.h"
#include "call_args.h"

namespace fastattn {

namespace {

/** What the op's recipes share: the problem and plan, the caller's arrays, and this run's tables. */
struct AttentionRun {
  AttnParams p;
  const int32_t* lensIn = nullptr;
  const int32_t* tableIn = nullptr;
  int64_t tableStride = 0;
  std::vector<int32_t> lens, table, kStart, kEnd;
  std::vector<uint8_t> kinds;
  std::vector<float> lse, partialOut, partialLse;
};

/** Core's classifyTiles for one pair: row i's keys are [d - left, d + right] within [0, lk), d = i + lk - seqQ. */
uint8_t classifyOne(const AttnParams& p, int64_t lk, int64_t dMin, int64_t dMax, int64_t k0, int64_t k1) {
  const int64_t kLast = std::min(k1, lk) - 1;
  if (k0 > kLast || dMax + p.right < k0 || dMin - p.left > kLast) return kTileEmpty;
  if (k1 <= lk && dMax - p.left <= k0 && dMin + p.right >= k1 - 1) return kTileFull;
  return kTilePartial;
}

/** Reads and checks this run's lengths and block ids, then labels the tiles. */
void bind(AttentionRun& r) {
  AttnParams& p = r.p;
  for (int64_t b = 0; b < p.batch; ++b) {
    const int32_t n = r.lensIn[b];
    if (n < 0 || n > p.seqK) throwOutOfRange("attention.seqLensK", "length", n, "batch row", b, p.seqK + 1);
    r.lens[size_t(b)] = n;
  }
  if (p.blockSize != 0) {
    for (int64_t b = 0; b < p.batch; ++b) {
      // entries past a row's keys may be garbage: neither checked nor copied (the kernels never read them)
      const int64_t used = (r.lens[size_t(b)] + p.blockSize - 1) / p.blockSize;
      for (int64_t i = 0; i < used; ++i) {
        const int32_t id = r.tableIn[b * r.tableStride + i];
        if (id < 0 || id >= p.numBlocks) throwOutOfRange("attention.paged.blockTable", "block", id, "batch row", b, p.numBlocks);
        r.table[size_t(b * p.blocksPerSeq + i)] = id;
      }
    }
  }
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t lk = r.lens[size_t(b)];
    for (int64_t qt = 0; qt < p.qTiles; ++qt) {
      const int64_t q0 = qt * p.blockQ, q1 = std::min(p.seqQ, q0 + p.blockQ);
      const int64_t dMin = q0 + lk - p.seqQ, dMax = q1 - 1 + lk - p.seqQ;
      const size_t row = size_t(b * p.qTiles + qt);
      int64_t first = -1, last = -1;
      for (int64_t kt = 0; kt < p.kTiles; ++kt) {
        const int64_t k0 = kt * p.blockK, k1 = std::min(p.seqK, k0 + p.blockK);
        const uint8_t kind = classifyOne(p, lk, dMin, dMax, k0, k1);
        r.kinds[row * size_t(p.kTiles) + size_t(kt)] = kind;
        if (kind == kTileEmpty) continue;
        if (first < 0) first = kt;
        last = kt;
      }
      r.kStart[row] = int32_t(std::max<int64_t>(first, 0));
      r.kEnd[row] = int32_t(first < 0 ? 0 : last + 1);
    }
  }
}

}  // namespace

void appendAttentionRecipes(Napi::Env env, const Napi::Object& a, const KernelTable& kernel,
                            std::vector<OpRecipe>& recipes) {
  auto r = std::make_shared<AttentionRun>();
  AttnParams& p = r->p;
  p = readProblemShape(env, a);
  readPlanShape(env, a, p);
  const size_t rows = size_t(p.batch * p.headsQ * p.seqQ);
  const napi_typedarray_type storage = p.dtype == DType::F32 ? napi_float32_array : napi_uint16_array;
  p.out = typedField<void>(env, a, "out", storage, rows * size_t(p.headDim));
  if (a.Get("lse").IsUndefined()) {
    r->lse.resize(rows);
    p.lse = r->lse.data();
  } else {
    p.lse = typedField<float>(env, a, "lse", napi_float32_array, rows);
  }
  r->lensIn = typedField<const int32_t>(env, a, "seqLensK", napi_int32_array, size_t(p.batch));
  r->lens.resize(size_t(p.batch));
  p.seqLensK = r->lens.data();
  if (p.blockSize != 0) {
    // rows may overlap or share one table (a stride below blocksPerSeq, 0): they are only read
    r->tableStride = intField(env, a, "blockTableRowStride", 0, kMaxDim);
    const size_t span = size_t((p.batch - 1) * r->tableStride + p.blocksPerSeq);
    r->tableIn = typedField<const int32_t>(env, a, "blockTable", napi_int32_array, span);
    r->table.resize(size_t(p.batch * p.blocksPerSeq));
    p.blockTable = r->table.data();
  }
  const size_t tileRows = size_t(p.batch * p.qTiles);
  r->kinds.resize(tileRows * size_t(p.kTiles));
  r->kStart.resize(tileRows);
  r->kEnd.resize(tileRows);
  p.kinds = r->kinds.data();
  p.kStart = r->kStart.data();
  p.kEnd = r->kEnd.data();
  if (p.splitKV > 1) {
    r->partialOut.resize(rows * size_t(p.splitKV) * size_t(p.headDim));
    r->partialLse.resize(rows * size_t(p.splitKV));
    p.partialOut = r->partialOut.data();
    p.partialLse = r->partialLse.data();
  }
  recipes.push_back({1, [r](int64_t, Scratch&) { bind(*r); }});
  recipes.push_back({p.itemCount(), [r, &kernel](int64_t item, Scratch& scratch) { kernel.runItem(r->p, item, scratch); }});
  if (p.splitKV > 1) recipes.push_back({1, [r](int64_t, Scratch&) { mergeSplitKV(r->p); }});
}

}  // namespace fastattn
