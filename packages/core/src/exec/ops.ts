import type { MaskSpec } from '../mask/spec.js';
import type { RopeSpec } from './rope.js';
import type { Tensor } from './tensor.js';

/**
 * The ops a Llama-family forward step needs, as descriptors over tensors of one executor. Each is
 * enqueued on a stream by `Executor.run` and checked first by `validateOp` (shapes, dtypes, and the storage an output must not share),
 * so every backend refuses the same bad op with the same error. Shapes below are row-major;
 * "float" is f32, f16 or bf16, and arithmetic is f32 or better (the reference: float64).
 */
export type Op =
  | LinearOp
  | RmsNormOp
  | RopeOp
  | GatedActivationOp
  | EmbeddingOp
  | AddOp
  | KvAppendOp
  | AttentionOp
  | LseMergeOp
  | SampleOp
  | CopyOp;

export type OpKind = Op['op'];

/** The op descriptor of one kind ('swiglu' and 'geglu' share GatedActivationOp). */
export type OpOf<K extends OpKind> = Op extends infer O
  ? O extends { readonly op: infer P }
    ? K extends P
      ? O
      : never
    : never
  : never;

export const OP_KINDS: readonly OpKind[] = [
  'linear',
  'rmsNorm',
  'rope',
  'swiglu',
  'geglu',
  'embedding',
  'add',
  'kvAppend',
  'attention',
  'lseMerge',
  'sample',
  'copy',
];

/** Calls `visit` for every tensor an op names, nested ones included, with its `<op>.<field>` path. */
export function forEachOpTensor(op: Op, visit: (tensor: Tensor, field: string) => void): void {
  const walk = (path: string, value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    if ('dtype' in value && 'view' in value) visit(value as Tensor, path);
    else for (const [k, v] of Object.entries(value)) walk(`${path}.${k}`, v);
  };
  for (const [field, value] of Object.entries(op)) if (field !== 'op') walk(`${op.op}.${field}`, value);
}

/** The fields each op kind writes; every other tensor it names is only read. */
const OUTPUTS: { readonly [K in OpKind]: readonly string[] } = {
  linear: ['out'],
  rmsNorm: ['out', 'x'], // x with `add`
  rope: ['out', 'append.cacheK', 'append.cacheV'],
  swiglu: ['out'],
  geglu: ['out'],
  embedding: ['out'],
  add: ['out'],
  kvAppend: ['cacheK', 'cacheV'],
  attention: ['out', 'lse'],
  lseMerge: ['out', 'lse'],
  sample: ['tokens', 'logprobs'],
  copy: ['dst'],
};

/** Calls `visit` for every tensor an op may write, with its `<op>.<field>` path. */
export function forEachOpOutput(op: Op, visit: (tensor: Tensor, field: string) => void): void {
  const fields = OUTPUTS[op.op];
  for (const field of fields) {
    if (field === 'x' && !(op.op === 'rmsNorm' && op.add)) continue;
    let t: unknown = op;
    for (const part of field.split('.')) t = (t as Record<string, unknown> | undefined)?.[part];
    if (t) visit(t as Tensor, `${op.op}.${field}`);
  }
}

/** out[m, n] = sum_k x[m, k] * weight[n, k] (+ bias[n]): a PyTorch Linear's weight layout. */
export interface LinearOp {
  readonly op: 'linear';
  readonly x: Tensor; // float [m, k]
  readonly weight: Tensor; // float [n, k] (f16/bf16 weights with an f32 x accumulate in f32)
  readonly bias?: Tensor; // float [n]
  readonly out: Tensor; // x's dtype [m, n]
}

/**
 * out[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * weight. With `add`, the residual add runs
 * first, in the same pass: x = x + add (x is written, in its dtype), then out = rmsNorm(x).
 */
export interface RmsNormOp {
  readonly op: 'rmsNorm';
  readonly x: Tensor; // float [m, d]
  readonly weight: Tensor; // float [d]
  readonly eps: number;
  readonly add?: Tensor; // x's dtype and shape; not x's storage
  readonly out: Tensor; // x's dtype [m, d]; may be x or add
}

/** Rotary embedding of q or k rows at their positions (half-split pairs, exec/rope.ts). */
export interface RopeOp {
  readonly op: 'rope';
  readonly x: Tensor; // float [tokens, heads, headDim]
  readonly positions: Tensor<'i32'>; // [tokens]
  readonly rope: RopeSpec;
  /** The sequence length the 'dynamic' scaling sees; default: the largest position + 1. */
  readonly seqLen?: number;
  readonly out: Tensor; // x's dtype and shape; may be x
  /**
   * The KV append, fused: the last `append.v.shape[1]` heads of `out` are keys, and after the
   * rotation they and v go into the paged cache, as `ropeAppendOp(op)` (a kvAppend op) would write
   * them. A decode step's q and k rope and its append then take one pass (one kernel) instead of two.
   */
  readonly append?: RopeAppend;
}

/** What `RopeOp.append` writes: v and the rotated keys, at `slots` (kvAppend's fields). */
export interface RopeAppend {
  readonly v: Tensor; // out's dtype [tokens, headsKV, headDim], headsKV <= out's heads
  readonly cacheK: Tensor;
  readonly cacheV: Tensor;
  readonly slots: Tensor<'i32'>;
}

/** The kvAppend op a rope op's `append` stands for (out's last heads as k), or undefined without one. */
export function ropeAppendOp(op: RopeOp): KvAppendOp | undefined {
  if (!op.append) return undefined;
  const [tokens, heads, headDim] = op.out.shape as [number, number, number];
  const keyHeads = op.append.v.shape[1]!;
  const [tokenStride, headStride, dimStride] = op.out.strides as [number, number, number];
  return {
    op: 'kvAppend',
    k: op.out.view({
      shape: [tokens, keyHeads, headDim],
      strides: [tokenStride, headStride, dimStride],
      offset: (heads - keyHeads) * headStride,
    }),
    ...op.append,
  };
}

