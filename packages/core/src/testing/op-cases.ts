/**
 * The op conformance suite's cases: each op of the execution contract at odd sizes and every float
 * dtype, on seeded random inputs; rows wide enough to span several CTAs or work items; views
 * (strided and transposed layouts); and sampling with ties and non-finite logits.
 */
import type { DType } from '../dtype.js';
import { ATTENTION_ALGORITHMS, type AttentionOp, type Op, type OpKind } from '../exec/ops.js';
import type { RopeSpec } from '../exec/rope.js';
import type { Tensor, TensorArray, TensorDType } from '../exec/tensor.js';
import { fromNumbers } from '../numeric/convert.js';
import { randomValues, rng } from './kit.js';

/** One tensor of a case: random data for inputs (and in-out tensors), poison for outputs. */
export interface TensorSpec {
  readonly dtype: TensorDType;
  readonly shape: readonly number[];
  readonly data?: TensorArray;
  /** Compared after the op (outputs, and inputs the op updates in place). */
  readonly check?: boolean;
  /**
   * The tensor is a view of a larger one (filled with poison first): `shape` over `base` at these
   * strides and offset. Views test each backend's handling of strided and transposed layouts.
   */
  readonly view?: {
    readonly base: readonly number[];
    readonly strides: readonly number[];
    readonly offset: number;
  };
}

export interface OpCase {
  readonly name: string;
  readonly kind: OpKind;
  readonly dtype: DType;
  readonly tensors: Readonly<Record<string, TensorSpec>>;
  readonly op: (t: Readonly<Record<string, Tensor>>) => Op;
  /** Overrides the dtype's tolerance for the checked float tensors. */
  readonly tolerance?: number;
}

function floats(rand: () => number, dtype: TensorDType, n: number, scale = 1): TensorArray {
  const values = randomValues(rand, n).map((x) => x * scale);
  return dtype === 'i32' ? Int32Array.from(values, Math.round) : fromNumbers(values, dtype);
}

function ints(values: ArrayLike<number>): Int32Array {
  return Int32Array.from(values);
}

/**
 * rope with the KV append fused, in place over q and k heads side by side: a few tokens under a
 * partial rotary (decode; the copied dims go to the cache too) and 70 tokens (the prefill form),
 * each with a padding token and garbage in the cache rows it does not write.
 */
function ropeAppendCases(rand: () => number, d: DType): OpCase[] {
  const cases: OpCase[] = [];
  for (const [tokens, qHeads, kvHeads, headDim, rotaryDim] of [
    [3, 4, 2, 80, 48],
    [70, 3, 1, 64, 64],
  ] as const) {
    const [blocks, blockSize] = [Math.ceil((tokens + 2) / 8), 8];
    const heads = qHeads + kvHeads;
    const slots = [...Array(blocks * blockSize).keys()].sort(() => rand() - 0.5).slice(0, tokens);
    slots[Math.floor(rand() * tokens)] = -1;
    const cache = blocks * blockSize * kvHeads * headDim;
    const cacheSpec = (): TensorSpec => ({
      dtype: d,
      shape: [blocks, blockSize, kvHeads, headDim],
      data: floats(rand, d, cache),
      check: true,
    });
    cases.push({
      name: `rope ${d} ${tokens} tokens of ${qHeads} q and ${kvHeads} k heads in place, appended with v (${rotaryDim} of ${headDim} rotary)`,
      kind: 'rope',
      dtype: d,
      tensors: {
        x: {
          dtype: d,
          shape: [tokens, heads, headDim],
          data: floats(rand, d, tokens * heads * headDim),
          check: true,
        },
        v: { dtype: d, shape: [tokens, kvHeads, headDim], data: floats(rand, d, tokens * kvHeads * headDim) },
        positions: {
          dtype: 'i32',
          shape: [tokens],
          data: Int32Array.from({ length: tokens }, (_, i) => 500 + 3 * i),
        },
        cacheK: cacheSpec(),
        cacheV: cacheSpec(),
        slots: { dtype: 'i32', shape: [tokens], data: Int32Array.from(slots) },
      },
      ...(d === 'f32' && { tolerance: 2e-4 }),
      op: (t) => ({
        op: 'rope',
        x: t.x!,
        positions: t.positions as Tensor<'i32'>,
        rope: { theta: 10000, rotaryDim, scaling: { kind: 'default' } },
        out: t.x!,
        append: { v: t.v!, cacheK: t.cacheK!, cacheV: t.cacheV!, slots: t.slots as Tensor<'i32'> },
      }),
    });
  }
  return cases;
}

