import type { DeviceKind } from '../backend.js';

/** The tile levels of the two-level plan. */
export type TileLevel = 'first' | 'second';

/**
 * What a buffer holds, sized by the tile level it belongs to: `q`, `o` are rows x headDim, `k`, `v`
 * are cols x headDim, `s` (scores, f32) and `p` (probabilities, storage dtype) are rows x cols,
 * `stats` is rows x 2 f32 (running max and sum). q/k/v/p use the storage dtype; s/o/stats are f32.
 */
export type Operand = 'q' | 'k' | 'v' | 's' | 'p' | 'o' | 'stats';

export interface MemoryLevel {
  /** 'L2', 'shared', 'registers', 'L0A', 'UB', ... */
  readonly name: string;
  /** Capacity available to one owner (one core, one CTA, one AIV). */
  readonly bytes: number;
  /** Which tile level's blocks live here. */
  readonly tileLevel: TileLevel;
  readonly holds: readonly Operand[];
  /** Copies of k and v kept for pipelining (double buffering = 2). Default 1. */
  readonly buffers?: number;
  /** Every operand buffer is rounded up to this many bytes. Default 1. */
  readonly alignment?: number;
}

/** The compute unit's native tile: SIMD width (CPU), an mma shape (GPU), the Cube's 16x16x16 (Ascend). */
export interface NativeTile {
  readonly m: number;
  readonly n: number;
  readonly k: number;
}

/** A compiled kernel configuration the planner may choose (fixed at build time). */
export interface TileConfig {
  readonly name: string;
  readonly blockQ: number;
  readonly blockK: number;
  readonly subQ: number;
  readonly subK: number;
  readonly stages?: number;
  /** Head dims this configuration was compiled for; all when absent. */
  readonly headDims?: readonly number[];
}

/** Everything the tiling depends on about a device. Backends ship one per device they know. */
export interface HardwareSpec {
  readonly name: string;
  readonly kind: DeviceKind;
  /** Units that each own a first-level block: cores, SMs, AI Cube cores. */
  readonly parallelUnits: number;
  readonly nativeTile: NativeTile;
  readonly memory: readonly MemoryLevel[];
  /** Dense matmul throughput of all units together, FLOP/s (for the cost model). */
  readonly peakFlops?: number;
  /** Main-memory bandwidth, bytes/s (for the cost model). */
  readonly memoryBandwidth?: number;
  /** Fixed cost of handing over one first-level tile, seconds (Ascend's Cube/Vector sync through GM). */
  readonly tileOverhead?: number;
  /** Compiled configurations to choose from; absent = any block sizes (generated candidates). */
  readonly configs?: readonly TileConfig[];
  /** Upper bound of split-KV partitions per (batch, head, q-block). Default 64. */
  readonly maxSplitKV?: number;
}
