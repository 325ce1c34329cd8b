/**
 * One forward step of a Llama-family decoder as ops of the execution contract: `batch` sequences
 * of `seqQ` tokens each (a decode step: many sequences, one token each; a prefill chunk: one
 * sequence, many tokens), their keys and values appended to the shared paged cache, attention over
 * each sequence's blocks, logits for the tokens asked for. Each residual add is fused into the norm
 * after it.
 */
import {
  type AttentionAlgorithm,
  contiguousStrides,
  type DType,
  type Executor,
  type MaskSpec,
  type Op,
  type Tensor,
} from '@fastattention/core';
import type { ModelConfig } from './config.js';
import type { ModelWeights } from './weights.js';

/** The paged KV cache every sequence shares: per layer, k and v as [numBlocks, blockSize, kvHeads, headDim]. */
export interface KvCache {
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly k: readonly Tensor[];
  readonly v: readonly Tensor[];
}

export function createKvCache(
  executor: Executor,
  config: ModelConfig,
  dtype: DType,
  numBlocks: number,
  blockSize: number,
): KvCache {
  const shape = [numBlocks, blockSize, config.kvHeads, config.headDim];
  const k: Tensor[] = [];
  const v: Tensor[] = [];
  try {
    for (let l = 0; l < config.layers; l++) {
      k.push(executor.empty(dtype, shape));
      v.push(executor.empty(dtype, shape));
    }
  } catch (error) {
    for (const t of [...k, ...v]) t.dispose();
    throw error;
  }
  return { blockSize, numBlocks, k, v };
}

export function disposeKvCache(cache: KvCache): void {
  for (const t of [...cache.k, ...cache.v]) t.dispose();
}

/**
 * The per-step values of `enqueueForward`, as tensors: `batch` rows of `seqQ` tokens, token i of
 * row b at index b * seqQ + i. A token's slot is its cache row (block * blockSize + offset; -1
 * skips the append: padding).
 */
export interface StepInputs {
  readonly tokens: Tensor<'i32'>; // [batch * seqQ]
  readonly positions: Tensor<'i32'>; // [batch * seqQ]
  readonly slots: Tensor<'i32'>; // [batch * seqQ]
  readonly seqLensK: Tensor<'i32'>; // [batch]: each row's length after the step (0: padding)
  readonly blockTable: Tensor<'i32'>; // [batch, blocksPerSeq]
}

/** The cache slot of the token at `position` of a sequence that holds `blocks`. */
export function slotOf(blocks: readonly number[], blockSize: number, position: number): number {
  return blocks[Math.floor(position / blockSize)]! * blockSize + (position % blockSize);
}

/**
 * Inputs for one sequence's tokens at positions start, start + 1, ...: every i32 value in one
 * tensor, written with one enqueued write, plus the sampling counter a prefill's `sample` op reads.
 * The tensors can be used at once (stream order); `written` reports the write's failure.
 */
export function writeSequenceInputs(
  executor: Executor,
  tokens: ArrayLike<number>,
  start: number,
  blocks: readonly number[],
  blockSize: number,
  blocksPerSeq: number,
  counter = 0,
): { inputs: StepInputs; counter: Tensor<'i32'>; written: Promise<void>; dispose(): void } {
  const n = tokens.length;
  const packed = new Int32Array(3 * n + 2 + blocksPerSeq);
  for (let i = 0; i < n; i++) {
    packed[i] = tokens[i]!;
    packed[n + i] = start + i;
    packed[2 * n + i] = slotOf(blocks, blockSize, start + i);
  }
  packed[3 * n] = start + n;
  packed[3 * n + 1] = counter;
  packed.set(blocks.slice(0, blocksPerSeq), 3 * n + 2);
  const all = executor.empty('i32', [packed.length]);
  const at = (offset: number, shape: number[]) =>
    all.view({ shape, strides: contiguousStrides(shape), offset });
  const written = executor.write(all, packed);
  written.catch(() => undefined); // the caller awaits it
  return {
    inputs: {
      tokens: at(0, [n]),
      positions: at(n, [n]),
      slots: at(2 * n, [n]),
      seqLensK: at(3 * n, [1]),
      blockTable: at(3 * n + 2, [1, blocksPerSeq]),
    },
    counter: at(3 * n + 1, [1]),
    written,
    dispose: () => all.dispose(),
  };
}

