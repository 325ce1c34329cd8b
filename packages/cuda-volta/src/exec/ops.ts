import {
  type AttentionOp,
  attentionOpShape,
  type DType,
  isContiguous,
  type KvAppendOp,
  type LinearOp,
  type LseMergeOp,
  matrixLayout,
  type Op,
  type OpKind,
  type OpOf,
  type RopeOp,
  ropeAppendOp,
  ropeFrequencies,
  type SampleOp,
  type Tensor,
  type TensorDType,
  tensorBytesOf,
  unsupported,
} from '@fastattention/core';
import type { CudaDType } from '../input.js';
import { moduleName } from '../kernels.js';
import { type LaunchFeatures, launchDesc } from '../launch.js';
import { type DeviceMatrix, DTYPE_CODE } from '../native.js';
import type { LaunchPlan, Planner } from '../plan.js';
import type { AttentionChecks, CheckedInputs } from './attention-checks.js';
import type { CudaTensor } from './device-tensor.js';
import type { CudaExecutor, CudaStream } from './executor.js';
import { standardAttention } from './standard.js';

/** What running an op needs: the stream, temporaries in its order, and the attention planner. */
export interface OpContext {
  readonly executor: CudaExecutor;
  readonly stream: CudaStream;
  temp<T extends TensorDType>(dtype: T, shape: readonly number[]): CudaTensor<T>;
  readonly planner: Planner;
  /** Attention plans by problem (planning scores tile candidates: a decode step reuses its plan). */
  readonly plans: Map<string, LaunchPlan>;
  readonly features: LaunchFeatures;
  /** A zeroed buffer of at least n split-KV arrival counters (the fused combine resets them). */
  counters(n: number, stream: CudaStream): bigint;
  readonly cublasPath?: string;
  readonly gemm: 'cublasLt' | 'gemmEx';
  /** While a step is recorded: the attention checks its ops share (one check per step). */
  readonly checks?: AttentionChecks;
}

const ROW_KIND = {
  rmsNorm: 0,
  add: 1,
  swiglu: 2,
  gegluTanh: 3,
  gegluErf: 4,
  embedding: 5,
  addRmsNorm: 6,
} as const;

type Runner<K extends OpKind> = (op: OpOf<K>, c: OpContext) => void;

/** How each op is enqueued: every op of the contract. */
const RUN: { readonly [K in OpKind]: Runner<K> } = {
  linear,
  rmsNorm: (op, c) =>
    op.add
      ? rows(c, 'addRmsNorm', op.x, op.out, { b: op.weight, bRows: 0, eps: op.eps, c: op.add })
      : rows(c, 'rmsNorm', op.x, op.out, { b: op.weight, bRows: 0, eps: op.eps }),
  add: (op, c) => rows(c, 'add', op.a, op.out, { b: op.b }),
  swiglu: (op, c) => rows(c, 'swiglu', op.gate, op.out, { b: op.up }),
  geglu: (op, c) =>
    rows(c, op.approximate === 'none' ? 'gegluErf' : 'gegluTanh', op.gate, op.out, { b: op.up }),
  embedding: (op, c) =>
    staged(c, [[op.table, 1]], [[op.out, 1]], ([table], [out]) =>
      c.executor.context.enqueueOp(c.stream.id, 'rows', {
        kind: ROW_KIND.embedding,
        a: table,
        out,
        tokens: dense(c, op.tokens).address(),
        rows: op.out.shape[0],
        cols: op.out.shape[1],
        vocab: op.table.shape[0],
        eps: 0,
      }),
    ),
  rope,
  kvAppend,
  attention,
  lseMerge,
  sample,
  copy: (op, c) => copyTensor(c, op.src as CudaTensor, op.dst as CudaTensor),
};

/** Enqueues a validated op of this executor on the context's stream. */
export function runOp(op: Op, c: OpContext): void {
  (RUN[op.op] as Runner<OpKind>)(op as OpOf<OpKind>, c);
}

// --- Layouts -------------------------------------------------------------------------------------

