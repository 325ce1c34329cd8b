import { compareToReference } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import { type Case, describeCase, randomInput, runCase, TOL, tryBackend } from './helpers.js';

const { backend, reason } = await tryBackend();
if (!backend) console.warn(`[cuda] GPU tests skipped: ${reason}`);

const HEAD_DIMS = [64, 80, 96, 128, 256];
const cases: Case[] = [];
// Every head dim and dtype, GQA 2:1, causal self-attention across several q-tiles.
for (const dtype of ['f16', 'bf16'] as const)
  for (const headDim of HEAD_DIMS)
    cases.push({
      dtype,
      batch: 2,
      seqQ: 150,
      seqK: 150,
      headsQ: 4,
      headsKV: 2,
      headDim,
      mask: { kind: 'causal' },
    });
// Every mask kind, cross attention (bottom-right alignment), both dtypes.
for (const dtype of ['f16', 'bf16'] as const)
  for (const mask of [
    { kind: 'none' },
    { kind: 'causal' },
    { kind: 'window', left: 37, right: 5 },
    { kind: 'window', left: 0, right: 0 },
    { kind: 'window', left: Number.POSITIVE_INFINITY, right: 20 },
    { kind: 'window', left: 100, right: Number.POSITIVE_INFINITY },
  ] as const)
    cases.push({ dtype, batch: 1, seqQ: 200, seqK: 333, headsQ: 2, headsKV: 1, headDim: 128, mask });
// Odd sizes: 1, 17, 1000.
cases.push({ dtype: 'f16', batch: 1, seqQ: 1, seqK: 1, headsQ: 1, headsKV: 1, headDim: 64 });
cases.push({
  dtype: 'bf16',
  batch: 3,
  seqQ: 17,
  seqK: 17,
  headsQ: 3,
  headsKV: 1,
  headDim: 80,
  mask: { kind: 'causal' },
});
cases.push({
  dtype: 'f16',
  batch: 1,
  seqQ: 1000,
  seqK: 1000,
  headsQ: 2,
  headsKV: 2,
  headDim: 64,
  mask: { kind: 'causal' },
});
cases.push({ dtype: 'bf16', batch: 1, seqQ: 1000, seqK: 1000, headsQ: 1, headsKV: 1, headDim: 96 });
cases.push({
  dtype: 'f16',
  batch: 1,
  seqQ: 17,
  seqK: 1000,
  headsQ: 4,
  headsKV: 4,
  headDim: 256,
  mask: { kind: 'causal' },
});
// Padding via seqLensK, zero included (rows with no key: zeros and LSE -Infinity).
for (const mask of [{ kind: 'none' }, { kind: 'causal' }, { kind: 'window', left: 10, right: 3 }] as const)
  cases.push({
    dtype: 'f16',
    batch: 4,
    seqQ: 64,
    seqK: 200,
    headsQ: 4,
    headsKV: 2,
    headDim: 128,
    mask,
    seqLensK: [0, 57, 200, 129],
  });