/** A kvAppend op over a case's tensors k, v, cacheK, cacheV and slots. */
const kvAppendOf = (t: Readonly<Record<string, Tensor>>): Op => ({
  op: 'kvAppend',
  k: t.k!,
  v: t.v!,
  cacheK: t.cacheK!,
  cacheV: t.cacheV!,
  slots: t.slots as Tensor<'i32'>,
});

/** The suite's cases for one seed: each op at odd sizes, for each float dtype. */
export function opCases(seed: number, dtypes: readonly DType[] = ['f32', 'f16', 'bf16']): OpCase[] {
  const rand = rng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const cases: OpCase[] = [];
  for (const d of dtypes) {
    // Few rows (decode: k a multiple of 8 or not) and many (prefill: past 64 rows, and k past one
    // 512-wide block), and a model in f32 with 16-bit weights.
    const weightDtype = d === 'f32' ? 'bf16' : d;
    for (const [m, k, n, bias, w] of [
      [1, 33, 5, true, d],
      [1, 264, 37, true, d],
      [3, 136, 70, false, d],
      [17, 64, 48, false, d],
      [70, 530, 67, true, weightDtype],
    ] as const) {
      cases.push({
        name: `linear ${d}${w === d ? '' : ` (${w} weight)`} m${m} k${k} n${n}${bias ? ' bias' : ''}`,
        kind: 'linear',
        dtype: d,
        tensors: {
          x: { dtype: d, shape: [m, k], data: floats(rand, d, m * k) },
          weight: { dtype: w, shape: [n, k], data: floats(rand, w, n * k, 0.2) },
          ...(bias && { bias: { dtype: d, shape: [n], data: floats(rand, d, n) } }),
          out: { dtype: d, shape: [m, n], check: true },
        },
        op: (t) => ({
          op: 'linear',
          x: t.x!,
          weight: t.weight!,
          ...(t.bias && { bias: t.bias }),
          out: t.out!,
        }),
      });
    }
    cases.push({
      name: `rmsNorm ${d} 3 x 129`,
      kind: 'rmsNorm',
      dtype: d,
      tensors: {
        x: { dtype: d, shape: [3, 129], data: floats(rand, d, 3 * 129) },
        weight: { dtype: d, shape: [129], data: floats(rand, d, 129) },
        out: { dtype: d, shape: [3, 129], check: true },
      },
      op: (t) => ({ op: 'rmsNorm', x: t.x!, weight: t.weight!, eps: 1e-5, out: t.out! }),
    });
    const ropes: Array<[string, RopeSpec, number]> = [
      ['default', { theta: 10000, rotaryDim: 64, scaling: { kind: 'default' } }, 64],
      ['partial linear', { theta: 500000, rotaryDim: 48, scaling: { kind: 'linear', factor: 4 } }, 80],
      [
        'llama3',
        {
          theta: 500000,
          rotaryDim: 64,
          scaling: {
            kind: 'llama3',
            factor: 8,
            lowFreqFactor: 1,
            highFreqFactor: 4,
            originalMaxPositions: 8192,
          },
        },
        64,
      ],
      [
        'yarn',
        { theta: 10000, rotaryDim: 64, scaling: { kind: 'yarn', factor: 4, originalMaxPositions: 4096 } },
        64,
      ],
      [
        'dynamic',
        { theta: 10000, rotaryDim: 64, scaling: { kind: 'dynamic', factor: 2, originalMaxPositions: 2048 } },
        64,
      ],
    ];
    for (const [label, rope, headDim] of ropes) {
      const tokens = 3;
      const heads = 5;
      cases.push({
        name: `rope ${label} ${d} ${tokens} x ${heads} x ${headDim}`,
        kind: 'rope',
        dtype: d,
        tensors: {
          x: { dtype: d, shape: [tokens, heads, headDim], data: floats(rand, d, tokens * heads * headDim) },
          positions: { dtype: 'i32', shape: [tokens], data: ints([0, 1 + int(100), 1000 + int(1000)]) },
          out: { dtype: d, shape: [tokens, heads, headDim], check: true },
        },
        // A kernel computing angles in f32 (as transformers does) is off by about position * 2^-24
        // radians: up to 1.2e-4 here, past f32's 1e-5.
        ...(d === 'f32' && { tolerance: 2e-4 }),
        op: (t) => ({
          op: 'rope',
          x: t.x!,
          positions: t.positions as Tensor<'i32'>,
          rope,
          seqLen: 5000,
          out: t.out!,
        }),
      });
    }
    for (const kind of ['swiglu', 'geglu'] as const) {
      cases.push({
        name: `${kind} ${d} 7 x 33`,
        kind,
        dtype: d,
        tensors: {
          gate: { dtype: d, shape: [7, 33], data: floats(rand, d, 7 * 33, 2) },
          up: { dtype: d, shape: [7, 33], data: floats(rand, d, 7 * 33) },
          out: { dtype: d, shape: [7, 33], check: true },
        },
        op: (t) => ({ op: kind, gate: t.gate!, up: t.up!, out: t.out! }),
      });
    }
    cases.push({
      name: `embedding ${d} vocab 50 x 17, 9 tokens`,
      kind: 'embedding',
      dtype: d,
      tensors: {
        table: { dtype: d, shape: [50, 17], data: floats(rand, d, 50 * 17) },
        tokens: { dtype: 'i32', shape: [9], data: ints(Array.from({ length: 9 }, () => int(50))) },
        out: { dtype: d, shape: [9, 17], check: true },
      },
      op: (t) => ({ op: 'embedding', table: t.table!, tokens: t.tokens as Tensor<'i32'>, out: t.out! }),
    });
    cases.push({
      name: `add ${d} 5 x 19`,
      kind: 'add',
      dtype: d,
      tensors: {
        a: { dtype: d, shape: [5, 19], data: floats(rand, d, 95) },
        b: { dtype: d, shape: [5, 19], data: floats(rand, d, 95) },
        out: { dtype: d, shape: [5, 19], check: true },
      },
      op: (t) => ({ op: 'add', a: t.a!, b: t.b!, out: t.out! }),
    });
    {
      const [tokens, heads, headDim, blocks, blockSize] = [7, 2, 64, 5, 4];
      const slots = [...Array(blocks * blockSize).keys()].sort(() => rand() - 0.5).slice(0, tokens);
      slots[int(tokens)] = -1; // a padding token: skipped
      const cache = blocks * blockSize * heads * headDim;
      cases.push({
        name: `kvAppend ${d} ${tokens} tokens into ${blocks} blocks of ${blockSize}`,
        kind: 'kvAppend',
        dtype: d,
        tensors: {
          k: { dtype: d, shape: [tokens, heads, headDim], data: floats(rand, d, tokens * heads * headDim) },
          v: { dtype: d, shape: [tokens, heads, headDim], data: floats(rand, d, tokens * heads * headDim) },
          cacheK: {
            dtype: d,
            shape: [blocks, blockSize, heads, headDim],
            data: floats(rand, d, cache),
            check: true,
          },
          cacheV: {
            dtype: d,
            shape: [blocks, blockSize, heads, headDim],
            data: floats(rand, d, cache),
            check: true,
          },
          slots: { dtype: 'i32', shape: [tokens], data: ints(slots) },
        },
        op: kvAppendOf,
      });
    }
    cases.push(...ropeAppendCases(rand, d));
    cases.push(...attentionCases(rand, d));
    {
      const [parts, rows, dim] = [3, 7, 16];
      const lses = Array.from({ length: parts * rows }, () => 4 * rand() - 2);
      lses[rows + 2] = Number.NEGATIVE_INFINITY; // part 1 saw no key for row 2
      cases.push({
        name: `lseMerge ${d} ${parts} parts`,
        kind: 'lseMerge',
        dtype: d,
        tensors: {
          outs: { dtype: 'f32', shape: [parts, rows, dim], data: floats(rand, 'f32', parts * rows * dim) },
          lses: { dtype: 'f32', shape: [parts, rows], data: Float32Array.from(lses) },
          out: { dtype: d, shape: [rows, dim], check: true },
          lse: { dtype: 'f32', shape: [rows], check: true },
        },
        op: (t) => ({
          op: 'lseMerge',
          outs: t.outs as Tensor<'f32'>,
          lses: t.lses as Tensor<'f32'>,
          out: t.out!,
          lse: t.lse as Tensor<'f32'>,
        }),
      });
    }
    cases.push(...viewCases(rand, d), ...wideRowCases(rand, d));
    // The rotary-half permutation of q/k weights at load: rows (head, 2 i + j) -> (head, j half + i),
    // both sides 4-d views that are no row matrix as a whole.
    const [heads, half, cols] = [3, 5, 7];
    const shape = [heads, 2, half, cols];
    cases.push({
      name: `copy ${d} between permuting 4-d views (${shape.join(' x ')})`,
      kind: 'copy',
      dtype: d,
      tensors: {
        src: {
          dtype: d,
          shape,
          data: floats(rand, d, heads * 2 * half * cols),
          view: { base: [heads * 2 * half, cols], strides: [2 * half * cols, cols, 2 * cols, 1], offset: 0 },
        },
        dst: {
          dtype: d,
          shape,
          check: true,
          view: {
            base: [heads * 2 * half + 1, cols],
            strides: [2 * half * cols, half * cols, cols, 1],
            offset: cols,
          },
        },
      },
      op: (t) => ({ op: 'copy', src: t.src!, dst: t.dst! }),
    });
    cases.push({
      name: `copy f32 -> ${d} 3 x 17`,
      kind: 'copy',
      dtype: d,
      tensors: {
        src: { dtype: 'f32', shape: [3, 17], data: floats(rand, 'f32', 51) },
        dst: { dtype: d, shape: [3, 17], check: true },
      },
      op: (t) => ({ op: 'copy', src: t.src!, dst: t.dst! }),
    });
  }
  cases.push({
    name: 'copy i32 out of row 3 of a table into row 1 of another',
    kind: 'copy',
    dtype: dtypes[0]!,
    tensors: {
      src: {
        dtype: 'i32',
        shape: [1, 9],
        // random ids, and ids whose bits read as f32 are a denormal (1) or a signalling NaN
        // (-4194305), and the extremes: a copy must keep their bits
        data: Int32Array.of(
          ...(floats(rand, 'i32', 4, 1000) as Int32Array),
          1,
          -4194305,
          2 ** 31 - 1,
          -(2 ** 31),
          8388607,
        ),
        view: { base: [5, 9], strides: [9, 1], offset: 27 },
      },
      dst: { dtype: 'i32', shape: [1, 9], check: true, view: { base: [4, 9], strides: [9, 1], offset: 9 } },
    },
    op: (t) => ({ op: 'copy', src: t.src!, dst: t.dst! }),
  });
  cases.push(sampleCase(rand, 4, 37, 'a greedy row, and sampled rows with each truncation and penalty'));
  cases.push(sampleCase(rand, 24, 1000, 'ties, NaN and infinite logits, every truncation'));
  return cases;
}

