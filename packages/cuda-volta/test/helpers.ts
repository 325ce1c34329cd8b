import type { AttentionInput, MaskSpec } from '@fastattention/core';
import {
  compareToReference,
  randomInput as kitRandomInput,
  LSE_TOLERANCE,
  type ReferenceErrors,
  randomSeed,
  rng,
  TOLERANCE,
} from '@fastattention/core/testing';
import {
  type CudaBackend,
  type CudaDType,
  type CudaTuning,
  createBackend,
  type PathName,
} from '../src/index.js';

/** The contract's tolerances, from the conformance kit. */
export const TOL = { f16: TOLERANCE.f16, bf16: TOLERANCE.bf16, lse: LSE_TOLERANCE } as const;

/** The backend, or why there is none (then GPU tests skip and print it). */
export async function tryBackend(
  options: { path?: PathName; kernelDir?: string; tuning?: CudaTuning } = {},
): Promise<{ backend?: CudaBackend; reason?: string }> {
  try {
    return { backend: await createBackend(options) };
  } catch (error) {
    return { reason: (error as Error).message };
  }
}

export interface Case {
  readonly dtype: CudaDType;
  readonly batch: number;
  readonly seqQ: number;
  readonly seqK: number;
  readonly headsQ: number;
  readonly headsKV: number;
  readonly headDim: number;
  readonly mask?: MaskSpec;
  readonly seqLensK?: number[];
  readonly scale?: number;
}

export function describeCase(c: Case): string {
  const mask = c.mask
    ? c.mask.kind === 'window'
      ? `window(${c.mask.left},${c.mask.right})`
      : c.mask.kind
    : 'none';
  const lens = c.seqLensK ? ` lens=[${c.seqLensK.join(',')}]` : '';
  return `${c.dtype} b${c.batch} q${c.seqQ} k${c.seqK} h${c.headsQ}/${c.headsKV} d${c.headDim} ${mask}${lens}`;
}

/** Fresh random input for a case (the conformance kit's: never all zero). */
export function randomInput(c: Case): AttentionInput<CudaDType> {
  const { dtype, mask, seqLensK, scale } = c;
  return kitRandomInput(rng(randomSeed()), dtype, c, {
    ...(mask ? { mask } : {}),
    ...(seqLensK ? { seqLensK: Int32Array.from(seqLensK) } : {}),
    ...(scale !== undefined ? { scale } : {}),
  });
}

/** Errors against core's float64 reference (relative L2 of out, worst relative LSE, bad entries). */
export const compare = (
  input: AttentionInput<CudaDType>,
  out: Uint16Array,
  lse: Float32Array,
): ReferenceErrors => compareToReference(input, out, lse);

/** Runs a case through the device-tensor API with poisoned outputs; returns its errors. */
export async function runCase(backend: CudaBackend, c: Case): Promise<ReferenceErrors> {
  const input = randomInput(c);
  const q = await backend.upload(c.dtype, [c.batch, c.seqQ, c.headsQ, c.headDim], input.q);
  const k = await backend.upload(c.dtype, [c.batch, c.seqK, c.headsKV, c.headDim], input.k);
  const v = await backend.upload(c.dtype, [c.batch, c.seqK, c.headsKV, c.headDim], input.v);
  const out = backend.empty(c.dtype, [c.batch, c.seqQ, c.headsQ, c.headDim]);
  const lse = backend.empty('f32', [c.batch, c.headsQ, c.seqQ]);
  try {
    await out.fillBytes(0xff); // NaN in f16/bf16/f32: an element the kernel skips fails
    await lse.fillBytes(0xff);
    await backend.attentionDevice({ ...input, q, k, v, out, lse });
    const o = (await out.download()) as Uint16Array;
    const l = (await lse.download()) as Float32Array;
    return compareToReference(input, o, l);
  } finally {
    for (const t of [q, k, v, out, lse]) t.dispose();
  }
}
