import { describe, expect, it } from 'vitest';
import {
  type AttentionInput,
  type BackendCapabilities,
  createReferenceBackend,
  FastAttentionError,
  validateAttentionInput,
  validateAttentionShape,
} from '../src/index.js';

const good = (): AttentionInput<'f32'> => ({
  dtype: 'f32',
  batch: 2,
  seqQ: 3,
  seqK: 4,
  headsQ: 4,
  headsKV: 2,
  headDim: 8,
  q: new Float32Array(2 * 3 * 4 * 8).fill(0.5),
  k: new Float32Array(2 * 4 * 2 * 8).fill(0.25),
  v: new Float32Array(2 * 4 * 2 * 8).fill(1),
});

type Mutation = [name: string, change: (x: Record<string, unknown>) => void, code: string, field: string];

const bad: Mutation[] = [
  ['unknown dtype', (x) => (x.dtype = 'f64'), 'INVALID_INPUT', 'dtype'],
  ['zero batch', (x) => (x.batch = 0), 'INVALID_INPUT', 'batch'],
  ['fractional seqQ', (x) => (x.seqQ = 2.5), 'INVALID_INPUT', 'seqQ'],
  ['string seqK', (x) => (x.seqK = '4'), 'INVALID_INPUT', 'seqK'],
  ['negative headDim', (x) => (x.headDim = -8), 'INVALID_INPUT', 'headDim'],
  ['heads not dividing', (x) => (x.headsKV = 3), 'INVALID_INPUT', 'headsKV'],
  ['q too short', (x) => (x.q = new Float32Array(10)), 'INVALID_INPUT', 'q'],
  ['k too long', (x) => (x.k = new Float32Array(2 * 4 * 2 * 8 + 1)), 'INVALID_INPUT', 'k'],
  ['v of the wrong array type', (x) => (x.v = new Float64Array(2 * 4 * 2 * 8)), 'INVALID_INPUT', 'v'],
  ['f16 data in a Float32Array', (x) => (x.dtype = 'f16'), 'INVALID_INPUT', 'q'],
  ['NaN scale', (x) => (x.scale = Number.NaN), 'INVALID_INPUT', 'scale'],
  ['infinite scale', (x) => (x.scale = Number.POSITIVE_INFINITY), 'INVALID_INPUT', 'scale'],
  ['seqLensK as a plain array', (x) => (x.seqLensK = [4, 4]), 'INVALID_INPUT', 'seqLensK'],
  ['seqLensK of the wrong length', (x) => (x.seqLensK = Int32Array.of(4)), 'INVALID_INPUT', 'seqLensK'],
  ['seqLensK above seqK', (x) => (x.seqLensK = Int32Array.of(4, 5)), 'INVALID_INPUT', 'seqLensK[1]'],
  ['negative seqLensK', (x) => (x.seqLensK = Int32Array.of(-1, 4)), 'INVALID_INPUT', 'seqLensK[0]'],
  ['unknown mask kind', (x) => (x.mask = { kind: 'alibi' }), 'INVALID_INPUT', 'mask.kind'],
  ['mask not an object', (x) => (x.mask = 'causal'), 'INVALID_INPUT', 'mask'],
  ['negative window', (x) => (x.mask = { kind: 'window', left: -1, right: 0 }), 'INVALID_INPUT', 'mask.left'],
  [
    'fractional window',
    (x) => (x.mask = { kind: 'window', left: 1, right: 0.5 }),
    'INVALID_INPUT',
    'mask.right',
  ],
  ['missing window side', (x) => (x.mask = { kind: 'window', left: 1 }), 'INVALID_INPUT', 'mask.right'],
];

describe('validateAttentionInput', () => {
  it('accepts a valid input and fills in the defaults', () => {
    const x = validateAttentionInput(good());
    expect(x.scale).toBeCloseTo(1 / Math.sqrt(8));
    expect([...x.seqLensK]).toEqual([4, 4]);
    expect(x.mask).toEqual({ kind: 'none' });
  });

  for (const [name, change, code, field] of bad) {
    it(`rejects ${name} with ${code} naming '${field}'`, async () => {
      const input = good() as unknown as Record<string, unknown>;
      change(input);
      const run = () => validateAttentionInput(input as unknown as AttentionInput);
      expect(run).toThrow(FastAttentionError);
      expect(run).toThrow(expect.objectContaining({ code, field }));
      // the backends go through the same check and reject the promise
      await expect(
        createReferenceBackend().attention(input as unknown as AttentionInput),
      ).rejects.toMatchObject({
        code,
        field,
      });
    });
  }

  it('validates a problem without tensors (timing models, planners) by the same rules', () => {
    const { q: _q, k: _k, v: _v, ...shape } = good();
    expect(validateAttentionShape({ ...shape, mask: { kind: 'causal' } }).seqLensK).toEqual(
      Int32Array.of(4, 4),
    );
    for (const [, change, code, field] of bad.filter(([, , , f]) => !['q', 'k', 'v'].includes(f))) {
      const input = { ...shape } as Record<string, unknown>;
      change(input);
      if (input.dtype === 'f16') continue; // only the tensors make f16 wrong here
      expect(() => validateAttentionShape(input as unknown as AttentionInput)).toThrow(
        expect.objectContaining({ code, field }),
      );
    }
  });

  it('accepts device-sized problems beyond 2^32 elements (64 x 128K tokens x 8 KV heads x 128)', () => {
    const problem = {
      dtype: 'f16',
      batch: 64,
      seqQ: 1,
      seqK: 131072,
      headsQ: 32,
      headsKV: 8,
      headDim: 128,
    } as const;
    expect(validateAttentionShape(problem).seqLensK.length).toBe(64);
  });

  it('rejects what a backend cannot run with UNSUPPORTED naming the field', () => {
    const caps: BackendCapabilities = {
      dtypes: ['f16'],
      headDims: { kind: 'list', values: [64, 128] },
      masks: ['none', 'causal'],
    };
    expect(() => validateAttentionInput(good(), caps)).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'dtype' }),
    );
    const f16 = {
      ...good(),
      dtype: 'f16' as const,
      q: new Uint16Array(192),
      k: new Uint16Array(128),
      v: new Uint16Array(128),
    };
    expect(() => validateAttentionInput(f16, caps)).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'headDim' }),
    );
    const hd64 = {
      ...f16,
      headDim: 64,
      q: new Uint16Array(192 * 8),
      k: new Uint16Array(128 * 8),
      v: new Uint16Array(128 * 8),
      mask: { kind: 'window', left: 1, right: 1 } as const,
    };
    expect(() => validateAttentionInput(hd64, caps)).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'mask.kind' }),
    );
  });

  it('rejects after dispose with DISPOSED and before work on an aborted signal with ABORTED', async () => {
    const backend = createReferenceBackend();
    const controller = new AbortController();
    controller.abort();
    await expect(backend.attention(good(), { signal: controller.signal })).rejects.toMatchObject({
      code: 'ABORTED',
    });
    await backend.dispose();
    await expect(backend.attention(good())).rejects.toMatchObject({ code: 'DISPOSED' });
  });
});
