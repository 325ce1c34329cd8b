import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CpuBackend, type CpuIsa, createBackend } from '../src/index.js';
import {
  type Case,
  compare,
  LSE_TOLERANCE,
  OUT_TOLERANCE,
  REAL_WORK_TIMEOUT_MS,
  randomInput,
  reference,
  runnableIsas,
} from './helpers.js';

const ISAS = runnableIsas();

const CASES: Case[] = [
  {
    name: 'one query, one key',
    dtype: 'f32',
    batch: 1,
    seqQ: 1,
    seqK: 1,
    headsQ: 1,
    headsKV: 1,
    headDim: 64,
  },
  { name: 'odd size 17', dtype: 'f32', batch: 2, seqQ: 17, seqK: 17, headsQ: 2, headsKV: 2, headDim: 64 },
  {
    name: 'size 1000, causal',
    dtype: 'f32',
    batch: 1,
    seqQ: 1000,
    seqK: 1000,
    headsQ: 1,
    headsKV: 1,
    headDim: 32,
    mask: { kind: 'causal' },
  },
  {
    name: 'GQA 4:2, causal, head dim 128',
    dtype: 'f32',
    batch: 1,
    seqQ: 130,
    seqK: 130,
    headsQ: 4,
    headsKV: 2,
    headDim: 128,
    mask: { kind: 'causal' },
  },
  {
    name: 'MQA 6:1, no mask, 3 odd sizes',
    dtype: 'f32',
    batch: 1,
    seqQ: 45,
    seqK: 77,
    headsQ: 6,
    headsKV: 1,
    headDim: 40,
  },
  {
    name: 'window 5/3',
    dtype: 'f32',
    batch: 2,
    seqQ: 70,
    seqK: 90,
    headsQ: 2,
    headsKV: 1,
    headDim: 64,
    mask: { kind: 'window', left: 5, right: 3 },
  },
  {
    name: 'window Infinity/2',
    dtype: 'f32',
    batch: 1,
    seqQ: 64,
    seqK: 64,
    headsQ: 2,
    headsKV: 2,
    headDim: 48,
    mask: { kind: 'window', left: Number.POSITIVE_INFINITY, right: 2 },
  },
  {
    name: 'window 3/Infinity',
    dtype: 'f32',
    batch: 1,
    seqQ: 50,
    seqK: 80,
    headsQ: 1,
    headsKV: 1,
    headDim: 64,
    mask: { kind: 'window', left: 3, right: Number.POSITIVE_INFINITY },
  },
  {
    name: 'window 0/0 (diagonal only)',
    dtype: 'f32',
    batch: 1,
    seqQ: 40,
    seqK: 40,
    headsQ: 1,
    headsKV: 1,
    headDim: 32,
    mask: { kind: 'window', left: 0, right: 0 },
  },
  {
    name: 'chunked prefill seqQ < seqK, padding via seqLensK incl. a zero-length row',
    dtype: 'f32',
    batch: 4,
    seqQ: 33,
    seqK: 200,
    headsQ: 4,
    headsKV: 1,
    headDim: 64,
    mask: { kind: 'causal' },
    seqLensK: [200, 150, 0, 20],
  },
  {
    name: 'decode seqQ = 3, causal, GQA 8:2',
    dtype: 'f32',
    batch: 2,
    seqQ: 3,
    seqK: 333,
    headsQ: 8,
    headsKV: 2,
    headDim: 64,
    mask: { kind: 'causal' },
    seqLensK: [333, 100],
  },
  {
    name: 'generic head dim 36',
    dtype: 'f32',
    batch: 1,
    seqQ: 60,
    seqK: 61,
    headsQ: 2,
    headsKV: 2,
    headDim: 36,
    mask: { kind: 'causal' },
  },
  {
    name: 'generic head dim 100',
    dtype: 'f32',
    batch: 1,
    seqQ: 31,
    seqK: 95,
    headsQ: 2,
    headsKV: 1,
    headDim: 100,
  },
  {
    name: 'head dim 256',
    dtype: 'f32',
    batch: 1,
    seqQ: 40,
    seqK: 70,
    headsQ: 2,
    headsKV: 2,
    headDim: 256,
    mask: { kind: 'causal' },
  },
  {
    name: 'head dim 7, custom scale',
    dtype: 'f32',
    batch: 1,
    seqQ: 9,
    seqK: 12,
    headsQ: 1,
    headsKV: 1,
    headDim: 7,
    scale: 0.9,
  },
  {
    name: 'f16, head dim 128, causal',
    dtype: 'f16',
    batch: 1,
    seqQ: 100,
    seqK: 100,
    headsQ: 4,
    headsKV: 2,
    headDim: 128,
    mask: { kind: 'causal' },
  },
  {
    name: 'f16, head dim 36, window',
    dtype: 'f16',
    batch: 2,
    seqQ: 20,
    seqK: 50,
    headsQ: 2,
    headsKV: 2,
    headDim: 36,
    mask: { kind: 'window', left: 7, right: 1 },
    seqLensK: [50, 31],
  },
  {
    name: 'f16, head dim 256',
    dtype: 'f16',
    batch: 1,
    seqQ: 24,
    seqK: 40,
    headsQ: 1,
    headsKV: 1,
    headDim: 256,
  },
  {
    name: 'bf16, head dim 128, GQA',
    dtype: 'bf16',
    batch: 1,
    seqQ: 64,
    seqK: 96,
    headsQ: 4,
    headsKV: 1,
    headDim: 128,
    mask: { kind: 'causal' },
  },
  {
    name: 'bf16, head dim 100, padding',
    dtype: 'bf16',
    batch: 3,
    seqQ: 10,
    seqK: 30,
    headsQ: 2,
    headsKV: 2,
    headDim: 100,
    seqLensK: [0, 30, 9],
  },
  {
    name: 'decode seqQ = 1 over 3000 keys (split-KV), f16',
    dtype: 'f16',
    batch: 1,
    seqQ: 1,
    seqK: 3000,
    headsQ: 8,
    headsKV: 1,
    headDim: 128,
  },
  {
    name: 'decode seqQ = 1, bf16, MQA, padding',
    dtype: 'bf16',
    batch: 2,
    seqQ: 1,
    seqK: 777,
    headsQ: 4,
    headsKV: 1,
    headDim: 64,
    seqLensK: [777, 5],
  },
];

