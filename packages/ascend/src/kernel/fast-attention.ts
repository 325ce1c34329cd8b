import {
  keyOffsets,
  kvHeadOf,
  lseIndex,
  mergePartials,
  type Partial,
  qIndex,
  type ResolvedAttentionInput,
  TileKind,
  type TileMap,
  type TileMaskPattern,
  type TilePlan,
  workItems,
} from '@fastattention/core';
import { type CubeDType, cubeDot, cubeRowTimesMatrix, decode, encode, roundTo } from './numerics.js';

const fround = Math.fround;

/**
 * The numbers FastAttention computes on the 910B, in the order the kernel computes them: per work
 * item the Q block against each non-empty first-level K/V block. The Cube forms S = QKᵀ from
 * 16-bit operands in f32; the Vector scales it, applies the PARTIAL tile's mask from its pattern,
 * runs the online softmax in f32 and casts P to the storage type (the Cube's next operand); the
 * Cube forms P V in f32; the Vector rescales and accumulates O in f32 and finally divides, casts
 * and writes O and LSE. Split-KV partials are merged by LSE like the combine kernel does.
 */
export function fastAttentionNumbers(
  input: ResolvedAttentionInput<CubeDType>,
  plan: TilePlan,
  maps: readonly TileMap[],
  patterns: ReadonlyMap<TileMap, TileMaskPattern>,
): { out: Uint16Array; lse: Float32Array } {
  const { seqQ, seqK, headDim: d, scale, dtype } = input;
  const q = decode(input.q, dtype);
  const k = decode(input.k, dtype);
  const v = decode(input.v, dtype);
  const round = roundTo(dtype);
  // Poisoned: an element no work item writes stays NaN and fails every comparison.
  const out = new Float32Array(q.length).fill(Number.NaN);
  const lse = new Float32Array(input.batch * input.headsQ * seqQ).fill(Number.NaN);
  const { blockQ, blockK } = plan;
  const s = new Float32Array(blockQ * blockK);
  const p = new Float32Array(blockQ * blockK);
  const tileMask = new Uint8Array(blockQ * blockK);
  const part = new Float32Array(blockQ * d);
  const corr = new Float32Array(blockQ);
  const keyAt = keyOffsets(input);
  let parts: Partial[] = [];

  for (const item of workItems(input, plan)) {
    const map = maps[item.batch]!;
    const pattern = patterns.get(map)!;
    const hk = kvHeadOf(input, item.head);
    const qt = item.qStart / blockQ;
    const rows = item.qEnd - item.qStart;
    const m = new Float32Array(rows).fill(Number.NEGATIVE_INFINITY);
    const l = new Float32Array(rows);
    const o = new Float32Array(rows * d);
    const from = Math.max(item.kBlockStart, map.kStart[qt]!);
    const to = Math.min(item.kBlockEnd, map.kEnd[qt]!);
    for (let kt = from; kt < to; kt++) {
      const kind = map.kinds[qt * map.kTiles + kt];
      if (kind === TileKind.EMPTY) continue;
      const k0 = kt * blockK;
      const cols = Math.min(blockK, seqK - k0);
      const partial = kind === TileKind.PARTIAL;
      if (partial) pattern.fill(qt, kt, tileMask);
      // Cube: S = Q Kᵀ (masked entries are computed by the Cube too; their value is discarded).
      for (let r = 0; r < rows; r++) {
        const qo = qIndex(input, item.batch, item.qStart + r, item.head);
        for (let c = 0; c < cols; c++) {
          s[r * cols + c] =
            partial && tileMask[r * blockK + c] === 0
              ? Number.NEGATIVE_INFINITY
              : fround(cubeDot(q, qo, k, keyAt(item.batch, k0 + c, hk), d) * scale);
        }
      }
      // Vector: online softmax over this block, P cast to the Cube's operand type.
      for (let r = 0; r < rows; r++) {
        let blockMax = Number.NEGATIVE_INFINITY;
        for (let c = 0; c < cols; c++) blockMax = Math.max(blockMax, s[r * cols + c]!);
        const oldMax = m[r]!;
        const newMax = Math.max(oldMax, blockMax);
        if (newMax === Number.NEGATIVE_INFINITY) {
          corr[r] = 1;
          p.fill(0, r * cols, (r + 1) * cols);
          continue;
        }
        corr[r] = oldMax === Number.NEGATIVE_INFINITY ? 0 : fround(Math.exp(fround(oldMax - newMax)));
        let sum = 0;
        for (let c = 0; c < cols; c++) {
          const e = fround(Math.exp(fround(s[r * cols + c]! - newMax)));
          sum = fround(sum + e);
          p[r * cols + c] = round(e);
        }
        m[r] = newMax;
        l[r] = fround(fround(l[r]! * corr[r]!) + sum);
      }
      // Cube: O part = P V; Vector: O = O * corr + O part.
      part.fill(0, 0, rows * d);
      for (let r = 0; r < rows; r++) {
        cubeRowTimesMatrix(p, r * cols, cols, v, (c) => keyAt(item.batch, k0 + c, hk), part, r * d, d);
        const c = corr[r]!;
        for (let e = 0; e < d; e++) o[r * d + e] = fround(fround(o[r * d + e]! * c) + part[r * d + e]!);
      }
    }
    // Vector: O /= l, LSE = m + log l.
    const itemLse = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      const sum = l[r]!;
      if (sum === 0) {
        o.fill(0, r * d, (r + 1) * d);
        itemLse[r] = Number.NEGATIVE_INFINITY;
        continue;
      }
      for (let e = 0; e < d; e++) o[r * d + e] = fround(o[r * d + e]! / sum);
      itemLse[r] = fround(m[r]! + fround(Math.log(sum)));
    }
    if (plan.splitKV > 1) {
      parts.push({ out: o, lse: itemLse });
      if (item.split < plan.splitKV - 1) continue;
      const merged = mergePartials(parts, rows, d);
      parts = [];
      store(input, item.batch, item.head, item.qStart, rows, merged.out, merged.lse, out, lse);
    } else {
      store(input, item.batch, item.head, item.qStart, rows, o, itemLse, out, lse);
    }
  }
  return { out: encode(out, dtype), lse };
}

function store(
  input: ResolvedAttentionInput,
  b: number,
  h: number,
  q0: number,
  rows: number,
  o: ArrayLike<number>,
  rowLse: ArrayLike<number>,
  out: Float32Array,
  lse: Float32Array,
): void {
  const d = input.headDim;
  for (let r = 0; r < rows; r++) {
    const base = qIndex(input, b, q0 + r, h);
    for (let e = 0; e < d; e++) out[base + e] = o[r * d + e]!;
    lse[lseIndex(input, b, h, q0 + r)] = rowLse[r]!;
  }
}
