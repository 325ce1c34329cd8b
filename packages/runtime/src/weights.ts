/**
 * A Llama-family model's weights as tensors of an executor, in the run dtype. Each checkpoint
 * tensor is read from its file straight into pinned memory (`executor.hostView`), then a `copy` op
 * moves it to the device, converting its dtype on the way: no second host copy.
 */
import {
  contiguousStrides,
  type DType,
  type Executor,
  FastAttentionError,
  type Op,
  type Tensor,
  throwIfAborted,
} from '@fastattention/core';
import type { ModelConfig } from './config.js';
import { type CheckpointTensor, readTensorBytes } from './safetensors.js';

/**
 * One decoder layer. q, k and v are one [qDim + 2 kvDim, hidden] weight (rows: q, then k, then v),
 * and gate and up one [2 intermediate, hidden] weight: one product each instead of three and two.
 */
export interface LayerWeights {
  readonly inputNorm: Tensor;
  readonly qkv: Tensor;
  readonly qkvBias?: Tensor;
  readonly o: Tensor;
  readonly oBias?: Tensor;
  readonly postNorm: Tensor;
  readonly gateUp: Tensor;
  readonly gateUpBias?: Tensor;
  readonly down: Tensor;
  readonly downBias?: Tensor;
}

export interface ModelWeights {
  readonly embed: Tensor;
  readonly layers: readonly LayerWeights[];
  readonly norm: Tensor;
  /** The embedding table when the config ties them. */
  readonly lmHead: Tensor;
  readonly all: readonly Tensor[];
}

export interface LoadProgress {
  /** Bytes of checkpoint data loaded so far, of `totalBytes`. */
  readonly loadedBytes: number;
  readonly totalBytes: number;
  readonly tensor: string;
}

export interface LoadWeightsOptions {
  readonly onProgress?: (progress: LoadProgress) => void;
  readonly signal?: AbortSignal;
}

/** The checkpoint names and shapes a config needs, in load order. */
export function expectedWeights(c: ModelConfig): Array<[string, number[]]> {
  const qDim = c.heads * c.headDim;
  const kvDim = c.kvHeads * c.headDim;
  const list: Array<[string, number[]]> = [['model.embed_tokens.weight', [c.vocabSize, c.hiddenSize]]];
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    list.push([`${p}.input_layernorm.weight`, [c.hiddenSize]]);
    for (const [name, rows] of [
      ['q', qDim],
      ['k', kvDim],
      ['v', kvDim],
    ] as const) {
      list.push([`${p}.self_attn.${name}_proj.weight`, [rows, c.hiddenSize]]);
      if (c.qkvBias) list.push([`${p}.self_attn.${name}_proj.bias`, [rows]]);
    }
    list.push([`${p}.self_attn.o_proj.weight`, [c.hiddenSize, qDim]]);
    if (c.outBias) list.push([`${p}.self_attn.o_proj.bias`, [c.hiddenSize]]);
    list.push([`${p}.post_attention_layernorm.weight`, [c.hiddenSize]]);
    list.push([`${p}.mlp.gate_proj.weight`, [c.intermediateSize, c.hiddenSize]]);
    list.push([`${p}.mlp.up_proj.weight`, [c.intermediateSize, c.hiddenSize]]);
    list.push([`${p}.mlp.down_proj.weight`, [c.hiddenSize, c.intermediateSize]]);
    if (c.mlpBias) {
      list.push([`${p}.mlp.gate_proj.bias`, [c.intermediateSize]]);
      list.push([`${p}.mlp.up_proj.bias`, [c.intermediateSize]]);
      list.push([`${p}.mlp.down_proj.bias`, [c.hiddenSize]]);
    }
  }
  list.push(['model.norm.weight', [c.hiddenSize]]);
  if (!c.tieWordEmbeddings) list.push(['lm_head.weight', [c.vocabSize, c.hiddenSize]]);
  return list;
}

