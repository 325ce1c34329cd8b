import {
  type AttentionCalls,
  type AttentionOp,
  type AttentionOutput,
  attentionHandler,
  attentionOpShape,
  type DType,
  elementCount,
  HostExecutor,
  HostTensor,
  isContiguous,
  matrixLayout,
  type Op,
  type OpBatcher,
  type OpHandlers,
  type RopeFrequencies,
  type RopeOp,
  ropeAppendOp,
  ropeFrequencies,
  type Tensor,
} from '@fastattention/core';
import type { NativeChainPlan, NativeMatrix, NativePool, NativePreparedOps } from './native.js';

const DTYPE_CODE: Record<DType, 0 | 1 | 2> = { f32: 0, f16: 1, bf16: 2 };

/**
 * The cpu executor: every op runs natively on the backend's thread pool, on the tensors' own
 * storage (host memory is this backend's device memory). A copy op through permuting views runs as
 * native row copies; other ops' tensors whose layout is not a strided matrix (a transposing view,
 * say), and the sampler's small parameter rows, are copied on the JS thread.
 */
export function createCpuExecutor(
  pool: NativePool,
  dtypes: readonly DType[],
  attention: AttentionCalls<AttentionOutput>,
  planAttention?: (op: AttentionOp) => NativeChainPlan,
): HostExecutor {
  const nativeCalls = (op: Op) => nativeCallsOf(op, planAttention);
  const run = (kind: string, args: object): Promise<void> => pool.runOp(kind, args);
  // Attention runs as its native chain calls where they fit (the kernels read q in place and write
  // out and lse in place); the host-array call, with its copies on this thread, is the fallback
  // for 'standard', empty problems and layouts the chain does not take.
  const hostCall = attentionHandler(attention);
  const handlers: OpHandlers = {
    attention: Object.assign(
      async (op: AttentionOp) => {
        const calls = nativeCalls(op);
        if (calls) return pool.runOps(calls);
        return hostCall(op);
      },
      { algorithms: hostCall.algorithms },
    ),

    linear: async (op) => {
      const [m, k] = op.x.shape as [number, number];
      const n = op.weight.shape[0]!;
      if (k === 0) {
        // An empty sum: out is the bias (or zeros) in every row.
        const bias = op.bias ? host(op.bias).values() : new Float64Array(n);
        host(op.out).store(Float64Array.from({ length: m * n }, (_, i) => bias[i % n]!));
        return;
      }
      await native(op);
    },
    // With `add`: the residual add, then the norm (two passes here; cuda fuses them).
    rmsNorm: native,
    add: native,
    swiglu: native,
    geglu: native,
    embedding: native,
    kvAppend: native,
    copy: async (op) => {
      if (op.src.dtype !== 'i32' && op.dst.dtype !== 'i32') return native(op);
      const calls = nativeCalls(op);
      if (calls) return pool.runOps(calls);
      host(op.dst).writeRaw(host(op.src).raw()); // i32 through a layout the row copies do not take
    },

    rope: async (op) => {
      const calls = nativeCalls(op);
      if (calls) return pool.runOps(calls);
      // frequencies that depend on the positions (dynamic scaling), or a layout that needs a copy
      const positions = host(op.positions).raw() as Int32Array;
      // the length 'dynamic' sees: one past the largest position, at least 1 (as core's rope)
      let length = 1;
      for (const p of positions) length = Math.max(length, p + 1);
      const frequencies = ropeFrequencies(op.rope, op.seqLen ?? length);
      await withTensors([[host(op.x), isHeadRows]], [[host(op.out), isHeadRows]], ([x], [out]) =>
        pool.runOps([ropeCall(op, x!, out!, positions, frequencies)]),
      );
      const appended = ropeAppendOp(op);
      if (appended) await native(appended, asRopeAppend);
    },

    sample: async (op) => {
      const [rowCount, vocab] = op.logits.shape as [number, number];
      const raw = (t: Tensor) => host(t).raw();
      const tokens = new Int32Array(rowCount);
      const logprobs = op.logprobs ? new Float32Array(rowCount) : undefined;
      const intRows = (t: HostTensor): boolean => t.shape[1]! <= 1 || t.strides[1] === 1;
      const counts = op.counts && (intRows(host(op.counts)) ? host(op.counts) : scratchOf(host(op.counts)));
      await withMatrices([[host(op.logits), 1]], [], ([logits]) =>
        run('sample', {
          rows: rowCount,
          vocab,
          logits: logits!,
          ...Object.fromEntries(Object.entries(op.params).map(([name, t]) => [name, raw(t)])),
          counters: raw(op.counters),
          counts: counts && { data: counts.storage(), offset: counts.offset, rowStride: counts.strides[0] },
          tokens,
          logprobs,
        }),
      );
      host(op.tokens).writeRaw(tokens);
      if (op.logprobs && logprobs) host(op.logprobs).writeRaw(logprobs);
    },

    lseMerge: async (op) => {
      const [parts, rowCount, d] = op.outs.shape as [number, number, number];
      const any = (): boolean => true;
      const outputs: Fitted[] = [[host(op.out), isMatrix]];
      if (op.lse) outputs.push([host(op.lse), any]);
      await withTensors(
        [
          [host(op.outs), isHeadRows],
          [host(op.lses), any],
        ],
        outputs,
        ([outs, lses], [out, lse]) =>
          run('lseMerge', {
            parts,
            rows: rowCount,
            d,
            outs: {
              data: outs!.storage(),
              offset: outs!.offset,
              partStride: outs!.strides[0],
              rowStride: outs!.strides[1],
            },
            lses: {
              data: lses!.storage(),
              offset: lses!.offset,
              partStride: lses!.strides[0],
              rowStride: lses!.strides[1],
            },
            out: matrixOf(out!, 1)!,
            lse: lse && { data: lse.storage(), offset: lse.offset, stride: lse.strides[0] },
          }),
      );
    },
  };

  /**
   * An op as its native calls over the tensors' own storage; where a layout does not fit them (a
   * transposing view, an output sharing an input's storage), over dense copies of the op's
   * tensors, its outputs written back after.
   */
  async function native(op: Op, relabel = (calls: NativeCall[]) => calls): Promise<void> {
    const calls = nativeCalls(op);
    if (calls) return pool.runOps(relabel(calls));
    const { dense, writeBack } = densified(op);
    await pool.runOps(relabel(nativeCalls(dense)!));
    writeBack();
  }

  return new HostExecutor('cpu', handlers, {
    dtypes,
    // the calls are the ones nativeCalls made
    batcher: {
      plan: nativeCalls,
      prepare: (calls: NativeCall[]) => pool.prepareOps(calls),
      run: (prepared: NativePreparedOps) => pool.runPrepared(prepared),
    } as OpBatcher<NativeCall, NativePreparedOps> as OpBatcher,
  });
}

