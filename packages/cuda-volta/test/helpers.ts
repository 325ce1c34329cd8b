import {
  type AttentionInput,
  bf16ToF32,
  exactAttention,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  type MaskSpec,
  validateAttentionInput,
} from '@fastattention/core';
import { type CudaBackend, type CudaDType, createBackend } from '../src/index.js';

/** DESIGN.md tolerances: relative L2 error of the output per dtype, and of the LSE. */
export const TOL = { f16: 2e-3, bf16: 1e-2, lse: 1e-4 } as const;

/** The backend, or why there is none (then GPU tests skip and print it). */
export async function tryBackend(
  options: { path?: 'volta' | 'turing' | 'ampere'; kernelDir?: string } = {},
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

/** Fresh random input for a case (normal-ish values, so softmax is neither flat nor one-hot). */
export function randomInput(c: Case): AttentionInput<CudaDType> {
  const enc = c.dtype === 'f16' ? f32ToF16 : f32ToBf16;
  const gen = (n: number): Uint16Array => {
    const a = new Uint16Array(n);
    for (let i = 0; i < n; i++) a[i] = enc((Math.random() + Math.random() + Math.random() - 1.5) * 2);
    return a;
  };
  const qn = c.batch * c.seqQ * c.headsQ * c.headDim;
  const kn = c.batch * c.seqK * c.headsKV * c.headDim;
  return {
    dtype: c.dtype,
    batch: c.batch,
    seqQ: c.seqQ,
    seqK: c.seqK,
    headsQ: c.headsQ,
    headsKV: c.headsKV,
    headDim: c.headDim,
    q: gen(qn),
    k: gen(kn),
    v: gen(kn),
    ...(c.mask ? { mask: c.mask } : {}),
    ...(c.seqLensK ? { seqLensK: Int32Array.from(c.seqLensK) } : {}),
    ...(c.scale !== undefined ? { scale: c.scale } : {}),
  };
}

export interface Errors {
  readonly out: number;
  readonly lse: number;
  /** Output elements that are NaN (unwritten poison) or LSE entries whose -Infinity does not match. */
  readonly bad: number;
}

/** Relative L2 errors against core's float64 reference. */
export function compare(input: AttentionInput<CudaDType>, out: Uint16Array, lse: Float32Array): Errors {
  const ref = exactAttention(validateAttentionInput(input));
  const dec = input.dtype === 'f16' ? f16ToF32 : bf16ToF32;
  let num = 0;
  let den = 0;
  let bad = 0;
  for (let i = 0; i < ref.out.length; i++) {
    const x = dec(out[i]!);
    if (Number.isNaN(x)) bad++;
    const d = x - ref.out[i]!;
    num += d * d;
    den += ref.out[i]! * ref.out[i]!;
  }
  let lnum = 0;
  let lden = 0;
  for (let i = 0; i < ref.lse.length; i++) {
    const r = ref.lse[i]!;
    const x = lse[i]!;
    if (r === Number.NEGATIVE_INFINITY || x === Number.NEGATIVE_INFINITY || Number.isNaN(x)) {
      if (r !== x) bad++;
      continue;
    }
    lnum += (x - r) ** 2;
    lden += r * r;
  }
  return {
    out: den === 0 ? Math.sqrt(num) : Math.sqrt(num / den),
    lse: lden === 0 ? Math.sqrt(lnum) : Math.sqrt(lnum / lden),
    bad,
  };
}

/** Runs a case through the device-tensor API with poisoned outputs; returns its errors. */
export async function runCase(backend: CudaBackend, c: Case): Promise<Errors> {
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
    return compare(input, o, l);
  } finally {
    for (const t of [q, k, v, out, lse]) t.dispose();
  }
}
