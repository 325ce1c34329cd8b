// The execution contract on the cpu: every op passes core's op conformance suite in every dtype,
// natively on the backend's thread pool; a recorded step runs its native ops in batches.
import { OP_KINDS, type Op } from '@fastattention/core';
import { randomSeed, rng, runOpConformance } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import { createBackend } from '../src/index.js';
import { REAL_WORK_TIMEOUT_MS } from './helpers.js';

const seed = randomSeed();

describe(`cpu executor (seed ${seed})`, { timeout: REAL_WORK_TIMEOUT_MS }, () => {
  it('runs every op as the reference does', async () => {
    const backend = await createBackend({ threads: 2 });
    const executor = backend.createExecutor();
    const all = await runOpConformance(executor, { seed });
    const failures = all.filter((r) => !r.skipped && !r.ok);
    expect(failures).toEqual([]);
    expect(all.filter((r) => r.skipped)).toEqual([]);
    expect(all.length).toBeGreaterThan(30);
    for (const kind of OP_KINDS) expect(executor.supportsOp(kind, 'bf16')).toBe(true);
    const logits = executor.empty('f32', [2, 3]);
    await backend.dispose();
    expect(logits.disposed).toBe(true);
    expect(() => backend.createExecutor()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });
});

describe(`cpu step graphs (seed ${seed})`, { timeout: REAL_WORK_TIMEOUT_MS }, () => {
  it("hands a recorded step's straight-line ops to the pool at once: each replay equals the ops run one by one", async () => {
    const backend = await createBackend({ threads: 2 });
    const ex = backend.createExecutor();
    const rand = rng(seed + 7);
    const random = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
    const put = async <T extends 'f32' | 'i32'>(
      dtype: T,
      shape: number[],
      data: Float32Array | Int32Array,
    ) => {
      const t = ex.empty(dtype, shape);
      await ex.write(t, data as never);
      return t;
    };
    const [vocab, d, f, heads, hd, n] = [11, 16, 24, 2, 8, 3];
    const table = await put('f32', [vocab, d], random(vocab * d));
    const norm = await put('f32', [d], random(d));
    const wqk = await put('f32', [heads * hd, d], random(heads * hd * d));
    const w1 = await put('f32', [2 * f, d], random(2 * f * d));
    const tokens = await put('i32', [n], Int32Array.of(1, 5, 9));
    const positions = await put('i32', [n], Int32Array.of(4, 5, 6));
    const cache = await put('f32', [4, 4, heads, hd], random(4 * 4 * heads * hd));
    const slots = await put('i32', [n], Int32Array.of(3, 8, 13));
    const outputs = () => ({
      x: ex.empty('f32', [n, d]),
      h: ex.empty('f32', [n, d]),
      qk: ex.empty('f32', [n, heads * hd]),
      gateUp: ex.empty('f32', [n, 2 * f]),
      act: ex.empty('f32', [n, f]),
    });
    const ops = (o: ReturnType<typeof outputs>): Op[] => {
      const qk3 = o.qk.view({ shape: [n, heads, hd] });
      return [
        { op: 'embedding', table, tokens, out: o.x },
        { op: 'rmsNorm', x: o.x, weight: norm, eps: 1e-5, out: o.h },
        { op: 'linear', x: o.h, weight: wqk, out: o.qk },
        // rope needs JavaScript: the ops before and after it go to the pool in two calls
        {
          op: 'rope',
          x: qk3,
          positions,
          rope: { theta: 10000, rotaryDim: hd, scaling: { kind: 'default' } },
          out: qk3,
        },
        { op: 'kvAppend', k: qk3, v: qk3, cacheK: cache, cacheV: cache, slots },
        { op: 'rmsNorm', x: o.x, add: o.h, weight: norm, eps: 1e-5, out: o.h },
        { op: 'linear', x: o.h, weight: w1, out: o.gateUp },
        {
          op: 'swiglu',
          gate: o.gateUp.view({ shape: [n, f], strides: [2 * f, 1], offset: 0 }),
          up: o.gateUp.view({ shape: [n, f], strides: [2 * f, 1], offset: f }),
          out: o.act,
        },
      ];
    };
    const recorded = outputs();
    const eager = outputs();
    const graph = ex.record((r) => {
      for (const op of ops(recorded)) r.run(op);
    });
    for (const step of [Int32Array.of(1, 5, 9), Int32Array.of(0, 10, 2)]) {
      await ex.write(tokens, step);
      graph.replay();
      const fromGraph = await Promise.all(Object.values(recorded).map((t) => ex.read(t)));
      for (const op of ops(eager)) ex.run(op);
      const fromOps = await Promise.all(Object.values(eager).map((t) => ex.read(t)));
      expect(fromGraph.map((a) => Array.from(a))).toEqual(fromOps.map((a) => Array.from(a)));
    }
    // A failing op in a batch fails the replay, naming its field; the next replay runs again.
    await ex.write(tokens, Int32Array.of(1, 99, 2));
    graph.replay();
    await expect(ex.stream.synchronize()).rejects.toMatchObject({ field: 'embedding.tokens' });
    await ex.write(tokens, Int32Array.of(1, 5, 9));
    graph.replay();
    await ex.stream.synchronize();
    await backend.dispose();
  });
});