type NativeCall = readonly [string, object];

/** A rope op's fused append: kvAppend's calls, reporting a slot past the cache as rope.append.slots. */
const asRopeAppend = (calls: NativeCall[]): NativeCall[] =>
  calls.map(([kind, args]) => [kind === 'kvAppend' ? 'ropeAppend' : kind, args]);

/** The tensors each op writes, in write-back order (rmsNorm's x holds the residual sum). */
const OUTPUTS: Partial<Record<Op['op'], readonly string[]>> = {
  linear: ['out'],
  rmsNorm: ['x', 'out'],
  add: ['out'],
  swiglu: ['out'],
  geglu: ['out'],
  embedding: ['out'],
  kvAppend: ['cacheK', 'cacheV'],
  copy: ['dst'],
};

/**
 * The op over dense copies of its tensors, and the write-back. Outputs named by the same tensor
 * share a copy (kvAppend may write k and v into one cache); an input never shares an output's
 * copy, so an output no longer aliases what it reads (linear's out may be x).
 */
function densified(op: Op): { dense: Op; writeBack(): void } {
  const outputs = new Set(OUTPUTS[op.op] ?? []);
  const copies = { input: new Map<Tensor, HostTensor>(), output: new Map<Tensor, HostTensor>() };
  const dense: Record<string, unknown> = { ...op };
  for (const [field, value] of Object.entries(op)) {
    if (!(value instanceof HostTensor)) continue;
    const map = outputs.has(field) ? copies.output : copies.input;
    if (!map.has(value)) map.set(value, scratchOf(value));
    dense[field] = map.get(value);
  }
  return {
    dense: dense as unknown as Op,
    writeBack: () => {
      for (const field of OUTPUTS[op.op] ?? []) {
        const t = (op as unknown as Record<string, HostTensor | undefined>)[field];
        if (t) t.writeRaw(copies.output.get(t)!.raw());
      }
    },
  };
}