/** out = act(gate) * up, with act SiLU (swiglu) or GELU (geglu; tanh approximation or exact erf). */
export interface GatedActivationOp {
  readonly op: 'swiglu' | 'geglu';
  readonly gate: Tensor; // float [m, d]
  readonly up: Tensor; // gate's dtype and shape
  readonly approximate?: 'tanh' | 'none'; // geglu only; default 'tanh'
  readonly out: Tensor; // gate's dtype and shape; may be gate or up
}

/** out[i, :] = table[tokens[i], :]. A token outside [0, vocab) is an error of the op. */
export interface EmbeddingOp {
  readonly op: 'embedding';
  readonly table: Tensor; // float [vocab, d]
  readonly tokens: Tensor<'i32'>; // [n]
  readonly out: Tensor; // float [n, d]
}

/** out = a + b (the residual add). */
export interface AddOp {
  readonly op: 'add';
  readonly a: Tensor;
  readonly b: Tensor; // a's dtype and shape
  readonly out: Tensor; // a's dtype and shape; may be a or b
}

/**
 * Writes each token's k and v rows into a paged cache: token t goes to block
 * floor(slots[t] / blockSize), row slots[t] % blockSize. A negative slot skips the token (padding).
 */
export interface KvAppendOp {
  readonly op: 'kvAppend';
  readonly k: Tensor; // float [tokens, headsKV, headDim]
  readonly v: Tensor; // k's dtype and shape
  readonly cacheK: Tensor; // k's dtype [numBlocks, blockSize, headsKV, headDim]
  readonly cacheV: Tensor; // cacheK's shape
  readonly slots: Tensor<'i32'>; // [tokens]
}

/**
 * Exact attention of the contract (`backend.attention()`, attention.ts) on tensors: q [batch, seqQ,
 * headsQ, headDim] against dense k/v [batch, seqK, headsKV, headDim] or, with `paged`, a paged
 * cache [numBlocks, blockSize, headsKV, headDim]. seqLensK [batch] is each row's valid key count.
 */
export interface AttentionOp {
  readonly op: 'attention';
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly seqLensK: Tensor<'i32'>; // [batch]
  /** A paged cache: the block table [batch, blocksPerSeq] and the cache's keys per row (seqK). */
  readonly paged?: { readonly blockTable: Tensor<'i32'>; readonly blockSize: number; readonly seqK: number };
  readonly mask?: MaskSpec;
  readonly scale?: number;
  /** How the result is computed (default 'flash'); an executor without 'standard' refuses it. */
  readonly algorithm?: AttentionAlgorithm;
  readonly out: Tensor; // q's dtype and shape
  readonly lse?: Tensor<'f32'>; // [batch, headsQ, seqQ]
}

/**
 * 'flash': tiled, the scores never leave on-chip memory. 'standard': the FlashAttention papers'
 * baseline, the score matrix materialized in memory (S = scale·QKᵀ, softmax, P·V); the same
 * result, to measure what tiling buys with everything else equal.
 */
export type AttentionAlgorithm = 'flash' | 'standard';

export const ATTENTION_ALGORITHMS: readonly AttentionAlgorithm[] = ['flash', 'standard'];

/**
 * Merges partial attention results over disjoint key sets by their LSE (split-KV, offload): row r
 * of `outs` pairs with row r of `lses`. The attention op's lse is [batch, headsQ, seqQ] while its
 * out rows are (batch, seqQ, headsQ): a copy through a transposing view puts the LSE in row order.
 */
export interface LseMergeOp {
  readonly op: 'lseMerge';
  readonly outs: Tensor<'f32'>; // [parts, rows, d]: each part normalized over its keys
  readonly lses: Tensor<'f32'>; // [parts, rows]; -Infinity: the part saw no key
  readonly out: Tensor; // float [rows, d]
  readonly lse?: Tensor<'f32'>; // [rows]
}

/**
 * Picks one token per row of logits (exec/sampling.ts): penalties from each row's token counts,
 * temperature, top-k, top-p, min-p, then a draw from the seeded counter-based generator at
 * counters[row]. No logits leave the device unless the caller reads them.
 */
export interface SampleOp {
  readonly op: 'sample';
  readonly logits: Tensor<'f32'>; // [rows, vocab]
  readonly params: SamplingTensors; // per row, in device memory: a recorded step replays with new values
  readonly counters: Tensor<'i32'>; // [rows]: the step of each row's generator
  readonly counts?: Tensor<'i32'>; // [rows, vocab]: tokens seen so far, for the penalties
  readonly tokens: Tensor<'i32'>; // out [rows]
  readonly logprobs?: Tensor<'f32'>; // out [rows]: each chosen token's log-probability
}

/** dst = src, element by element over any layouts of one shape, converting between float dtypes. */
export interface CopyOp {
  readonly op: 'copy';
  readonly src: Tensor;
  readonly dst: Tensor;
}

/** SamplingParams (exec/sampling.ts) of each row, as tensors of [rows] elements. */
export interface SamplingTensors {
  readonly temperature: Tensor<'f32'>;
  readonly topK: Tensor<'i32'>;
  readonly topP: Tensor<'f32'>;
  readonly minP: Tensor<'f32'>;
  readonly repetitionPenalty: Tensor<'f32'>;
  readonly presencePenalty: Tensor<'f32'>;
  readonly frequencyPenalty: Tensor<'f32'>;
  readonly seed: Tensor<'i32'>; // a uint32's bits
}