type Staged = readonly [Tensor, number];

/**
 * Runs `body` on matrices over the tensors (their first `rowDims` dims as rows). A tensor whose
 * layout is not a strided matrix with unit inner stride goes through a dense temporary: copied in
 * for inputs, copied back after `body` for outputs. `apart`: an output sharing storage with that
 * input is computed into a temporary too.
 */
function staged(
  c: OpContext,
  inputs: readonly (Staged | undefined)[],
  outputs: readonly Staged[],
  body: (ins: DeviceMatrix[], outs: DeviceMatrix[]) => void,
  apart?: Tensor,
): void {
  const ins = inputs.map((s) => (s ? matrixOf(c, s[0] as CudaTensor, s[1]) : undefined));
  const outs = outputs.map(([t, dims]) => {
    const shares = apart !== undefined && (t as CudaTensor).storage === (apart as CudaTensor).storage;
    return matrixOf(c, t as CudaTensor, dims, shares);
  });
  body(
    ins.map((m) => m?.matrix as DeviceMatrix),
    outs.map((m) => m.matrix),
  );
  outs.forEach((m, i) => {
    if (m.tensor !== outputs[i]![0]) copyTensor(c, m.tensor, outputs[i]![0] as CudaTensor);
  });
}

/**
 * The tensor itself when its layout fits, else a dense temporary holding its elements (an output's
 * too: kvAppend writes only some rows of its cache, and the copy back writes every element).
 */
function fitted<T extends TensorDType>(c: OpContext, t: Tensor<T>, fits: boolean): CudaTensor<T> {
  if (fits) return t as CudaTensor<T>;
  const tmp = c.temp(t.dtype, t.shape);
  copyTensor(c, t as unknown as CudaTensor, tmp);
  return tmp;
}

/** The tensor as a matrix (its first `rowDims` dims as rows), through a dense temporary if needed. */
function matrixOf(
  c: OpContext,
  t: CudaTensor,
  rowDims: number,
  forceTemp = false,
): { matrix: DeviceMatrix; tensor: CudaTensor } {
  const m = forceTemp ? undefined : matrixLayout(t, rowDims);
  const tensor = fitted(c, t, m !== undefined);
  const rowStride = m ? m.rowStride : t.shape.slice(rowDims).reduce((a, b) => a * b, 1);
  return { tensor, matrix: { ptr: tensor.address(), rowStride, dtype: DTYPE_CODE[t.dtype as DType] } };
}

/** The tensor itself when dense, else a dense copy (index tensors: tokens, positions, slots). */
function dense<T extends TensorDType>(c: OpContext, t: Tensor<T>): CudaTensor<T> {
  return fitted(c, t, isContiguous(t));
}

/**
 * q as the flash kernels read it, or a dense copy: [batch, seqQ, heads, headDim] with the heads
 * packed and unit stride along the head dim, the batch and row strides free (a view of a fused
 * QKV product's rows passes as it is) but whole 16-byte units, as the kernels' 16-byte copies
 * need.
 */
function flashQuery(c: OpContext, t: Tensor): CudaTensor {
  const [, , heads, headDim] = t.shape;
  const [batchStride, rowStride, headStride, dimStride] = t.strides;
  const fits =
    dimStride === 1 &&
    (heads === 1 || headStride === headDim) &&
    batchStride! % 8 === 0 &&
    rowStride! % 8 === 0 &&
    (t as CudaTensor).address() % 16n === 0n;
  return fitted(c, t, fits);
}

/** A 3-D tensor with unit stride along its last dim (rope's rows, lseMerge's outs), or a dense copy. */
function unitInner(c: OpContext, t: Tensor): CudaTensor {
  return fitted(c, t, t.shape[2]! <= 1 || t.strides[2] === 1);
}