/**
 * How an op runs as native calls over its tensors' own storage (one op alone, or a step graph's
 * run of ops handed to the pool at once); undefined when it needs JavaScript (rope's frequencies,
 * attention's planning, sample's results, a layout that needs a dense copy).
 */
function nativeCallsOf(
  op: Op,
  planAttention?: (op: AttentionOp) => NativeChainPlan,
): NativeCall[] | undefined {
  const rowsOf = (t: Tensor) => matrixOf(host(t), Math.max(0, t.shape.length - 1));
  const elementwise = (kind: string, a: Tensor, b: Tensor, out: Tensor): NativeCall[] | undefined => {
    const [am, bm, om] = [rowsOf(a), rowsOf(b), rowsOf(out)];
    return am && bm && om ? [[kind, { a: am, b: bm, out: om }]] : undefined;
  };
  const apart = (out: Tensor, ...inputs: Tensor[]) => !inputs.some((t) => out.sharesStorage(t));
  switch (op.op) {
    case 'linear': {
      const [x, weight, out] = [
        matrixOf(host(op.x), 1),
        matrixOf(host(op.weight), 1),
        matrixOf(host(op.out), 1),
      ];
      const bias = op.bias && matrixOf(host(op.bias), 0);
      if (!x || !weight || !out || (op.bias && !bias) || op.x.shape[1] === 0) return undefined;
      if (!apart(op.out, op.x, op.weight)) return undefined;
      return [['linear', { x, weight, bias, out }]];
    }
    case 'rmsNorm': {
      const [x, out, weight] = [rowsOf(op.x), rowsOf(op.out), matrixOf(host(op.weight), 0)];
      if (!x || !out || !weight) return undefined;
      const add = op.add && elementwise('add', op.x, op.add, op.x);
      if (op.add && !add) return undefined;
      return [...(add ?? []), ['rmsNorm', { a: x, b: weight, out, eps: op.eps }]];
    }
    case 'add':
      return elementwise('add', op.a, op.b, op.out);
    case 'swiglu':
      return elementwise('swiglu', op.gate, op.up, op.out);
    case 'geglu':
      return elementwise(op.approximate === 'none' ? 'gegluErf' : 'gegluTanh', op.gate, op.up, op.out);
    case 'embedding': {
      const [table, out] = [matrixOf(host(op.table), 1), matrixOf(host(op.out), 1)];
      return table && out ? [['embedding', { a: table, out, tokens: host(op.tokens).rawView() }]] : undefined;
    }
    case 'kvAppend': {
      const [k, v] = [matrixOf(host(op.k), 1), matrixOf(host(op.v), 1)];
      const [cacheK, cacheV] = [matrixOf(host(op.cacheK), 2), matrixOf(host(op.cacheV), 2)];
      if (!k || !v || !cacheK || !cacheV) return undefined;
      return [['kvAppend', { k, v, cacheK, cacheV, slots: host(op.slots).rawView() }]];
    }
    case 'rope': {
      const frequencies = fixedRopeFrequencies(op);
      const [x, out] = [host(op.x), host(op.out)];
      if (!frequencies || !isHeadRows(x) || !isHeadRows(out)) return undefined;
      const appended = ropeAppendOp(op);
      const kv = appended && nativeCallsOf(appended);
      const append = kv && asRopeAppend(kv);
      if (appended && !append) return undefined;
      // the positions are read when the call runs: a replayed step sees those written before it
      return [
        ropeCall(op, x, out, host(op.positions).rawView() as Int32Array, frequencies),
        ...(append ?? []),
      ];
    }
    case 'copy':
      return apart(op.dst, op.src) ? copyCalls(host(op.src), host(op.dst)) : undefined;
    case 'attention': {
      // empty problems (no rows, keys or dims) keep the call path, which answers them without kernels
      const empty = Object.values(attentionOpShape(op)).some((n) => n === 0);
      if (op.algorithm === 'standard' || !planAttention || empty) return undefined;
      return attentionCalls(op, planAttention(op));
    }
    default:
      return undefined;
  }
}

/**
 * Attention inside a step's native chain: the kernels read seqLensK and the block table when the
 * op runs, check them and classify the tiles there, so a decode step never returns to JavaScript.
 * q (a view of the qkv rows) is copied dense first; the other tensors must be dense already.
 */
