import {
  type AttentionInput,
  type AttentionOutput,
  bf16ToF32,
  type DType,
  type ExactResult,
  exactAttention,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  type MaskSpec,
  validateAttentionInput,
} from '@fastattention/core';

/** DESIGN.md's tolerances: relative L2 error of out per dtype, and of the LSE. */
export const OUT_TOLERANCE: Record<DType, number> = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 };
export const LSE_TOLERANCE = 1e-4;

export interface Case {
  readonly name: string;
  readonly dtype: DType;
  readonly batch: number;
  readonly seqQ: number;
  readonly seqK: number;
  readonly headsQ: number;
  readonly headsKV: number;
  readonly headDim: number;
  readonly mask?: MaskSpec;
  readonly seqLensK?: readonly number[];
  readonly scale?: number;
}

/** Fresh uniform(-1, 1) values (never all zero), stored in the case's dtype. */
export function randomInput(c: Case): AttentionInput {
  const qLen = c.batch * c.seqQ * c.headsQ * c.headDim;
  const kvLen = c.batch * c.seqK * c.headsKV * c.headDim;
  const make = (n: number): Float32Array | Uint16Array => {
    const values = Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
    if (c.dtype === 'f32') return values;
    return Uint16Array.from(values, c.dtype === 'f16' ? f32ToF16 : f32ToBf16);
  };
  return {
    dtype: c.dtype,
    batch: c.batch,
    seqQ: c.seqQ,
    seqK: c.seqK,
    headsQ: c.headsQ,
    headsKV: c.headsKV,
    headDim: c.headDim,
    q: make(qLen),
    k: make(kvLen),
    v: make(kvLen),
    ...(c.mask ? { mask: c.mask } : {}),
    ...(c.seqLensK ? { seqLensK: Int32Array.from(c.seqLensK) } : {}),
    ...(c.scale !== undefined ? { scale: c.scale } : {}),
  } as AttentionInput;
}

export function reference(input: AttentionInput): ExactResult {
  return exactAttention(validateAttentionInput(input));
}

export function toNumbers(out: Float32Array | Uint16Array, dtype: DType): Float64Array {
  if (dtype === 'f32') return Float64Array.from(out as Float32Array);
  const conv = dtype === 'f16' ? f16ToF32 : bf16ToF32;
  return Float64Array.from(out as Uint16Array, conv);
}

/** ||a - ref|| / ||ref||; NaN anywhere in `a` gives NaN (so poisoned, unwritten elements fail). */
export function relativeL2(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = a[i]! - ref[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

export interface Errors {
  readonly out: number;
  readonly lse: number;
  /** Rows whose -Infinity LSE differs between result and reference. */
  readonly emptyRowMismatches: number;
}

/** Errors of a backend result against the float64 reference. */
export function compare(result: AttentionOutput, ref: ExactResult, dtype: DType): Errors {
  const out = relativeL2(toNumbers(result.out, dtype), ref.out);
  const got: number[] = [];
  const want: number[] = [];
  let emptyRowMismatches = 0;
  for (let i = 0; i < ref.lse.length; i++) {
    const r = ref.lse[i]!;
    const g = result.lse[i]!;
    if (r === Number.NEGATIVE_INFINITY || g === Number.NEGATIVE_INFINITY) {
      if (r !== g) emptyRowMismatches++;
      continue;
    }
    got.push(g);
    want.push(r);
  }
  return { out, lse: want.length ? relativeL2(got, want) : 0, emptyRowMismatches };
}