/**
 * A sample case: random logits in eighths (ties in every row), NaN, +Infinity and -Infinity in the
 * first rows, and per row a mix of greedy, temperature, top-k, top-p, min-p and the penalties.
 */
function sampleCase(rand: () => number, rows: number, vocab: number, what: string): OpCase {
  const logits = Float32Array.from({ length: rows * vocab }, () => Math.round((rand() * 2 - 1) * 24) / 8);
  logits[3 % vocab] = Number.NaN;
  if (rows > 1) logits[vocab + (5 % vocab)] = Number.POSITIVE_INFINITY;
  if (rows > 2) logits[2 * vocab + (7 % vocab)] = Number.NEGATIVE_INFINITY;
  const column = (f: (r: number) => number) => Array.from({ length: rows }, (_, r) => f(r));
  const f32 = (f: (r: number) => number) => ({
    dtype: 'f32' as const,
    shape: [rows],
    data: Float32Array.from(column(f)),
  });
  const i32 = (f: (r: number) => number) => ({ dtype: 'i32' as const, shape: [rows], data: ints(column(f)) });
  const uniform = (lo: number, hi: number) => () => lo + rand() * (hi - lo);
  return {
    name: `sample ${rows} rows, vocab ${vocab}: ${what}`,
    kind: 'sample',
    dtype: 'f32',
    tensors: {
      logits: { dtype: 'f32', shape: [rows, vocab], data: logits },
      temperature: f32((r) => (r % 6 === 0 ? 0 : uniform(0.3, 1.8)())),
      topK: i32((r) => (r % 3 === 1 ? 1 + Math.floor(rand() * Math.min(50, vocab - 1)) : 0)),
      topP: f32((r) => (r % 4 === 2 ? uniform(0.2, 0.9)() : 1)),
      minP: f32((r) => (r % 5 === 3 ? uniform(0, 0.3)() : 0)),
      repetitionPenalty: f32(uniform(1, 1.5)),
      presencePenalty: f32(uniform(0, 0.5)),
      frequencyPenalty: f32(uniform(0, 0.5)),
      seed: i32(() => Math.floor(rand() * 2 ** 32) | 0),
      counters: i32(() => Math.floor(rand() * 1e6)),
      counts: {
        dtype: 'i32',
        shape: [rows, vocab],
        data: ints(
          Array.from({ length: rows * vocab }, () => (rand() < 0.15 ? 1 + Math.floor(rand() * 3) : 0)),
        ),
      },
      tokens: { dtype: 'i32', shape: [rows], check: true },
      logprobs: { dtype: 'f32', shape: [rows], check: true },
    },
    op: (t) => ({
      op: 'sample',
      logits: t.logits as Tensor<'f32'>,
      params: {
        temperature: t.temperature as Tensor<'f32'>,
        topK: t.topK as Tensor<'i32'>,
        topP: t.topP as Tensor<'f32'>,
        minP: t.minP as Tensor<'f32'>,
        repetitionPenalty: t.repetitionPenalty as Tensor<'f32'>,
        presencePenalty: t.presencePenalty as Tensor<'f32'>,
        frequencyPenalty: t.frequencyPenalty as Tensor<'f32'>,
        seed: t.seed as Tensor<'i32'>,
      },
      counters: t.counters as Tensor<'i32'>,
      counts: t.counts as Tensor<'i32'>,
      tokens: t.tokens as Tensor<'i32'>,
      logprobs: t.logprobs as Tensor<'f32'>,
    }),
  };
}

