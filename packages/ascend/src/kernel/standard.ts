import {
  allowedKeys,
  bandOf,
  keyOffsets,
  kvHeadOf,
  lseIndex,
  qIndex,
  type ResolvedAttentionInput,
} from '@fastattention/core';
import { type CubeDType, cubeDot, cubeRowTimesMatrix, decode, encode, roundTo } from './numerics.js';

const fround = Math.fround;

/** The dtype standard attention stores S (and P) in, in GM. Frameworks keep the input dtype. */
export type ScoreDType = 'f16' | 'f32';

/**
 * Standard attention as an unfused framework runs it on the 910B, three kernels through GM:
 * (1) Cube: S = scale * Q Kᵀ for every (row, key), stored as `scoreDType`; (2) Vector: a masked
 * softmax reading S and the full seqQ x seqK mask, writing P; (3) Cube: O = P V. Same operand
 * rounding as FastAttention (16-bit operands, f32 accumulation), so differences come from S and P
 * passing through GM in 16 bits, not from the Cube.
 */
export function standardAttentionNumbers(
  input: ResolvedAttentionInput<CubeDType>,
  scoreDType: ScoreDType,
): { out: Uint16Array; lse: Float32Array; maskBytes: number; scoreBytes: number } {
  const { batch, seqQ, seqK, headsQ, headDim: d, scale, dtype } = input;
  const q = decode(input.q, dtype);
  const k = decode(input.k, dtype);
  const v = decode(input.v, dtype);
  const roundScore = scoreDType === 'f32' ? fround : roundTo('f16');
  const roundP = roundTo(dtype);
  const out = new Float32Array(q.length);
  const lse = new Float32Array(batch * headsQ * seqQ);
  const band = bandOf(input.mask);
  const mask = new Uint8Array(seqQ * seqK);
  const s = new Float32Array(seqQ * seqK);
  const keyAt = keyOffsets(input);
  for (let b = 0; b < batch; b++) {
    // The materialized mask: seqQ x seqK bytes per batch row, read by the softmax kernel per head.
    mask.fill(0);
    for (let i = 0; i < seqQ; i++) {
      const [start, end] = allowedKeys(band, i, seqQ, input.seqLensK[b]!);
      mask.fill(1, i * seqK + start, i * seqK + end);
    }
    for (let h = 0; h < headsQ; h++) {
      const hk = kvHeadOf(input, h);
      for (let i = 0; i < seqQ; i++) {
        const qo = qIndex(input, b, i, h);
        for (let j = 0; j < seqK; j++) {
          s[i * seqK + j] = roundScore(fround(cubeDot(q, qo, k, keyAt(b, j, hk), d) * scale));
        }
      }
      for (let i = 0; i < seqQ; i++) {
        const row = i * seqK;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < seqK; j++) if (mask[row + j]) max = Math.max(max, s[row + j]!);
        if (max === Number.NEGATIVE_INFINITY) {
          s.fill(0, row, row + seqK);
          lse[lseIndex(input, b, h, i)] = Number.NEGATIVE_INFINITY;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < seqK; j++) {
          const e = mask[row + j] ? fround(Math.exp(fround(s[row + j]! - max))) : 0;
          s[row + j] = e;
          sum = fround(sum + e);
        }
        for (let j = 0; j < seqK; j++) s[row + j] = roundP(fround(s[row + j]! / sum));
        lse[lseIndex(input, b, h, i)] = fround(max + fround(Math.log(sum)));
        cubeRowTimesMatrix(s, row, seqK, v, (j) => keyAt(b, j, hk), out, qIndex(input, b, i, h), d);
      }
    }
  }
  return {
    out: encode(out, dtype),
    lse,
    maskBytes: batch * seqQ * seqK,
    scoreBytes: batch * headsQ * seqQ * seqK * (scoreDType === 'f32' ? 4 : 2),
  };
}
