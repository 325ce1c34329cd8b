// Host side of the kernels' tiling-mask formulas (kernels/common/tile_mask.cuh), exported so that
// tests compare them with core's classifyTiles.
#pragma once
#include <napi.h>

namespace fa {

// tileKind(left, right, lk, dMin, dMax, k0, k1): the kind the kernels give a tile.
Napi::Value TileKind(const Napi::CallbackInfo& info);
// kRange(left, right, lk, dMin, dMax, blockK): [first, end) of the k-tiles a q-tile visits.
Napi::Value KRange(const Napi::CallbackInfo& info);

}  // namespace fa
