// The execution contract on the GPU: core's op conformance suite (every op, sampling included;
// attention in f16 and bf16, flash and standard), paged attention ops over hostile caches at
// several block sizes, step
// graphs captured as CUDA graphs against the same ops run one by one, and data errors found on the
// device (a bad block table entry, an embedding token outside the table) reported with the op's
// field, the stream usable again after the report.
import {
  ATTENTION_ALGORITHMS,
  type AttentionAlgorithm,
  type AttentionInput,
  fromNumbers,
  type MaskSpec,
  type Tensor,
} from '@fastattention/core';
import {
  compareToReference,
  randomPagedCase,
  randomSeed,
  rng,
  runOpConformance,
} from '@fastattention/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import type { CudaExecutor } from '../src/index.js';
import { TOL, tryBackend } from './helpers.js';

const { backend, reason } = await tryBackend();
const seed = randomSeed();
afterAll(() => backend?.dispose());

async function put<T extends Tensor['dtype']>(
  executor: CudaExecutor,
  dtype: T,
  shape: number[],
  data: Float32Array | Uint16Array | Int32Array,
): Promise<Tensor<T>> {
  const t = executor.empty(dtype, shape);
  await executor.write(t, data as never);
  return t;
}

/** Runs a host-array paged input as the attention op of the executor. */
async function pagedOp(
  executor: CudaExecutor,
  input: AttentionInput<'f16' | 'bf16'>,
  algorithm: AttentionAlgorithm = 'flash',
) {
  const { batch, seqQ, seqK, headsQ, headsKV, headDim, dtype } = input;
  const paged = input.pagedKV!;
  const numBlocks = input.k.length / (paged.blockSize * headsKV * headDim);
  const q = await put(executor, dtype, [batch, seqQ, headsQ, headDim], input.q);
  const k = await put(executor, dtype, [numBlocks, paged.blockSize, headsKV, headDim], input.k);
  const v = await put(executor, dtype, [numBlocks, paged.blockSize, headsKV, headDim], input.v);
  const seqLensK = await put(executor, 'i32', [batch], input.seqLensK!);
  const blockTable = await put(executor, 'i32', [batch, paged.blocksPerSeq], paged.blockTable);
  const out = executor.empty(dtype, [batch, seqQ, headsQ, headDim]);
  const lse = executor.empty('f32', [batch, headsQ, seqQ]);
  executor.run({
    op: 'attention',
    q,
    k,
    v,
    seqLensK: seqLensK as Tensor<'i32'>,
    paged: { blockTable: blockTable as Tensor<'i32'>, blockSize: paged.blockSize, seqK },
    ...(input.mask && { mask: input.mask }),
    algorithm,
    out,
    lse: lse as Tensor<'f32'>,
  });
  return { out: await executor.read(out), lse: await executor.read(lse) };
}

