// Lifetime and input-handling promises of the public contract: DISPOSED after dispose() (also for
// calls made while it waits), any ArrayBufferView's bytes (SharedArrayBuffer included), inputs
// read once through the validator's snapshot (getters, prototype chains), and absurd claimed sizes
// refused with a typed error before anything proportional to them is allocated.
// They need a backend object, which only a GPU machine can create: without one they skip.
import { compareToReference } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import type { CudaBackend } from '../src/index.js';
import { randomInput, TOL, tryBackend } from './helpers.js';

const { backend, reason } = await tryBackend();
if (!backend) console.warn(`[cuda] contract tests skipped: ${reason}`);

const small = {
  dtype: 'f16',
  batch: 2,
  seqQ: 40,
  seqK: 70,
  headsQ: 4,
  headsKV: 2,
  headDim: 64,
  mask: { kind: 'causal' },
} as const;

const expectDisposed = (p: Promise<unknown>): Promise<void> =>
  expect(p).rejects.toMatchObject({ code: 'DISPOSED' });

const paths = ['auto', 'ampere', 'turing', 'volta'] as const;
describe.skipIf(!backend)('dispose()', () => {
  for (const path of paths) {
    it(`${path} path: every call made after dispose() rejects with DISPOSED`, async () => {
      const { backend: b } = await tryBackend(path === 'auto' ? {} : { path });
      const input = randomInput(small);
      const t = await b!.upload('f16', [8], new Uint16Array(8));
      await b!.dispose();
      await expectDisposed(b!.attention(input));
      await expectDisposed(b!.upload('f16', [8], new Uint16Array(8)));
      await expectDisposed(b!.random('f16', [8], 1));
      await expectDisposed(b!.timeCopy(1024));
      await expectDisposed(t.download());
      expect(() => b!.empty('f16', [8])).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
      expect(() => b!.memInfo()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    });
    it(`${path} path: a call made while dispose() waits rejects; the call in flight completes`, async () => {
      const { backend: b } = await tryBackend(path === 'auto' ? {} : { path });
      const input = randomInput(small);
      const first = b!.attention(input);
      const disposing = b!.dispose();
      await expectDisposed(b!.attention(input));
      const { out, lse } = await first;
      const err = compareToReference(input, out, lse);
      expect(err.bad).toBe(0);
      expect(err.out).toBeLessThan(TOL.f16);
      await disposing;
      await expectDisposed(b!.attention(input));
    });
  }
});

describe.skipIf(!backend)('inputs', () => {
  const check = async (b: CudaBackend, input: Parameters<CudaBackend['attention']>[0], ref = input) => {
    const { out, lse } = await b.attention(input);
    const err = compareToReference(ref, out, lse);
    expect(err.bad).toBe(0);
    expect(err.out).toBeLessThan(TOL.f16);
    expect(err.lse).toBeLessThan(TOL.lse);
  };

  it('accepts q, k, v and seqLensK backed by a SharedArrayBuffer', async () => {
    const input = randomInput({ ...small, seqLensK: [70, 33] });
    const shared = <T extends Uint16Array | Int32Array>(a: T): T => {
      const ctor = a.constructor as { new (b: SharedArrayBuffer, o: number, n: number): T };
      // An offset view: the copy must start at the view, not at the buffer.
      const copy = new ctor(new SharedArrayBuffer(a.byteLength + 16), 16, a.length);
      copy.set(a);
      return copy;
    };
    await check(backend!, {
      ...input,
      q: shared(input.q as Uint16Array),
      k: shared(input.k as Uint16Array),
      v: shared(input.v as Uint16Array),
      seqLensK: shared(input.seqLensK!),
    });
    const t = await backend!.upload('f16', [input.q.length], shared(input.q as Uint16Array));
    try {
      expect(
        Buffer.from((await t.download()).buffer).equals(Buffer.from((input.q as Uint16Array).buffer)),
      ).toBe(true);
    } finally {
      t.dispose();
    }
  });

  it('reads inputs given as class getters or through a prototype, once per field', async () => {
    const input = randomInput(small);
    const reads = new Map<string, number>();
    class Input {
      constructor(readonly fields: typeof input) {}
    }
    for (const key of Object.keys(input)) {
      Object.defineProperty(Input.prototype, key, {
        get(this: Input) {
          reads.set(key, (reads.get(key) ?? 0) + 1);
          return (this.fields as unknown as Record<string, unknown>)[key];
        },
      });
    }
    await check(backend!, new Input(input) as unknown as typeof input, input);
    for (const [key, n] of reads) expect(n, `${key} read once`).toBe(1);
    await check(backend!, Object.create(input), input);
  });

  it('device inputs are read once too (getters), and their tensors checked against the shape', async () => {
    const input = randomInput(small);
    const q = await backend!.upload('f16', [input.q.length], input.q as Uint16Array);
    const k = await backend!.upload('f16', [input.k.length], input.k as Uint16Array);
    const v = await backend!.upload('f16', [input.v.length], input.v as Uint16Array);
    try {
      let reads = 0;
      const device = { ...input, q, k, v };
      const once = Object.defineProperty({ ...device }, 'batch', {
        get: () => (reads++ === 0 ? device.batch : 1),
      });
      const { out, lse } = await backend!.attentionDevice(once);
      expect(reads).toBe(1);
      const err = compareToReference(input, (await out.download()) as Uint16Array, await lse.download());
      out.dispose();
      lse.dispose();
      expect(err.bad).toBe(0);
      expect(err.out).toBeLessThan(TOL.f16);
      await expect(backend!.attentionDevice({ ...device, seqQ: 41 })).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        field: 'q',
      });
      await expect(
        backend!.attentionDevice({ ...device, q: input.q as unknown as typeof q }),
      ).rejects.toMatchObject({ code: 'INVALID_INPUT', field: 'q' });
    } finally {
      for (const t of [q, k, v]) t.dispose();
    }
  });

  it('refuses absurd claimed sizes with INVALID_INPUT, at once (nothing allocated for them)', async () => {
    const input = randomInput(small);
    await expect(backend!.attention({ ...input, batch: 2 ** 40 })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      field: 'batch',
    });
    const q = await backend!.upload('f16', [input.q.length], input.q as Uint16Array);
    try {
      for (const call of [
        () => backend!.attention({ ...input, batch: 2 ** 28 }),
        () => backend!.attentionDevice({ ...input, q, k: q, v: q, batch: 2 ** 28 }),
      ]) {
        const started = performance.now();
        await expect(call()).rejects.toMatchObject({ code: 'INVALID_INPUT' });
        // Validation that allocated or scanned 2^28 entries took over a second here.
        expect(performance.now() - started).toBeLessThan(50);
      }
    } finally {
      q.dispose();
    }
  });

  it('refuses a bad tensor shape or a host array of the wrong element size with INVALID_INPUT', async () => {
    for (const shape of [[-1], [1.5], [2 ** 53]])
      expect(() => backend!.empty('f16', shape)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    const t = backend!.empty('f16', [8]);
    try {
      await expect(t.write(new Float32Array(8) as unknown as Uint16Array)).rejects.toMatchObject({
        code: 'INVALID_INPUT',
      });
    } finally {
      t.dispose();
    }
  });
});
