import {
  type AttentionInput,
  type AttentionOutput,
  exactAttention,
  toFloat64,
  validateAttentionInput,
} from '@fastattention/core';

/** Query positions checked at each end of the sequence: the rows that see fewest and most keys. */
const FIRST_ROWS = 4;
const LAST_ROWS = 16;

/**
 * Relative error of `out` against the float64 reference on sampled query rows (the first and last
 * positions, every head). The full reference is O(S^2) in TypeScript and would dominate the demo;
 * a row's result depends only on its own q and the keys it sees, so rows can be checked alone.
 */
export function sampledError(input: AttentionInput, out: AttentionOutput['out']): number {
  const { seqQ, headsQ, headDim } = input;
  const rowLen = headsQ * headDim;
  const got = toFloat64(out, input.dtype);
  let num = 0;
  let den = 0;
  for (const start of new Set([0, Math.max(0, seqQ - LAST_ROWS)])) {
    const count = Math.min(start === 0 ? FIRST_ROWS : LAST_ROWS, seqQ - start);
    // Rows [start, start + count) of a bottom-right aligned mask see the keys that the same rows
    // see as the last rows of a problem whose valid length ends at start + count.
    const lk = input.mask?.kind === 'none' || input.mask === undefined ? input.seqK : start + count;
    const slice = validateAttentionInput({
      ...input,
      seqQ: count,
      q: input.q.subarray(start * rowLen, (start + count) * rowLen),
      seqLensK: Int32Array.of(lk),
    } as AttentionInput);
    const ref = exactAttention(slice).out;
    for (let i = 0; i < ref.length; i++) {
      num += (got[start * rowLen + i]! - ref[i]!) ** 2;
      den += ref[i]! ** 2;
    }
  }
  return Math.sqrt(num / den);
}