function attentionCalls(op: AttentionOp, plan: NativeChainPlan): NativeCall[] | undefined {
  const [k, v, out, lens] = [host(op.k), host(op.v), host(op.out), host(op.seqLensK)];
  const lse = op.lse && host(op.lse);
  if (![k, v, out, lens, ...(lse ? [lse] : [])].every((t) => isContiguous(t))) return undefined;
  const table = op.paged && host(op.paged.blockTable);
  const [tableRows, tableCols] = (table?.shape ?? [0, 0]) as [number, number];
  if (table && tableCols > 1 && table.strides[1] !== 1) return undefined;
  const calls: NativeCall[] = [];
  let q = host(op.q);
  if (!isContiguous(q)) {
    const dense = HostTensor.contiguous(q.dtype, q.shape, q.memory);
    const [a, o] = [matrixOf(q, 2), matrixOf(dense, 2)];
    if (!a || !o) return undefined;
    calls.push(['copy', { a, out: o }]);
    q = dense;
  }
  const tableStride = table && tableRows > 1 ? table.strides[0]! : tableCols;
  calls.push([
    'attention',
    {
      ...plan,
      q: elements(q),
      k: elements(k),
      v: elements(v),
      out: elements(out),
      ...(lse && { lse: elements(lse) }),
      seqLensK: elements(lens),
      ...(table && {
        blockTable: table
          .storage()
          .subarray(table.offset, table.offset + (tableRows - 1) * tableStride + tableCols),
        blockTableRowStride: tableStride,
      }),
    },
  ]);
  return calls;
}

/** A dense tensor's elements as a view of its storage. */
function elements(t: HostTensor) {
  return t.storage().subarray(t.offset, t.offset + elementCount(t.shape));
}

/** The native rope call over x and out (head rows), with the positions and frequencies given. */
function ropeCall(
  op: RopeOp,
  x: HostTensor,
  out: HostTensor,
  positions: Int32Array,
  { invFreq, attentionScaling }: RopeFrequencies,
): NativeCall {
  const [tokens, heads, headDim] = op.x.shape as [number, number, number];
  return [
    'rope',
    {
      tokens,
      heads,
      headDim,
      rotaryDim: op.rope.rotaryDim,
      positions,
      invFreq,
      attentionScaling,
      x: headRows(x),
      out: headRows(out),
    },
  ];
}

const ropeFrequencyCache = new WeakMap<RopeOp['rope'], Map<number | undefined, RopeFrequencies>>();

/**
 * A rope op's frequencies when they do not depend on its positions (every scaling but dynamic
 * NTK without a given seqLen), computed once per spec and seqLen.
 */
function fixedRopeFrequencies(op: RopeOp): RopeFrequencies | undefined {
  if (op.rope.scaling.kind === 'dynamic' && op.seqLen === undefined) return undefined;
  let bySeqLen = ropeFrequencyCache.get(op.rope);
  if (!bySeqLen) {
    bySeqLen = new Map();
    ropeFrequencyCache.set(op.rope, bySeqLen);
  }
  let frequencies = bySeqLen.get(op.seqLen);
  if (!frequencies) {
    frequencies = ropeFrequencies(op.rope, op.seqLen);
    bySeqLen.set(op.seqLen, frequencies);
  }
  return frequencies;
}

function host<T extends Tensor>(t: T): HostTensor {
  return t as unknown as HostTensor;
}

/** An input: the tensor and how many leading dims form its rows. */
type In = readonly [HostTensor, number] | undefined;
/** An output: the same, and the inputs whose storage it must not share (its writes would be read). */
type Out = readonly [HostTensor, number, ...HostTensor[]];

/**
 * Runs `body` on matrices over the tensors' storage; a tensor whose layout is not a strided matrix,
 * or an output sharing storage with an input it names, goes through a dense copy (withTensors).
 */
async function withMatrices(
  inputs: readonly In[],
  outputs: readonly Out[],
  body: (ins: (NativeMatrix | undefined)[], outs: NativeMatrix[]) => Promise<void>,
): Promise<void> {
  const present = inputs.filter((i): i is NonNullable<In> => i !== undefined);
  const isMatrix = (dims: number) => (t: HostTensor) => matrixOf(t, dims) !== undefined;
  await withTensors(
    present.map(([t, dims]) => [t, isMatrix(dims)] as const),
    outputs.map(
      ([t, dims, ...apart]) =>
        [t, (u: HostTensor) => !apart.some((a) => u.storage() === a.storage()) && isMatrix(dims)(u)] as const,
    ),
    (ins, outs) => {
      let next = 0;
      return body(
        inputs.map((i) => (i ? matrixOf(ins[next++]!, i[1]) : undefined)),
        outs.map((t, i) => matrixOf(t, outputs[i]![1])!),
      );
    },
  );
}

