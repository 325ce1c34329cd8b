// The cuda executor's host side, on any machine: a stand-in for the addon's context records every
// native call, so the order of what the executor enqueues can be checked without a GPU: each
// temporary freed in stream order after the op that used it, what a CUDA-graph capture cannot
// make made before the capture begins, argument types as the addon reads them, and outputs that
// share storage with an input computed through a temporary.
import type { Op } from '@fastattention/core';
import { describe, expect, it } from 'vitest';
import { CudaExecutor } from '../src/exec/executor.js';
import type { NativeContext } from '../src/native.js';
import type { LaunchPlan } from '../src/plan.js';

interface Call {
  readonly name: string;
  readonly args: unknown[];
}

function fakeContext(): { context: NativeContext; calls: Call[] } {
  const calls: Call[] = [];
  let next = 1n << 20n;
  let handles = 1;
  const returns: Record<string, (...args: unknown[]) => unknown> = {
    allocAsync: () => (next += 1n << 20n),
    streamCreate: () => handles++,
    eventRecord: () => handles++,
    captureEnd: () => handles++,
    functionInfo: () => ({ registers: 64, localBytes: 0, blocksPerSM: 1 }),
    streamSynchronize: () => Promise.resolve(),
    enqueueRead: () => Promise.resolve(),
    allocPinned: (bytes) => {
      next += 1n << 20n;
      return { ptr: next, buffer: new ArrayBuffer(Number(bytes)) };
    },
    freePinned: () => Promise.resolve(),
  };
  const context = new Proxy({} as NativeContext, {
    get: (_, name) => {
      if (typeof name !== 'string' || name === 'then') return undefined;
      return (...args: unknown[]) => {
        calls.push({ name, args });
        return returns[name]?.(...args);
      };
    },
  });
  return { context, calls };
}

const PLAN = {
  path: 'hopper',
  role: 'decode',
  kernel: 'fa_hopper_decode_f16_hd128',
  config: { path: 'hopper', headDim: 128, sharedBytes: 100_000, producerWarps: 0, blockK: 64, blockQ: 64 },
  splitKV: 4,
  grid: [1, 8, 4],
  threads: 128,
  tilePlan: {},
} as unknown as LaunchPlan;

function executor() {
  const { context, calls } = fakeContext();
  const ex = new CudaExecutor(context, {
    planner: { plan: () => PLAN } as never,
    plans: new Map(),
    features: { fusedCombine: true, pdl: false },
    gemm: 'cublasLt',
  });
  return { ex, calls };
}

/** Every stream-ordered temporary an op allocated is freed again. */
function checkTemps(calls: Call[], from = 0): void {
  const count = (name: string) => calls.slice(from).filter((c) => c.name === name).length;
  expect(count('freeAsync')).toBe(count('allocAsync'));
}