/** dst = src element by element (same shape), converting float dtypes; up to 4 dims, or dense. */
export function copyTensor(c: OpContext, src: CudaTensor, dst: CudaTensor): void {
  if (src.length === 0) return;
  const context = c.executor.context;
  if (src.dtype === dst.dtype && isContiguous(src) && isContiguous(dst)) {
    context.enqueueCopy(c.stream.id, dst.address(), src.address(), src.length * tensorBytesOf(src.dtype));
    return;
  }
  const shape = [...src.shape];
  let srcStrides = [...src.strides];
  let dstStrides = [...dst.strides];
  if (shape.length > 4) {
    // Collapse what is dense in both; past 4 dims after that, refuse.
    const collapsed = collapse(shape, srcStrides, dstStrides);
    if (collapsed.shape.length > 4) throw unsupported('copy', 'layouts of more than 4 non-collapsible dims');
    shape.splice(0, shape.length, ...collapsed.shape);
    srcStrides = collapsed.src;
    dstStrides = collapsed.dst;
  }
  while (shape.length < 4) {
    shape.unshift(1);
    srcStrides.unshift(0);
    dstStrides.unshift(0);
  }
  const code = (t: CudaTensor): number => (t.dtype === 'i32' ? 3 : DTYPE_CODE[t.dtype as DType]);
  context.enqueueOp(c.stream.id, 'copy', {
    src: src.address(),
    dst: dst.address(),
    srcDtype: code(src),
    dstDtype: code(dst),
    shape,
    srcStrides,
    dstStrides,
  });
}

function collapse(shape: number[], a: number[], b: number[]) {
  const out = { shape: [shape[0]!], src: [a[0]!], dst: [b[0]!] };
  for (let d = 1; d < shape.length; d++) {
    const last = out.shape.length - 1;
    if (out.src[last] === a[d]! * shape[d]! && out.dst[last] === b[d]! * shape[d]!) {
      out.shape[last]! *= shape[d]!;
      out.src[last] = a[d]!;
      out.dst[last] = b[d]!;
    } else {
      out.shape.push(shape[d]!);
      out.src.push(a[d]!);
      out.dst.push(b[d]!);
    }
  }
  return out;
}

// --- Ops -----------------------------------------------------------------------------------------

function rows(
  c: OpContext,
  kind: keyof typeof ROW_KIND,
  a: Tensor,
  out: Tensor,
  extra: { b: Tensor; bRows?: 0; eps?: number; c?: Tensor },
): void {
  const dims = Math.max(0, a.shape.length - 1);
  const bDims = extra.bRows === 0 ? 0 : dims;
  // addRmsNorm writes a (the residual stream): staged as an output, copied back before out.
  const inOut = extra.c !== undefined;
  staged(
    c,
    [inOut ? undefined : [a, dims], [extra.b, bDims], extra.c && [extra.c, dims]],
    inOut
      ? [
          [a, dims],
          [out, dims],
        ]
      : [[out, dims]],
    ([am, bm, cm], outs) =>
      c.executor.context.enqueueOp(c.stream.id, 'rows', {
        kind: ROW_KIND[kind],
        a: inOut ? outs[0] : am,
        b: bm,
        ...(cm && { c: cm }),
        out: outs[outs.length - 1],
        tokens: 0n,
        rows: a.length / (a.shape[a.shape.length - 1] || 1),
        cols: a.shape[a.shape.length - 1] ?? 1,
        vocab: 0,
        eps: extra.eps ?? 0,
      }),
  );
}

