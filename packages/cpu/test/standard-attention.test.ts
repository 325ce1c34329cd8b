import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CpuBackend, type CpuIsa, createBackend } from '../src/index.js';
import {
  type Case,
  compare,
  invisibleToAll,
  LSE_TOLERANCE,
  OUT_TOLERANCE,
  poisonKeys,
  REAL_WORK_TIMEOUT_MS,
  randomInput,
  reference,
  runnableIsas,
  TEST_DTYPES,
} from './helpers.js';

// backend.standardAttention(): the materialized-scores baseline, on the same threads and kernels.

const ISAS = runnableIsas();
const DTYPES = TEST_DTYPES;

const CASES: Omit<Case, 'dtype'>[] = [
  {
    name: 'no mask, odd sizes, padding',
    batch: 2,
    seqQ: 37,
    seqK: 53,
    headsQ: 2,
    headsKV: 2,
    headDim: 40,
    seqLensK: [53, 0],
  },
  {
    name: 'causal, GQA 4:2, chunked',
    batch: 1,
    seqQ: 70,
    seqK: 100,
    headsQ: 4,
    headsKV: 2,
    headDim: 64,
    mask: { kind: 'causal' },
  },
  {
    name: 'window 5/3, padding',
    batch: 2,
    seqQ: 30,
    seqK: 60,
    headsQ: 2,
    headsKV: 1,
    headDim: 32,
    mask: { kind: 'window', left: 5, right: 3 },
    seqLensK: [60, 41],
  },
  { name: 'decode, MQA 8:1', batch: 1, seqQ: 1, seqK: 300, headsQ: 8, headsKV: 1, headDim: 128 },
];

const backends = new Map<CpuIsa, CpuBackend>();
beforeAll(async () => {
  for (const isa of ISAS) backends.set(isa, await createBackend({ isa, threads: 2 }));
});
afterAll(async () => {
  for (const b of backends.values()) await b.dispose();
});

describe.each(CASES)('$name', (c) => {
  it.each(DTYPES.flatMap((dtype) => ISAS.map((isa) => [dtype, isa] as const)))(
    'matches the float64 reference (%s, %s kernel), garbage in invisible K/V included',
    async (dtype, isa) => {
      const clean = randomInput({ ...c, dtype });
      const input = poisonKeys(clean, (b, j) => invisibleToAll(clean, b, j), Number.NaN);
      const result = await backends.get(isa)!.standardAttention(input);
      expect(result.out).toBeInstanceOf(dtype === 'f32' ? Float32Array : Uint16Array);
      const errors = compare(result, reference(input), dtype);
      expect(errors.bad).toBe(0);
      expect(errors.out).toBeLessThanOrEqual(OUT_TOLERANCE[dtype]);
      expect(errors.lse).toBeLessThanOrEqual(LSE_TOLERANCE);
    },
    REAL_WORK_TIMEOUT_MS,
  );
});

describe('standard attention', () => {
  it('propagates NaN in a visible k like the reference', async () => {
    const backend = backends.get(ISAS[0]!)!;
    const input = randomInput({
      name: '',
      dtype: 'f32',
      batch: 1,
      seqQ: 20,
      seqK: 20,
      headsQ: 1,
      headsKV: 1,
      headDim: 32,
      mask: { kind: 'causal' },
    });
    const k = input.k.slice();
    k[10 * 32 + 3] = Number.NaN; // key 10: rows 10-19 see it
    const errors = compare(
      await backend.standardAttention({ ...input, k }),
      reference({ ...input, k }),
      'f32',
    );
    expect(errors.bad).toBe(0);
    expect(errors.nonFinite).toBe(10 * 32);
  });

  it('reports its score matrix in workspaceBytes: O(S^2), far above the flash kernel', async () => {
    const backend = backends.get(ISAS[0]!)!;
    const bytes: number[] = [];
    for (const s of [512, 1024]) {
      const input = randomInput({
        name: '',
        dtype: 'f32',
        batch: 1,
        seqQ: s,
        seqK: s,
        headsQ: 2,
        headsKV: 2,
        headDim: 64,
      });
      const standard = await backend.standardAttention(input);
      const flash = await backend.attention(input);
      expect(standard.workspaceBytes).toBeGreaterThanOrEqual(2 * s * s * 4);
      if (s === 1024) expect(standard.workspaceBytes).toBeGreaterThan(4 * flash.workspaceBytes!);
      bytes.push(standard.workspaceBytes);
    }
    expect(bytes[1]! / bytes[0]!).toBeGreaterThan(3.5);
  });

  it('rejects with OOM a score matrix beyond half of physical memory, before running', async () => {
    const backend = backends.get(ISAS[0]!)!;
    // 4 x 64 heads x 65536^2 floats = 4 PiB; only the shape matters, so K/V are short-lived views.
    const input = randomInput({
      name: '',
      dtype: 'f16',
      batch: 1,
      seqQ: 1,
      seqK: 1,
      headsQ: 1,
      headsKV: 1,
      headDim: 16,
    });
    const seqQ = 65536;
    const seqK = 65536;
    const q = new Uint16Array(seqQ * 64 * 16).fill(input.q[0]!);
    const kv = new Uint16Array(seqK * 16).fill(input.k[0]!);
    await expect(
      backend.standardAttention({ ...input, seqQ, seqK, headsQ: 64, headsKV: 1, q, k: kv, v: kv }),
    ).rejects.toMatchObject({ code: 'OOM' });
  });

  it('is cancelled by an AbortSignal like attention()', async () => {
    const backend = backends.get(ISAS[0]!)!;
    const input = randomInput({
      name: '',
      dtype: 'f32',
      batch: 1,
      seqQ: 8,
      seqK: 8,
      headsQ: 1,
      headsKV: 1,
      headDim: 16,
    });
    await expect(backend.standardAttention(input, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });
});
