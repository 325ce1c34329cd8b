import {
  type AttentionInput,
  allowedKeys,
  bandOf,
  exactAttention,
  lseIndex,
  qIndex,
  toFloat64,
  validateAttentionInput,
} from '@fastattention/core';

/** One query row: batch, query head, position. */
export interface Row {
  readonly b: number;
  readonly h: number;
  readonly i: number;
}

export function* rowsOf(input: AttentionInput): Generator<Row> {
  for (let b = 0; b < input.batch; b++)
    for (let h = 0; h < input.headsQ; h++) for (let i = 0; i < input.seqQ; i++) yield { b, h, i };
}

/** The keys row `i` of batch row `b` may see, as core's mask rules say: `[start, end)`. */
export function visibleKeys(input: AttentionInput, b: number, i: number): [number, number] {
  const resolved = validateAttentionInput(input);
  return allowedKeys(bandOf(resolved.mask), i, input.seqQ, resolved.seqLensK[b]!);
}

export interface RowComparison {
  /** Relative L2 error over the compared rows whose reference is finite. */
  readonly out: number;
  /** Worst relative LSE error over those rows. */
  readonly lse: number;
  /** Rows whose reference is NaN (a visible NaN) and whose result is not all NaN, NaN LSE included. */
  readonly notNaN: number;
  /** Rows whose -Infinity LSE (no visible key) differs from the reference's. */
  readonly badEmpty: number;
  readonly compared: number;
}

/**
 * Compares the rows `include` selects with the float64 reference on the same input. A row whose
 * reference LSE is NaN must come back all NaN with a NaN LSE (the contract: a visible NaN gives a
 * NaN row, never a finite row beside it).
 */
export function compareRows(
  input: AttentionInput,
  got: { out: Uint16Array | Float32Array; lse: Float32Array },
  include: (row: Row) => boolean = () => true,
): RowComparison {
  const ref = exactAttention(validateAttentionInput(input));
  const out = toFloat64(got.out, input.dtype);
  const d = input.headDim;
  let num = 0;
  let den = 0;
  let lse = 0;
  let notNaN = 0;
  let badEmpty = 0;
  let compared = 0;
  for (const row of rowsOf(input)) {
    if (!include(row)) continue;
    compared++;
    const o = qIndex(input, row.b, row.i, row.h);
    const l = lseIndex(input, row.b, row.h, row.i);
    const want = ref.lse[l]!;
    const have = got.lse[l]!;
    if (Number.isNaN(want)) {
      const allNaN = Array.from(out.subarray(o, o + d)).every(Number.isNaN);
      if (!allNaN || !Number.isNaN(have)) notNaN++;
      continue;
    }
    if (want === Number.NEGATIVE_INFINITY || have === Number.NEGATIVE_INFINITY) {
      if (want !== have) badEmpty++;
    } else {
      lse = Math.max(
        lse,
        Number.isNaN(have) ? Number.POSITIVE_INFINITY : Math.abs(have - want) / Math.max(1, Math.abs(want)),
      );
    }
    for (let e = o; e < o + d; e++) {
      const x = out[e]!;
      num += Number.isNaN(x) ? Number.POSITIVE_INFINITY : (x - ref.out[e]!) ** 2;
      den += ref.out[e]! ** 2;
    }
  }
  return { out: den === 0 ? Math.sqrt(num) : Math.sqrt(num / den), lse, notNaN, badEmpty, compared };
}