function linear(op: LinearOp, c: OpContext): void {
  const [m, k] = op.x.shape as [number, number];
  const n = op.weight.shape[0]!;
  const out = op.out as CudaTensor;
  if (m === 0 || n === 0) return;
  // cuBLAS multiplies one dtype: a weight of another is converted (correct, not fast).
  let weight = op.weight as CudaTensor;
  if (weight.dtype !== op.x.dtype) {
    const converted = c.temp(op.x.dtype, weight.shape);
    copyTensor(c, weight, converted);
    weight = converted;
  }
  // The GEMM writes a dense-row target: out itself, or a temporary when out is not a row-strided
  // matrix or shares storage with an operand (cuBLAS would read what it already overwrote).
  // cuBLAS reads and writes device memory only (its Hopper kernels copy through the tensor memory
  // accelerator): pinned operands go through device temporaries.
  const shares = out.storage === (op.x as CudaTensor).storage || out.storage === weight.storage;
  const layout = shares || out.memory === 'pinned' ? undefined : matrixLayout(out, 1);
  const target = layout ? out : c.temp(out.dtype, out.shape);
  const rowStride = layout ? layout.rowStride : n;
  // The bias rows (or zeros) first; the GEMM then accumulates onto them (beta = 1).
  let beta: 0 | 1 = 0;
  if (op.bias) {
    const b = op.bias as CudaTensor;
    copyTensor(c, b.view({ shape: [m, n], strides: [0, b.strides[0]!], offset: b.offset }), target);
    beta = 1;
  }
  if (k === 0) {
    if (!op.bias) copyTensor(c, zerosLike(c, target), target);
  } else {
    const x = matrixOf(c, op.x as CudaTensor, 1, op.x.memory === 'pinned');
    const w = matrixOf(c, weight, 1, weight.memory === 'pinned');
    c.executor.context.enqueueGemm(c.stream.id, {
      x: x.matrix,
      w: w.matrix,
      out: { ptr: target.address(), rowStride, dtype: DTYPE_CODE[target.dtype as DType] },
      m,
      n,
      k,
      beta,
      api: c.gemm === 'gemmEx' ? 1 : 0,
      ...(c.cublasPath !== undefined && { cublasPath: c.cublasPath }),
    });
  }
  if (target !== out) copyTensor(c, target, out);
}

/** A dense temporary of zeros shaped like t (a memset: capturable, unlike a host copy). */
function zerosLike(c: OpContext, t: CudaTensor): CudaTensor {
  const z = c.temp(t.dtype, t.shape);
  c.executor.context.enqueueMemset(c.stream.id, z.address(), t.length * tensorBytesOf(t.dtype));
  return z;
}

function rope(op: RopeOp, c: OpContext): void {
  const [tokens, heads, headDim] = op.x.shape as [number, number, number];
  const spec = op.rope;
  const dynamic = spec.scaling.kind === 'dynamic';
  const { invFreq, attentionScaling } = ropeFrequencies(spec);
  const x = unitInner(c, op.x);
  const out = unitInner(c, op.out);
  const appended = ropeAppendOp(op);
  const append = appended && out === op.out ? fusedAppend(c, appended) : undefined;
  c.executor.context.enqueueOp(c.stream.id, 'rope', {
    x: { ptr: x.address(), rowStride: x.strides[0], dtype: DTYPE_CODE[x.dtype as DType] },
    out: { ptr: out.address(), rowStride: out.strides[0], dtype: DTYPE_CODE[out.dtype as DType] },
    xHeadStride: x.strides[1],
    outHeadStride: out.strides[1],
    positions: dense(c, op.positions).address(),
    tokens,
    heads,
    headDim,
    rotaryDim: spec.rotaryDim,
    attentionScaling,
    dynamic,
    theta: spec.theta,
    factor: dynamic ? (spec.scaling as { factor: number }).factor : 1,
    originalMax: dynamic ? (spec.scaling as { originalMaxPositions: number }).originalMaxPositions : 1,
    seqLen: op.seqLen ?? 0,
    invFreq,
    ...(append && { append }),
  });
  if (out !== op.out) copyTensor(c, out, op.out as CudaTensor);
  if (appended && !append) kvAppend(appended, c);
}

/**
 * rope's append as the fused kernel takes it: out's key heads, v and both caches each a matrix of
 * heads * headDim columns as they stand (else the op runs rope, then kvAppend through temporaries).
 */