/**
 * The decode micro-kernel (keys in vector lanes) runs when seqQ x group <= 8: query lengths 1-4,
 * GQA groups 1/4/8, padding (incl. zero-length rows), window masks, every dtype, head dims that
 * are and are not multiples of the vector width, key counts that are not, and split-KV.
 */
const DECODE_CASES: Case[] = [
  {
    name: 'decode kernel: seqQ 1, GQA 32:8, head dim 128, padding incl. 0',
    dtype: 'f16',
    batch: 3,
    seqQ: 1,
    seqK: 1000,
    headsQ: 32,
    headsKV: 8,
    headDim: 128,
    seqLensK: [1000, 0, 517],
  },
  {
    name: 'decode kernel: seqQ 2, GQA 8:2, head dim 64, window 40/0',
    dtype: 'bf16',
    batch: 2,
    seqQ: 2,
    seqK: 300,
    headsQ: 8,
    headsKV: 2,
    headDim: 64,
    mask: { kind: 'window', left: 40, right: 0 },
    seqLensK: [300, 123],
  },
  {
    name: 'decode kernel: seqQ 4, no GQA, head dim 100, causal, padding',
    dtype: 'f32',
    batch: 2,
    seqQ: 4,
    seqK: 260,
    headsQ: 4,
    headsKV: 4,
    headDim: 100,
    mask: { kind: 'causal' },
    seqLensK: [260, 3],
  },
  {
    name: 'decode kernel: seqQ 1, MQA 8:1, head dim 100, window 17/0',
    dtype: 'f16',
    batch: 1,
    seqQ: 1,
    seqK: 555,
    headsQ: 8,
    headsKV: 1,
    headDim: 100,
    mask: { kind: 'window', left: 17, right: 0 },
  },
  {
    name: 'decode kernel: seqQ 3, no GQA, head dim 128, window 5/1, 97 keys',
    dtype: 'f32',
    batch: 1,
    seqQ: 3,
    seqK: 97,
    headsQ: 2,
    headsKV: 2,
    headDim: 128,
    mask: { kind: 'window', left: 5, right: 1 },
  },
  {
    name: 'decode kernel: seqQ 1, one head, 33 keys',
    dtype: 'bf16',
    batch: 1,
    seqQ: 1,
    seqK: 33,
    headsQ: 1,
    headsKV: 1,
    headDim: 128,
  },
  {
    name: 'decode kernel: seqQ 2, GQA 8:2, head dim 128, causal, padding to 1 key',
    dtype: 'f16',
    batch: 2,
    seqQ: 2,
    seqK: 400,
    headsQ: 8,
    headsKV: 2,
    headDim: 128,
    mask: { kind: 'causal' },
    seqLensK: [1, 400],
  },
  {
    name: 'decode kernel: seqQ 1, GQA 16:2, head dim 64, 2049 keys (split-KV)',
    dtype: 'f32',
    batch: 1,
    seqQ: 1,
    seqK: 2049,
    headsQ: 16,
    headsKV: 2,
    headDim: 64,
    scale: 0.3,
  },
];

