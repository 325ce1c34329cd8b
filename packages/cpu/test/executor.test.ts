// The execution contract on the cpu: every op passes core's op conformance suite in every dtype,
// natively on the backend's thread pool; a recorded step runs its native ops in batches.
import { OP_KINDS, type Op, type Tensor } from '@fastattention/core';
import { randomSeed, rng, runOpConformance } from '@fastattention/core/testing';
import { describe, expect, it, vi } from 'vitest';
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

  it('runs attention inside a recorded step: lengths and block tables read at each replay, checked there', async () => {
    const backend = await createBackend({ threads: 2 });
    const ex = backend.createExecutor();
    const rand = rng(seed + 11);
    const [batch, headsQ, headsKV, hd, blockSize, numBlocks, blocksPerSeq] = [3, 4, 2, 16, 16, 200, 64];
    const random = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
    const f32 = async (shape: number[], data: Float32Array) => {
      const t = ex.empty('f32', shape);
      await ex.write(t, data);
      return t;
    };
    // every cache slot NaN, then the blocks the rows use filled: unused slots must never be read
    const cacheSize = numBlocks * blockSize * headsKV * hd;
    const cacheData = (): Float32Array => {
      const data = new Float32Array(cacheSize).fill(Number.NaN);
      for (let b = 0; b < 150; b++) data.set(random(blockSize * headsKV * hd), b * blockSize * headsKV * hd);
      return data;
    };
    const [k, v] = [
      await f32([numBlocks, blockSize, headsKV, hd], cacheData()),
      await f32([numBlocks, blockSize, headsKV, hd], cacheData()),
    ];
    // the scheduler's table: a wider tensor whose first columns a step uses (a strided view); keys
    // past 256 take several splits
    const tableData = Int32Array.from({ length: batch * 80 }, (_, i) => (i * 7) % 150);
    const tables = ex.empty('i32', [batch, 80]);
    await ex.write(tables, tableData);
    const blockTable = tables.view({ shape: [batch, blocksPerSeq], strides: [80, 1], offset: 0 });
    const lens = ex.empty('i32', [batch]);
    for (const [seqQ, mask] of [
      [1, { kind: 'none' }],
      [3, { kind: 'causal' }],
      [3, { kind: 'window', left: 5, right: 0 }],
    ] as const) {
      // q as the attention of a model sees it: a view of wider qkv rows
      const width = (headsQ + 2 * headsKV) * hd;
      const qkv = await f32([batch * seqQ, width], random(batch * seqQ * width));
      const q = qkv.view({
        shape: [batch, seqQ, headsQ, hd],
        strides: [seqQ * width, width, hd, 1],
        offset: 0,
      });
      const paged = { blockTable, blockSize, seqK: blocksPerSeq * blockSize };
      const op = (out: Tensor): Op => ({ op: 'attention', q, k, v, seqLensK: lens, paged, mask, out });
      const recorded = ex.empty('f32', [batch, seqQ, headsQ, hd]);
      const graph = ex.record((r) => r.run(op(recorded)));
      const alone = vi.spyOn(backend, 'attention');
      for (const step of [Int32Array.of(900, 0, 1024), Int32Array.of(seqQ, 130, 257)]) {
        await ex.write(lens, step);
        graph.replay();
        const fromGraph = await ex.read(recorded);
        expect(alone).not.toHaveBeenCalled(); // the chain ran it, not the call path
        const eager = ex.empty('f32', [batch, seqQ, headsQ, hd]);
        ex.run(op(eager));
        const fromOp = await ex.read(eager);
        expect(fromGraph.every(Number.isFinite)).toBe(true);
        for (let i = 0; i < fromOp.length; i++)
          expect(Math.abs(fromGraph[i]! - fromOp[i]!)).toBeLessThan(1e-5);
        eager.dispose();
        alone.mockClear();
      }
      alone.mockRestore();
      // A length past the cache, then a block id outside it: the replay fails naming the field.
      await ex.write(lens, Int32Array.of(5, 1025, 3));
      graph.replay();
      await expect(ex.stream.synchronize()).rejects.toMatchObject({ field: 'attention.seqLensK' });
      await ex.write(lens, Int32Array.of(5, 90, 3));
      await ex.write(
        tables,
        Int32Array.from(tableData, (x, i) => (i === 80 + 5 ? numBlocks : x)),
      );
      graph.replay();
      await expect(ex.stream.synchronize()).rejects.toMatchObject({ field: 'attention.paged.blockTable' });
      await ex.write(tables, tableData);
      graph.replay();
      await ex.stream.synchronize();
      // garbage past a row's last block (row 0's 5 keys use one) is neither checked nor read
      await ex.write(
        tables,
        Int32Array.from(tableData, (x, i) => (i === blocksPerSeq - 1 ? -9 : x)),
      );
      graph.replay();
      await ex.stream.synchronize();
      await ex.write(tables, tableData);
      graph.dispose();
    }
    // every row reading one shared table row (a row stride of 0), as the call path reads it
    const shared = tables.view({ shape: [batch, blocksPerSeq], strides: [0, 1], offset: 0 });
    const q = await f32([batch, 1, headsQ, hd], random(batch * headsQ * hd));
    const op = (out: Tensor): Op => ({
      op: 'attention',
      q,
      k,
      v,
      seqLensK: lens,
      paged: { blockTable: shared, blockSize, seqK: blocksPerSeq * blockSize },
      out,
    });
    const [recorded, eager] = [
      ex.empty('f32', [batch, 1, headsQ, hd]),
      ex.empty('f32', [batch, 1, headsQ, hd]),
    ];
    const graph = ex.record((r) => r.run(op(recorded)));
    await ex.write(lens, Int32Array.of(40, 700, 7));
    graph.replay();
    ex.run(op(eager));
    const [fromGraph, fromOp] = [await ex.read(recorded), await ex.read(eager)];
    expect(fromGraph.every(Number.isFinite)).toBe(true);
    for (let i = 0; i < fromOp.length; i++) expect(Math.abs(fromGraph[i]! - fromOp[i]!)).toBeLessThan(1e-5);
    graph.dispose();
    await backend.dispose();
  });
});