/**
 * Ops on views: a linear op whose x is a column slice and whose out has padded rows, rmsNorm of a
 * transposed view (no row-strided layout: backends go through a dense copy), a copy out of a
 * transpose into padded rows, and RoPE of q inside a fused qkv tensor, in place.
 */
function viewCases(rand: () => number, d: DType): OpCase[] {
  const [m, k, n] = [9, 40, 13];
  const [tokens, heads, hd] = [5, 2, 16];
  return [
    {
      name: `linear ${d} on views (x a column slice, out padded rows)`,
      kind: 'linear',
      dtype: d,
      tensors: {
        x: {
          dtype: d,
          shape: [m, k],
          data: floats(rand, d, m * k),
          view: { base: [m, k + 7], strides: [k + 7, 1], offset: 3 },
        },
        weight: { dtype: d, shape: [n, k], data: floats(rand, d, n * k, 0.2) },
        out: {
          dtype: d,
          shape: [m, n],
          check: true,
          view: { base: [m + 1, n + 5], strides: [n + 5, 1], offset: n + 6 },
        },
      },
      op: (t) => ({ op: 'linear', x: t.x!, weight: t.weight!, out: t.out! }),
    },
    {
      name: `rmsNorm ${d} of a transposed view`,
      kind: 'rmsNorm',
      dtype: d,
      tensors: {
        x: {
          dtype: d,
          shape: [3, k],
          data: floats(rand, d, 3 * k),
          view: { base: [k, 3], strides: [1, 3], offset: 0 },
        },
        weight: { dtype: d, shape: [k], data: floats(rand, d, k) },
        out: { dtype: d, shape: [3, k], check: true },
      },
      op: (t) => ({ op: 'rmsNorm', x: t.x!, weight: t.weight!, eps: 1e-5, out: t.out! }),
    },
    {
      name: `copy ${d} out of a transpose into padded rows`,
      kind: 'copy',
      dtype: d,
      tensors: {
        src: {
          dtype: d,
          shape: [7, 11],
          data: floats(rand, d, 77),
          view: { base: [11, 7], strides: [1, 7], offset: 0 },
        },
        dst: { dtype: d, shape: [7, 11], check: true, view: { base: [8, 13], strides: [13, 1], offset: 14 } },
      },
      op: (t) => ({ op: 'copy', src: t.src!, dst: t.dst! }),
    },
    {
      name: `rope ${d} of q inside a fused qkv tensor, in place`,
      kind: 'rope',
      dtype: d,
      tensors: {
        q: {
          dtype: d,
          shape: [tokens, heads, hd],
          data: floats(rand, d, tokens * heads * hd),
          check: true,
          view: { base: [tokens, 3 * heads, hd], strides: [3 * heads * hd, hd, 1], offset: 0 },
        },
        positions: { dtype: 'i32', shape: [tokens], data: ints([0, 1, 9, 100, 4]) },
      },
      op: (t) => ({
        op: 'rope',
        x: t.q!,
        positions: t.positions as Tensor<'i32'>,
        rope: { theta: 10000, rotaryDim: hd, scaling: { kind: 'default' } },
        out: t.q!,
      }),
    },
  ];
}