/** Which tokens get logits: every token, the last of each row, or none (a prefill chunk before the last). */
export type LogitRows = 'all' | 'last' | 'none';

/** Makes a step's temporaries; steps that never run at once may share them (one pool per batch size). */
export type Allocate = (dtype: DType, shape: number[]) => Tensor;

/**
 * Hands out the same tensors again to each forward that asks for them in the same order and
 * shapes: the decode graphs of one batch size, recorded for different context lengths, run one at
 * a time on one stream and so share their activations.
 */
export class TensorPool {
  readonly #tensors: Tensor[] = [];
  /** Tensors a later forward did not ask for again (graphs recorded earlier may still use them). */
  readonly #retired: Tensor[] = [];
  #next = 0;
  readonly #executor: Executor;

  constructor(executor: Executor) {
    this.#executor = executor;
  }

  /** Starts handing out from the first tensor again. */
  rewind(): Allocate {
    this.#next = 0;
    return (dtype, shape) => {
      const t = this.#tensors[this.#next];
      if (t && t.dtype === dtype && t.shape.join() === shape.join()) {
        this.#next++;
        return t;
      }
      const made = this.#executor.empty(dtype, shape);
      if (t) this.#retired.push(t);
      this.#tensors[this.#next++] = made;
      return made;
    };
  }

