import type { AttentionInput, AttentionOutput } from '../attention.js';
import type { ArrayOf, DType } from '../dtype.js';
import { kvHeadOf, lseIndex, qIndex } from '../layout.js';
import { allowedKeys, bandOf } from '../mask/spec.js';
import { fromNumbers, toFloat32 } from '../numeric/convert.js';
import { keyOffsets } from '../paged.js';
import { validateAttentionInput } from '../validate.js';

export interface StandardAttentionResult<D extends DType> extends AttentionOutput<D> {
  /** The S x S scores (all heads of a batch row) and the S x S mask dominate. */
  readonly workspaceBytes: number;
}

/**
 * Standard attention, the baseline FlashAttention is measured against: materialize the scores
 * S = scale * Q Kᵀ for all heads of a batch row, a full seqQ x seqK mask, a softmax pass over S,
 * then P V. Float32 math, O(S²) memory, like an unfused framework implementation.
 */
export function standardAttention<D extends DType>(input: AttentionInput<D>): StandardAttentionResult<D> {
  const x = validateAttentionInput(input);
  const { batch, seqQ, seqK, headsQ, headDim, scale } = x;
  const q = toFloat32(x.q, x.dtype);
  const k = toFloat32(x.k, x.dtype);
  const v = toFloat32(x.v, x.dtype);
  const out = new Float32Array(q.length);
  const lse = new Float32Array(batch * headsQ * seqQ);
  const scores = new Float32Array(headsQ * seqQ * seqK);
  const mask = new Uint8Array(seqQ * seqK);
  const band = bandOf(x.mask);
  const keyAt = keyOffsets(x);
  const converted = x.dtype === 'f32' ? 0 : (q.length + k.length + v.length) * 4;
  const workspaceBytes =
    scores.byteLength + mask.byteLength + (x.dtype === 'f32' ? 0 : out.byteLength) + converted;

  for (let b = 0; b < batch; b++) {
    mask.fill(0);
    for (let i = 0; i < seqQ; i++) {
      const [start, end] = allowedKeys(band, i, seqQ, x.seqLensK[b]!);
      mask.fill(1, i * seqK + start, i * seqK + Math.max(start, end));
    }
    for (let h = 0; h < headsQ; h++) {
      const hk = kvHeadOf(x, h);
      const sBase = h * seqQ * seqK;
      for (let i = 0; i < seqQ; i++) {
        const qo = qIndex(x, b, i, h);
        for (let j = 0; j < seqK; j++) {
          const ko = keyAt(b, j, hk);
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[qo + d]! * k[ko + d]!;
          scores[sBase + i * seqK + j] = mask[i * seqK + j] ? dot * scale : Number.NEGATIVE_INFINITY;
        }
      }
      for (let i = 0; i < seqQ; i++) {
        const row = sBase + i * seqK;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < seqK; j++) max = Math.max(max, scores[row + j]!);
        if (max === Number.NEGATIVE_INFINITY) {
          lse[lseIndex(x, b, h, i)] = Number.NEGATIVE_INFINITY;
          scores.fill(0, row, row + seqK);
          continue;
        }
        let sum = 0;
        for (let j = 0; j < seqK; j++) {
          const p = Math.exp(scores[row + j]! - max);
          scores[row + j] = p;
          sum += p;
        }
        for (let j = 0; j < seqK; j++) scores[row + j]! /= sum;
        lse[lseIndex(x, b, h, i)] = max + Math.log(sum);
      }
      for (let i = 0; i < seqQ; i++) {
        const row = sBase + i * seqK;
        const qo = qIndex(x, b, i, h);
        for (let j = 0; j < seqK; j++) {
          const p = scores[row + j]!;
          if (p === 0) continue;
          const vo = keyAt(b, j, hk);
          for (let d = 0; d < headDim; d++) out[qo + d]! += p * v[vo + d]!;
        }
      }
    }
  }
  const typedOut = (x.dtype === 'f32' ? out : fromNumbers(out, x.dtype)) as ArrayOf<D>;
  return { out: typedOut, lse, workspaceBytes };
}