describe.skipIf(!backend)(`cuda executor (seed ${seed})${reason ? `: ${reason}` : ''}`, () => {
  it('runs every op as the reference does (attention in f16 and bf16)', async () => {
    const executor = backend!.createExecutor();
    const all = await runOpConformance(executor, { seed });
    expect(all.filter((r) => !r.skipped && !r.ok)).toEqual([]);
    const skipped = all.filter((r) => r.skipped).map((r) => r.name);
    expect(skipped.every((name) => name.startsWith('sample') || /^attention \w+ \w+ f32 /.test(name))).toBe(
      true,
    );
    // standard attention (the materialized baseline) ran: paged with NaN garbage, and a window mask
    const standard = all.filter((r) => r.name.startsWith('attention standard') && !r.skipped);
    expect(standard).toHaveLength(4);
    expect(all.filter((r) => !r.skipped).length).toBeGreaterThan(30);
    await executor.dispose();
    // linear through cublasGemmEx (the default is cuBLASLt with a cached algorithm per problem)
    const gemmEx = backend!.createExecutor({ gemm: 'gemmEx' });
    const linear = (await runOpConformance(gemmEx, { seed })).filter((r) => r.name.startsWith('linear'));
    expect(linear.length).toBeGreaterThan(8);
    expect(linear.filter((r) => !r.ok)).toEqual([]);
    await gemmEx.dispose();
  });

  it('runs paged attention ops (flash and standard) over shared blocks, NaN-filled spares and garbage entries', async () => {
    const executor = backend!.createExecutor();
    const rand = rng(seed);
    const masks: MaskSpec[] = [{ kind: 'causal' }, { kind: 'none' }, { kind: 'window', left: 40, right: 3 }];
    for (const algorithm of ATTENTION_ALGORITHMS)
      for (const headDim of [64, 128])
        for (const shape of [
          { batch: 3, seqQ: 70, seqK: 300, headsQ: 4, headsKV: 2 },
          { batch: 2, seqQ: 1, seqK: 2000, headsQ: 8, headsKV: 2 },
        ])
          for (const blockSize of [16, 256])
            for (const mask of masks) {
              const dtype = blockSize === 16 ? 'f16' : 'bf16';
              const { paged } = randomPagedCase(
                rand,
                dtype,
                { ...shape, headDim },
                { blockSize, mask, sharedBlocks: 2 },
              );
              const { out, lse } = await pagedOp(executor, paged, algorithm);
              const err = compareToReference(paged, out as Uint16Array, lse as Float32Array);
              const what = `${algorithm} hd ${headDim} ${JSON.stringify(shape)} block ${blockSize} ${mask.kind}`;
              expect(err.bad, what).toBe(0);
              expect(err.out, what).toBeLessThan(TOL[dtype]);
              expect(err.lse, what).toBeLessThan(TOL.lse);
            }
    await executor.dispose();
  });

  it('records a step as a CUDA graph: each replay equals the ops run one by one, with its step values rewritten', async () => {
    const executor = backend!.createExecutor();
    const rand = rng(seed + 2);
    const f16 = (n: number) =>
      fromNumbers(
        Array.from({ length: n }, () => rand() * 2 - 1),
        'f16',
      ) as Uint16Array;
    const [rows, d, n, seqK, heads] = [3, 64, 48, 300, 4];
    const x = await put(executor, 'f16', [rows, d], f16(rows * d));
    const norm = await put(executor, 'f16', [d], f16(d));
    const w = await put(executor, 'f16', [n, d], f16(n * d));
    const q = await put(executor, 'f16', [1, 1, heads, d], f16(heads * d));
    const k = await put(executor, 'f16', [1, seqK, 2, d], f16(seqK * 2 * d));
    const v = await put(executor, 'f16', [1, seqK, 2, d], f16(seqK * 2 * d));
    const lens = await put(executor, 'i32', [1], Int32Array.of(seqK));
    const ops = (o: { hidden: Tensor; out: Tensor; attn: Tensor }) => [
      { op: 'rmsNorm', x, weight: norm, eps: 1e-5, out: o.hidden } as const,
      { op: 'linear', x: o.hidden, weight: w, out: o.out } as const,
      { op: 'attention', q, k, v, seqLensK: lens as Tensor<'i32'>, out: o.attn } as const,
    ];
    const outputs = () => ({
      hidden: executor.empty('f16', [rows, d]),
      out: executor.empty('f16', [rows, n]),
      attn: executor.empty('f16', [1, 1, heads, d]),
    });
    const recorded = outputs();
    const eager = outputs();
    const graph = executor.record((r) => {
      for (const op of ops(recorded)) r.run(op);
    });
    expect(graph.ops).toBe(3);
    for (const len of [seqK, 17, 200]) {
      await executor.write(x, f16(rows * d));
      await executor.write(lens, Int32Array.of(len));
      graph.replay();
      for (const op of ops(eager)) executor.run(op);
      for (const key of ['out', 'attn'] as const) {
        const [a, b] = [await executor.read(recorded[key]), await executor.read(eager[key])];
        expect(Array.from(a as Uint16Array), `${key} at ${len} keys`).toEqual(Array.from(b as Uint16Array));
      }
    }
    graph.dispose();
    expect(() => graph.replay()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    await executor.dispose();
  });

  it('fails an op whose device data is out of range, naming the field, and then runs again', async () => {
    const executor = backend!.createExecutor();
    const rand = rng(seed + 1);
    const { paged } = randomPagedCase(
      rand,
      'f16',
      { batch: 2, seqQ: 1, seqK: 64, headsQ: 4, headsKV: 2, headDim: 64 },
      {
        blockSize: 16,
      },
    );
    const table = Int32Array.from(paged.pagedKV!.blockTable);
    table[0] = 1_000_000; // a block the cache does not have, in a row's used range
    await expect(
      pagedOp(executor, { ...paged, pagedKV: { ...paged.pagedKV!, blockTable: table } }),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      field: 'attention.paged.blockTable',
    });
    await expect(executor.stream.synchronize()).rejects.toMatchObject({
      field: 'attention.paged.blockTable',
    });
    const { out, lse } = await pagedOp(executor, paged);
    expect(compareToReference(paged, out as Uint16Array, lse as Float32Array).out).toBeLessThan(TOL.f16);

    const tableT = await put(executor, 'f32', [10, 4], new Float32Array(40).fill(1));
    const tokens = await put(executor, 'i32', [2], Int32Array.of(3, 10));
    const emb = executor.empty('f32', [2, 4]);
    executor.run({ op: 'embedding', table: tableT, tokens: tokens as Tensor<'i32'>, out: emb });
    await expect(executor.stream.synchronize()).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      field: 'embedding.tokens',
    });
    await executor.stream.synchronize();
    // Each stream reports its own ops' errors: a bad token on a second stream leaves the first clean.
    const side = executor.createStream('side');
    executor.run({ op: 'embedding', table: tableT, tokens: tokens as Tensor<'i32'>, out: emb }, side);
    await side.record().synchronize(); // the bad op has run (an event does not report errors)
    executor.run({ op: 'add', a: tableT, b: tableT, out: executor.empty('f32', [10, 4]) });
    await executor.stream.synchronize();
    await expect(side.synchronize()).rejects.toMatchObject({ field: 'embedding.tokens' });
    await side.synchronize();
    await executor.dispose();
  });

  it('pinned tensors: filled through hostView, read by kernels, copies and the GEMM, emptied by dispose', async () => {
    const executor = backend!.createExecutor();
    const rand = rng(seed + 2);
    const [m, k, n] = [5, 67, 33];
    const xs = Float32Array.from({ length: m * k }, () => rand() * 2 - 1);
    const ws = Float32Array.from({ length: n * k }, () => rand() * 2 - 1);
    const x = executor.empty('f32', [m, k], { memory: 'pinned' });
    executor.hostView(x).set(xs);
    const w = await put(executor, 'f32', [n, k], ws);
    // pinned -> device, a GEMM on a pinned operand into a pinned output, an op kernel on pinned memory
    const onDevice = executor.empty('f32', [m, k]);
    executor.run({ op: 'copy', src: x, dst: onDevice });
    const product = executor.empty('f32', [m, n], { memory: 'pinned' });
    executor.run({ op: 'linear', x, weight: w, out: product });
    const doubled = executor.empty('f32', [m, k], { memory: 'pinned' });
    executor.run({ op: 'add', a: x, b: onDevice, out: doubled });
    await executor.stream.synchronize();
    expect([...(await executor.read(onDevice))]).toEqual([...xs]);
    expect([...executor.hostView(doubled)]).toEqual([...xs].map((v) => Math.fround(2 * v)));
    const got = executor.hostView(product);
    let num = 0;
    let den = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let want = 0;
        for (let t = 0; t < k; t++) want += xs[i * k + t]! * ws[j * k + t]!;
        num += (got[i * n + j]! - want) ** 2;
        den += want ** 2;
      }
    }
    // cuBLAS may run f32 products on TF32 tensor cores: 1e-3 relative
    expect(Math.sqrt(num / den)).toBeLessThan(1e-3);
    const view = executor.hostView(x);
    x.dispose();
    expect(view.length).toBe(0); // detached: the freed memory is out of reach
    await executor.dispose();
    expect(got.length).toBe(0);
  });
});
