// HostExecutor: ops run through their handlers in stream order after the calls return; an op's
// failure surfaces at the next synchronize(); unsupported ops and dtypes are refused by name at once.
import { describe, expect, it } from 'vitest';
import {
  type AttentionInput,
  attentionHandler,
  createReferenceBackend,
  HostExecutor,
  type Tensor,
} from '../src/index.js';
import { randomSeed, rng, runOpConformance } from '../src/testing/index.js';

const seed = randomSeed();

describe(`HostExecutor (seed ${seed})`, () => {
  it('runs the attention op through a host-array call, passing the op conformance suite', async () => {
    const backend = createReferenceBackend();
    const ex = new HostExecutor(
      'test',
      { attention: attentionHandler((x) => backend.attention(x)) },
      { dtypes: ['f16'] },
    );
    const all = await runOpConformance(ex, { seed });
    const results = all.filter((r) => !r.skipped);
    // flash only: the 'standard' cases are skipped, refused by name
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['attention flash paged f16 causal GQA 4/2, NaN in unused cache rows', true],
      ['attention flash dense f16 window 5/2 GQA 6/2, a padding row', true],
    ]);
    const refused = all.filter((r) => r.skipped && r.message?.includes('attention.algorithm'));
    expect(refused.map((r) => r.name)).toEqual([
      'attention standard paged f16 causal GQA 4/2, NaN in unused cache rows',
      'attention standard dense f16 window 5/2 GQA 6/2, a padding row',
    ]);
    await Promise.all([ex.dispose(), backend.dispose()]);
  });

  it("runs attention's 'standard' algorithm through the standard call, and refuses it without one", async () => {
    const backend = createReferenceBackend();
    const calls: string[] = [];
    const traced = (name: string) => (x: AttentionInput) => {
      calls.push(name);
      return backend.attention(x);
    };
    const handlers = (standard: boolean) => ({
      attention: attentionHandler({
        flash: traced('flash'),
        ...(standard && { standard: traced('standard') }),
      }),
    });
    const both = new HostExecutor('both', handlers(true), { dtypes: ['f32'] });
    const flashOnly = new HostExecutor('flash-only', handlers(false), { dtypes: ['f32'] });
    const opOf = async (ex: HostExecutor) => {
      const t = (shape: number[]) => ex.empty('f32', shape);
      const [q, k, v, out] = [t([1, 1, 1, 4]), t([1, 2, 1, 4]), t([1, 2, 1, 4]), t([1, 1, 1, 4])];
      for (const x of [q, k, v]) await ex.write(x, Float32Array.from({ length: x.length }, rng(seed)));
      const seqLensK = ex.empty('i32', [1]);
      await ex.write(seqLensK, Int32Array.of(2));
      return { op: 'attention', q, k, v, seqLensK, out } as const;
    };
    const op = await opOf(both);
    both.run({ ...op, algorithm: 'standard' });
    both.run(op);
    await both.stream.synchronize();
    expect(calls).toEqual(['standard', 'flash']);
    const other = await opOf(flashOnly);
    expect(() => flashOnly.run({ ...other, algorithm: 'standard' })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'attention.algorithm' }),
    );
    expect(() => flashOnly.run({ ...other, algorithm: 'tiled' as 'flash' })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'attention.algorithm' }),
    );
    await Promise.all([both.dispose(), flashOnly.dispose(), backend.dispose()]);
  });

  it('enqueues in order, reports a failed op at synchronize, and refuses what it cannot run', async () => {
    const rand = rng(seed);
    const order: string[] = [];
    const ex = new HostExecutor(
      'test',
      {
        add: async (op) => {
          await new Promise((r) => setTimeout(r, 1));
          if (op.a.shape[0] === 3) throw new Error('boom');
          order.push(`add ${op.a.shape[0]}`);
        },
      },
      { dtypes: ['f32'] },
    );
    const a = ex.empty('f32', [2, 2]);
    const b = ex.empty('f32', [3, 2]);
    await ex.write(a, Float32Array.from({ length: 4 }, rand));
    ex.run({ op: 'add', a, b: a, out: a });
    ex.run({ op: 'add', a: b, b, out: b });
    const read = ex.read(a);
    expect(order).toEqual([]); // nothing ran on the caller's turn
    await expect(read).rejects.toThrow('boom'); // a read after a failed op never returns stale data
    expect(order).toEqual(['add 2']);
    await expect(ex.stream.synchronize()).rejects.toThrow('boom');
    await expect(ex.stream.synchronize()).resolves.toBeUndefined();
    await expect(ex.read(a)).resolves.toHaveLength(4);
    expect(() => ex.run({ op: 'copy', src: a, dst: a })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'op' }),
    );
    const h = ex.empty('f16', [2, 2]) as Tensor;
    expect(() => ex.run({ op: 'add', a: h, b: h, out: h })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'add.a' }),
    );
    await ex.dispose();
    expect(a.disposed).toBe(true);
    await expect(ex.read(a)).rejects.toMatchObject({ code: 'DISPOSED' });
  });
});
