import { describe, expect, it } from 'vitest';
import {
  type AttentionInput,
  createReferenceBackend,
  FastAttentionError,
  MAX_SCALE,
  validateAttentionInput,
  validateAttentionShape,
} from '../src/index.js';

const shape = { batch: 2, seqQ: 3, seqK: 4, headsQ: 4, headsKV: 2, headDim: 8 } as const;
const random = (n: number): Float32Array => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const good = (): AttentionInput<'f32'> => ({
  dtype: 'f32',
  ...shape,
  q: random(2 * 3 * 4 * 8),
  k: random(2 * 4 * 2 * 8),
  v: random(2 * 4 * 2 * 8),
});

/** The same input, but every field behind a class getter that counts its reads. */
class GetterInput {
  reads = 0;
  readonly #x: AttentionInput<'f32'>;
  constructor(x: AttentionInput<'f32'>) {
    this.#x = x;
  }
  #read<T>(value: T): T {
    this.reads++;
    return value;
  }
  get dtype() {
    return this.#read(this.#x.dtype);
  }
  get batch() {
    return this.#read(this.#x.batch);
  }
  get seqQ() {
    return this.#read(this.#x.seqQ);
  }
  get seqK() {
    return this.#read(this.#x.seqK);
  }
  get headsQ() {
    return this.#read(this.#x.headsQ);
  }
  get headsKV() {
    return this.#read(this.#x.headsKV);
  }
  get headDim() {
    return this.#read(this.#x.headDim);
  }
  get q() {
    return this.#read(this.#x.q);
  }
  get k() {
    return this.#read(this.#x.k);
  }
  get v() {
    return this.#read(this.#x.v);
  }
}

const timed = <T>(f: () => T): { ms: number; error: unknown } => {
  const t0 = performance.now();
  try {
    f();
    return { ms: performance.now() - t0, error: undefined };
  } catch (error) {
    return { ms: performance.now() - t0, error };
  }
};

