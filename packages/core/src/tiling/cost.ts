import { bytesOf } from '../dtype.js';
import { TileKind, type TileMap } from '../mask/classify.js';
import { allowedKeys } from '../mask/spec.js';
import type { AttentionProblem } from '../shape.js';
import type { HardwareSpec } from './hardware.js';
import type { BufferUse, TilePlan } from './plan.js';

export interface CostEstimate {
  /** FLOPs the tiled kernel performs: 4·d per (row, key) of every non-empty tile (2 matmuls). */
  readonly flops: number;
  /** FLOPs of the allowed (row, key) pairs alone: what a perfect mask-aware kernel would do. */
  readonly usefulFlops: number;
  /** FLOPs of dense attention, as if every tile were computed. */
  readonly denseFlops: number;
  /** Q and O once, K and V once per (q-tile, head) for each non-empty tile, LSE. */
  readonly bytesMoved: number;
  readonly tiles: { readonly full: number; readonly partial: number; readonly empty: number };
  readonly bufferUse: readonly BufferUse[];
  /** Roofline time on the spec, when it gives peak FLOP/s and bandwidth. */
  readonly seconds?: { readonly compute: number; readonly memory: number; readonly total: number };
}

/**
 * The cost model of a plan: work over non-empty tiles only (the tiling-mask's saving), bytes
 * moved between main memory and the first-level buffers, and the plan's buffer use.
 * `maps[b]` is batch row b's tile map (see classifyBatch), built with the plan's block sizes.
 */
export function estimateCost(
  problem: AttentionProblem,
  plan: TilePlan,
  maps: readonly TileMap[],
  spec?: HardwareSpec,
): CostEstimate {
  const { headsQ, headDim, seqQ, seqK } = problem;
  const elem = bytesOf(problem.dtype);
  let pairs = 0;
  let usefulPairs = 0;
  let kvRows = 0;
  const tiles = { full: 0, partial: 0, empty: 0 };
  for (const map of maps) {
    tiles.full += map.counts.full;
    tiles.partial += map.counts.partial;
    tiles.empty += map.counts.empty;
    for (let qt = 0; qt < map.qTiles; qt++) {
      const rows = Math.min(map.blockQ, seqQ - qt * map.blockQ);
      for (let kt = map.kStart[qt]!; kt < map.kEnd[qt]!; kt++) {
        if (map.kinds[qt * map.kTiles + kt] === TileKind.EMPTY) continue;
        const cols = Math.min(map.blockK, seqK - kt * map.blockK);
        pairs += rows * cols;
        kvRows += cols;
      }
    }
    for (let i = 0; i < seqQ; i++) {
      const [start, end] = allowedKeys(map.band, i, seqQ, map.lk);
      usefulPairs += end - start;
    }
  }
  const perPair = 4 * headDim * headsQ;
  const qoBytes = 2 * problem.batch * seqQ * headsQ * headDim * elem;
  const bytesMoved = qoBytes + kvRows * 2 * headDim * elem * headsQ + problem.batch * headsQ * seqQ * 4;
  const flops = pairs * perPair;
  const estimate: CostEstimate = {
    flops,
    usefulFlops: usefulPairs * perPair,
    denseFlops: problem.batch * seqQ * seqK * perPair,
    bytesMoved,
    tiles,
    bufferUse: plan.bufferUse,
  };
  if (spec?.peakFlops && spec.memoryBandwidth) {
    const compute = flops / spec.peakFlops;
    const memory = bytesMoved / spec.memoryBandwidth;
    return { ...estimate, seconds: { compute, memory, total: Math.max(compute, memory) } };
  }
  return estimate;
}