/**
 * Rope over many tokens (a prefill chunk), where GPU kernels work a token at a time with vector
 * accesses: q and k inside a fused qkv row in place, with a partial rotary part and 'dynamic'
 * scaling whose base comes from the largest position; and a full rotary part into another tensor.
 */
function manyTokenRopes(rand: () => number, d: DType): OpCase[] {
  const tokens = 70;
  const positions = (): TensorSpec => ({
    dtype: 'i32',
    shape: [tokens],
    data: ints(Array.from({ length: tokens }, () => Math.floor(rand() * 3000))),
  });
  return [
    {
      name: `rope ${d} ${tokens} tokens of q and k inside a fused qkv row, in place, dynamic, 48 of 80 rotary`,
      kind: 'rope',
      dtype: d,
      tensors: {
        qk: {
          dtype: d,
          shape: [tokens, 6, 80],
          data: floats(rand, d, tokens * 6 * 80),
          check: true,
          view: { base: [tokens, 9, 80], strides: [9 * 80, 80, 1], offset: 0 },
        },
        positions: positions(),
      },
      ...(d === 'f32' && { tolerance: 2e-4 }),
      op: (t) => ({
        op: 'rope',
        x: t.qk!,
        positions: t.positions as Tensor<'i32'>,
        rope: {
          theta: 500000,
          rotaryDim: 48,
          scaling: { kind: 'dynamic', factor: 2, originalMaxPositions: 1024 },
        },
        out: t.qk!,
      }),
    },
    {
      name: `rope ${d} ${tokens} tokens x 3 x 128 into another tensor`,
      kind: 'rope',
      dtype: d,
      tensors: {
        x: { dtype: d, shape: [tokens, 3, 128], data: floats(rand, d, tokens * 3 * 128) },
        positions: positions(),
        out: { dtype: d, shape: [tokens, 3, 128], check: true },
      },
      ...(d === 'f32' && { tolerance: 2e-4 }),
      op: (t) => ({
        op: 'rope',
        x: t.x!,
        positions: t.positions as Tensor<'i32'>,
        rope: { theta: 10000, rotaryDim: 128, scaling: { kind: 'default' } },
        out: t.out!,
      }),
    },
  ];
}

