import {
  type AttentionInput,
  BackendRegistry,
  DTYPES,
  FastAttentionError,
  fromNumbers,
  referenceProvider,
} from '@fastattention/core';
import { describe, expect, it } from 'vitest';
import { ascendProvider, ascendSpec, createBackend, PRESETS, simulateAttention } from '../src/index.js';
import { errors, LSE_TOLERANCE, randomInput, rng, TOLERANCE, WORK_TIMEOUT } from './helpers.js';

const rand = rng(7);
const shape = { batch: 1, seqQ: 4, seqK: 6, headsQ: 2, headsKV: 1, headDim: 16 };

async function rejects(input: unknown, code: string, field: string): Promise<void> {
  const backend = await createBackend();
  const error = await backend.attention(input as AttentionInput).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FastAttentionError);
  expect((error as FastAttentionError).code).toBe(code);
  expect((error as FastAttentionError).field).toBe(field);
}

describe('ascend-sim backend contract', { timeout: WORK_TIMEOUT }, () => {
  it('describes itself as a simulator with f16/bf16 and head dims in multiples of 16 up to 256', async () => {
    const backend = await createBackend({ device: '910B3' });
    expect(backend.name).toBe('ascend-sim');
    expect(backend.info.devices[0]!.kind).toBe('simulator');
    expect(backend.info.devices[0]!.computeUnits).toBe(20);
    expect(backend.info.capabilities.dtypes).toEqual(['f16', 'bf16']);
    expect(backend.info.capabilities.headDims).toEqual({
      kind: 'list',
      values: Array.from({ length: 16 }, (_, i) => 16 * (i + 1)),
    });
  });

  it('returns each call its own timing report, also when calls run concurrently', async () => {
    const backend = await createBackend({ threads: 2 });
    const small = randomInput(rand, 'f16', shape);
    const large = randomInput(rand, 'f16', { ...shape, seqQ: 64, seqK: 96 }, { mask: { kind: 'causal' } });
    const [a, b, c] = await Promise.all([
      backend.attention(large),
      backend.attention(small),
      backend.simulate(large, { mode: 'timing' }),
    ]);
    for (const [result, input] of [
      [a, large],
      [b, small],
    ] as const) {
      expect(result.report.simulated).toBe(true);
      expect(result.report.mode).toBe('functional');
      // The report is this call's: the same cycles as simulating this input alone.
      expect(result.report.totalCycles).toBe(simulateAttention(backend.device, input).report.totalCycles);
    }
    expect(a.report.totalCycles).not.toBe(b.report.totalCycles);
    expect(c.report.mode).toBe('timing');
    expect(c.report.totalCycles).toBe(a.report.totalCycles);
    await backend.dispose();
  });

  it('offers standard attention on the model as the baseline, with the same result as attention()', async () => {
    const backend = await createBackend();
    const input = randomInput(rand, 'f16', { ...shape, seqQ: 24, seqK: 40 }, { mask: { kind: 'causal' } });
    const standard = await backend.standardAttention(input);
    const e = errors(input, standard);
    expect(e.out).toBeLessThan(TOLERANCE.f16);
    expect(e.lse).toBeLessThan(LSE_TOLERANCE);
    expect(standard.report.kernel).toBe('standard');
    // S in f32 for every (row, key) of every head.
    expect(standard.workspaceBytes).toBe(shape.batch * shape.headsQ * 24 * 40 * 4);
    const fast = await backend.attention(input);
    expect(fast.report.kernel).toBe('fast-attention');
    expect(fast.workspaceBytes).toBeGreaterThan(0);
    await backend.dispose();
  });

  it('runs every dtype its capabilities list, and rejects every other one as UNSUPPORTED', async () => {
    const backend = await createBackend();
    const listed = backend.info.capabilities.dtypes;
    expect(listed.length).toBeGreaterThan(0);
    for (const dtype of DTYPES) {
      const input = randomInput(rand, dtype, shape, { mask: { kind: 'causal' } });
      if (listed.includes(dtype)) {
        const e = errors(input, await backend.attention(input));
        expect(e.out).toBeLessThan(TOLERANCE[dtype]);
        expect(e.lse).toBeLessThan(LSE_TOLERANCE);
      } else {
        await rejects(input, 'UNSUPPORTED', 'dtype');
      }
    }
    await backend.dispose();
  });

  it('rejects f32 input as UNSUPPORTED dtype', async () => {
    const n = 4 * 2 * 16;
    await rejects(
      {
        ...shape,
        dtype: 'f32',
        q: new Float32Array(n),
        k: new Float32Array(6 * 16),
        v: new Float32Array(6 * 16),
      },
      'UNSUPPORTED',
      'dtype',
    );
  });

  it('rejects bad input with typed errors naming the field', async () => {
    const good = randomInput(rand, 'f16', shape);
    await rejects({ ...good, q: good.q.subarray(1) }, 'INVALID_INPUT', 'q');
    await rejects({ ...good, headsQ: 3, headsKV: 2 }, 'INVALID_INPUT', 'headsKV');
    await rejects({ ...good, scale: Number.NaN }, 'INVALID_INPUT', 'scale');
    await rejects({ ...good, seqLensK: new Int32Array([7]) }, 'INVALID_INPUT', 'seqLensK[0]');
    await rejects({ ...good, mask: { kind: 'window', left: -1, right: 0 } }, 'INVALID_INPUT', 'mask.left');
    const hd24 = randomInput(rand, 'f16', { ...shape, headDim: 24 });
    await rejects(hd24, 'UNSUPPORTED', 'headDim');
    const hd272 = randomInput(rand, 'f16', { ...shape, headDim: 272 });
    await rejects(hd272, 'UNSUPPORTED', 'headDim');
  });

  it('validates tensor-less timing problems the same way', async () => {
    const backend = await createBackend();
    const base = { ...shape, dtype: 'f16' as const };
    const codeOf = async (x: object, mode?: 'functional'): Promise<[string, string | undefined]> => {
      const e = (await backend
        .simulate(x as typeof base, mode ? { mode } : {})
        .catch((err: unknown) => err)) as FastAttentionError;
      return [e.code, e.field];
    };
    expect(await codeOf({ ...base, dtype: 'f32' })).toEqual(['UNSUPPORTED', 'dtype']);
    expect(await codeOf({ ...base, seqQ: 0 })).toEqual(['INVALID_INPUT', 'seqQ']);
    expect(await codeOf({ ...base, headDim: 20 })).toEqual(['UNSUPPORTED', 'headDim']);
    expect(await codeOf(base, 'functional')).toEqual(['INVALID_INPUT', 'q']);
    const optionCode = async (options: object): Promise<[string, string | undefined]> => {
      const e = (await backend.simulate(base, options).catch((err: unknown) => err)) as FastAttentionError;
      return [e.code, e.field];
    };
    expect(await optionCode({ blockQ: -1 })).toEqual(['INVALID_INPUT', 'blockQ']);
    expect(await optionCode({ blockK: 2.5 })).toEqual(['INVALID_INPUT', 'blockK']);
    expect(await optionCode({ splitKV: 0 })).toEqual(['INVALID_INPUT', 'splitKV']);
    expect(await optionCode({ trace: { cores: 'all' } })).toEqual(['INVALID_INPUT', 'trace.cores']);
    expect(await optionCode({ kernel: 'flash' })).toEqual(['INVALID_INPUT', 'kernel']);
    const ok = await backend.simulate(base);
    expect(ok.out).toBeUndefined();
    expect(ok.report.mode).toBe('timing');
  });

  it('honours AbortSignal and dispose', async () => {
    const backend = await createBackend();
    const input = randomInput(rand, 'f16', shape);
    const controller = new AbortController();
    controller.abort();
    await expect(backend.attention(input, { signal: controller.signal })).rejects.toMatchObject({
      code: 'ABORTED',
    });
    await backend.dispose();
    await backend.dispose();
    await expect(backend.attention(input)).rejects.toMatchObject({ code: 'DISPOSED' });
  });

  it('registers as a simulated backend: resolveBackend takes it only when asked for by name', async () => {
    expect(ascendProvider.name).toBe('ascend-sim');
    expect(ascendProvider.simulated).toBe(true);
    const registry = new BackendRegistry();
    registry.register(referenceProvider);
    registry.register(ascendProvider);
    registry.register({
      name: 'cpu',
      priority: 10,
      create: () => Promise.reject(new Error('no addon here')),
    });
    expect(registry.list().map((p) => p.name)).toEqual(['cpu', 'ascend-sim', 'reference']);
    expect((await registry.resolve()).name).toBe('reference');
    const chosen = await registry.resolve({ prefer: ['ascend-sim'] });
    expect(chosen.name).toBe('ascend-sim');
    const out = await chosen.attention({
      ...shape,
      dtype: 'f16',
      q: fromNumbers(new Array(4 * 2 * 16).fill(0.5), 'f16'),
      k: fromNumbers(new Array(6 * 16).fill(0.25), 'f16'),
      v: fromNumbers(new Array(6 * 16).fill(1), 'f16'),
    });
    expect(out.lse.length).toBe(8);
  });

  it('ships specs for 910B1-4 that core planTiles accepts', () => {
    for (const chip of ['910B1', '910B2', '910B3', '910B4'] as const) {
      const spec = ascendSpec(PRESETS[chip]);
      expect(spec.parallelUnits).toBe(chip === '910B1' || chip === '910B2' ? 24 : 20);
      expect(spec.nativeTile).toEqual({ m: 16, n: 16, k: 16 });
      const names = spec.memory.map((m) => m.name);
      expect(names).toEqual(['L1', 'L0A', 'L0B', 'L0C', 'UB']);
      const bytes = Object.fromEntries(spec.memory.map((m) => [m.name, m.bytes]));
      expect(bytes).toEqual({ L1: 512 * 1024, L0A: 65536, L0B: 65536, L0C: 131072, UB: 196608 });
    }
  });
});