/** A tensor and the layout rule an op needs of it. */
type Fitted = readonly [HostTensor, (t: HostTensor) => boolean];

/** Runs `body` on the tensors, each one whose layout does not fit its rule through a dense copy. */
async function withTensors(
  inputs: readonly Fitted[],
  outputs: readonly Fitted[],
  body: (ins: HostTensor[], outs: HostTensor[]) => Promise<void>,
): Promise<void> {
  const ins = inputs.map(([t, fits]) => asDense(t, fits));
  const outs = outputs.map(([t, fits]) => asDense(t, fits));
  await body(ins, outs);
  outs.forEach((t, i) => {
    if (t !== outputs[i]![0]) outputs[i]![0].writeRaw(t.raw());
  });
}

/** The tensor itself when its layout fits, else a dense copy of it. */
function asDense(t: HostTensor, fits: (t: HostTensor) => boolean): HostTensor {
  return fits(t) ? t : scratchOf(t);
}

/** A dense copy (an output's too: kvAppend writes only some rows of its cache). */
function scratchOf(t: HostTensor): HostTensor {
  const dense = HostTensor.contiguous(t.dtype, t.shape, t.memory);
  dense.writeRaw(t.raw());
  return dense;
}

/** The tensor as a native matrix over its storage (core's matrixLayout), or undefined. */
export function matrixOf(t: HostTensor, rowDims: number): NativeMatrix | undefined {
  const m = matrixLayout(t, rowDims);
  return (
    m && {
      data: t.storage() as Float32Array | Uint16Array,
      dtype: DTYPE_CODE[t.dtype as DType],
      offset: t.offset,
      ...m,
    }
  );
}

/** Most native row copies one copy op becomes before it is left to the JS thread. */
const MAX_COPY_PIECES = 1 << 16;

/**
 * src copied into dst (same shape) as native row copies: one where both are row matrices, else one
 * per index of the leading dim, recursively (a permuting view of a weight, say, becomes one copy
 * per head). Undefined where a piece is no matrix (a transposed 2-D view) or i32 meets a float.
 */
function copyCalls(
  src: HostTensor,
  dst: HostTensor,
  budget = { left: MAX_COPY_PIECES },
): NativeCall[] | undefined {
  if ((src.dtype === 'i32') !== (dst.dtype === 'i32')) return undefined;
  // i32 rows travel as f32 storage: the native copy of equal dtypes is bit for bit
  const rows = (t: HostTensor) =>
    t.dtype === 'i32' ? int32Rows(t) : matrixOf(t, Math.max(0, t.shape.length - 1));
  const [a, out] = [rows(src), rows(dst)];
  if (a && out) return --budget.left < 0 ? undefined : [['copy', { a, out }]];
  if (src.shape.length < 2) return undefined;
  const slice = (t: HostTensor, i: number) =>
    t.view({ shape: t.shape.slice(1), strides: t.strides.slice(1), offset: t.offset + i * t.strides[0]! });
  const calls: NativeCall[] = [];
  for (let i = 0; i < src.shape[0]!; i++) {
    const piece = copyCalls(slice(src, i), slice(dst, i), budget);
    if (!piece) return undefined;
    calls.push(...piece);
  }
  return calls;
}

/** An i32 tensor's rows as a matrix of f32 storage over the same bytes. */
function int32Rows(h: HostTensor): NativeMatrix | undefined {
  const m = matrixLayout(h, Math.max(0, h.shape.length - 1));
  const ints = h.storage() as Int32Array;
  return (
    m && {
      data: new Float32Array(ints.buffer, ints.byteOffset, ints.length),
      dtype: 0,
      offset: h.offset,
      ...m,
    }
  );
}

/** [a, b, c] with unit stride along c (rope's [tokens, heads, headDim], lseMerge's outs). */
function isHeadRows(t: HostTensor): boolean {
  return t.shape[2]! <= 1 || t.strides[2] === 1;
}

function headRows(t: HostTensor): object {
  return {
    data: t.storage(),
    dtype: DTYPE_CODE[t.dtype as DType],
    offset: t.offset,
    tokenStride: t.strides[0],
    headStride: t.strides[1],
  };
}

function isMatrix(t: HostTensor): boolean {
  return matrixOf(t, 1) !== undefined;
}
