// The cpu executor's native ops beyond what the conformance suite covers: both GEMM paths at odd
// sizes in every dtype pairing, tensors that are views (strided rows, a transpose, an output
// sharing its input's storage), errors found in the data at run time, and the event loop staying
// free during a long GEMM.
import {
  type DType,
  type Executor,
  fromNumbers,
  type Tensor,
  type TensorDType,
  toFloat64,
} from '@fastattention/core';
import { randomSeed, randomValues, rng } from '@fastattention/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CpuBackend, createBackend } from '../src/index.js';
import { REAL_WORK_TIMEOUT_MS } from './helpers.js';

const seed = randomSeed();
const rand = rng(seed);

let backend: CpuBackend;
let executor: Executor;

beforeAll(async () => {
  backend = await createBackend({ threads: 2 });
  executor = backend.createExecutor();
});
afterAll(() => backend.dispose());

async function tensor(
  dtype: TensorDType,
  shape: number[],
  scale = 1,
): Promise<{ t: Tensor; values: Float64Array }> {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = randomValues(rand, n).map((x) => x * scale);
  const t = executor.empty(dtype, shape);
  const data = dtype === 'i32' ? Int32Array.from(values, Math.round) : fromNumbers(values, dtype);
  await executor.write(t, data as never);
  return { t, values: toFloat64(data as Float32Array | Uint16Array, dtype as DType) };
}

async function values(t: Tensor): Promise<Float64Array> {
  return toFloat64((await executor.read(t)) as Float32Array | Uint16Array, t.dtype as DType);
}

/**
 * out = x·wᵀ + bias in float64 from the values as stored, and the error bound of each output: the
 * sum of |x_k·w_k| times the output dtype's rounding plus f32 accumulation.
 */
function referenceLinear(
  x: Float64Array,
  w: Float64Array,
  bias: Float64Array | undefined,
  m: number,
  n: number,
  k: number,
) {
  const out = new Float64Array(m * n);
  const scale = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias?.[j] ?? 0;
      let a = Math.abs(bias?.[j] ?? 0);
      for (let c = 0; c < k; c++) {
        s += x[i * k + c]! * w[j * k + c]!;
        a += Math.abs(x[i * k + c]! * w[j * k + c]!);
      }
      out[i * n + j] = s;
      scale[i * n + j] = a;
    }
  }
  return { out, scale };
}

const UNIT: Record<DType, number> = { f32: 2e-6, f16: 1e-3, bf16: 8e-3 };

function expectClose(got: Float64Array, want: { out: Float64Array; scale: Float64Array }, dtype: DType) {
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    worst = Math.max(worst, Math.abs(got[i]! - want.out[i]!) / (want.scale[i]! + 1e-30));
  }
  expect(worst).toBeLessThan(UNIT[dtype]);
}

