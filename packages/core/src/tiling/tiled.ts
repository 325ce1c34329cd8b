import type { ResolvedAttentionInput } from '../attention.js';
import { kvHeadOf, kvIndex, lseIndex, qIndex } from '../layout.js';
import { classifyBatch, TileKind } from '../mask/classify.js';
import { TileMaskPattern } from '../mask/pattern.js';
import { toFloat64 } from '../numeric/convert.js';
import type { ExactResult } from '../reference/exact.js';
import { mergePartials, type Partial } from '../softmax/merge.js';
import { OnlineSoftmax } from '../softmax/online.js';
import { splitRange } from './plan.js';

export interface TiledOptions {
  readonly blockQ: number;
  readonly blockK: number;
  readonly splitKV?: number;
}

/**
 * FlashAttention-2's algorithm in plain TypeScript (float64): the executable specification of
 * what every native kernel does. A q-tile streams its non-empty k-tiles with the online softmax;
 * FULL tiles take no mask, PARTIAL tiles take theirs from the tile-mask pattern; with split-KV
 * each split's partial result is merged by its LSE.
 */
export function tiledAttention(input: ResolvedAttentionInput, options: TiledOptions): ExactResult {
  const { batch, seqQ, seqK, headsQ, headDim, scale } = input;
  const { blockQ, blockK, splitKV = 1 } = options;
  const q = toFloat64(input.q, input.dtype);
  const k = toFloat64(input.k, input.dtype);
  const v = toFloat64(input.v, input.dtype);
  const out = new Float64Array(q.length);
  const lse = new Float64Array(batch * headsQ * seqQ);
  const { maps } = classifyBatch(input.mask, { seqQ, seqK }, { blockQ, blockK }, input.seqLensK);
  const patterns = new Map(maps.map((m) => [m, new TileMaskPattern(m)]));
  const scores = new Float64Array(blockQ * blockK);
  const tileMask = new Uint8Array(blockQ * blockK);
  const kvStride = input.headsKV * headDim;

  for (let b = 0; b < batch; b++) {
    const map = maps[b]!;
    const pattern = patterns.get(map)!;
    for (let h = 0; h < headsQ; h++) {
      const hk = kvHeadOf(input, h);
      for (let qt = 0; qt < map.qTiles; qt++) {
        const q0 = qt * blockQ;
        const rows = Math.min(blockQ, seqQ - q0);
        const parts: Partial[] = [];
        for (let s = 0; s < splitKV; s++) {
          const [ktFrom, ktTo] = splitRange(map.kTiles, splitKV, s);
          const state = new OnlineSoftmax(rows, headDim);
          for (let kt = Math.max(ktFrom, map.kStart[qt]!); kt < Math.min(ktTo, map.kEnd[qt]!); kt++) {
            const kind = map.kinds[qt * map.kTiles + kt];
            if (kind === TileKind.EMPTY) continue;
            const k0 = kt * blockK;
            const cols = Math.min(blockK, seqK - k0);
            if (kind === TileKind.PARTIAL) pattern.fill(qt, kt, tileMask);
            for (let r = 0; r < rows; r++) {
              const qo = qIndex(input, b, q0 + r, h);
              for (let c = 0; c < cols; c++) {
                if (kind === TileKind.PARTIAL && tileMask[r * blockK + c] === 0) {
                  scores[r * cols + c] = Number.NEGATIVE_INFINITY;
                  continue;
                }
                const ko = kvIndex(input, b, k0 + c, hk);
                let dot = 0;
                for (let d = 0; d < headDim; d++) dot += q[qo + d]! * k[ko + d]!;
                scores[r * cols + c] = dot * scale;
              }
            }
            state.update(scores, cols, v, kvIndex(input, b, k0, hk), kvStride);
          }
          const partOut = new Float64Array(rows * headDim);
          const partLse = new Float64Array(rows);
          for (let r = 0; r < rows; r++) partLse[r] = state.finish(r, partOut, r * headDim);
          parts.push({ out: partOut, lse: partLse });
        }
        const merged =
          parts.length === 1
            ? (parts[0] as { out: Float64Array; lse: Float64Array })
            : mergePartials(parts, rows, headDim);
        for (let r = 0; r < rows; r++) {
          out.set(merged.out.subarray(r * headDim, (r + 1) * headDim), qIndex(input, b, q0 + r, h));
          lse[lseIndex(input, b, h, q0 + r)] = merged.lse[r]!;
        }
      }
    }
  }
  return { out, lse };
}
