// The FlashAttention-2 forward kernel's interface, shared by the per-ISA translation units.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace fastattn {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

/** Band ends beyond any sequence length stand for "Infinity" (unbounded window side). */
constexpr int64_t kInfiniteBand = int64_t(1) << 40;

/** The decode kernel's largest head dim (the size of its zero row for keys past a chunk's end). */
constexpr int64_t kMaxDecodeHeadDim = 1024;

/** Tile kinds as core's classifyTiles packs them. */
enum TileKind : uint8_t { kTileEmpty = 0, kTileFull = 1, kTilePartial = 2 };

/**
 * One attention call, already validated and planned in TypeScript. A work item is one q-tile
 * (blockQ query positions) of `stack` query heads that share one KV head, restricted to one
 * split of the key blocks: its rows are (position, head) pairs, so GQA heads read each K/V
 * block once.
 */
struct AttnParams {
  DType dtype = DType::F32;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  int64_t batch = 0, seqQ = 0, seqK = 0, headsQ = 0, headsKV = 0, headDim = 0;
  float scale = 1.0f;
  const int32_t* seqLensK = nullptr;
  int64_t left = kInfiniteBand, right = kInfiniteBand;
  int64_t blockQ = 1;  // query positions per q-tile
  int64_t blockK = 1;  // keys per k-tile
  int64_t stack = 1;   // query heads per work item (1, or headsQ / headsKV)
  int64_t splitKV = 1;
  // Decode: one item covers every head group for its keys, so it streams K/V contiguously
  // (all KV heads of a key are adjacent) instead of one head's short rows at a large stride.
  bool allHeads = false;
  // Decode micro-kernel (decode_impl.inc): keys in the vector lanes, for few rows per KV head.
  // Requires allHeads and stack = headsQ / headsKV.
  bool decode = false;
  int64_t qTiles = 0, kTiles = 0;
  const uint8_t* kinds = nullptr;    // [batch][qTiles][kTiles]
  const int32_t* kStart = nullptr;   // [batch][qTiles]
  const int32_t* kEnd = nullptr;     // [batch][qTiles]
  // Split-KV partials, [batch][headsQ][seqQ][splitKV] rows: normalized out and natural-log LSE.
  float* partialOut = nullptr;
  float* partialLse = nullptr;

  // Paged KV (blockSize > 0): k and v are [numBlocks][blockSize][headsKV][headDim], key j of batch
  // row b in block blockTable[b * blocksPerSeq + j / blockSize]. Entries past a row are not read.
  const int32_t* blockTable = nullptr;
  int64_t blockSize = 0, blocksPerSeq = 0, numBlocks = 0;

  int64_t headGroups() const { return headsQ / stack; }
  /** The key-major row of key j of batch row b: element offset = row · headsKV·headDim + head·headDim. */
  int64_t keyRow(int64_t b, int64_t j) const {
    if (blockSize == 0) return b * seqK + j;
    return int64_t(blockTable[b * blocksPerSeq + j / blockSize]) * blockSize + j % blockSize;
  }
  /** Of the n keys from j, how many lie contiguously in memory (a paged cache's block ends a run). */
  int64_t keyRun(int64_t j, int64_t n) const { return blockSize == 0 ? n : std::min(n, blockSize - j % blockSize); }
  /**
   * Calls f(j0, n, row) for the runs of keys [k0, k0 + nk) that lie contiguously in memory: the
   * whole range for a dense cache, the parts within one block for a paged one.
   */
  template <class F>
  void forEachKeyRun(int64_t b, int64_t k0, int64_t nk, F&& f) const {
    for (int64_t j = k0; j < k0 + nk;) {
      const int64_t n = keyRun(j, k0 + nk - j);
      f(j, n, keyRow(b, j));
      j += n;
    }
  }
  int64_t itemCount() const { return qTiles * batch * (allHeads ? 1 : headGroups()) * splitKV; }
};

/**
 * The keys [lo, hi) that query position `pos` of batch row `b` may see (empty when lo >= hi):
 * the band around its bottom-right diagonal, cut to the row's valid length seqLensK[b]. Kernels
 * never let a key outside it touch the row: a KV cache's unused slots hold garbage, NaN included.
 */
inline void visibleKeys(const AttnParams& p, int64_t b, int64_t pos, int64_t& lo, int64_t& hi) {
  const int64_t lk = p.seqLensK[b];
  const int64_t diag = pos + lk - p.seqQ;
  lo = std::min<int64_t>(std::max<int64_t>(0, diag - p.left), lk);
  hi = std::max<int64_t>(std::min<int64_t>(lk, diag + p.right + 1), 0);
}

/** Per-thread working memory, grown on demand and reused across items and calls. */
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch();
  /** A 64-byte aligned buffer of at least `bytes` for slot `slot` (contents unspecified). */
  void* get(int slot, size_t bytes);

  static constexpr int kSlots = 10;

 private:
  void* ptr_[kSlots] = {};
  size_t size_[kSlots] = {};
};

/**
 * Standard attention (the paper's baseline), run by StandardJob: one work item is `rowsPerItem`
 * query positions of one query head; its scores S = scale·Q·Kᵀ over all of the row's valid keys
 * are written to its slab of the materialized score matrix, softmaxed there, then multiplied by V.
 */
struct StandardLayout {
  int64_t rowsPerItem = 0;  // query positions per item (a whole number of Q panels)
  int64_t rowBlocks = 0;    // items per (batch row, query head)
  int64_t slabFloats = 0;   // one item's slab of the score matrix: seqK x rowsPerItem
  int64_t items(const AttnParams& p) const { return p.batch * p.headsQ * rowBlocks; }
};

/** The functions each ISA translation unit provides. */
struct KernelTable {
  const char* isa;
  int lanes;  // f32 lanes per vector register
  void (*runItem)(const AttnParams& p, int64_t item, Scratch& scratch);
  /** The most scratch one work item of this call uses, in bytes (for the call's workspace report). */
  size_t (*scratchBytes)(const AttnParams& p);
  /** Standard attention: the item layout for this kernel's panels, one item, and its scratch bytes. */
  StandardLayout (*standardLayout)(const AttnParams& p);
  void (*runStandardItem)(const AttnParams& p, const StandardLayout& layout, float* scores, int64_t item,
                          Scratch& scratch);
  size_t (*standardScratchBytes)(const AttnParams& p, const StandardLayout& layout);
  /** FMA throughput probe: `iters` rounds of independent FMA chains; returns the FLOPs done. */
  double (*fmaLoop)(int64_t iters, float seed);
  /** Streaming read of `bytes` (vector loads); returns a checksum so it is not optimized away. */
  float (*readStream)(const float* data, size_t count);
};

namespace isa_generic { const KernelTable& table(); }
#if defined(FASTATTN_X86)
namespace isa_avx2 { const KernelTable& table(); }
namespace isa_avx512 { const KernelTable& table(); }
#endif

/** The best table this CPU runs ("avx512", "avx2", "generic"), or the one named (nullptr if not runnable). */
const KernelTable* selectKernel(const char* wanted);
/** Names of the kernels this CPU can run, best first. */
const char* const* runnableKernels(int* count);

}  // namespace fastattn