const backends = new Map<CpuIsa, CpuBackend>();
beforeAll(async () => {
  for (const isa of ISAS) backends.set(isa, await createBackend({ isa }));
});
afterAll(async () => {
  for (const b of backends.values()) await b.dispose();
});

describe.each(CASES)('$name ($dtype)', (c) => {
  const input = randomInput(c);
  const ref = reference(input);
  it.each(ISAS)(
    'matches the float64 reference on the %s kernel',
    async (isa) => {
      const result = await backends.get(isa)!.attention(input);
      expect(result.out).toBeInstanceOf(c.dtype === 'f32' ? Float32Array : Uint16Array);
      expect(result.out.length).toBe(input.q.length);
      expect(result.lse.length).toBe(c.batch * c.headsQ * c.seqQ);
      const errors = compare(result, ref, c.dtype);
      expect(errors.out).toBeLessThanOrEqual(OUT_TOLERANCE[c.dtype]);
      expect(errors.lse).toBeLessThanOrEqual(LSE_TOLERANCE);
      expect(errors.bad).toBe(0);
    },
    REAL_WORK_TIMEOUT_MS,
  );
});

describe.each(DECODE_CASES)('$name ($dtype)', (c) => {
  const input = randomInput(c);
  const ref = reference(input);
  it.each(ISAS)(
    'runs the decode kernel and matches the float64 reference on the %s kernel',
    async (isa) => {
      const backend = backends.get(isa)!;
      expect(backend.explain(input).decode).toBe(true);
      const errors = compare(await backend.attention(input), ref, c.dtype);
      expect(errors.out).toBeLessThanOrEqual(OUT_TOLERANCE[c.dtype]);
      expect(errors.lse).toBeLessThanOrEqual(LSE_TOLERANCE);
      expect(errors.bad).toBe(0);
    },
    REAL_WORK_TIMEOUT_MS,
  );
});

describe('decode kernel, forced tilings', () => {
  it.each([
    [24, 3],
    [40, 1],
    [16, 7],
    [512, 2],
  ])(
    'blockK %i (split-KV %i) gives the same result',
    async (blockK, splitKV) => {
      const backend = await createBackend({ tiling: { blockK, splitKV } });
      const input = randomInput({
        name: '',
        dtype: 'f16',
        batch: 2,
        seqQ: 2,
        seqK: 301,
        headsQ: 8,
        headsKV: 2,
        headDim: 64,
        mask: { kind: 'window', left: 50, right: 0 },
        seqLensK: [301, 77],
      });
      const plan = backend.explain(input);
      expect(plan.decode).toBe(true);
      expect(plan.blockK).toBe(blockK);
      const errors = compare(await backend.attention(input), reference(input), 'f16');
      expect(errors.out).toBeLessThanOrEqual(OUT_TOLERANCE.f16);
      expect(errors.lse).toBeLessThanOrEqual(LSE_TOLERANCE);
      await backend.dispose();
    },
    REAL_WORK_TIMEOUT_MS,
  );

  it('is not used above 8 rows per KV head', async () => {
    const backend = backends.get(ISAS[0]!)!;
    const c: Case = {
      name: '',
      dtype: 'f32',
      batch: 1,
      seqQ: 3,
      seqK: 64,
      headsQ: 8,
      headsKV: 2,
      headDim: 64,
    };
    expect(backend.explain(randomInput(c)).decode).toBe(false);
    expect(backend.explain(randomInput({ ...c, seqQ: 2 })).decode).toBe(true);
  });
});