// GQA ratios: MQA, 3:1, and a non-default scale.
cases.push({
  dtype: 'bf16',
  batch: 2,
  seqQ: 70,
  seqK: 90,
  headsQ: 8,
  headsKV: 1,
  headDim: 64,
  mask: { kind: 'causal' },
});
cases.push({ dtype: 'f16', batch: 1, seqQ: 129, seqK: 129, headsQ: 6, headsKV: 2, headDim: 128, scale: 0.3 });
// Several 128-row q-tiles with a partial last one, keys ending mid-tile, and a negative scale
// (every tile takes the masked body): the hopper path's 128 x 128 tiles.
cases.push({
  dtype: 'bf16',
  batch: 2,
  seqQ: 517,
  seqK: 1100,
  headsQ: 4,
  headsKV: 2,
  headDim: 128,
  mask: { kind: 'causal' },
});
cases.push({
  dtype: 'f16',
  batch: 1,
  seqQ: 300,
  seqK: 260,
  headsQ: 2,
  headsKV: 2,
  headDim: 128,
  scale: -0.05,
});
// Large scales: base-2 logits spread far past the softmax's kStaleMax (8), so a row's max jumps by
// more than that over its k-tiles (the offset follows: O is rescaled) as well as by less (it stays).
cases.push({
  dtype: 'bf16',
  batch: 1,
  seqQ: 300,
  seqK: 700,
  headsQ: 2,
  headsKV: 1,
  headDim: 64,
  mask: { kind: 'causal' },
  scale: 4,
});
cases.push({ dtype: 'f16', batch: 1, seqQ: 300, seqK: 700, headsQ: 2, headsKV: 2, headDim: 128, scale: 2 });
// Decode (1..16 query rows, GQA heads packed into one tile, split-KV + combine).
cases.push({ dtype: 'f16', batch: 2, seqQ: 1, seqK: 5000, headsQ: 32, headsKV: 8, headDim: 128 });
cases.push({ dtype: 'bf16', batch: 1, seqQ: 1, seqK: 4097, headsQ: 8, headsKV: 8, headDim: 64 });
cases.push({
  dtype: 'f16',
  batch: 3,
  seqQ: 1,
  seqK: 3000,
  headsQ: 16,
  headsKV: 2,
  headDim: 256,
  seqLensK: [0, 1, 2999],
});
cases.push({
  dtype: 'bf16',
  batch: 2,
  seqQ: 16,
  seqK: 777,
  headsQ: 8,
  headsKV: 2,
  headDim: 128,
  mask: { kind: 'causal' },
});
cases.push({
  dtype: 'f16',
  batch: 2,
  seqQ: 4,
  seqK: 2048,
  headsQ: 12,
  headsKV: 4,
  headDim: 96,
  mask: { kind: 'window', left: 300, right: 0 },
  seqLensK: [2048, 1000],
});
cases.push({
  dtype: 'f16',
  batch: 1,
  seqQ: 7,
  seqK: 64,
  headsQ: 40,
  headsKV: 2,
  headDim: 80,
  mask: { kind: 'causal' },
});

// The older paths run on a newer GPU when forced (their instructions are valid there), so the
// same suite validates them on whatever GPU the tests run on; their speed there means nothing.
// FASTATTN_CUDA118_KERNEL_DIR (scripts/cuda118/build.sh's kernels/) adds the volta kernels that CUDA 11.8
// built as compute_70 PTX, JIT-compiled by the driver: the binaries a V100 user gets.
const cuda118 = process.env.FASTATTN_CUDA118_KERNEL_DIR;
// On an H100 the default is the hopper path, so the ampere kernels it replaces are forced too.
const defaultPath = backend?.info.devices[0]?.details?.path;
const variants = [
  ...(defaultPath && defaultPath !== 'ampere'
    ? [{ label: 'ampere path (forced)', path: 'ampere' as const }]
    : []),
  { label: 'turing path (forced)', path: 'turing' },
  { label: 'volta path (forced)', path: 'volta' },
  ...(cuda118
    ? [{ label: 'volta path (forced, CUDA 11.8 compute_70 PTX)', path: 'volta' as const, kernelDir: cuda118 }]
    : []),
] as const;
for (const { label, ...options } of variants) {
  const forced = backend ? await tryBackend(options) : {};
  if (backend && !forced.backend) console.warn(`[cuda] ${label} tests skipped: ${forced.reason}`);
  describe.skipIf(!forced.backend)(`cuda ${label} matches the float64 reference`, () => {
    for (const c of cases) {
      it(describeCase(c), async () => {
        const err = await runCase(forced.backend!, c);
        expect(err.bad, 'unwritten (NaN) outputs or mismatched -Infinity LSE').toBe(0);
        expect(err.out).toBeLessThan(TOL[c.dtype]);
        expect(err.lse).toBeLessThan(TOL.lse);
      });
    }
    it('reports the forced path', () => {
      expect(forced.backend!.info.devices[0]?.details?.path).toBe(options.path);
    });
  });
}

// Prefill whose rows see few keys runs a head dim's 'prefill_short' configuration where the path
// has one (hd 64 on hopper), so the cases above reach that head dim's long-row configuration only
// when it is forced: they run through it here.
const hd64Short = {
  dtype: 'f16',
  batch: 1,
  seqQ: 1000,
  seqK: 1000,
  headsQ: 1,
  headsKV: 1,
  headDim: 64,
} as const;
const longRow =
  backend?.plan(hd64Short).config.role === 'prefill_short'
    ? backend.plan({ ...hd64Short, seqQ: 16384, seqK: 16384 }).config.suffix
    : undefined;