describe('validation of hostile inputs', () => {
  it.each([null, undefined, 42, 'q'])(
    'rejects %s as the input with INVALID_INPUT naming input',
    async (value) => {
      expect(() => validateAttentionInput(value as unknown as AttentionInput)).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT', field: 'input' }),
      );
      await expect(
        createReferenceBackend().attention(value as unknown as AttentionInput),
      ).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        field: 'input',
      });
    },
  );

  it('reads each field of a class instance once and returns a plain snapshot', async () => {
    const base = good();
    const input = new GetterInput(base);
    const x = validateAttentionInput(input as unknown as AttentionInput<'f32'>);
    expect(input.reads).toBe(10);
    expect(Object.getPrototypeOf(x)).toBe(Object.prototype);
    expect(x.q).toBe(base.q);
    const viaGetters = await createReferenceBackend().attention(
      new GetterInput(base) as unknown as AttentionInput<'f32'>,
    );
    const direct = await createReferenceBackend().attention(base);
    expect(viaGetters.out).toEqual(direct.out);
  });

  it('accepts fields inherited through the prototype chain (Object.create(valid))', async () => {
    const base = good();
    const derived = Object.create(base) as AttentionInput<'f32'>;
    const { out } = await createReferenceBackend().attention(derived);
    expect(out).toEqual((await createReferenceBackend().attention(base)).out);
  });

  it('turns a throwing getter into INVALID_INPUT naming that field', () => {
    const input = { ...good() } as Record<string, unknown>;
    Object.defineProperty(input, 'k', {
      get() {
        throw new Error('boom');
      },
    });
    expect(() => validateAttentionInput(input as unknown as AttentionInput)).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'k' }),
    );
    const mask = {
      get kind(): string {
        throw new Error('boom');
      },
    };
    expect(() => validateAttentionInput({ ...good(), mask } as unknown as AttentionInput)).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'mask.kind' }),
    );
  });

  it('copies seqLensK and the mask, so later changes by the caller cannot reach a running call', () => {
    const seqLensK = Int32Array.of(4, 3);
    const mask = { kind: 'window' as const, left: 1, right: 0 };
    const x = validateAttentionInput({ ...good(), seqLensK, mask });
    seqLensK[1] = 1000;
    mask.left = -5;
    expect([...x.seqLensK]).toEqual([4, 3]);
    expect(x.mask).toEqual({ kind: 'window', left: 1, right: 0 });
  });

  it.each([
    ['batch', 2 ** 28],
    ['batch', 2 ** 32],
    ['batch', 2 ** 40],
    ['seqK', 2 ** 30],
    ['headDim', 2 ** 26],
  ])('rejects %s = %d with short arrays in well under a millisecond, allocating nothing', (field, value) => {
    // warm up the code path so the timing measures the check, not the JIT
    for (let i = 0; i < 20; i++) timed(() => validateAttentionInput({ ...good(), [field]: value }));
    // The best of five: one run can meet a GC pause or a descheduled thread on a loaded machine,
    // while an O(batch) allocation would make every run take far longer than the bound.
    const runs = Array.from({ length: 5 }, () =>
      timed(() => validateAttentionInput({ ...good(), [field]: value })),
    );
    const { error } = runs[0]!;
    expect(error).toMatchObject({ code: 'INVALID_INPUT' });
    expect(['q', 'k', field]).toContain((error as { field: string }).field);
    expect(Math.min(...runs.map((r) => r.ms))).toBeLessThan(5); // typically ~0.01 ms
  });

  it("runs a backend's tensor check once the shape is valid and before any default is allocated", () => {
    const { q: _q, k: _k, v: _v, ...problem } = good();
    const seen: unknown[] = [];
    const check = (shape: unknown) => {
      seen.push(shape);
      throw new FastAttentionError('INVALID_INPUT', 'q: too short', { field: 'q' });
    };
    expect(() => validateAttentionShape({ ...problem, headsKV: 3 }, undefined, check)).toThrow(
      expect.objectContaining({ field: 'headsKV' }),
    );
    expect(seen).toHaveLength(0); // core's own field names win
    const { ms, error } = timed(() =>
      validateAttentionShape({ ...problem, batch: 2 ** 28 }, undefined, check),
    );
    expect(error).toMatchObject({ field: 'q' });
    expect(ms).toBeLessThan(5); // no 2^28-entry default seqLensK was built first
    expect(seen).toEqual([expect.objectContaining({ batch: 2 ** 28, dtype: 'f32' })]);
  });

  it('rejects dimensions beyond int32, so seqK = 2^31 cannot overflow the seqLensK default', () => {
    const { q: _q, k: _k, v: _v, ...problem } = good();
    expect(() => validateAttentionShape({ ...problem, seqK: 2 ** 31 })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'seqK' }),
    );
    expect(() => validateAttentionShape({ ...problem, batch: 2 ** 40 })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'batch' }),
    );
    expect(validateAttentionShape({ ...problem, seqK: 2 ** 31 - 1 }).seqLensK[0]).toBe(2 ** 31 - 1);
  });

  it('rejects scales whose f32 product with log2(e) would overflow, and keeps large valid ones exact', async () => {
    for (const scale of [2.4e38, -3.5e38, 3.4e38]) {
      expect(() => validateAttentionInput({ ...good(), scale })).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT', field: 'scale' }),
      );
    }
    expect(Math.fround(MAX_SCALE * Math.LOG2E)).toBeLessThan(Number.POSITIVE_INFINITY);
    expect(validateAttentionInput({ ...good(), scale: 2e38 }).scale).toBe(2e38);
  });

  it('accepts SharedArrayBuffer-backed arrays', async () => {
    const x = good();
    const share = (a: Float32Array): Float32Array => {
      const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
      s.set(a);
      return s;
    };
    const shared = { ...x, q: share(x.q), k: share(x.k), v: share(x.v) };
    const a = await createReferenceBackend().attention(shared);
    const b = await createReferenceBackend().attention(x);
    expect(a.out).toEqual(b.out);
  });
});