/**
 * Rows wider than one CTA's or work item's chunk (GPU kernels split a row's columns over several
 * CTAs when rows are few), rope over the 40 q and k heads of a fused qkv row, and the residual add
 * fused into rmsNorm, with out written over the added tensor.
 */
function wideRowCases(rand: () => number, d: DType): OpCase[] {
  const int = (n: number) => Math.floor(rand() * n);
  const matrix = (rows: number, cols: number, scale = 1, check = false): TensorSpec => ({
    dtype: d,
    shape: [rows, cols],
    data: floats(rand, d, rows * cols, scale),
    check,
  });
  const cols = 4100; // past 4 * 1024
  const fused = (outIsAdd: boolean): OpCase => ({
    name: `rmsNorm ${d} with add 2 x ${cols}${outIsAdd ? ', out over add' : ''}`,
    kind: 'rmsNorm',
    dtype: d,
    tensors: {
      x: matrix(2, cols, 1, true),
      add: matrix(2, cols, 1, outIsAdd),
      weight: { dtype: d, shape: [cols], data: floats(rand, d, cols) },
      ...(!outIsAdd && { out: { dtype: d, shape: [2, cols], check: true } }),
    },
    op: (t) => ({
      op: 'rmsNorm',
      x: t.x!,
      add: t.add!,
      weight: t.weight!,
      eps: 1e-6,
      out: outIsAdd ? t.add! : t.out!,
    }),
  });
  const [heads, headDim, tokens] = [40, 128, 2];
  const kvWidth = [9, 128]; // 1152 columns
  return [
    fused(false),
    fused(true),
    {
      name: `add ${d} 3 x 2500`,
      kind: 'add',
      dtype: d,
      tensors: { a: matrix(3, 2500), b: matrix(3, 2500), out: { dtype: d, shape: [3, 2500], check: true } },
      op: (t) => ({ op: 'add', a: t.a!, b: t.b!, out: t.out! }),
    },
    {
      name: `swiglu ${d} 2 x 3001`,
      kind: 'swiglu',
      dtype: d,
      tensors: {
        gate: matrix(2, 3001, 2),
        up: matrix(2, 3001),
        out: { dtype: d, shape: [2, 3001], check: true },
      },
      op: (t) => ({ op: 'swiglu', gate: t.gate!, up: t.up!, out: t.out! }),
    },
    {
      name: `embedding ${d} vocab 7 x 2100, 3 tokens`,
      kind: 'embedding',
      dtype: d,
      tensors: {
        table: matrix(7, 2100),
        tokens: { dtype: 'i32', shape: [3], data: ints([int(7), int(7), 6]) },
        out: { dtype: d, shape: [3, 2100], check: true },
      },
      op: (t) => ({ op: 'embedding', table: t.table!, tokens: t.tokens as Tensor<'i32'>, out: t.out! }),
    },
    {
      name: `rope ${d} ${tokens} x ${heads} x ${headDim}, partial rotary 96`,
      kind: 'rope',
      dtype: d,
      tensors: {
        x: matrix(tokens, heads * headDim),
        positions: { dtype: 'i32', shape: [tokens], data: ints([int(50), 700 + int(300)]) },
        out: { dtype: d, shape: [tokens, heads * headDim], check: true },
      },
      ...(d === 'f32' && { tolerance: 2e-4 }),
      op: (t) => ({
        op: 'rope',
        x: t.x!.view({ shape: [tokens, heads, headDim] }),
        positions: t.positions as Tensor<'i32'>,
        rope: { theta: 10000, rotaryDim: 96, scaling: { kind: 'default' } },
        out: t.out!.view({ shape: [tokens, heads, headDim] }),
      }),
    },
    ...manyTokenRopes(rand, d),
    {
      name: `kvAppend ${d} 3 tokens of ${kvWidth.join(' x ')}`,
      kind: 'kvAppend',
      dtype: d,
      tensors: {
        k: { dtype: d, shape: [3, ...kvWidth], data: floats(rand, d, 3 * 1152) },
        v: { dtype: d, shape: [3, ...kvWidth], data: floats(rand, d, 3 * 1152) },
        cacheK: { dtype: d, shape: [2, 4, ...kvWidth], data: floats(rand, d, 8 * 1152), check: true },
        cacheV: { dtype: d, shape: [2, 4, ...kvWidth], data: floats(rand, d, 8 * 1152), check: true },
        slots: { dtype: 'i32', shape: [3], data: ints([5, -1, int(4)]) },
      },
      op: kvAppendOf,
    },
  ];
}

