/**
 * The conformance kit every backend's tests share (`@fastattention/core/testing`): seeded random
 * inputs that are never all zero, the contract's tolerances, and the comparison against the float64
 * reference. A plugin author checks a new backend with exactly what the built-in ones use.
 */
import type { AttentionInput } from '../attention.js';
import type { ArrayOf, DType, HostArray } from '../dtype.js';
import type { MaskSpec } from '../mask/spec.js';
import { fromNumbers, toFloat64 } from '../numeric/convert.js';
import { type ExactResult, exactAttention } from '../reference/exact.js';
import type { AttentionShape } from '../shape.js';
import { kvLength, qLength } from '../shape.js';
import { validateAttentionInput } from '../validate.js';

/** Relative L2 error of the output allowed per storage dtype. */
export const TOLERANCE: Readonly<Record<DType, number>> = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 };
/** Relative error allowed for each LSE entry. */
export const LSE_TOLERANCE = 1e-4;

/** A small seeded PRNG (mulberry32): print the seed, and a failing case replays. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fresh seed per run: tests see new inputs every time. */
export const randomSeed = (): number => Math.floor(Math.random() * 2 ** 31);

/** Roughly normal values in [-2, 2) (sum of four uniforms): softmax neither flat nor one-hot. */
export function randomValues(rand: () => number, n: number): number[] {
  return Array.from({ length: n }, () => rand() + rand() + rand() + rand() - 2);
}

/** A random attention input of the given shape, with optional mask, lengths and scale. */
export function randomInput<D extends DType>(
  rand: () => number,
  dtype: D,
  shape: AttentionShape,
  extra: { mask?: MaskSpec; seqLensK?: Int32Array; scale?: number } = {},
): AttentionInput<D> {
  const { batch, seqQ, seqK, headsQ, headsKV, headDim } = shape;
  const dims = { batch, seqQ, seqK, headsQ, headsKV, headDim };
  return {
    ...dims,
    dtype,
    q: fromNumbers(randomValues(rand, qLength(dims)), dtype),
    k: fromNumbers(randomValues(rand, kvLength(dims)), dtype),
    v: fromNumbers(randomValues(rand, kvLength(dims)), dtype),
    ...extra,
  };
}

export interface ReferenceErrors {
  /** ||out - ref|| / ||ref|| over the finite reference entries; Infinity if any entry is bad. */
  readonly out: number;
  /** The largest |lse - ref| / max(1, |ref|) over finite reference entries. */
  readonly lse: number;
  /**
   * Entries whose kind differs from the reference: NaN where the reference is a number (unwritten
   * poison, or garbage from a key the row may not see), a number where the reference is NaN (a
   * NaN input not propagated), an infinity or -Infinity LSE that the reference does not have.
   */
  readonly bad: number;
  /** NaN or infinite entries of the reference output: a test that poisons visible data expects some. */
  readonly nonFinite: number;
}

/** Compares a backend's output for `input` with the float64 reference. */
export function compareToReference<D extends DType>(
  input: AttentionInput<D>,
  out: ArrayOf<D> | HostArray,
  lse: ArrayLike<number>,
): ReferenceErrors {
  return compareToExact(exactAttention(validateAttentionInput(input)), input.dtype, out, lse);
}

/**
 * Compares an output with an already computed reference (`exactAttention`): for tests that check
 * several kernels against one reference.
 */
export function compareToExact(
  ref: ExactResult,
  dtype: DType,
  out: HostArray,
  lse: ArrayLike<number>,
): ReferenceErrors {
  const got = toFloat64(out, dtype);
  let num = 0;
  let den = 0;
  let bad = 0;
  let nonFinite = 0;
  for (let i = 0; i < ref.out.length; i++) {
    const [x, r] = [got[i]!, ref.out[i]!];
    if (!Number.isFinite(r) || !Number.isFinite(x)) {
      if (!Number.isFinite(r)) nonFinite++;
      if (!Object.is(x, r) && !(Number.isNaN(x) && Number.isNaN(r))) bad++;
      continue;
    }
    num += (x - r) ** 2;
    den += r ** 2;
  }
  let worst = 0;
  for (let i = 0; i < ref.lse.length; i++) {
    const [x, r] = [lse[i]!, ref.lse[i]!];
    if (!Number.isFinite(r) || !Number.isFinite(x)) {
      if (!Object.is(x, r) && !(Number.isNaN(x) && Number.isNaN(r))) bad++;
      continue;
    }
    worst = Math.max(worst, Math.abs(x - r) / Math.max(1, Math.abs(r)));
  }
  const outError = bad > 0 ? Number.POSITIVE_INFINITY : den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
  return { out: outError, lse: worst, bad, nonFinite };
}

/** True when the errors are within the contract's tolerances for `dtype`. */
export function withinTolerance(errors: ReferenceErrors, dtype: DType): boolean {
  return errors.bad === 0 && errors.out <= TOLERANCE[dtype] && errors.lse <= LSE_TOLERANCE;
}
