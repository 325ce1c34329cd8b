// The execution contract (exec/) on the reference executor: op validation naming fields, the float64
// ops against hand computations and against the attention reference, views, step graphs, lifetimes,
// and the op conformance suite, which must pass on the reference and fail on a wrong executor.
import { describe, expect, it } from 'vitest';
import {
  createReferenceBackend,
  type Executor,
  exactAttention,
  forEachOpOutput,
  hostAttention,
  type Op,
  ReferenceExecutor,
  ropeAppendOp,
  type Tensor,
  validateAttentionInput,
} from '../src/index.js';
import {
  randomInput,
  randomPagedCase,
  randomSeed,
  randomValues,
  rng,
  runOpConformance,
} from '../src/testing/index.js';

const seed = randomSeed();

async function tensor(
  ex: Executor,
  data: Float32Array | Int32Array,
  shape: readonly number[],
): Promise<Tensor> {
  const t = ex.empty(data instanceof Int32Array ? 'i32' : 'f32', shape);
  await ex.write(t, data as never);
  return t;
}

describe('forEachOpOutput', () => {
  it('names the tensors an op writes, and only those', () => {
    const ex = new ReferenceExecutor();
    const t = (shape: number[]) => ex.empty('f32', shape);
    const written = (op: Op) => {
      const fields: string[] = [];
      forEachOpOutput(op, (_, field) => fields.push(field));
      return fields;
    };
    const x = t([2, 4]);
    const weight = t([4]);
    expect(written({ op: 'rmsNorm', x, weight, eps: 1e-5, out: t([2, 4]) })).toEqual(['rmsNorm.out']);
    expect(written({ op: 'rmsNorm', x, weight, eps: 1e-5, add: t([2, 4]), out: t([2, 4]) })).toEqual([
      'rmsNorm.out',
      'rmsNorm.x',
    ]);
    const cache = t([2, 4, 1, 4]);
    const slots = ex.empty('i32', [2]);
    expect(
      written({ op: 'kvAppend', k: t([2, 1, 4]), v: t([2, 1, 4]), cacheK: cache, cacheV: cache, slots }),
    ).toEqual(['kvAppend.cacheK', 'kvAppend.cacheV']);
    expect(written({ op: 'copy', src: x, dst: t([2, 4]) })).toEqual(['copy.dst']);
    const qk = t([2, 3, 4]);
    const positions = ex.empty('i32', [2]);
    const rope = { theta: 10000, rotaryDim: 4, scaling: { kind: 'default' } } as const;
    expect(written({ op: 'rope', x: qk, positions, rope, out: qk })).toEqual(['rope.out']);
    const append = { v: t([2, 1, 4]), cacheK: cache, cacheV: t([2, 4, 1, 4]), slots };
    expect(written({ op: 'rope', x: qk, positions, rope, out: qk, append })).toEqual([
      'rope.out',
      'rope.append.cacheK',
      'rope.append.cacheV',
    ]);
  });
});