describe('cuda executor, host side (a stand-in context, no GPU)', () => {
  it('frees each op temporary after the op, in stream order', () => {
    const { ex, calls } = executor();
    const q = ex.empty('f16', [1, 1, 32, 128]);
    const k = ex.empty('f16', [1, 300, 8, 128]);
    const v = ex.empty('f16', [1, 300, 8, 128]);
    const lens = ex.empty('i32', [1]);
    const out = ex.empty('f16', [1, 1, 32, 128]);
    const op = { op: 'attention', q, k, v, seqLensK: lens, out } as const;
    ex.run(op); // the first split-KV launch also makes the executor's counters (kept)
    const from = calls.length;
    ex.run(op);
    const names = calls.slice(from).map((c) => c.name);
    // check kernel, attention launch, then the frees: never a free before the launch that reads it
    expect(names.indexOf('enqueueOp')).toBeLessThan(names.indexOf('enqueueAttention'));
    expect(names.lastIndexOf('allocAsync')).toBeLessThan(names.indexOf('enqueueAttention'));
    expect(names.indexOf('freeAsync')).toBeGreaterThan(names.indexOf('enqueueAttention'));
    checkTemps(calls, from);
  });

  it("fuses rope's KV append into the rope kernel where every tensor is a row matrix as it stands", () => {
    const { ex, calls } = executor();
    const qkv = ex.empty('f16', [1, 48 * 128]);
    const qk = qkv.view({ shape: [1, 40, 128], strides: [48 * 128, 128, 1], offset: 0 });
    const v = qkv.view({ shape: [1, 8, 128], strides: [48 * 128, 128, 1], offset: 40 * 128 });
    const cache = () => ex.empty('f16', [16, 64, 8, 128]);
    const slots = ex.empty('i32', [1]);
    const positions = ex.empty('i32', [1]);
    const rope = { theta: 10000, rotaryDim: 128, scaling: { kind: 'default' } } as const;
    const ops = (from: number) =>
      calls.slice(from).flatMap((c) => (c.name === 'enqueueOp' ? [c.args[1] as string] : []));
    let from = calls.length;
    const append = { v, cacheK: cache(), cacheV: cache(), slots };
    ex.run({ op: 'rope', x: qk, positions, rope, out: qk, append });
    expect(ops(from)).toEqual(['rope']);
    const args = calls.findLast((c) => c.args[1] === 'rope')!.args[2] as { append: Record<string, unknown> };
    expect(args.append).toMatchObject({ heads: 8, cacheRows: 16 * 64 });
    // a cache whose heads are not packed: rope, then kvAppend through a temporary
    const wide = ex.empty('f16', [16, 64, 8, 256]);
    const strided = wide.view({
      shape: [16, 64, 8, 128],
      strides: [64 * 8 * 256, 8 * 256, 256, 1],
      offset: 0,
    });
    from = calls.length;
    ex.run({ op: 'rope', x: qk, positions, rope, out: qk, append: { ...append, cacheK: strided } });
    expect(ops(from)[0]).toBe('rope');
    expect(ops(from)).toContain('kvAppend');
    expect(calls.findLast((c) => c.args[1] === 'rope')!.args[2] as object).not.toHaveProperty('append');
    checkTemps(calls, from);
  });

  it('records a step graph: what capture cannot make is made first, then the ops are captured', () => {
    const { ex, calls } = executor();
    const x = ex.empty('f16', [1, 4096]);
    const w = ex.empty('f16', [4096, 4096]);
    const h = ex.empty('f16', [1, 4096]);
    const q = ex.empty('f16', [1, 1, 32, 128]);
    const k = ex.empty('f16', [1, 300, 8, 128]);
    const lens = ex.empty('i32', [1]);
    const out = ex.empty('f16', [1, 1, 32, 128]);
    const from = calls.length;
    const ops: Op[] = [
      { op: 'linear', x, weight: w, out: h },
      { op: 'attention', q, k, v: k, seqLensK: lens, out },
    ];
    const graph = ex.record((r) => {
      for (const op of ops) r.run(op);
    });
    const names = calls.slice(from).map((c) => c.name);
    const begin = names.indexOf('captureBegin');
    const end = names.indexOf('captureEnd');
    expect(begin).toBeGreaterThan(names.indexOf('prepareBlas'));
    const info = calls.slice(from).find((c) => c.name === 'functionInfo')!;
    expect(info.args.map((a) => typeof a)).toEqual(['string', 'string', 'number', 'number']);
    expect(begin).toBeGreaterThan(names.indexOf('functionInfo'));
    // the split-KV counters (and their zeroing write) come before the capture, never inside it
    expect(names.slice(begin, end)).not.toContain('enqueueWrite');
    expect(names.slice(begin, end)).toEqual(expect.arrayContaining(['enqueueGemm', 'enqueueAttention']));
    // every temporary allocated inside the capture is freed inside it
    const inside = calls.slice(from + begin, from + end);
    expect(inside.filter((c) => c.name === 'freeAsync').length).toBe(
      inside.filter((c) => c.name === 'allocAsync').length,
    );
    graph.replay();
    expect(calls.at(-1)!.name).toBe('graphLaunch');
    graph.dispose();
    expect(() => graph.replay()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });

  it("checks a step's shared seqLensK and block table once, again after an op writes them", () => {
    const { ex, calls } = executor();
    const q = ex.empty('f16', [2, 1, 32, 128]);
    const cache = ex.empty('f16', [16, 64, 8, 128]);
    const scalars = ex.empty('i32', [2 + 2 * 4]);
    const lens = scalars.view({ shape: [2], strides: [1], offset: 0 });
    const table = scalars.view({ shape: [2, 4], strides: [4, 1], offset: 2 });
    const other = ex.empty('i32', [2]);
    const out = ex.empty('f16', [2, 1, 32, 128]);
    const paged = { blockTable: table, blockSize: 64, seqK: 256 };
    const layer = (seqLensK = lens): Op => ({ op: 'attention', q, k: cache, v: cache, seqLensK, paged, out });
    const checks = (ops: Op[]) => {
      const from = calls.length;
      ex.record((r) => {
        for (const op of ops) r.run(op);
      });
      const inside = calls.slice(from);
      return {
        checks: inside.filter((c) => c.name === 'enqueueOp' && c.args[1] === 'checkAttention').length,
        launches: inside.filter((c) => c.name === 'enqueueAttention').length,
      };
    };
    // three layers over the same views: one check
    expect(checks([layer(), layer(), layer()])).toEqual({ checks: 1, launches: 3 });
    // other lengths need their own check
    expect(checks([layer(), layer(other), layer()])).toEqual({ checks: 2, launches: 3 });
    // a write into the scalars' storage between the layers: checked again
    const write: Op = { op: 'copy', src: other, dst: lens };
    expect(checks([layer(), write, layer()])).toEqual({ checks: 2, launches: 2 });
    // run one by one (no recorded step), every op checks its own
    const from = calls.length;
    ex.run(layer());
    ex.run(layer());
    expect(calls.slice(from).filter((c) => c.args[1] === 'checkAttention').length).toBe(2);
  });

  it('computes a linear op whose output is its input through a temporary', () => {
    const { ex, calls } = executor();
    const x = ex.empty('f32', [8, 64]);
    const w = ex.empty('f32', [64, 64]);
    const from = calls.length;
    ex.run({ op: 'linear', x, weight: w, out: x });
    const gemm = calls.slice(from).find((c) => c.name === 'enqueueGemm')!;
    const args = gemm.args[1] as { x: { ptr: bigint }; out: { ptr: bigint } };
    expect(args.out.ptr).not.toBe(args.x.ptr);
    expect(calls.slice(from).map((c) => c.name)).toContain('enqueueCopy');
    checkTemps(calls, from);
  });

  it("runs attention 'standard' per batch row: gather, scores product, softmax, output product", () => {
    const { ex, calls } = executor();
    const [batch, seqQ, seqK, headsQ, headsKV, headDim] = [2, 3, 40, 4, 2, 64];
    const q = ex.empty('f16', [batch, seqQ, headsQ, headDim]);
    const k = ex.empty('f16', [batch, seqK, headsKV, headDim]);
    const lens = ex.empty('i32', [batch]);
    const out = ex.empty('f16', [batch, seqQ, headsQ, headDim]);
    const from = calls.length;
    ex.run({
      op: 'attention',
      q,
      k,
      v: k,
      seqLensK: lens,
      out,
      mask: { kind: 'causal' },
      algorithm: 'standard',
    });
    const work = calls
      .slice(from)
      .filter((c) => c.name === 'enqueueGemm' || (c.name === 'enqueueOp' && c.args[1] !== 'checkAttention'))
      .map((c) => (c.name === 'enqueueOp' ? c.args[1] : 'gemm'));
    const row = ['standardGather', 'gemm', 'standardSoftmax', 'gemm'];
    expect(work).toEqual([...row, ...row]);
    const gemms = calls.slice(from).filter((c) => c.name === 'enqueueGemm');
    const scores = gemms[0]!.args[1] as {
      m: number;
      n: number;
      k: number;
      batched: { batch: number; alpha: number };
    };
    expect([scores.m, scores.n, scores.k, scores.batched.batch]).toEqual([seqQ, seqK, headDim, headsQ]);
    expect(scores.batched.alpha).toBeCloseTo(1 / 8);
    const softmax = calls.slice(from).find((c) => c.args[1] === 'standardSoftmax')!.args[2] as {
      left: number;
      right: number;
    };
    expect([softmax.left, softmax.right]).toEqual([-1, 0]); // causal: unbounded left, none right
    checkTemps(calls, from);
  });

  it('records events without waiting on them until asked, and orders another stream after one', async () => {
    const { ex, calls } = executor();
    const other = ex.createStream('copies');
    const from = calls.length;
    const event = ex.stream.record();
    other.wait(event);
    const names = calls.slice(from).map((c) => c.name);
    expect(names).toEqual(['eventRecord', 'streamWait']);
    await event.synchronize();
    await event.synchronize(); // one wait, shared
    expect(calls.slice(from).filter((c) => c.name === 'eventSynchronize').length).toBe(1);
  });

  it('refuses tensors of another executor and f32 attention, naming the field', () => {
    const { ex } = executor();
    const { ex: other } = executor();
    const a = ex.empty('f32', [2, 3]);
    const b = other.empty('f32', [2, 3]);
    expect(() => ex.run({ op: 'add', a, b, out: a })).toThrow(expect.objectContaining({ field: 'add.b' }));
    const q = ex.empty('f32', [1, 1, 2, 64]);
    const lens = ex.empty('i32', [1]);
    const out = ex.empty('f32', [1, 1, 2, 64]);
    expect(() => ex.run({ op: 'attention', q, k: q, v: q, seqLensK: lens, out })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'attention.q' }),
    );
  });

  it('pinned tensors: a host view over their own buffer, freed through freePinned, awaited by dispose', async () => {
    const { ex, calls } = executor();
    const t = ex.empty('f16', [4, 8], { memory: 'pinned' });
    expect(t.memory).toBe('pinned');
    const view = ex.hostView(t.view({ shape: [2, 8], strides: [8, 1], offset: 16 }));
    expect(view).toBeInstanceOf(Uint16Array);
    expect([view.byteOffset, view.length]).toEqual([32, 16]);
    expect(view.buffer).toBe(ex.hostView(t).buffer);
    expect(view.buffer.byteLength).toBe(64);
    const q = ex.empty('f16', [1, 1, 2, 64], { memory: 'pinned' });
    const kv = ex.empty('f16', [1, 4, 2, 64]);
    const lens = ex.empty('i32', [1]);
    const out = ex.empty('f16', [1, 1, 2, 64]);
    expect(() => ex.run({ op: 'attention', q, k: kv, v: kv, seqLensK: lens, out })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'attention.q' }),
    );
    expect(() => ex.hostView(ex.empty('f32', [3]))).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'tensor' }),
    );
    expect(() => ex.empty('f32', [3], { memory: 'shared' as never })).toThrow(
      expect.objectContaining({ field: 'memory' }),
    );
    t.dispose();
    expect(calls.filter((c) => c.name === 'freePinned').length).toBe(1);
    ex.empty('i32', [5], { memory: 'pinned' });
    await ex.dispose();
    expect(calls.filter((c) => c.name === 'freePinned').length).toBe(3);
    expect(calls.filter((c) => c.name === 'allocAsync').length).toBe(
      calls.filter((c) => c.name === 'freeAsync').length,
    );
  });
});
