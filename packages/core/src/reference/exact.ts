import type { AttentionOutput, ResolvedAttentionInput } from '../attention.js';
import type { DType } from '../dtype.js';
import { kvHeadOf, lseIndex, qIndex } from '../layout.js';
import { allowedKeys, bandOf } from '../mask/spec.js';
import { fromNumbers, toFloat64 } from '../numeric/convert.js';
import { keyOffsets } from '../paged.js';

/** Float64 result before rounding to the storage dtype: what tests measure errors against. */
export interface ExactResult {
  readonly out: Float64Array;
  readonly lse: Float64Array;
}

/**
 * Exact attention in float64, straight from the definition: for every row, the scores of its
 * allowed keys, a two-pass softmax, and the weighted sum of values. No tiling, no online softmax.
 * Keys are read through the block table of a paged cache; nothing else looks at k and v.
 */
export function exactAttention(input: ResolvedAttentionInput): ExactResult {
  const { batch, seqQ, headsQ, headDim, scale, seqLensK } = input;
  const q = toFloat64(input.q, input.dtype);
  const k = toFloat64(input.k, input.dtype);
  const v = toFloat64(input.v, input.dtype);
  const band = bandOf(input.mask);
  const keyAt = keyOffsets(input);
  const out = new Float64Array(q.length);
  const lse = new Float64Array(batch * headsQ * seqQ);
  const scores = new Float64Array(input.seqK);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < headsQ; h++) {
      const hk = kvHeadOf(input, h);
      for (let i = 0; i < seqQ; i++) {
        const [start, end] = allowedKeys(band, i, seqQ, seqLensK[b]!);
        const qo = qIndex(input, b, i, h);
        if (start >= end) {
          lse[lseIndex(input, b, h, i)] = Number.NEGATIVE_INFINITY;
          continue; // out stays zero
        }
        let max = Number.NEGATIVE_INFINITY;
        for (let j = start; j < end; j++) {
          const ko = keyAt(b, j, hk);
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[qo + d]! * k[ko + d]!;
          scores[j] = dot * scale;
          max = Math.max(max, scores[j]!);
        }
        let sum = 0;
        for (let j = start; j < end; j++) {
          const p = Math.exp(scores[j]! - max);
          sum += p;
          const vo = keyAt(b, j, hk);
          for (let d = 0; d < headDim; d++) out[qo + d]! += p * v[vo + d]!;
        }
        for (let d = 0; d < headDim; d++) out[qo + d]! /= sum;
        lse[lseIndex(input, b, h, i)] = max + Math.log(sum);
      }
    }
  }
  return { out, lse };
}

/** Rounds an exact result to the contract's output types. */
export function toOutput<D extends DType>(result: ExactResult, dtype: D): AttentionOutput<D> {
  return { out: fromNumbers(result.out, dtype), lse: Float32Array.from(result.lse) };
}