/** Loads every weight the config needs onto the executor, in `dtype`. */
export async function loadWeights(
  executor: Executor,
  checkpoint: ReadonlyMap<string, CheckpointTensor>,
  config: ModelConfig,
  dtype: DType,
  options: LoadWeightsOptions = {},
): Promise<ModelWeights> {
  const wanted = expectedWeights(config);
  for (const [name, shape] of wanted) {
    const t = checkpoint.get(name);
    if (!t)
      throw new FastAttentionError('INVALID_INPUT', `the checkpoint has no ${name}`, { field: 'checkpoint' });
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `${name}: expected shape [${shape.join(', ')}] from config.json, got [${t.shape.join(', ')}]`,
        { field: 'checkpoint' },
      );
    }
  }
  const totalBytes = wanted.reduce((a, [name]) => a + checkpoint.get(name)!.bytes, 0);
  // One pinned staging tensor per checkpoint dtype, as large as its largest weight.
  const staging = new Map<DType, Tensor>();
  const loaded = new Map<string, Tensor>();
  let loadedBytes = 0;
  try {
    const fused = fusedLayout(config, dtype, executor, loaded);
    for (const [name] of wanted) {
      const t = checkpoint.get(name)!;
      const length = t.shape.reduce((a, d) => a * d, 1);
      let stage = staging.get(t.dtype);
      if (!stage || stage.length < length) {
        stage?.dispose();
        const largest = Math.max(
          ...wanted
            .map(([n]) => checkpoint.get(n)!)
            .filter((c) => c.dtype === t.dtype)
            .map((c) => c.bytes),
        );
        stage = executor.empty(t.dtype, [largest / (t.dtype === 'f32' ? 4 : 2)], { memory: 'pinned' });
        staging.set(t.dtype, stage);
      }
      throwIfAborted(options.signal);
      // The staging memory is rewritten only once the previous copy out of it has run.
      await executor.stream.synchronize();
      const view = stage.view({ shape: [...t.shape], strides: contiguousStrides(t.shape), offset: 0 });
      const host = executor.hostView(view);
      await readTensorBytes(t, new Uint8Array(host.buffer, host.byteOffset, t.bytes));
      let weight = fused.get(name);
      if (!weight) {
        weight = executor.empty(dtype, t.shape);
        loaded.set(name, weight);
      }
      executor.run(copyInto(view, weight, t));
      loadedBytes += t.bytes;
      options.onProgress?.({ loadedBytes, totalBytes, tensor: name });
    }
    await executor.stream.synchronize();
  } catch (error) {
    for (const w of loaded.values()) w.dispose();
    throw error;
  } finally {
    for (const s of staging.values()) s.dispose();
  }
  const get = (name: string): Tensor => loaded.get(name)!;
  const opt = (name: string): Tensor | undefined => loaded.get(name);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.layers; l++) {
    const p = `model.layers.${l}`;
    layers.push({
      inputNorm: get(`${p}.input_layernorm.weight`),
      qkv: get(`${p}.qkv`),
      ...withBias('qkvBias', opt(`${p}.qkv.bias`)),
      o: get(`${p}.self_attn.o_proj.weight`),
      ...withBias('oBias', opt(`${p}.self_attn.o_proj.bias`)),
      postNorm: get(`${p}.post_attention_layernorm.weight`),
      gateUp: get(`${p}.gate_up`),
      ...withBias('gateUpBias', opt(`${p}.gate_up.bias`)),
      down: get(`${p}.mlp.down_proj.weight`),
      ...withBias('downBias', opt(`${p}.mlp.down_proj.bias`)),
    });
  }
  const embed = get('model.embed_tokens.weight');
  return {
    embed,
    layers,
    norm: get('model.norm.weight'),
    lmHead: opt('lm_head.weight') ?? embed,
    all: [...loaded.values()],
  };
}

function withBias<K extends string>(key: K, t: Tensor | undefined): { [P in K]?: Tensor } {
  return (t ? { [key]: t } : {}) as { [P in K]?: Tensor };
}

/**
 * The fused weights of each layer (`<layer>.qkv`, `<layer>.gate_up`, and their biases), made now
 * and registered in `loaded`; returns the checkpoint name of each part with the view it loads into.
 */
function fusedLayout(
  c: ModelConfig,
  dtype: DType,
  executor: Executor,
  loaded: Map<string, Tensor>,
): Map<string, Tensor> {
  const parts = new Map<string, Tensor>();
  const fuse = (name: string, pieces: ReadonlyArray<[string, number]>, cols: number | undefined) => {
    const rows = pieces.reduce((a, [, r]) => a + r, 0);
    const whole = executor.empty(dtype, cols === undefined ? [rows] : [rows, cols]);
    loaded.set(name, whole);
    let at = 0;
    for (const [part, r] of pieces) {
      const shape = cols === undefined ? [r] : [r, cols];
      const strides = cols === undefined ? [1] : [cols, 1];
      parts.set(part, whole.view({ shape, strides, offset: at * (cols ?? 1) }));
      at += r;
    }
  };
  const qDim = c.heads * c.headDim;
  const kvDim = c.kvHeads * c.headDim;
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    const qkv: Array<[string, number]> = [
      [`${p}.self_attn.q_proj`, qDim],
      [`${p}.self_attn.k_proj`, kvDim],
      [`${p}.self_attn.v_proj`, kvDim],
    ];
    const gateUp: Array<[string, number]> = [
      [`${p}.mlp.gate_proj`, c.intermediateSize],
      [`${p}.mlp.up_proj`, c.intermediateSize],
    ];
    fuse(
      `${p}.qkv`,
      qkv.map(([n, r]) => [`${n}.weight`, r]),
      c.hiddenSize,
    );
    if (c.qkvBias)
      fuse(
        `${p}.qkv.bias`,
        qkv.map(([n, r]) => [`${n}.bias`, r]),
        undefined,
      );
    fuse(
      `${p}.gate_up`,
      gateUp.map(([n, r]) => [`${n}.weight`, r]),
      c.hiddenSize,
    );
    if (c.mlpBias)
      fuse(
        `${p}.gate_up.bias`,
        gateUp.map(([n, r]) => [`${n}.bias`, r]),
        undefined,
      );
  }
  return parts;
}

/** The copy of a staged checkpoint tensor into its weight, undoing llama.cpp's q/k row order. */
function copyInto(staged: Tensor, weight: Tensor, t: CheckpointTensor): Op {
  const heads = t.interleavedHeads;
  if (heads === undefined) return { op: 'copy', src: staged, dst: weight };
  const [rows, cols] = t.shape as [number, number];
  const half = rows / heads / 2;
  const shape = [heads, 2, half, cols];
  // element (head, j, i, col): staged row head * 2 half + 2 i + j, weight row head * 2 half + j half + i
  return {
    op: 'copy',
    src: staged.view({ shape, strides: [2 * half * cols, cols, 2 * cols, 1], offset: staged.offset }),
    dst: weight.view({ shape, strides: [2 * half * cols, half * cols, cols, 1], offset: weight.offset }),
  };
}