function fusedAppend(c: OpContext, op: KvAppendOp) {
  const [k, v] = [matrixLayout(op.k, 1), matrixLayout(op.v, 1)];
  const [cacheK, cacheV] = [matrixLayout(op.cacheK, 2), matrixLayout(op.cacheV, 2)];
  if (!k || !v || !cacheK || !cacheV) return undefined;
  const matrix = (t: Tensor, m: { rowStride: number }) => ({
    ptr: (t as CudaTensor).address(),
    rowStride: m.rowStride,
    dtype: DTYPE_CODE[t.dtype as DType],
  });
  return {
    v: matrix(op.v, v),
    cacheK: matrix(op.cacheK, cacheK),
    cacheV: matrix(op.cacheV, cacheV),
    slots: dense(c, op.slots).address(),
    heads: op.k.shape[1]!,
    cacheRows: cacheK.rows,
  };
}

function kvAppend(op: KvAppendOp, c: OpContext): void {
  const tokens = op.k.shape[0]!;
  const width = op.k.shape[1]! * op.k.shape[2]!;
  const cacheRows = op.cacheK.shape[0]! * op.cacheK.shape[1]!;
  staged(
    c,
    [
      [op.k, 1],
      [op.v, 1],
    ],
    [
      [op.cacheK, 2],
      [op.cacheV, 2],
    ],
    ([k, v], [cacheK, cacheV]) =>
      c.executor.context.enqueueOp(c.stream.id, 'kvAppend', {
        k,
        v,
        cacheK,
        cacheV,
        slots: dense(c, op.slots).address(),
        tokens,
        width,
        cacheRows,
      }),
  );
}

function lseMerge(op: LseMergeOp, c: OpContext): void {
  const [parts, rowCount, d] = op.outs.shape as [number, number, number];
  const outs = unitInner(c, op.outs);
  const lses = op.lses as CudaTensor;
  const lse = op.lse as CudaTensor | undefined;
  staged(c, [], [[op.out, 1]], (_, [out]) =>
    c.executor.context.enqueueOp(c.stream.id, 'lseMerge', {
      outs: outs.address(),
      lses: lses.address(),
      out,
      lse: lse ? lse.address() : 0n,
      parts,
      rows: rowCount,
      d,
      outsPartStride: outs.strides[0],
      outsRowStride: outs.strides[1],
      lsesPartStride: lses.strides[0],
      lsesRowStride: lses.strides[1],
      lseStride: lse ? lse.strides[0] : 0,
    }),
  );
}

/** Tokens per slice of a row in the sample kernels (kFaSampleSlice, kernels/common/op_params.h). */
const SAMPLE_SLICE = 2048;

/**
 * Sampling on the device (kernels/common/sample.cu): the kernels read the logits where they are,
 * each row in slices, then one CTA per row; only the chosen tokens (and log-probabilities) are
 * written, for the caller to read.
 */
function sample(op: SampleOp, c: OpContext): void {
  const [rowCount, vocab] = op.logits.shape as [number, number];
  if (rowCount === 0) return;
  const logits = matrixOf(c, op.logits as CudaTensor, 1).matrix;
  const counts = op.counts && intRows(c, op.counts as CudaTensor);
  const tokens = isContiguous(op.tokens as CudaTensor)
    ? (op.tokens as CudaTensor)
    : c.temp('i32', [rowCount]);
  const logprobsTarget = op.logprobs as CudaTensor | undefined;
  const logprobs =
    logprobsTarget && (isContiguous(logprobsTarget) ? logprobsTarget : c.temp('f32', [rowCount]));
  const param = (t: Tensor) => dense(c, t).address();
  c.executor.context.enqueueOp(c.stream.id, 'sample', {
    logits: logits.ptr,
    logitsRowStride: logits.rowStride,
    rows: rowCount,
    vocab,
    temperature: param(op.params.temperature),
    topK: param(op.params.topK),
    topP: param(op.params.topP),
    minP: param(op.params.minP),
    repetitionPenalty: param(op.params.repetitionPenalty),
    presencePenalty: param(op.params.presencePenalty),
    frequencyPenalty: param(op.params.frequencyPenalty),
    seed: param(op.params.seed),
    counters: param(op.counters),
    counts: counts ? counts.ptr : 0n,
    countsRowStride: counts ? counts.rowStride : 0,
    tokens: tokens.address(),
    logprobs: logprobs ? logprobs.address() : 0n,
    // The penalized logits in double (2 f32 elements each), then each slice's summary (4 doubles).
    work: c.temp('f32', [rowCount, 2 * (vocab + 4 * Math.ceil(vocab / SAMPLE_SLICE))]).address(),
  });
  if (tokens !== op.tokens) copyTensor(c, tokens, op.tokens as CudaTensor);
  if (logprobsTarget && logprobs !== logprobsTarget) copyTensor(c, logprobs!, logprobsTarget);
}