  dispose(): void {
    for (const t of [...this.#tensors, ...this.#retired]) t.dispose();
    this.#tensors.length = 0;
    this.#retired.length = 0;
  }
}

/** What a forward step runs on: the executor, the model and its weights, how it computes. */
export interface ModelRun {
  readonly executor: Executor;
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
  readonly dtype: DType;
  /** The attention ops' algorithm: 'standard' materializes the scores (the papers' baseline). */
  readonly attention: AttentionAlgorithm;
}

export interface ForwardOptions {
  /** Where the ops go: the executor's stream (default), or a step graph's recorder. */
  readonly run?: (op: Op) => void;
  /** Which rows get logits (default 'all'). */
  readonly rows?: LogitRows;
  /** Temporaries from a pool (not listed in the result) instead of new tensors. */
  readonly allocate?: Allocate;
}

/**
 * Enqueues the step (`writeSequenceInputs` or the caller wrote the inputs; the cache holds each
 * row's earlier tokens); returns the logits tensor in the run dtype ([tokens, vocab] for 'all',
 * [batch, vocab] for 'last', undefined for 'none') and the step's temporaries (those `allocate`
 * made, when given, belong to its pool and are not listed).
 */
export function enqueueForward(
  model: ModelRun,
  cache: KvCache,
  inputs: StepInputs,
  options: ForwardOptions = {},
): { logits: Tensor | undefined; temps: Tensor[] } {
  const { executor, config, weights, dtype } = model;
  const { run = (op: Op) => executor.run(op), rows = 'all', allocate } = options;
  const n = inputs.tokens.shape[0]!;
  const batch = inputs.seqLensK.shape[0]!;
  const seqQ = n / batch;
  const { hiddenSize: H, heads, kvHeads, headDim: D, intermediateSize: F } = config;
  const temps: Tensor[] = [];
  const tmp = (shape: number[]) => {
    if (allocate) return allocate(dtype, shape);
    const t = executor.empty(dtype, shape);
    temps.push(t);
    return t;
  };
  const x = tmp([n, H]); // the residual stream
  const delta = tmp([n, H]); // what the last block adds to it
  const h = tmp([n, H]);
  // q, k and v side by side in each row (the fused projection's output), and views of them.
  const width = (heads + 2 * kvHeads) * D;
  const qkv = tmp([n, width]);
  const qk = qkv.view({ shape: [n, heads + kvHeads, D], strides: [width, D, 1], offset: 0 });
  const v = qkv.view({ shape: [n, kvHeads, D], strides: [width, D, 1], offset: (heads + kvHeads) * D });
  const q = qkv.view({
    shape: [batch, seqQ, heads, D],
    strides: [seqQ * width, width, D, 1],
    offset: 0,
  });
  const attn = tmp([batch, seqQ, heads, D]);
  const gateUp = tmp([n, 2 * F]);
  const gate = gateUp.view({ shape: [n, F], strides: [2 * F, 1], offset: 0 });
  const up = gateUp.view({ shape: [n, F], strides: [2 * F, 1], offset: F });
  const act = tmp([n, F]);
  // With one query row per sequence, bottom-right causal allows every valid key: 'none' says the
  // same and keeps decode on the kernels' unmasked tiles.
  const mask: MaskSpec =
    config.slidingWindow !== undefined
      ? { kind: 'window', left: config.slidingWindow - 1, right: 0 }
      : seqQ === 1
        ? { kind: 'none' }
        : { kind: 'causal' };
  const paged = {
    blockTable: inputs.blockTable,
    blockSize: cache.blockSize,
    seqK: inputs.blockTable.shape[1]! * cache.blockSize,
  };
  run({ op: 'embedding', table: weights.embed, tokens: inputs.tokens, out: x });
  weights.layers.forEach((w, l) => {
    run({
      op: 'rmsNorm',
      x,
      ...(l > 0 && { add: delta }),
      weight: w.inputNorm,
      eps: config.rmsNormEps,
      out: h,
    });
    run({ op: 'linear', x: h, weight: w.qkv, ...(w.qkvBias && { bias: w.qkvBias }), out: qkv });
    // one rope over the q and k heads of each row, the keys and values appended to the cache in
    // the same pass
    run({
      op: 'rope',
      x: qk,
      positions: inputs.positions,
      rope: config.rope,
      out: qk,
      append: { v, cacheK: cache.k[l]!, cacheV: cache.v[l]!, slots: inputs.slots },
    });
    run({
      op: 'attention',
      q,
      k: cache.k[l]!,
      v: cache.v[l]!,
      seqLensK: inputs.seqLensK,
      paged,
      mask,
      algorithm: model.attention,
      out: attn,
    });
    run({
      op: 'linear',
      x: attn.view({ shape: [n, heads * D] }),
      weight: w.o,
      ...(w.oBias && { bias: w.oBias }),
      out: delta,
    });
    run({ op: 'rmsNorm', x, add: delta, weight: w.postNorm, eps: config.rmsNormEps, out: h });
    run({ op: 'linear', x: h, weight: w.gateUp, ...(w.gateUpBias && { bias: w.gateUpBias }), out: gateUp });
    run({ op: 'swiglu', gate, up, out: act });
    run({ op: 'linear', x: act, weight: w.down, ...(w.downBias && { bias: w.downBias }), out: delta });
  });
  if (rows === 'none') return { logits: undefined, temps };
  // 'last': the last token of each row, a strided view (contiguous when batch or seqQ is 1)
  const [out, stride, first] = rows === 'all' ? [n, H, 0] : [batch, seqQ * H, (seqQ - 1) * H];
  const pick = (t: Tensor) => t.view({ shape: [out, H], strides: [stride, 1], offset: first });
  const final = tmp([out, H]);
  run({
    op: 'rmsNorm',
    x: pick(x),
    add: pick(delta),
    weight: weights.norm,
    eps: config.rmsNormEps,
    out: final,
  });
  const logits = tmp([out, config.vocabSize]);
  run({ op: 'linear', x: final, weight: weights.lmHead, out: logits });
  return { logits, temps: temps.filter((t) => t !== logits) };
}
