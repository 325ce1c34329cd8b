// HostExecutor: ops run through their handlers in stream order after the calls return; an op's
// failure surfaces at the next synchronize(); unsupported ops and dtypes are refused by name at once.
import { describe, expect, it } from 'vitest';
import { attentionHandler, createReferenceBackend, HostExecutor, type Tensor } from '../src/index.js';
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
    const results = (await runOpConformance(ex, { seed })).filter((r) => !r.skipped);
    expect(results.map((r) => [r.name, r.ok])).toEqual([['attention paged f16 causal GQA 4/2', true]]);
    await Promise.all([ex.dispose(), backend.dispose()]);
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