/** An i32 [rows, cols] tensor with unit inner stride, or a dense copy. */
function intRows(c: OpContext, t: CudaTensor): { ptr: bigint; rowStride: number } {
  const m = matrixLayout(t, 1);
  return { ptr: fitted(c, t, m !== undefined).address(), rowStride: m ? m.rowStride : t.shape[1]! };
}

/** An attention op's problem: its shape, dtype and mask (what its plan depends on). */
function attentionProblem(op: AttentionOp) {
  return {
    ...attentionOpShape(op),
    dtype: op.q.dtype as CudaDType,
    mask: op.mask ?? ({ kind: 'none' } as const),
  };
}

/** The launch plan of an attention op (cached by problem: planning scores tile candidates). */
function attentionPlan(op: AttentionOp, c: OpContext): LaunchPlan {
  const problem = attentionProblem(op);
  const { batch, seqQ, seqK, headsQ, headsKV, headDim, dtype, mask } = problem;
  const key = `${batch}/${seqQ}/${seqK}/${headsQ}/${headsKV}/${headDim}/${dtype}/${op.paged ? 1 : 0}/${JSON.stringify(mask)}`;
  let plan = c.plans.get(key);
  if (!plan) {
    plan = c.planner.plan({ ...problem, ...(op.paged && { pagedKV: true }) });
    if (c.plans.size >= 256) c.plans.delete(c.plans.keys().next().value!);
    c.plans.set(key, plan);
  }
  return plan;
}

/**
 * Makes up front what an op would otherwise make the first time it runs, which a CUDA-graph
 * capture cannot: the cuBLAS handle, the split-KV counters, a kernel's large shared-memory setting.
 */
export function prepareOp(op: Op, c: OpContext): void {
  if (op.op === 'linear' || (op.op === 'attention' && op.algorithm === 'standard')) {
    c.executor.context.prepareBlas(c.cublasPath);
  } else if (op.op === 'attention') {
    const plan = attentionPlan(op, c);
    if (plan.splitKV > 1 && c.features.fusedCombine)
      c.counters(plan.grid[0] * plan.grid[1] * op.q.shape[0]!, c.stream);
    const { config, kernel, threads } = plan;
    c.executor.context.functionInfo(moduleName(config), kernel, threads, config.sharedBytes);
  }
}

/** An attention op's dense operands, and its seqLensK and block table as checked on the device. */
export interface AttentionOperands {
  readonly q: CudaTensor;
  readonly k: CudaTensor;
  readonly v: CudaTensor;
  /** op.out, or a dense temporary copied to it after the op. */
  readonly out: CudaTensor;
  /** op.lse, or a dense temporary copied to it after the op; absent when the op wants none. */
  readonly lse?: CudaTensor<'f32'>;
  readonly lens: CudaTensor<'i32'>;
  readonly table?: CudaTensor<'i32'>;
  readonly blocksPerSeq: number;
}

/**
 * Dense operands for the attention kernels. seqLensK and a paged table are device data: checked
 * and sanitized on the device first, so a bad value fails the op (reported at the next read or
 * synchronization) instead of reading outside.
 */