describe("rope's fused append", () => {
  it('is refused with the field named before anything runs, and names a slot past the cache', async () => {
    const ex = new ReferenceExecutor();
    const qk = await tensor(
      ex,
      Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i / 7),
      [2, 3, 4],
    );
    const positions = (await tensor(ex, Int32Array.of(5, 6), [2])) as Tensor<'i32'>;
    const slots = (await tensor(ex, Int32Array.of(7, -1), [2])) as Tensor<'i32'>;
    const rope = { theta: 10000, rotaryDim: 4, scaling: { kind: 'default' } } as const;
    const cache = () => ex.empty('f32', [2, 4, 1, 4]);
    const append = { v: ex.empty('f32', [2, 1, 4]), cacheK: cache(), cacheV: cache(), slots };
    const refused = (a: object, field: string) =>
      expect(() =>
        ex.run({ op: 'rope', x: qk, positions, rope, out: qk, append: { ...append, ...a } }),
      ).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', field }));
    refused({ v: ex.empty('f32', [2, 4, 4]) }, 'rope.append.v');
    refused({ v: ex.empty('f16', [2, 1, 4]) }, 'rope.append.v');
    refused({ cacheK: ex.empty('f32', [2, 4, 2, 4]) }, 'rope.append.cacheK');
    refused({ cacheV: ex.empty('f32', [3, 4, 1, 4]) }, 'rope.append.cacheV');
    refused({ slots: ex.empty('i32', [3]) }, 'rope.append.slots');
    // token 0 to cache row 7: the last head of the rotated rows; token 1 is padding
    ex.run({ op: 'rope', x: qk, positions, rope, out: qk, append });
    const rotated = await ex.read(qk);
    const keys = await ex.read(append.cacheK);
    expect([...keys.slice(7 * 4, 8 * 4)]).toEqual([...rotated.slice(2 * 4, 3 * 4)]);
    await ex.write(slots, Int32Array.of(8, 0) as never);
    expect(() => ex.run({ op: 'rope', x: qk, positions, rope, out: qk, append })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'rope.append.slots[0]' }),
    );
    await ex.dispose();
  });
});

