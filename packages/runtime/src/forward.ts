/**
 * One forward step of a Llama-family decoder as ops of the execution contract: the tokens of one
 * sequence at consecutive positions, their keys and values appended to a paged cache, attention
 * over the cache, logits for every token. Each residual add is fused into the norm after it.
 */
import type { DType, Executor, MaskSpec, Tensor } from '@fastattention/core';
import type { ModelConfig } from './config.js';
import type { ModelWeights } from './weights.js';

/** A sequence's paged KV cache: per layer, k and v as [blocks, blockSize, kvHeads, headDim]. */
export interface SequenceCache {
  readonly blockSize: number;
  readonly blocks: number;
  readonly k: readonly Tensor[];
  readonly v: readonly Tensor[];
  /** [1, blocks]: the sequence's blocks, in order. */
  readonly table: Tensor<'i32'>;
}

export function createSequenceCache(
  executor: Executor,
  config: ModelConfig,
  dtype: DType,
  tokens: number,
  blockSize = 16,
): SequenceCache {
  const blocks = Math.max(1, Math.ceil(tokens / blockSize));
  const shape = [blocks, blockSize, config.kvHeads, config.headDim];
  const k = Array.from({ length: config.layers }, () => executor.empty(dtype, shape));
  const v = Array.from({ length: config.layers }, () => executor.empty(dtype, shape));
  const table = executor.empty('i32', [1, blocks]);
  return { blockSize, blocks, k, v, table };
}

export function disposeCache(cache: SequenceCache): void {
  for (const t of [...cache.k, ...cache.v, cache.table]) t.dispose();
}

/**
 * Enqueues the step for `n` tokens starting at position `start` (the cache already holds the
 * first `start`); returns the logits tensor [n, vocab] in the run dtype. The caller writes
 * `inputs` first: tokens, positions start..start+n-1, slots (cache rows), seqLensK = start + n.
 */
export function enqueueForward(
  executor: Executor,
  config: ModelConfig,
  weights: ModelWeights,
  cache: SequenceCache,
  inputs: StepInputs,
  dtype: DType,
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
  const q = tmp([n, heads * D]);
  const k = tmp([n, kvHeads * D]);
  const v = tmp([n, kvHeads * D]);
  const attn = tmp([1, n, heads, D]);
  const gate = tmp([n, F]);
  const up = tmp([n, F]);
  const logits = executor.empty(dtype, [n, config.vocabSize]);
  const mask: MaskSpec =
    config.slidingWindow !== undefined
      ? { kind: 'window', left: config.slidingWindow - 1, right: 0 }
      : { kind: 'causal' };
  const run = executor.run.bind(executor);
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
    run({ op: 'linear', x: h, weight: w.q, ...(w.qBias && { bias: w.qBias }), out: q });
    run({ op: 'linear', x: h, weight: w.k, ...(w.kBias && { bias: w.kBias }), out: k });
    run({ op: 'linear', x: h, weight: w.v, ...(w.vBias && { bias: w.vBias }), out: v });
    const qh = q.view({ shape: [n, heads, D] });
    const kh = k.view({ shape: [n, kvHeads, D] });
    run({ op: 'rope', x: qh, positions: inputs.positions, rope: config.rope, out: qh });
    run({ op: 'rope', x: kh, positions: inputs.positions, rope: config.rope, out: kh });
    run({
      op: 'kvAppend',
      k: kh,
      v: v.view({ shape: [n, kvHeads, D] }),
      cacheK: cache.k[l]!,
      cacheV: cache.v[l]!,
      slots: inputs.slots,
    });
    run({
      op: 'attention',
      q: q.view({ shape: [1, n, heads, D] }),
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
    run({ op: 'linear', x: h, weight: w.gate, ...(w.gateBias && { bias: w.gateBias }), out: gate });
    run({ op: 'linear', x: h, weight: w.up, ...(w.upBias && { bias: w.upBias }), out: up });
    run({ op: 'swiglu', gate, up, out: gate });
    run({ op: 'linear', x: gate, weight: w.down, ...(w.downBias && { bias: w.downBias }), out: delta });
  });
  run({ op: 'rmsNorm', x, add: delta, weight: weights.norm, eps: config.rmsNormEps, out: h });
  run({ op: 'linear', x: h, weight: weights.lmHead, out: logits });
  return { logits, temps };
}

/** The per-step values of `enqueueForward`, as tensors. */
export interface StepInputs {
  readonly tokens: Tensor<'i32'>;
  readonly positions: Tensor<'i32'>;
  readonly slots: Tensor<'i32'>;
  readonly seqLensK: Tensor<'i32'>;
}