function attentionOperands(op: AttentionOp, c: OpContext): AttentionOperands {
  const blocksPerSeq = op.paged ? op.paged.blockTable.shape[1]! : 0;
  const { lens, table } = checkedInputs(op, c);
  const lse = op.lse && (isContiguous(op.lse) ? (op.lse as CudaTensor<'f32'>) : c.temp('f32', op.lse.shape));
  return {
    q: op.algorithm === 'standard' ? dense(c, op.q) : flashQuery(c, op.q),
    k: dense(c, op.k),
    v: dense(c, op.v),
    out: isContiguous(op.out) ? (op.out as CudaTensor) : c.temp(op.out.dtype, op.out.shape),
    ...(lse && { lse }),
    lens,
    ...(table && { table }),
    blocksPerSeq,
  };
}

/** The op's seqLensK and block table checked on the device, or an earlier op's check of the same views. */
function checkedInputs(op: AttentionOp, c: OpContext): CheckedInputs {
  const source = c.checks?.reuse.get(op);
  const earlier = source && c.checks!.done.get(source);
  if (earlier) return earlier;
  const { batch, seqK } = attentionOpShape(op);
  const paged = op.paged;
  const lens = c.temp('i32', [batch]);
  const blocksPerSeq = paged ? paged.blockTable.shape[1]! : 0;
  const table = paged ? c.temp('i32', [batch, blocksPerSeq]) : undefined;
  c.executor.context.enqueueOp(c.stream.id, 'checkAttention', {
    seqLens: dense(c, op.seqLensK).address(),
    seqLensOut: lens.address(),
    table: paged ? dense(c, paged.blockTable).address() : 0n,
    tableOut: table ? table.address() : 0n,
    batch,
    seqK,
    blocksPerSeq,
    blockSize: paged ? paged.blockSize : 1,
    numBlocks: paged ? op.k.shape[0]! : 0,
  });
  const checked = { lens, ...(table && { table }) };
  c.checks?.done.set(op, checked);
  return checked;
}

function attention(op: AttentionOp, c: OpContext): void {
  const operands = attentionOperands(op, c);
  if (op.algorithm === 'standard') standardAttention(op, operands, c);
  else flashAttention(op, operands, c);
  if (operands.out !== op.out) copyTensor(c, operands.out, op.out as CudaTensor);
  if (op.lse && operands.lse !== op.lse) copyTensor(c, operands.lse!, op.lse as CudaTensor);
}

function flashAttention(op: AttentionOp, operands: AttentionOperands, c: OpContext): void {
  const problem = attentionProblem(op);
  const { batch, seqQ, headsQ, headDim } = problem;
  const paged = op.paged;
  const { q, k, v, out, lens, table, blocksPerSeq } = operands;
  // The kernels write an LSE whether or not the op wants one.
  const lse = operands.lse ?? c.temp('f32', [batch, headsQ, seqQ]);
  const plan = attentionPlan(op, c);
  let partO = 0n;
  let partLse = 0n;
  if (plan.splitKV > 1) {
    const rowCount = batch * headsQ * seqQ;
    partO = c.temp('f32', [plan.splitKV, rowCount, headDim]).address();
    partLse = c.temp('f32', [plan.splitKV, rowCount]).address();
  }
  const counters =
    plan.splitKV > 1 && c.features.fusedCombine
      ? c.counters(plan.grid[0] * plan.grid[1] * batch, c.stream)
      : 0n;
  const input = {
    ...problem,
    scale: op.scale ?? 1 / Math.sqrt(headDim),
    q: { ptr: q.address() },
    k: { ptr: k.address(), length: k.length },
    v: { ptr: v.address() },
    ...(paged && { pagedKV: { blockSize: paged.blockSize, blocksPerSeq } }),
  };
  const desc = launchDesc(
    input as never,
    plan,
    {
      out: out.address(),
      lse: lse.address(),
      seqLensK: lens.address(),
      partO,
      partLse,
      counters,
      blockTable: table ? table.address() : 0n,
    },
    c.features,
    { batch: q.strides[0]!, row: q.strides[1]! },
  );
  c.executor.context.enqueueAttention(c.stream.id, desc);
}
