/** A partial attention result over a subset of the keys: normalized rows and their LSE. */
export interface Partial {
  /** rows x headDim, already divided by the partial softmax sum. */
  readonly out: Float32Array | Float64Array;
  /** rows; -Infinity where the subset had no allowed key. */
  readonly lse: Float32Array | Float64Array;
}

/**
 * Combines partial results over disjoint key subsets into the result over their union:
 * `lse = log(sum_i exp(lse_i))`, `out = sum_i exp(lse_i - lse) * out_i`. Rows whose every part
 * is empty stay zero with lse = -Infinity. Used by split-KV decode, the offload tier and tests.
 */
export function mergePartials(
  parts: readonly Partial[],
  rows: number,
  headDim: number,
): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(rows * headDim);
  const lse = new Float64Array(rows).fill(Number.NEGATIVE_INFINITY);
  for (let r = 0; r < rows; r++) {
    let max = Number.NEGATIVE_INFINITY;
    for (const p of parts) max = Math.max(max, p.lse[r]!);
    if (max === Number.NEGATIVE_INFINITY) continue;
    let sum = 0;
    for (const p of parts) sum += Math.exp(p.lse[r]! - max);
    for (const p of parts) {
      const w = Math.exp(p.lse[r]! - max) / sum;
      if (w === 0) continue;
      for (let d = 0; d < headDim; d++) out[r * headDim + d]! += w * p.out[r * headDim + d]!;
    }
    lse[r] = max + Math.log(sum);
  }
  return { out, lse };
}
