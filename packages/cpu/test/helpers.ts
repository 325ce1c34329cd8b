import {
  type AttentionInput,
  type AttentionOutput,
  allowedKeys,
  bandOf,
  type DType,
  type ExactResult,
  exactAttention,
  f32ToBf16,
  f32ToF16,
  type MaskSpec,
  type PlanOptions,
  validateAttentionInput,
} from '@fastattention/core';
import {
  compareToExact,
  randomInput as kitRandomInput,
  type ReferenceErrors,
  randomSeed,
  rng,
} from '@fastattention/core/testing';

import { type CpuBackend, type CpuIsa, createBackend, loadAddon } from '../src/index.js';

export { LSE_TOLERANCE, TOLERANCE as OUT_TOLERANCE } from '@fastattention/core/testing';

/**
 * Timeout of a test that runs real kernels: CI runs every package's tests at once on a loaded
 * 2-core machine, where a call that takes 0.3 s here took over 5 s.
 */
export const REAL_WORK_TIMEOUT_MS = 60_000;

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

/** Fresh random input for a case (the conformance kit's: never all zero). */
export function randomInput(c: Case): AttentionInput {
  const { dtype, mask, seqLensK, scale } = c;
  return kitRandomInput(rng(randomSeed()), dtype, c, {
    ...(mask ? { mask } : {}),
    ...(seqLensK ? { seqLensK: Int32Array.from(seqLensK) } : {}),
    ...(scale !== undefined ? { scale } : {}),
  });
}

export function reference(input: AttentionInput): ExactResult {
  return exactAttention(validateAttentionInput(input));
}

/**
 * Errors of a backend result against the float64 reference, NaN and ±Infinity included: `bad`
 * counts entries whose non-finite value differs (unwritten poison, an unpropagated NaN, garbage
 * from a key the row may not see), `nonFinite` the reference's NaN/Inf outputs.
 */
export function compare(result: AttentionOutput, ref: ExactResult, dtype: DType): ReferenceErrors {
  return compareToExact(ref, dtype, result.out, result.lse);
}

/** The storage bits of NaN, +Infinity or -Infinity in a dtype. */
export function encode(value: number, dtype: DType): number {
  if (dtype === 'f32') return value;
  return (dtype === 'f16' ? f32ToF16 : f32ToBf16)(value);
}

/**
 * A copy of `input` with K and V set to `value` (every head, every element) at the keys
 * `poisoned(b, j)` selects: a KV cache slot holding garbage.
 */
export function poisonKeys<D extends DType>(
  input: AttentionInput<D>,
  poisoned: (b: number, j: number) => boolean,
  value: number,
): AttentionInput<D> {
  const k = input.k.slice() as typeof input.k;
  const v = input.v.slice() as typeof input.v;
  const bits = encode(value, input.dtype);
  const row = input.headsKV * input.headDim;
  for (let b = 0; b < input.batch; b++) {
    for (let j = 0; j < input.seqK; j++) {
      if (!poisoned(b, j)) continue;
      const at = (b * input.seqK + j) * row;
      k.fill(bits, at, at + row);
      v.fill(bits, at, at + row);
    }
  }
  return { ...input, k, v };
}

/** Whether no query row of batch row b may see key j (j >= seqLensK[b], or outside every row's band). */
export function invisibleToAll(input: AttentionInput, b: number, j: number): boolean {
  const x = validateAttentionInput(input);
  const band = bandOf(x.mask);
  for (let i = 0; i < x.seqQ; i++) {
    const [start, end] = allowedKeys(band, i, x.seqQ, x.seqLensK[b]!);
    if (j >= start && j < end) return false;
  }
  return true;
}

/**
 * One backend per (isa, tiling) for a test file, created on first use; `disposeAll` in afterAll.
 */
export function backendCache(): {
  get(isa: CpuIsa, tiling?: PlanOptions): Promise<CpuBackend>;
  disposeAll(): Promise<void>;
} {
  const backends = new Map<string, Promise<CpuBackend>>();
  return {
    get(isa, tiling) {
      const key = `${isa} ${JSON.stringify(tiling ?? {})}`;
      let backend = backends.get(key);
      if (!backend) {
        backend = createBackend({ isa, threads: 2, ...(tiling ? { tiling } : {}) });
        backends.set(key, backend);
      }
      return backend;
    },
    async disposeAll() {
      for (const b of backends.values()) await (await b).dispose();
    },
  };
}

/** Every kernel this machine runs (the tests check each, not only the one 'auto' picks). */
export function runnableIsas(): CpuIsa[] {
  const addon = loadAddon();
  if (!addon.ok) throw new Error(`the cpu addon must be built for these tests: ${addon.reason}`);
  return addon.addon.kernels() as CpuIsa[];
}

/** The storage dtypes the tests cover. */
export const TEST_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];