/**
 * Attention, with each algorithm: chunked prefill of 3 queries against a paged cache of 2 rows
 * sharing a block (causal, GQA 4/2), NaN in every cache row no sequence uses; and a dense window
 * mask with a padding row (no keys: zeros and an LSE of -Infinity), q a view of fused qkv rows.
 */
function attentionCases(rand: () => number, d: DType): OpCase[] {
  const cases: OpCase[] = [];
  const int = (n: number) => Math.floor(rand() * n);
  const nan = fromNumbers([Number.NaN], d)[0]!;
  {
    const [batch, seqQ, headsQ, headsKV, headDim, blockSize, blocksPerSeq, blocks] = [
      2, 3, 4, 2, 64, 16, 3, 5,
    ];
    const table = ints([4, 1, 2, 4, 0, 3]); // block 4 shared by both rows
    const lens = ints([41, 3 + int(29)]);
    const kv = blocks * blockSize * headsKV * headDim;
    const cache = () => {
      const data = floats(rand, d, kv);
      const used = new Set<number>();
      for (let b = 0; b < batch; b++)
        for (let j = 0; j < lens[b]!; j++)
          used.add(table[b * blocksPerSeq + Math.floor(j / blockSize)]! * blockSize + (j % blockSize));
      const row = headsKV * headDim;
      for (let r = 0; r < blocks * blockSize; r++) if (!used.has(r)) data.fill(nan, r * row, (r + 1) * row);
      return data;
    };
    const tensors: Record<string, TensorSpec> = {
      q: {
        dtype: d,
        shape: [batch, seqQ, headsQ, headDim],
        data: floats(rand, d, batch * seqQ * headsQ * headDim),
      },
      k: { dtype: d, shape: [blocks, blockSize, headsKV, headDim], data: cache() },
      v: { dtype: d, shape: [blocks, blockSize, headsKV, headDim], data: cache() },
      seqLensK: { dtype: 'i32', shape: [batch], data: lens },
      blockTable: { dtype: 'i32', shape: [batch, blocksPerSeq], data: table },
      out: { dtype: d, shape: [batch, seqQ, headsQ, headDim], check: true },
      lse: { dtype: 'f32', shape: [batch, headsQ, seqQ], check: true },
    };
    cases.push(
      ...eachAlgorithm(`paged ${d} causal GQA 4/2, NaN in unused cache rows`, d, tensors, (t) => ({
        paged: { blockTable: t.blockTable as Tensor<'i32'>, blockSize, seqK: blockSize * blocksPerSeq },
        mask: { kind: 'causal' },
      })),
    );
  }
  {
    const [batch, seqQ, seqK, headsQ, headsKV, headDim] = [3, 4, 19, 6, 2, 64];
    const fusedRow = (headsQ + 2 * headsKV) * headDim; // q, k and v heads of one token
    const tensors: Record<string, TensorSpec> = {
      // q as the query heads of a fused qkv product's rows
      q: {
        dtype: d,
        shape: [batch, seqQ, headsQ, headDim],
        data: floats(rand, d, batch * seqQ * headsQ * headDim),
        view: {
          base: [batch, seqQ, headsQ + 2 * headsKV, headDim],
          strides: [seqQ * fusedRow, fusedRow, headDim, 1],
          offset: 0,
        },
      },
      k: {
        dtype: d,
        shape: [batch, seqK, headsKV, headDim],
        data: floats(rand, d, batch * seqK * headsKV * headDim),
      },
      v: {
        dtype: d,
        shape: [batch, seqK, headsKV, headDim],
        data: floats(rand, d, batch * seqK * headsKV * headDim),
      },
      seqLensK: { dtype: 'i32', shape: [batch], data: ints([seqK, 0, 5 + int(seqK - 5)]) },
      out: { dtype: d, shape: [batch, seqQ, headsQ, headDim], check: true },
      lse: { dtype: 'f32', shape: [batch, headsQ, seqQ], check: true },
    };
    cases.push(
      ...eachAlgorithm(`dense ${d} window 5/2 GQA 6/2, a padding row`, d, tensors, () => ({
        mask: { kind: 'window', left: 5, right: 2 },
      })),
    );
  }
  return cases;
}

/** The attention op over a case's q, k, v, seqLensK, out and lse, once per algorithm. */
function eachAlgorithm(
  what: string,
  d: DType,
  tensors: Readonly<Record<string, TensorSpec>>,
  extra: (t: Readonly<Record<string, Tensor>>) => Partial<AttentionOp>,
): OpCase[] {
  return ATTENTION_ALGORITHMS.map((algorithm) => ({
    name: `attention ${algorithm} ${what}`,
    kind: 'attention',
    dtype: d,
    tensors,
    op: (t) => ({
      op: 'attention',
      q: t.q!,
      k: t.k!,
      v: t.v!,
      seqLensK: t.seqLensK as Tensor<'i32'>,
      algorithm,
      out: t.out!,
      lse: t.lse as Tensor<'f32'>,
      ...extra(t),
    }),
  }));
}
