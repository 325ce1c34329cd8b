// The tiling-mask in O(1) per tile, for kernels and for the host (the addon exposes it so tests can
// check it against core's classifyTiles). Same formulas as core's mask/classify.ts: row i's allowed
// keys are [max(0, d - left), min(lk, d + right + 1)) with d = i + lk - seqQ; both ends grow with i,
// so a tile is decided by its first and last row and its non-empty k-tiles form one contiguous run.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#define FA_HD __host__ __device__ __forceinline__
#else
#define FA_HD inline
#endif

enum { FA_TILE_EMPTY = 0, FA_TILE_FULL = 1, FA_TILE_PARTIAL = 2 };

// dMin/dMax: the aligned diagonals of the tile's first and last query row; [k0, k1) its keys
// (k1 already clipped to seqK).
FA_HD int fa_tile_kind(int64_t left, int64_t right, int64_t lk, int64_t dMin, int64_t dMax, int64_t k0, int64_t k1) {
  const int64_t kLast = (k1 < lk ? k1 : lk) - 1;
  if (k0 > kLast || dMax + right < k0 || dMin - left > kLast) return FA_TILE_EMPTY;
  if (k1 <= lk && dMax - left <= k0 && dMin + right >= k1 - 1) return FA_TILE_FULL;
  return FA_TILE_PARTIAL;
}

// The non-empty k-tiles [*start, *end) of a q-tile: those meeting the keys some row reaches,
// [max(0, dMin - left), min(lk - 1, dMax + right)]. Empty range = (0, 0), as in core.
FA_HD void fa_k_range(int64_t left, int64_t right, int64_t lk, int64_t dMin, int64_t dMax, int blockK, int* start,
                      int* end) {
  int64_t lo = dMin - left;
  if (lo < 0) lo = 0;
  int64_t hi = dMax + right;
  if (hi > lk - 1) hi = lk - 1;
  if (hi < lo) {
    *start = 0;
    *end = 0;
    return;
  }
  *start = (int)(lo / blockK);
  *end = (int)(hi / blockK) + 1;
}

// The k-tiles [*start, *end) of block size blockK that a kernel may run without any per-element
// mask test: FULL tiles (fa_tile_kind) that also end at or before lk (k0 + blockK <= lk, so no
// zero-filled key past lk sits in them). Both band ends grow with the row, so these tiles form one
// contiguous run; the kernel decides each tile with two integer compares instead of fa_tile_kind.
// Empty run: *start >= *end.
FA_HD void fa_full_range(int64_t left, int64_t right, int64_t lk, int64_t dMin, int64_t dMax, int blockK, int* start,
                         int* end) {
  // k0 = t * blockK >= dMax - left  and  k0 + blockK - 1 <= dMin + right  and  k0 + blockK <= lk.
  int64_t lo = dMax - left;
  lo = lo <= 0 ? 0 : (lo + blockK - 1) / blockK;
  const int64_t a = dMin + right + 1;  // (t + 1) * blockK <= a
  int64_t hi = a <= 0 ? 0 : a / blockK;
  const int64_t b = lk <= 0 ? 0 : lk / blockK;
  if (b < hi) hi = b;
  if (hi < lo) hi = lo;
  *start = (int)lo;
  *end = (int)hi;
}
