/**
 * One forward step of a Llama-family decoder as ops of the execution contract: the tokens of one
 * sequence at consecutive positions, their keys and values appended to a paged cache, attention
 * over the cache, logits for every token. Each residual add is fused into the norm after it.
 */
import type { DType, Executor, MaskSpec, Op, Tensor } from '@fastattention/core';
import type { ModelConfig } from './config.js';
import type { ModelWeights } from './weights.js';

/**
 * A sequence's paged KV cache: per layer, k and v as [blocks, blockSize, kvHeads, headDim]. The
 * sequence owns every block, in order (table [1, blocks] = 0, 1, ...), so the cache slot of the
 * token at position p is p.
 */
export interface SequenceCache {
  readonly blockSize: number;
  readonly blocks: number;
  readonly k: readonly Tensor[];
  readonly v: readonly Tensor[];
  readonly table: Tensor<'i32'>;
}

export async function createSequenceCache(
  executor: Executor,
  config: ModelConfig,
  dtype: DType,
  tokens: number,
  blockSize = 16,
): Promise<SequenceCache> {
  const blocks = Math.max(1, Math.ceil(tokens / blockSize));
  const shape = [blocks, blockSize, config.kvHeads, config.headDim];
  const k = Array.from({ length: config.layers }, () => executor.empty(dtype, shape));
  const v = Array.from({ length: config.layers }, () => executor.empty(dtype, shape));
  const table = executor.empty('i32', [1, blocks]);
  await executor.write(
    table,
    Int32Array.from({ length: blocks }, (_, i) => i),
  );
  return { blockSize, blocks, k, v, table };
}

export function disposeCache(cache: SequenceCache): void {
  for (const t of [...cache.k, ...cache.v, cache.table]) t.dispose();
}

/** Step inputs for `n` tokens of one sequence; its slots are its positions (one tensor). */
export function createStepInputs(executor: Executor, n: number): StepInputs {
  const positions = executor.empty('i32', [n]);
  return {
    tokens: executor.empty('i32', [n]),
    positions,
    slots: positions,
    seqLensK: executor.empty('i32', [1]),
  };
}

/** Writes the tokens at positions start, start + 1, ... and the sequence's length after them. */
export async function writeStepInputs(
  executor: Executor,
  inputs: StepInputs,
  tokens: Int32Array,
  start: number,
): Promise<void> {
  await Promise.all([
    executor.write(inputs.tokens, tokens),
    executor.write(
      inputs.positions,
      Int32Array.from({ length: tokens.length }, (_, i) => start + i),
    ),
    executor.write(inputs.seqLensK, Int32Array.of(start + tokens.length)),
  ]);
}

export function disposeStepInputs(inputs: StepInputs): void {
  for (const t of new Set(Object.values(inputs))) t.dispose();
}

/**
 * Enqueues the step for `n` tokens starting at position `start` (the cache already holds the
 * first `start`; `writeStepInputs` wrote the inputs); returns the logits tensor ([n, vocab], or
 * [1, vocab] for 'last') in the run dtype.
 */
export function enqueueForward(
  executor: Executor,
  config: ModelConfig,
  weights: ModelWeights,
  cache: SequenceCache,
  inputs: StepInputs,
  dtype: DType,
  /** Where the ops go: the executor's stream (default), or a step graph's recorder. */
  run: (op: Op) => void = (op) => executor.run(op),
  /** 'last': logits of the last token only (generation); 'all': of every token. */
  rows: 'all' | 'last' = 'all',
): { logits: Tensor; temps: Tensor[] } {
  const n = inputs.tokens.shape[0]!;
  const { hiddenSize: H, heads, kvHeads, headDim: D, intermediateSize: F } = config;
  const temps: Tensor[] = [];
  const tmp = (shape: number[]) => {
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
  const k = qkv.view({ shape: [n, kvHeads, D], strides: [width, D, 1], offset: heads * D });
  const v = qkv.view({ shape: [n, kvHeads, D], strides: [width, D, 1], offset: (heads + kvHeads) * D });
  const q = qkv.view({ shape: [1, n, heads, D], strides: [n * width, width, D, 1], offset: 0 });
  const attn = tmp([1, n, heads, D]);
  const gateUp = tmp([n, 2 * F]);
  const gate = gateUp.view({ shape: [n, F], strides: [2 * F, 1], offset: 0 });
  const up = gateUp.view({ shape: [n, F], strides: [2 * F, 1], offset: F });
  const act = tmp([n, F]);
  const out = rows === 'last' ? 1 : n;
  const logits = executor.empty(dtype, [out, config.vocabSize]);
  const mask: MaskSpec =
    config.slidingWindow !== undefined
      ? { kind: 'window', left: config.slidingWindow - 1, right: 0 }
      : { kind: 'causal' };
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
    // one rope over the q and k heads of each row
    run({ op: 'rope', x: qk, positions: inputs.positions, rope: config.rope, out: qk });
    run({ op: 'kvAppend', k, v, cacheK: cache.k[l]!, cacheV: cache.v[l]!, slots: inputs.slots });
    run({
      op: 'attention',
      q,
      k: cache.k[l]!,
      v: cache.v[l]!,
      seqLensK: inputs.seqLensK,
      paged: { blockTable: cache.table, blockSize: cache.blockSize, seqK: cache.blocks * cache.blockSize },
      mask,
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
  const tail = (t: Tensor) => t.view({ shape: [out, H], strides: [H, 1], offset: (n - out) * H });
  const last = tail(h);
  run({
    op: 'rmsNorm',
    x: tail(x),
    add: tail(delta),
    weight: weights.norm,
    eps: config.rmsNormEps,
    out: last,
  });
  run({ op: 'linear', x: last, weight: weights.lmHead, out: logits });
  return { logits, temps };
}

/** The per-step values of `enqueueForward`, as tensors. */
export interface StepInputs {
  readonly tokens: Tensor<'i32'>;
  readonly positions: Tensor<'i32'>;
  readonly slots: Tensor<'i32'>;
  readonly seqLensK: Tensor<'i32'>;
}