const longRowBackend = longRow
  ? (await tryBackend({ tuning: { prefillConfig: longRow } })).backend
  : undefined;
describe.skipIf(!longRowBackend)(`cuda hd 64 long-row prefill configuration (${longRow}, forced)`, () => {
  for (const c of cases.filter((c) => c.headDim === 64 && c.seqQ > 16)) {
    it(describeCase(c), async () => {
      expect(longRowBackend!.plan(c).config.suffix).toBe(longRow);
      const err = await runCase(longRowBackend!, c);
      expect(err.bad, 'unwritten (NaN) outputs or mismatched -Infinity LSE').toBe(0);
      expect(err.out).toBeLessThan(TOL[c.dtype]);
      expect(err.lse).toBeLessThan(TOL.lse);
    });
  }
});

describe.skipIf(!backend)('cuda default path matches the float64 reference', () => {
  for (const c of cases) {
    it(describeCase(c), async () => {
      const err = await runCase(backend!, c);
      expect(err.bad, 'unwritten (NaN) outputs or mismatched -Infinity LSE').toBe(0);
      expect(err.out).toBeLessThan(TOL[c.dtype]);
      expect(err.lse).toBeLessThan(TOL.lse);
    });
  }

  it('host-array attention() honours the contract (f16, causal, seqLensK)', async () => {
    const input = randomInput({
      dtype: 'f16',
      batch: 2,
      seqQ: 33,
      seqK: 90,
      headsQ: 4,
      headsKV: 2,
      headDim: 64,
      mask: { kind: 'causal' },
      seqLensK: [90, 10],
    });
    const { out, lse } = await backend!.attention(input);
    expect(out).toBeInstanceOf(Uint16Array);
    expect(lse).toBeInstanceOf(Float32Array);
    const err = compareToReference(input, out, lse);
    expect(err.bad).toBe(0);
    expect(err.out).toBeLessThan(TOL.f16);
    expect(err.lse).toBeLessThan(TOL.lse);
  });

  it('gives the same result run after run on the same inputs (no races)', async () => {
    const input = randomInput({
      dtype: 'bf16',
      batch: 1,
      seqQ: 300,
      seqK: 300,
      headsQ: 2,
      headsKV: 1,
      headDim: 128,
      mask: { kind: 'causal' },
    });
    const a = await backend!.attention(input);
    const b = await backend!.attention(input);
    expect(Buffer.from(a.out.buffer).equals(Buffer.from(b.out.buffer))).toBe(true);
  });

  it('plans decode with split-KV from core planner and prefill without', () => {
    const d = backend!.plan({
      dtype: 'f16',
      batch: 1,
      seqQ: 1,
      seqK: 32768,
      headsQ: 32,
      headsKV: 8,
      headDim: 128,
    });
    expect(d.role).toBe('decode');
    expect(d.splitKV).toBeGreaterThan(1);
    const prefill = {
      dtype: 'f16',
      batch: 16,
      seqQ: 1024,
      seqK: 1024,
      headsQ: 32,
      headsKV: 32,
      headDim: 128,
    } as const;
    const p = backend!.plan(prefill);
    expect(p.role).toBe('prefill');
    expect(p.splitKV).toBe(1);
    // The hopper path runs its own wgmma kernels for prefill at every head dim and for decode
    // below hd 256 (the ampere kernel there); the ampere kernels it replaces stay timeable by name.
    if (backend!.path.name === 'hopper') {
      expect(p.path).toBe('hopper');
      expect(d.path).toBe('hopper');
      for (const headDim of [64, 80, 96, 256])
        expect(backend!.plan({ ...prefill, headDim }).path).toBe('hopper');
      for (const headDim of [64, 80, 96])
        expect(backend!.plan({ ...prefill, seqQ: 1, seqK: 4096, headDim }).path).toBe('hopper');
      expect(backend!.plan({ ...prefill, seqQ: 1, seqK: 4096, headDim: 256 }).path).toBe('ampere');
      expect(backend!.plan(prefill, 'hd128_128x64w4s2').path).toBe('ampere');
      expect(backend!.plan({ ...prefill, seqQ: 1 }, 'hd128_16x128w4s3').path).toBe('ampere');
    }
  });
});
