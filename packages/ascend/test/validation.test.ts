import { type AttentionInput, FastAttentionError } from '@fastattention/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AscendBackend, createBackend } from '../src/index.js';
import { errors, LSE_TOLERANCE, randomInput, rng, SEED, TOLERANCE, WORK_TIMEOUT } from './helpers.js';

let backend: AscendBackend;
beforeAll(async () => {
  backend = await createBackend({ threads: 1 });
});
afterAll(async () => {
  await backend.dispose();
});

const shape = { batch: 2, seqQ: 9, seqK: 21, headsQ: 4, headsKV: 2, headDim: 32 };

/** The promise's rejection; fails the test if the call threw synchronously or resolved. */
async function rejection(call: () => Promise<unknown>): Promise<FastAttentionError> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (e) {
    throw new Error(`threw synchronously instead of rejecting: ${String(e)}`);
  }
  const error = await promise.then(
    () => {
      throw new Error('resolved');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FastAttentionError);
  return error as FastAttentionError;
}

/** An input whose every field is a getter on a class (as a caller's tensor wrapper may be), counting reads. */
class GetterInput {
  readonly reads = new Map<string, number>();
  readonly #input: AttentionInput<'f16'>;
  constructor(input: AttentionInput<'f16'>) {
    this.#input = input;
  }
  #read<K extends keyof AttentionInput<'f16'>>(key: K): AttentionInput<'f16'>[K] {
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
    return this.#input[key];
  }
  get dtype() {
    return this.#read('dtype');
  }
  get batch() {
    return this.#read('batch');
  }
  get seqQ() {
    return this.#read('seqQ');
  }
  get seqK() {
    return this.#read('seqK');
  }
  get headsQ() {
    return this.#read('headsQ');
  }
  get headsKV() {
    return this.#read('headsKV');
  }
  get headDim() {
    return this.#read('headDim');
  }
  get q() {
    return this.#read('q');
  }
  get k() {
    return this.#read('k');
  }
  get v() {
    return this.#read('v');
  }
  get scale() {
    return this.#read('scale');
  }
  get seqLensK() {
    return this.#read('seqLensK');
  }
  get mask() {
    return this.#read('mask');
  }
}

describe(`every input goes through core's validator first (seed ${SEED})`, { timeout: WORK_TIMEOUT }, () => {
  const rand = rng(SEED);
  const valid = (): AttentionInput<'f16'> =>
    randomInput(rand, 'f16', shape, { mask: { kind: 'causal' }, seqLensK: new Int32Array([21, 12]) });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['a string', 'attention'],
  ])('rejects %s as input with a typed INVALID_INPUT, asynchronously', async (_name, input) => {
    for (const call of [
      () => backend.attention(input as unknown as AttentionInput),
      () => backend.simulate(input as unknown as AttentionInput),
    ]) {
      const error = await rejection(call);
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.field).toBe('input');
    }
  });

  it('takes an input whose fields are getters of a class instance, reading each field once', async () => {
    const plain = valid();
    const input = new GetterInput(plain);
    const e = errors(plain, await backend.attention(input as unknown as AttentionInput<'f16'>));
    expect(e.out).toBeLessThan(TOLERANCE.f16);
    expect(e.lse).toBeLessThan(LSE_TOLERANCE);
    expect(input.reads.get('q')).toBe(1);
    for (const [field, count] of input.reads) expect([field, count]).toEqual([field, 1]);
  });

  it('takes an input that inherits its fields (Object.create(validInput))', async () => {
    const plain = valid();
    const e = errors(plain, await backend.attention(Object.create(plain) as AttentionInput<'f16'>));
    expect(e.out).toBeLessThan(TOLERANCE.f16);
    expect(e.lse).toBeLessThan(LSE_TOLERANCE);
  });

  it('names the field of a bad inherited or getter input', async () => {
    const bad = Object.create({ ...valid(), headsKV: 3 }) as AttentionInput;
    const e1 = await rejection(() => backend.attention(bad));
    expect([e1.code, e1.field]).toEqual(['INVALID_INPUT', 'headsKV']);
    const short = valid();
    const e2 = await rejection(() =>
      backend.attention(new GetterInput({ ...short, k: short.k.subarray(1) }) as unknown as AttentionInput),
    );
    expect([e2.code, e2.field]).toEqual(['INVALID_INPUT', 'k']);
  });

  it('rejects a scale whose f32 products overflow (3.5e38) as INVALID_INPUT scale', async () => {
    for (const scale of [3.5e38, -3.5e38]) {
      const error = await rejection(() => backend.attention({ ...valid(), scale }));
      expect([error.code, error.field]).toEqual(['INVALID_INPUT', 'scale']);
    }
  });

  it('matches the reference at a large but valid scale (1e3)', async () => {
    const input = randomInput(
      rand,
      'f16',
      { ...shape, headDim: 16 },
      { scale: 1e3, mask: { kind: 'causal' } },
    );
    const e = errors(input, await backend.attention(input));
    expect(e.out).toBeLessThan(TOLERANCE.f16);
    expect(e.lse).toBeLessThan(LSE_TOLERANCE);
  });
});
