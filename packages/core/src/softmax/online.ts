/**
 * The online softmax of FlashAttention-2 for a block of rows: a running max `m`, a running
 * unnormalized sum `l` and an unnormalized accumulator; each key block rescales what came before
 * by `exp(m_old - m_new)`. Normalization happens once, at the end.
 */
export class OnlineSoftmax {
  readonly rows: number;
  readonly headDim: number;
  readonly max: Float64Array;
  readonly sum: Float64Array;
  readonly acc: Float64Array;

  constructor(rows: number, headDim: number) {
    this.rows = rows;
    this.headDim = headDim;
    this.max = new Float64Array(rows).fill(Number.NEGATIVE_INFINITY);
    this.sum = new Float64Array(rows);
    this.acc = new Float64Array(rows * headDim);
  }

  /**
   * Adds a key block. `scores` is rows x cols (already scaled; -Infinity = masked), `values` is
   * cols x headDim with row stride `valueStride` starting at `valueOffset`.
   */
  update(
    scores: Float64Array,
    cols: number,
    values: ArrayLike<number>,
    valueOffset: number,
    valueStride: number,
  ): void {
    const { headDim } = this;
    for (let r = 0; r < this.rows; r++) {
      let blockMax = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < cols; c++) blockMax = Math.max(blockMax, scores[r * cols + c]!);
      if (blockMax === Number.NEGATIVE_INFINITY) continue; // nothing allowed in this block
      const oldMax = this.max[r]!;
      const newMax = Math.max(oldMax, blockMax);
      const correction = Math.exp(oldMax - newMax); // 0 when oldMax = -Infinity
      let sum = this.sum[r]! * correction;
      const accRow = r * headDim;
      for (let d = 0; d < headDim; d++) this.acc[accRow + d]! *= correction;
      for (let c = 0; c < cols; c++) {
        const p = Math.exp(scores[r * cols + c]! - newMax);
        if (p === 0) continue;
        sum += p;
        const v = valueOffset + c * valueStride;
        for (let d = 0; d < headDim; d++) this.acc[accRow + d]! += p * values[v + d]!;
      }
      this.max[r] = newMax;
      this.sum[r] = sum;
    }
  }

  /** Normalized output row `r` into `out` at `offset`, and its LSE (-Infinity when no key was allowed). */
  finish(r: number, out: Float64Array | Float32Array, offset: number): number {
    const sum = this.sum[r]!;
    if (sum === 0) {
      out.fill(0, offset, offset + this.headDim);
      return Number.NEGATIVE_INFINITY;
    }
    for (let d = 0; d < this.headDim; d++) out[offset + d] = this.acc[r * this.headDim + d]! / sum;
    return this.max[r]! + Math.log(sum);
  }
}
