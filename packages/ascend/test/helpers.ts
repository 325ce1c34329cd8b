import {
  type AttentionInput,
  bf16ToF32,
  type DType,
  exactAttention,
  f16ToF32,
  fromNumbers,
  type MaskSpec,
  type ResolvedAttentionInput,
  validateAttentionInput,
} from '@fastattention/core';

/** Seeded PRNG (mulberry32): a failing case replays from the seed printed in its name. */
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

export const SEED = Math.floor(Math.random() * 2 ** 31);

export interface Shape {
  batch: number;
  seqQ: number;
  seqK: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
}

/** Fresh random inputs, roughly normal in [-2, 2): never all zero. */
export function randomInput<D extends 'f16' | 'bf16'>(
  rand: () => number,
  dtype: D,
  shape: Shape,
  extra: { mask?: MaskSpec; seqLensK?: Int32Array; scale?: number } = {},
): AttentionInput<D> {
  const values = (n: number): number[] =>
    Array.from({ length: n }, () => rand() + rand() + rand() + rand() - 2);
  const nq = shape.batch * shape.seqQ * shape.headsQ * shape.headDim;
  const nkv = shape.batch * shape.seqK * shape.headsKV * shape.headDim;
  return {
    ...shape,
    dtype,
    q: fromNumbers(values(nq), dtype),
    k: fromNumbers(values(nkv), dtype),
    v: fromNumbers(values(nkv), dtype),
    ...extra,
  } as AttentionInput<D>;
}

export const TOLERANCE: Record<DType, number> = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 };
export const LSE_TOLERANCE = 1e-4;

/** ||out - ref|| / ||ref|| (NaN anywhere: Infinity) and the worst relative LSE difference. */
export function errors(
  input: AttentionInput,
  got: { out: Uint16Array | Float32Array; lse: Float32Array },
): { out: number; lse: number } {
  const ref = exactAttention(validateAttentionInput(input) as ResolvedAttentionInput);
  const dec = input.dtype === 'bf16' ? bf16ToF32 : f16ToF32;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.out.length; i++) {
    const x = dec(got.out[i]!);
    if (Number.isNaN(x)) return { out: Number.POSITIVE_INFINITY, lse: Number.POSITIVE_INFINITY };
    num += (x - ref.out[i]!) ** 2;
    den += ref.out[i]! ** 2;
  }
  let lse = 0;
  for (let i = 0; i < ref.lse.length; i++) {
    const a = got.lse[i]!;
    const b = ref.lse[i]!;
    if (b === Number.NEGATIVE_INFINITY || a === Number.NEGATIVE_INFINITY) {
      if (a !== b) lse = Number.POSITIVE_INFINITY;
      continue;
    }
    lse = Math.max(
      lse,
      Number.isNaN(a) ? Number.POSITIVE_INFINITY : Math.abs(a - b) / Math.max(1, Math.abs(b)),
    );
  }
  return { out: den === 0 ? Math.sqrt(num) : Math.sqrt(num / den), lse };
}
