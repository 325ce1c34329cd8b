import { type Band, bandOf, type MaskSpec } from './spec.js';

/** How a (q-tile, k-tile) pair is treated: skipped, computed without a mask, or masked per element. */
export const TileKind = { EMPTY: 0, FULL: 1, PARTIAL: 2 } as const;
export type TileKind = (typeof TileKind)[keyof typeof TileKind];

export interface TileGrid {
  readonly seqQ: number;
  readonly seqK: number;
  /** Valid keys of this batch row (seqLensK[b]); default seqK. */
  readonly lk?: number;
}

export interface TileBlocks {
  readonly blockQ: number;
  readonly blockK: number;
}

/**
 * The tiling-mask of one batch row: a label per tile pair, O(qTiles x kTiles) bytes, never
 * O(seqQ x seqK). Under every mask of the contract the non-empty tiles of a q-tile are one
 * contiguous run of k-tiles, `[kStart[qt], kEnd[qt])`, which kernels iterate directly.
 */
export interface TileMap {
  readonly seqQ: number;
  readonly seqK: number;
  readonly lk: number;
  readonly blockQ: number;
  readonly blockK: number;
  readonly band: Band;
  readonly qTiles: number;
  readonly kTiles: number;
  /** TileKind per pair, row-major [qTiles][kTiles]. */
  readonly kinds: Uint8Array;
  readonly kStart: Int32Array;
  readonly kEnd: Int32Array;
  readonly counts: { readonly full: number; readonly partial: number; readonly empty: number };
}

/**
 * Labels each tile pair FULL, EMPTY or PARTIAL in O(1) per pair. Row i's allowed keys are
 * `[max(0, d - left), min(lk, d + right + 1))` with `d = i + lk - seqQ`; both ends grow with i, so
 * a tile is decided by its first and last row.
 */
export function classifyTiles(mask: MaskSpec, grid: TileGrid, blocks: TileBlocks): TileMap {
  const { seqQ, seqK } = grid;
  const lk = grid.lk ?? seqK;
  const { blockQ, blockK } = blocks;
  const band = bandOf(mask);
  const qTiles = Math.ceil(seqQ / blockQ);
  const kTiles = Math.ceil(seqK / blockK);
  const kinds = new Uint8Array(qTiles * kTiles);
  const kStart = new Int32Array(qTiles);
  const kEnd = new Int32Array(qTiles);
  let full = 0;
  let partial = 0;
  for (let qt = 0; qt < qTiles; qt++) {
    const q0 = qt * blockQ;
    const q1 = Math.min(seqQ, q0 + blockQ);
    const dMin = q0 + lk - seqQ;
    const dMax = q1 - 1 + lk - seqQ;
    let first = -1;
    let last = -1;
    for (let kt = 0; kt < kTiles; kt++) {
      const k0 = kt * blockK;
      const k1 = Math.min(seqK, k0 + blockK);
      const kind = classifyOne(band, lk, dMin, dMax, k0, k1);
      kinds[qt * kTiles + kt] = kind;
      if (kind === TileKind.EMPTY) continue;
      if (kind === TileKind.FULL) full++;
      else partial++;
      if (first < 0) first = kt;
      last = kt;
    }
    kStart[qt] = Math.max(first, 0);
    kEnd[qt] = first < 0 ? 0 : last + 1;
  }
  const empty = qTiles * kTiles - full - partial;
  return {
    seqQ,
    seqK,
    lk,
    blockQ,
    blockK,
    band,
    qTiles,
    kTiles,
    kinds,
    kStart,
    kEnd,
    counts: { full, partial, empty },
  };
}

function classifyOne(band: Band, lk: number, dMin: number, dMax: number, k0: number, k1: number): TileKind {
  // Some row reaches a key of [k0, k1): k0 < lk, and the band [d - left, d + right] meets
  // [k0, min(k1, lk) - 1] for some d in [dMin, dMax].
  const kLast = Math.min(k1, lk) - 1;
  if (k0 > kLast || dMax + band.right < k0 || dMin - band.left > kLast) return TileKind.EMPTY;
  // Every row reaches every key: all keys valid and the band of every row covers [k0, k1 - 1].
  if (k1 <= lk && dMax - band.left <= k0 && dMin + band.right >= k1 - 1) return TileKind.FULL;
  return TileKind.PARTIAL;
}

/** Number of bytes the tiling-mask keeps: proportional to the number of tiles. */
export function tileMapBytes(map: TileMap): number {
  return map.kinds.byteLength + map.kStart.byteLength + map.kEnd.byteLength;
}

/**
 * Tile maps for every batch row, shared between rows of equal `seqLensK`, and packed for native
 * kernels: `packed` is [batch][qTiles][kTiles] tile kinds, `kStart`/`kEnd` are [batch][qTiles].
 */
export function classifyBatch(
  mask: MaskSpec,
  grid: { seqQ: number; seqK: number },
  blocks: TileBlocks,
  seqLensK: Int32Array,
): { maps: TileMap[]; packed: Uint8Array; kStart: Int32Array; kEnd: Int32Array } {
  const byLk = new Map<number, TileMap>();
  const maps = Array.from(seqLensK, (lk) => {
    let map = byLk.get(lk);
    if (!map) {
      map = classifyTiles(mask, { ...grid, lk }, blocks);
      byLk.set(lk, map);
    }
    return map;
  });
  const tiles = Math.ceil(grid.seqQ / blocks.blockQ) * Math.ceil(grid.seqK / blocks.blockK);
  const qTiles = Math.ceil(grid.seqQ / blocks.blockQ);
  const packed = new Uint8Array(tiles * maps.length);
  const kStart = new Int32Array(qTiles * maps.length);
  const kEnd = new Int32Array(qTiles * maps.length);
  for (const [b, m] of maps.entries()) {
    packed.set(m.kinds, b * tiles);
    kStart.set(m.kStart, b * qTiles);
    kEnd.set(m.kEnd, b * qTiles);
  }
  return { maps, packed, kStart, kEnd };
}