describe(`cpu ops (seed ${seed})`, { timeout: REAL_WORK_TIMEOUT_MS }, () => {
  // Rows on both sides of the dot-product path's limit (64), k past one 512-wide block, n not a
  // multiple of any panel width.
  const sizes: [number, number, number][] = [
    [1, 7, 5],
    [5, 130, 67],
    [64, 33, 129],
    [65, 97, 530],
    [131, 70, 1030],
  ];
  const pairings: [DType, DType][] = [
    ['f32', 'f32'],
    ['f32', 'f16'],
    ['f32', 'bf16'],
    ['f16', 'f16'],
    ['bf16', 'bf16'],
  ];
  for (const [m, n, k] of sizes) {
    for (const [xd, wd] of pairings) {
      it(`linear ${xd} x, ${wd} weight, m${m} n${n} k${k}, with bias`, async () => {
        const x = await tensor(xd, [m, k]);
        const w = await tensor(wd, [n, k], 0.2);
        const bias = await tensor(wd, [n]);
        const out = executor.empty(xd, [m, n]);
        executor.run({ op: 'linear', x: x.t, weight: w.t, bias: bias.t, out });
        expectClose(await values(out), referenceLinear(x.values, w.values, bias.values, m, n, k), xd);
      });
    }
  }

  it('linear on views: x a column slice, out strided rows, and out the very tensor x is', async () => {
    const [m, n, k] = [70, 40, 33];
    const wide = await tensor('f32', [m, k + 9]);
    const x = wide.t.view({ shape: [m, k], strides: [k + 9, 1], offset: 4 });
    const xValues = Float64Array.from(
      { length: m * k },
      (_, i) => wide.values[Math.floor(i / k) * (k + 9) + 4 + (i % k)]!,
    );
    const w = await tensor('f32', [n, k]);
    const want = referenceLinear(xValues, w.values, undefined, m, n, k);
    const rows = executor.empty('f32', [m, n + 3]);
    const out = rows.view({ shape: [m, n], strides: [n + 3, 1], offset: 3 });
    executor.run({ op: 'linear', x, weight: w.t, out });
    expectClose(await values(out), want, 'f32');
    // out is x itself (a square weight): no output may be written while x is still being read.
    // (k past one 512-wide block, so rows are read again after their first outputs are stored).
    const side = 600;
    const square = await tensor('f32', [side, side]);
    const own = await tensor('f32', [m, side]);
    const expected = referenceLinear(own.values, square.values, undefined, m, side, side);
    executor.run({ op: 'linear', x: own.t, weight: square.t, out: own.t });
    expectClose(await values(own.t), expected, 'f32');
  });

  it('copies through a transposing view, converting dtypes', async () => {
    const src = await tensor('f32', [6, 11]);
    const t = src.t.view({ shape: [11, 6], strides: [1, 11], offset: 0 });
    const dst = executor.empty('bf16', [11, 6]);
    executor.run({ op: 'copy', src: t, dst });
    const got = await values(dst);
    for (let i = 0; i < 11; i++) {
      for (let j = 0; j < 6; j++) expect(got[i * 6 + j]).toBeCloseTo(src.values[j * 11 + i]!, 2);
    }
  });

  it('rotates q inside a fused qkv tensor (a strided view) and leaves k and v alone', async () => {
    const [tokens, heads, hd] = [5, 2, 16];
    const qkv = await tensor('f32', [tokens, 3 * heads, hd]);
    const q = qkv.t.view({ shape: [tokens, heads, hd], strides: [3 * heads * hd, hd, 1], offset: 0 });
    const positions = executor.empty('i32', [tokens]);
    await executor.write(positions, Int32Array.from([0, 1, 7, 100000, 3]));
    const rope = { theta: 10000, rotaryDim: hd, scaling: { kind: 'default' as const } };
    executor.run({ op: 'rope', x: q, positions, rope, out: q });
    const got = await values(qkv.t);
    const pos = [0, 1, 7, 100000, 3];
    for (let t = 0; t < tokens; t++) {
      for (let h = 0; h < 3 * heads; h++) {
        const at = (t * 3 * heads + h) * hd;
        for (let i = 0; i < hd / 2; i++) {
          const [re, im] = [qkv.values[at + i]!, qkv.values[at + i + hd / 2]!];
          const angle = pos[t]! * 10000 ** (-(2 * i) / hd);
          const want =
            h < heads
              ? [re * Math.cos(angle) - im * Math.sin(angle), im * Math.cos(angle) + re * Math.sin(angle)]
              : [re, im];
          expect(got[at + i]).toBeCloseTo(want[0]!, 4);
          expect(got[at + i + hd / 2]).toBeCloseTo(want[1]!, 4);
        }
      }
    }
  });

  it('fails the op, naming the field, for a token outside the table or a slot outside the cache', async () => {
    const table = await tensor('f32', [10, 4]);
    const tokens = executor.empty('i32', [3]);
    await executor.write(tokens, Int32Array.from([1, 10, 2]));
    const out = executor.empty('f32', [3, 4]);
    executor.run({ op: 'embedding', table: table.t, tokens, out });
    await expect(executor.read(out)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      field: 'embedding.tokens',
    });
    await executor.stream.synchronize().catch(() => undefined);

    const k = await tensor('f16', [2, 1, 8]);
    const cacheK = executor.empty('f16', [2, 4, 1, 8]);
    const cacheV = executor.empty('f16', [2, 4, 1, 8]);
    const slots = executor.empty('i32', [2]);
    await executor.write(slots, Int32Array.from([3, 8]));
    executor.run({ op: 'kvAppend', k: k.t, v: k.t, cacheK, cacheV, slots });
    await expect(executor.read(cacheK)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      field: 'kvAppend.slots',
    });
    await executor.stream.synchronize().catch(() => undefined);

    // rope's fused append names its own field, with fixed frequencies (the native call path) and
    // dynamic ones (computed in JavaScript first)
    const qk = await tensor('f16', [2, 3, 8]);
    const positions = executor.empty('i32', [2]);
    await executor.write(positions, Int32Array.from([5, 6]));
    for (const scaling of [
      { kind: 'default' },
      { kind: 'dynamic', factor: 2, originalMaxPositions: 4 },
    ] as const) {
      const rope = { theta: 10000, rotaryDim: 8, scaling };
      const append = { v: k.t, cacheK, cacheV, slots };
      executor.run({ op: 'rope', x: qk.t, positions, rope, out: qk.t, append });
      await expect(executor.read(cacheK)).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        field: 'rope.append.slots',
      });
      await executor.stream.synchronize().catch(() => undefined);
    }
  });

  it('runs rope with dynamic scaling over no tokens (the length it sees is at least 1)', async () => {
    const x = executor.empty('f32', [0, 2, 8]);
    const positions = executor.empty('i32', [0]);
    const rope = {
      theta: 10000,
      rotaryDim: 8,
      scaling: { kind: 'dynamic', factor: 2, originalMaxPositions: 4 },
    } as const;
    executor.run({ op: 'rope', x, positions, rope, out: x });
    await expect(executor.stream.synchronize()).resolves.toBeUndefined();
  });

  it('keeps the event loop free during a long GEMM', async () => {
    // About 34 GFLOP, 0.1 s or more here: run on the JS thread, it would be one gap longer than
    // both bounds. Non-zero data made cheaply (random values in JS would take longer than the GEMM).
    const x = executor.empty('f32', [2048, 2048]);
    await executor.write(
      x,
      Float32Array.from({ length: x.length }, (_, i) => ((i % 251) - 125) / 128),
    );
    const w = executor.empty('bf16', [4096, 2048]);
    await executor.write(
      w,
      Uint16Array.from({ length: w.length }, (_, i) => 0x3c00 + (i % 127) * 2 + (i & 0x8000)),
    );
    const out = executor.empty('f32', [2048, 4096]);
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 2);
    const start = performance.now();
    executor.run({ op: 'linear', x, weight: w, out });
    await executor.stream.synchronize();
    const end = performance.now();
    clearInterval(timer);
    const times = [start, ...ticks, end];
    const gap = Math.max(...times.slice(1).map((t, i) => t - times[i]!));
    expect(gap).toBeLessThan(Math.max(50, (end - start) / 2));
  });
});