describe('split-KV decode', () => {
  it('is planned for one query row over many keys on a few KV heads', async () => {
    const backend = await createBackend({ threads: 4 });
    const plan = backend.explain(
      randomInput({
        name: '',
        dtype: 'f16',
        batch: 1,
        seqQ: 1,
        seqK: 3000,
        headsQ: 8,
        headsKV: 1,
        headDim: 128,
      }),
    );
    expect(plan.plan.splitKV).toBeGreaterThan(1);
    expect(plan.stack).toBe(8);
    await backend.dispose();
  });

  it.each([2, 3, 7, 64])(
    'merges %i partials by LSE (forced split count, empty splits included)',
    async (splitKV) => {
      const backend = await createBackend({ tiling: { splitKV, blockK: 64 } });
      const c: Case = {
        name: '',
        dtype: 'f32',
        batch: 3,
        seqQ: 2,
        seqK: 500,
        headsQ: 4,
        headsKV: 2,
        headDim: 64,
        mask: { kind: 'window', left: 100, right: 0 },
        seqLensK: [500, 0, 130],
      };
      const input = randomInput(c);
      expect(backend.explain(input).splitKV).toBe(splitKV);
      const errors = compare(await backend.attention(input), reference(input), 'f32');
      expect(errors.out).toBeLessThanOrEqual(OUT_TOLERANCE.f32);
      expect(errors.lse).toBeLessThanOrEqual(LSE_TOLERANCE);
      expect(errors.bad).toBe(0);
      await backend.dispose();
    },
    REAL_WORK_TIMEOUT_MS,
  );
});

describe('forced tilings', () => {
  it.each([
    [16, 8],
    [48, 24],
    [256, 256],
  ])(
    'blockQ %i x blockK %i give the same result',
    async (blockQ, blockK) => {
      // Caches given explicitly: whether a forced tiling fits must not depend on the machine (256 x
      // 256 at head dim 64 needs 526336 B of L2, more than a 512 KiB L2 holds).
      const caches = {
        l1d: 48 * 1024,
        l2: 2 * 1024 * 1024,
        l3: 32 * 1024 * 1024,
        source: 'default',
      } as const;
      const backend = await createBackend({ tiling: { blockQ, blockK }, caches });
      const input = randomInput({
        name: '',
        dtype: 'f32',
        batch: 1,
        seqQ: 150,
        seqK: 150,
        headsQ: 2,
        headsKV: 1,
        headDim: 64,
        mask: { kind: 'causal' },
      });
      const errors = compare(await backend.attention(input), reference(input), 'f32');
      expect(errors.out).toBeLessThanOrEqual(OUT_TOLERANCE.f32);
      expect(errors.lse).toBeLessThanOrEqual(LSE_TOLERANCE);
      await backend.dispose();
    },
    REAL_WORK_TIMEOUT_MS,
  );
});

describe('head dims up to the advertised maximum', () => {
  // A 32 KiB L1d and a 512 KiB L2, given explicitly: at head dims 513-1024 no Q panel fits L1d,
  // which must not reject a call the kernels run.
  const caches = { l1d: 32 * 1024, l2: 512 * 1024, l3: 8 * 1024 * 1024, source: 'default' } as const;

  it.each([
    ['prefill', 512, 'f32', 24],
    ['prefill', 1024, 'f32', 24],
    ['prefill', 1024, 'bf16', 24],
    ['decode', 1024, 'f16', 1],
  ] as const)(
    '%s at head dim %i (%s) matches the reference',
    async (_path, headDim, dtype, seqQ) => {
      const backend = await createBackend({ threads: 2, caches });
      const input = randomInput({
        name: '',
        dtype,
        batch: 1,
        seqQ,
        seqK: 40,
        headsQ: 4,
        headsKV: 2,
        headDim,
        mask: { kind: 'causal' },
      });
      expect(backend.info.capabilities.headDims).toMatchObject({ kind: 'any', max: 1024 });
      const errors = compare(await backend.attention(input), reference(input), dtype);
      expect(errors.bad).toBe(0);
      expect(errors.out).toBeLessThanOrEqual(OUT_TOLERANCE[dtype]);
      expect(errors.lse).toBeLessThanOrEqual(LSE_TOLERANCE);
      await backend.dispose();
    },
    REAL_WORK_TIMEOUT_MS,
  );

  it('rejects head dim 1025 as UNSUPPORTED', async () => {
    const backend = await createBackend({ threads: 1, caches });
    const input = randomInput({
      name: '',
      dtype: 'f32',
      batch: 1,
      seqQ: 2,
      seqK: 2,
      headsQ: 1,
      headsKV: 1,
      headDim: 1025,
    });
    await expect(backend.attention(input)).rejects.toMatchObject({ code: 'UNSUPPORTED', field: 'headDim' });
    await backend.dispose();
  });
});