describe(`execution contract on the reference executor (seed ${seed})`, () => {
  const rand = rng(seed);
  const values = (n: number) => Float32Array.from(randomValues(rand, n));

  it('linear, rmsNorm, swiglu and add match hand computations', async () => {
    const ex = new ReferenceExecutor();
    const x = await tensor(ex, Float32Array.of(1, 2, 3, -1, 0.5, 2), [2, 3]);
    const w = await tensor(ex, Float32Array.of(1, 0, -1, 2, 1, 0.5), [2, 3]);
    const bias = await tensor(ex, Float32Array.of(0.25, -1), [2]);
    const out = ex.empty('f32', [2, 2]);
    ex.run({ op: 'linear', x, weight: w, bias, out });
    // Rows of x times rows of w: [1-3, 2+2+1.5] and [-1-2, -2+0.5+1] plus the bias.
    expect([...(await ex.read(out))]).toEqual([-2 + 0.25, 5.5 - 1, -3 + 0.25, -0.5 - 1]);

    const g = await tensor(ex, Float32Array.of(3, 4), [1, 2]);
    const ones = await tensor(ex, Float32Array.of(1, 2), [2]);
    ex.run({ op: 'rmsNorm', x: g, weight: ones, eps: 0, out: g }); // in place
    const rms = Math.sqrt((9 + 16) / 2);
    const normed = await ex.read(g);
    expect(normed[0]).toBeCloseTo(3 / rms, 6);
    expect(normed[1]).toBeCloseTo((4 / rms) * 2, 6);

    // The residual add fused into the norm: x = x + add first (x is written), then the norm.
    const resid = await tensor(ex, Float32Array.of(3, 4), [1, 2]);
    const sub = await tensor(ex, Float32Array.of(1, -2), [1, 2]);
    ex.run({ op: 'rmsNorm', x: resid, add: sub, weight: ones, eps: 0, out: sub });
    expect([...(await ex.read(resid))]).toEqual([4, 2]);
    const rms2 = Math.sqrt((16 + 4) / 2);
    const fused = await ex.read(sub);
    expect(fused[0]).toBeCloseTo(4 / rms2, 6);
    expect(fused[1]).toBeCloseTo((2 / rms2) * 2, 6);

    const gate = await tensor(ex, Float32Array.of(-2, 0.5), [1, 2]);
    const up = await tensor(ex, Float32Array.of(3, -4), [1, 2]);
    const act = ex.empty('f32', [1, 2]);
    ex.run({ op: 'swiglu', gate, up, out: act });
    const silu = (v: number) => v / (1 + Math.exp(-v));
    const got = await ex.read(act);
    expect(got[0]).toBeCloseTo(silu(-2) * 3, 6);
    expect(got[1]).toBeCloseTo(silu(0.5) * -4, 6);
    ex.run({ op: 'add', a: gate, b: up, out: up });
    expect([...(await ex.read(up))]).toEqual([1, -3.5]);
    await ex.dispose();
  });

  it('embedding gathers rows and names a token outside the vocabulary', async () => {
    const ex = new ReferenceExecutor();
    const table = await tensor(ex, values(5 * 3), [5, 3]);
    const tokens = await tensor(ex, Int32Array.of(4, 0, 4), [3]);
    const out = ex.empty('f32', [3, 3]);
    ex.run({ op: 'embedding', table, tokens: tokens as Tensor<'i32'>, out });
    const t = await ex.read(table);
    expect([...(await ex.read(out))]).toEqual([...t.slice(12, 15), ...t.slice(0, 3), ...t.slice(12, 15)]);
    await ex.write(tokens, Int32Array.of(1, 5, 0) as never);
    expect(() => ex.run({ op: 'embedding', table, tokens: tokens as Tensor<'i32'>, out })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'embedding.tokens[1]' }),
    );
    await ex.dispose();
  });

  it('kvAppend then paged attention equals attention over the dense keys', async () => {
    const ex = new ReferenceExecutor();
    const [tokens, heads, dim, blockSize] = [10, 2, 16, 4];
    const k = values(tokens * heads * dim);
    const v = values(tokens * heads * dim);
    const q = values(2 * 4 * dim);
    // Tokens go to shuffled slots of a 4-block cache whose other slots hold NaN (never read).
    const blocks = [3, 0, 2];
    const slots = Int32Array.from(
      { length: tokens },
      (_, t) => blocks[Math.floor(t / blockSize)]! * blockSize + (t % blockSize),
    );
    const cacheK = await tensor(ex, new Float32Array(4 * blockSize * heads * dim).fill(Number.NaN), [
      4,
      blockSize,
      heads,
      dim,
    ]);
    const cacheV = await tensor(ex, new Float32Array(4 * blockSize * heads * dim).fill(Number.NaN), [
      4,
      blockSize,
      heads,
      dim,
    ]);
    ex.run({
      op: 'kvAppend',
      k: await tensor(ex, k, [tokens, heads, dim]),
      v: await tensor(ex, v, [tokens, heads, dim]),
      cacheK,
      cacheV,
      slots: (await tensor(ex, slots, [tokens])) as Tensor<'i32'>,
    });
    const out = ex.empty('f32', [1, 2, 4, dim]);
    const lse = ex.empty('f32', [1, 4, 2]);
    ex.run({
      op: 'attention',
      q: await tensor(ex, q, [1, 2, 4, dim]),
      k: cacheK,
      v: cacheV,
      seqLensK: (await tensor(ex, Int32Array.of(tokens), [1])) as Tensor<'i32'>,
      paged: {
        blockTable: (await tensor(ex, Int32Array.from(blocks), [1, 3])) as Tensor<'i32'>,
        blockSize,
        seqK: 12,
      },
      mask: { kind: 'causal' },
      out,
      lse: lse as Tensor<'f32'>,
    });
    const dense = exactAttention(
      validateAttentionInput({
        dtype: 'f32',
        batch: 1,
        seqQ: 2,
        seqK: tokens,
        headsQ: 4,
        headsKV: heads,
        headDim: dim,
        q,
        k,
        v,
        mask: { kind: 'causal' },
      }),
    );
    expect([...(await ex.read(out))]).toEqual([...Float32Array.from(dense.out)]);
    expect([...(await ex.read(lse))]).toEqual([...Float32Array.from(dense.lse)]);
    await ex.dispose();
  });

  it('lseMerge of two halves equals attention over the union', async () => {
    const ex = new ReferenceExecutor();
    const dim = 8;
    const q = values(3 * dim);
    const k = values(20 * dim);
    const v = values(20 * dim);
    const attend = (from: number, to: number) =>
      exactAttention(
        validateAttentionInput({
          dtype: 'f32',
          batch: 1,
          seqQ: 3,
          seqK: to - from,
          headsQ: 1,
          headsKV: 1,
          headDim: dim,
          q,
          k: k.slice(from * dim, to * dim),
          v: v.slice(from * dim, to * dim),
        }),
      );
    const [a, b, all] = [attend(0, 7), attend(7, 20), attend(0, 20)];
    const outs = await tensor(ex, Float32Array.from([...a.out, ...b.out]), [2, 3, dim]);
    const lses = await tensor(ex, Float32Array.from([...a.lse, ...b.lse]), [2, 3]);
    const out = ex.empty('f32', [3, dim]);
    const lse = ex.empty('f32', [3]);
    ex.run({
      op: 'lseMerge',
      outs: outs as Tensor<'f32'>,
      lses: lses as Tensor<'f32'>,
      out,
      lse: lse as Tensor<'f32'>,
    });
    const got = await ex.read(out);
    for (const [i, x] of all.out.entries()) expect(got[i]).toBeCloseTo(x, 5);
    const gotLse = await ex.read(lse);
    for (const [i, x] of all.lse.entries()) expect(gotLse[i]).toBeCloseTo(x, 5);
    await ex.dispose();
  });

  it('copy converts dtypes through views (a transpose)', async () => {
    const ex = new ReferenceExecutor();
    const src = await tensor(ex, Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
    const transposed = src.view({ shape: [3, 2], strides: [1, 3], offset: 0 });
    const dst = ex.empty('bf16', [3, 2]);
    ex.run({ op: 'copy', src: transposed, dst });
    const back = ex.empty('f32', [3, 2]);
    ex.run({ op: 'copy', src: dst, dst: back });
    expect([...(await ex.read(back))]).toEqual([1, 4, 2, 5, 3, 6]);
    expect(() => src.view({ shape: [3, 2], strides: [1, 3], offset: 1 })).toThrow(
      expect.objectContaining({ field: 'view' }),
    );
    expect(() => transposed.view({ shape: [6] })).toThrow(expect.objectContaining({ field: 'view.shape' }));
    await ex.dispose();
  });

  it('hostView gives the memory of a pinned tensor, and refuses device or gapped tensors', async () => {
    const ex = new ReferenceExecutor();
    const pinned = ex.empty('f32', [2, 3], { memory: 'pinned' });
    const view = ex.hostView(pinned);
    view.set([1, 2, 3, 4, 5, 6]);
    expect([...(await ex.read(pinned))]).toEqual([1, 2, 3, 4, 5, 6]);
    const dst = ex.empty('f32', [2, 3]);
    ex.run({ op: 'copy', src: pinned, dst });
    expect([...(await ex.read(dst))]).toEqual([1, 2, 3, 4, 5, 6]);
    const row = ex.hostView(pinned.view({ shape: [3], strides: [1], offset: 3 }));
    expect([...row]).toEqual([4, 5, 6]);
    expect(() => ex.hostView(dst)).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'tensor' }),
    );
    const column = pinned.view({ shape: [2], strides: [3], offset: 0 });
    expect(() => ex.hostView(column)).toThrow(expect.objectContaining({ field: 'tensor' }));
    await ex.dispose();
  });

  it('the reference backend makes executors, disposed with it', async () => {
    const backend = createReferenceBackend();
    const ex = backend.createExecutor!();
    const t = ex.empty('f32', [2]);
    await ex.write(t, Float32Array.of(1, 2));
    expect([...(await ex.read(t))]).toEqual([1, 2]);
    await backend.dispose();
    expect(() => ex.empty('f32', [1])).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });

  it('validateOp names the field of a bad op before anything runs', async () => {
    const ex = new ReferenceExecutor();
    const x = ex.empty('f32', [2, 3]);
    const w = ex.empty('f32', [4, 5]);
    const out = ex.empty('f32', [2, 4]);
    const bad: Array<[Op, string]> = [
      [{ op: 'linear', x, weight: w, out }, 'linear.weight'],
      [{ op: 'linear', x, weight: ex.empty('f32', [4, 3]), out: ex.empty('f16', [2, 4]) }, 'linear.out'],
      [{ op: 'rmsNorm', x, weight: ex.empty('f32', [3]), eps: -1, out: x }, 'rmsNorm.eps'],
      [{ op: 'add', a: x, b: out, out: x }, 'add.b'],
      [{ op: 'embedding', table: x, tokens: x as never, out }, 'embedding.tokens'],
      [{ op: 'copy', src: x, dst: out }, 'copy.dst'],
      [
        { op: 'rmsNorm', x, add: x.view({ shape: [2, 3] }), weight: ex.empty('f32', [3]), eps: 0, out: x },
        'rmsNorm.add',
      ],
    ];
    const q = ex.empty('f32', [1, 1, 2, 4]);
    const kv = ex.empty('f32', [1, 3, 2, 4]);
    const lens = ex.empty('i32', [1]);
    bad.push(
      [
        { op: 'attention', q, k: kv, v: kv, seqLensK: lens, out: q.view({ shape: [1, 1, 2, 4] }) },
        'attention.out',
      ],
      [
        {
          op: 'attention',
          q,
          k: kv,
          v: kv,
          seqLensK: lens,
          out: ex.empty('f32', [1, 1, 2, 4]),
          lse: kv as never,
        },
        'attention.lse',
      ],
    );
    // a call's mask and scale rules (a replayed step must not accept what a call refuses)
    const attention = {
      op: 'attention',
      q,
      k: kv,
      v: kv,
      seqLensK: lens,
      out: ex.empty('f32', [1, 1, 2, 4]),
    } as const;
    bad.push(
      [{ ...attention, mask: { kind: 'window', left: 2.5, right: 0 } }, 'attention.mask.left'],
      [{ ...attention, mask: { kind: 'alibi' } as never }, 'attention.mask.kind'],
      [{ ...attention, scale: 1e39 }, 'attention.scale'],
    );
    for (const [op, field] of bad)
      expect(() => ex.run(op), field).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', field }));
    expect(() => ex.run({ op: 'nope' } as never)).toThrow(expect.objectContaining({ field: 'op' }));
    x.dispose();
    expect(() => ex.run({ op: 'add', a: x, b: x, out })).toThrow(
      expect.objectContaining({ code: 'DISPOSED', field: 'add.a' }),
    );
    expect(() => ex.empty('f32', [2, -1])).toThrow(expect.objectContaining({ field: 'shape[1]' }));
    await ex.dispose();
  });

  it('a recorded step replays with the values its tensors hold at replay time', async () => {
    const ex = new ReferenceExecutor();
    const table = await tensor(ex, values(6 * 4), [6, 4]);
    const token = ex.empty('i32', [1]);
    const row = ex.empty('f32', [1, 4]);
    const sum = await tensor(ex, new Float32Array(4), [1, 4]);
    const graph = ex.record((g) => {
      g.run({ op: 'embedding', table, tokens: token as Tensor<'i32'>, out: row });
      g.run({ op: 'add', a: sum, b: row, out: sum });
    });
    expect(graph.ops).toBe(2);
    const t = await ex.read(table);
    for (const id of [2, 5]) {
      await ex.write(token, Int32Array.of(id) as never);
      graph.replay();
    }
    const want = [0, 1, 2, 3].map((j) => Math.fround(Math.fround(t[2 * 4 + j]!) + t[5 * 4 + j]!));
    expect([...(await ex.read(sum))]).toEqual(want);
    graph.dispose();
    expect(() => graph.replay()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    await ex.dispose();
    expect(() => ex.empty('f32', [1])).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    expect(table.disposed).toBe(true);
  });

  it('hostAttention over the executor equals the reference backend, dense and paged', async () => {
    const ex = new ReferenceExecutor();
    const backend = createReferenceBackend();
    const shape = { batch: 2, seqQ: 5, seqK: 37, headsQ: 4, headsKV: 2, headDim: 16 };
    const dense = randomInput(rand, 'f16', shape, {
      mask: { kind: 'causal' },
      seqLensK: Int32Array.of(37, 20),
    });
    const { paged } = randomPagedCase(rand, 'bf16', shape, {
      blockSize: 8,
      mask: { kind: 'none' },
      sharedBlocks: 1,
    });
    for (const input of [dense, paged]) {
      const got = await hostAttention(ex, input as never);
      const want = await backend.attention(input as never);
      expect([...got.out]).toEqual([...want.out]);
      expect([...got.lse]).toEqual([...want.lse]);
    }
    await expect(hostAttention(ex, { ...dense, headsKV: 3 } as never)).rejects.toMatchObject({
      field: 'headsKV',
    });
    const aborted = AbortSignal.abort();
    await expect(hostAttention(ex, dense as never, { signal: aborted })).rejects.toMatchObject({
      code: 'ABORTED',
    });
    await Promise.all([ex.dispose(), backend.dispose()]);
  });

  it('the op conformance suite passes on the reference and catches a wrong op', async () => {
    const ex = new ReferenceExecutor();
    const results = await runOpConformance(ex, { seed });
    expect(results.length).toBeGreaterThan(40);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    // An executor whose rmsNorm leaves the last element of each row unwritten (the poison stays).
    const wrong = new ReferenceExecutor();
    const run = wrong.run.bind(wrong);
    wrong.run = (op) => {
      if (op.op !== 'rmsNorm') return run(op);
      const d = op.x.shape[1]!;
      run({
        ...op,
        x: op.x.view({ shape: [op.x.shape[0]!, d - 1], strides: [d, 1], offset: 0 }),
        weight: op.weight.view({ shape: [d - 1], strides: [1], offset: 0 }),
        out: op.out.view({ shape: [op.out.shape[0]!, d - 1], strides: [d, 1], offset: 0 }),
      });
    };
    const broken = await runOpConformance(wrong, { seed });
    const rmsNorm = broken.filter((r) => r.name.startsWith('rmsNorm')).map((r) => r.name);
    expect(rmsNorm).toContain('rmsNorm f32 3 x 129');
    expect(rmsNorm).toContain('rmsNorm bf16 of a transposed view');
    expect(broken.filter((r) => !r.ok).map((r) => r.name)).toEqual(rmsNorm);
    // An executor that drops rmsNorm's residual add fails exactly the fused cases.
    const unfused = new ReferenceExecutor();
    const runUnfused = unfused.run.bind(unfused);
    unfused.run = (op) => runUnfused(op.op === 'rmsNorm' ? { ...op, add: undefined } : op);
    const failed = (await runOpConformance(unfused, { seed })).filter((r) => !r.ok).map((r) => r.name);
    expect(failed.length).toBeGreaterThanOrEqual(6);
    expect(failed.every((name) => name.includes('with add'))).toBe(true);
    // One that appends the keys before their rotation fails exactly the fused rope cases.
    const early = new ReferenceExecutor();
    const runEarly = early.run.bind(early);
    early.run = (op) => {
      if (op.op !== 'rope' || !op.append) return runEarly(op);
      runEarly(ropeAppendOp({ ...op, out: op.x })!);
      runEarly({ ...op, append: undefined });
    };
    const appended = (await runOpConformance(early, { seed })).filter((r) => !r.ok).map((r) => r.name);
    expect(appended.length).toBe(6);
    expect(appended.every((name) => name.includes('appended with v'))).toBe(true);
    await Promise.all([ex.dispose(), wrong.dispose(), unfused.dispose(), early.dispose()]);
  });
});
