// loadModel and model.logits on tiny checkpoints the tests write themselves, against an independent
// float64 forward: Llama (GQA, a head dim other than hidden / heads, tied embeddings, llama3 rope,
// sharded), Qwen2 (q/k/v bias, the v5 config form), Mistral (sliding window), in f32, f16 and bf16
// checkpoints and run dtypes, on the reference backend and on cpu; then every refusal, named.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReferenceBackend, type DType } from '@fastattention/core';
import { randomSeed, rng } from '@fastattention/core/testing';
import { createBackend as createCpuBackend } from '@fastattention/cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadProgress, loadModel, parseConfig } from '../src/index.js';
import {
  referenceLogits,
  type TinySpec,
  writeSafetensors,
  writeTinyCheckpoint,
} from '../src/testing/index.js';

const seed = randomSeed();
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fa-runtime-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

function relativeError(got: Float32Array, want: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i]! - want[i]!) ** 2;
    den += want[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

const LLAMA: TinySpec = {
  architecture: 'llama',
  vocab: 61,
  hidden: 40,
  intermediate: 72,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 24,
  tie: true,
  theta: 500000,
  rope: {
    type: 'llama3',
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 16,
  },
  dtype: 'f32',
  shards: 2,
};

const cases: Array<[string, TinySpec, 'reference' | 'cpu', DType, number]> = [
  [
    'llama: GQA 4/2, head dim 24 of hidden 40, tied, llama3 rope (v4 `rope_type`), 2 shards',
    LLAMA,
    'reference',
    'f32',
    1e-4,
  ],
  ['llama on cpu', LLAMA, 'cpu', 'f32', 1e-4],
  [
    'qwen2: q/k/v bias, v5 config (rope_parameters), bf16 checkpoint',
    {
      ...LLAMA,
      architecture: 'qwen2',
      headDim: undefined,
      hidden: 32,
      tie: false,
      rope: undefined,
      form: 'v5',
      dtype: 'bf16',
      shards: 1,
    },
    'reference',
    'f32',
    1e-4,
  ],
  [
    'mistral: sliding window 3, linear rope (v4 `type`), f16 checkpoint',
    {
      ...LLAMA,
      architecture: 'mistral',
      tie: false,
      slidingWindow: 3,
      rope: { type: 'linear', factor: 2 },
      dtype: 'f16',
    },
    'cpu',
    'f32',
    1e-4,
  ],
  [
    'llama: multi-head (4/4, as Llama 1/2), v5 config with llama3 rope_parameters',
    { ...LLAMA, kvHeads: 4, form: 'v5', shards: 1 },
    'cpu',
    'f32',
    1e-4,
  ],
  ['llama run in f16', LLAMA, 'reference', 'f16', 2e-2],
  ['llama run in bf16 on cpu', LLAMA, 'cpu', 'bf16', 2e-2],
];

describe(`runtime: logits against a float64 forward (seed ${seed})`, () => {
  it.each(cases)('%s', async (name, spec, backendName, dtype, tolerance) => {
    const rand = rng(seed + name.length);
    const dir = join(root, name.replace(/\W+/g, '-'));
    const ckpt = await writeTinyCheckpoint(dir, spec, rand);
    const backend = backendName === 'cpu' ? await createCpuBackend({ threads: 2 }) : createReferenceBackend();
    try {
      const model = await loadModel(dir, { backend, dtype });
      expect(model.info.dtype).toBe(dtype);
      const tokens = Int32Array.from({ length: 7 }, () => Math.floor(rand() * spec.vocab));
      const logits = await model.logits(tokens);
      expect(logits.length).toBe(7 * spec.vocab);
      expect(relativeError(logits, referenceLogits(ckpt, tokens))).toBeLessThan(tolerance);
      // The last position's logits do not depend on the sequence being longer: the same prefix
      // run alone gives the same rows.
      const prefix = await model.logits(tokens.subarray(0, 4));
      expect(relativeError(prefix, referenceLogits(ckpt, tokens.subarray(0, 4)))).toBeLessThan(tolerance);
      await model.dispose();
      await expect(model.logits(tokens)).rejects.toMatchObject({ code: 'DISPOSED' });
    } finally {
      await backend.dispose();
    }
  });

  it('reports load progress up to every byte, and stops when aborted', async () => {
    const dir = join(root, 'progress');
    await writeTinyCheckpoint(dir, LLAMA, rng(seed));
    const backend = createReferenceBackend();
    const seen: LoadProgress[] = [];
    const model = await loadModel(dir, { backend, onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.at(-1)!.loadedBytes).toBe(seen.at(-1)!.totalBytes);
    expect(seen.every((p, i) => i === 0 || p.loadedBytes > seen[i - 1]!.loadedBytes)).toBe(true);
    await model.dispose();
    const controller = new AbortController();
    const aborted = loadModel(dir, {
      backend,
      signal: controller.signal,
      onProgress: (p) => p.loadedBytes > 0 && controller.abort(),
    });
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await backend.dispose();
  });
});

describe(`runtime: attention 'standard', the materialized baseline (seed ${seed})`, () => {
  const MISTRAL: TinySpec = {
    ...LLAMA,
    architecture: 'mistral',
    tie: false,
    slidingWindow: 3,
    rope: undefined,
  };
  it.each([
    ['llama', 'reference', LLAMA],
    ['llama', 'cpu', LLAMA],
    ['mistral (sliding window 3)', 'cpu', MISTRAL],
  ] as const)(
    '%s on %s: the same logits and greedy tokens as the float64 forward',
    async (name, backendName, spec) => {
      const rand = rng(seed + 7 * name.length + backendName.length);
      const dir = join(root, `standard-${name.replace(/\W+/g, '-')}-${backendName}`);
      const ckpt = await writeTinyCheckpoint(dir, spec, rand);
      const backend =
        backendName === 'cpu' ? await createCpuBackend({ threads: 2 }) : createReferenceBackend();
      try {
        const model = await loadModel(dir, { backend, dtype: 'f32', attention: 'standard' });
        expect(model.info.attention).toBe('standard');
        const tokens = Int32Array.from({ length: 9 }, () => Math.floor(rand() * spec.vocab));
        expect(relativeError(await model.logits(tokens), referenceLogits(ckpt, tokens))).toBeLessThan(1e-4);
        // through the scheduler: chunked prefill and decode steps over the paged cache
        const generated: number[] = [];
        for await (const chunk of model.generate({ tokens, maxTokens: 6, stopTokens: [] }))
          generated.push(chunk.token);
        const seq = Array.from(tokens);
        for (const token of generated) {
          const last = referenceLogits(ckpt, seq).subarray((seq.length - 1) * spec.vocab);
          const best = last.indexOf(Math.max(...last));
          if (token !== best) expect(last[best]! - last[token]!).toBeLessThan(1e-4);
          seq.push(token);
        }
        await model.dispose();
      } finally {
        await backend.dispose();
      }
    },
  );

  it('runs on the best installed backend when given none, and disposes of it with the model', async () => {
    const dir = join(root, 'default-backend');
    const ckpt = await writeTinyCheckpoint(dir, { ...LLAMA, shards: 1 }, rng(seed));
    const model = await loadModel(dir);
    // cuda-volta where a GPU is, else cpu: both are installed in this workspace
    expect(['cuda', 'cpu']).toContain(model.info.backend);
    const tokens = Int32Array.of(3, 1, 4, 1, 5);
    const logits = await model.logits(tokens);
    const reference = referenceLogits(ckpt, Array.from(tokens));
    expect(relativeError(logits, reference)).toBeLessThan(model.info.dtype === 'f32' ? 1e-4 : 2e-2);
    await model.dispose();
    await expect(model.logits(tokens)).rejects.toMatchObject({ code: 'DISPOSED' });
  });

  it('refuses an unknown algorithm, naming attention', async () => {
    const dir = join(root, 'standard-refusal');
    await writeTinyCheckpoint(dir, LLAMA, rng(seed));
    const backend = createReferenceBackend();
    await expect(loadModel(dir, { backend, attention: 'tiled' as unknown as 'flash' })).rejects.toMatchObject(
      { code: 'INVALID_INPUT', field: 'attention' },
    );
    await backend.dispose();
  });
});

describe('runtime: refusals name what is wrong', () => {
  it('config.json fields', () => {
    const base = {
      architectures: ['LlamaForCausalLM'],
      vocab_size: 10,
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
    };
    expect(parseConfig(base)).toMatchObject({ kvHeads: 2, headDim: 4, rope: { theta: 10000, rotaryDim: 4 } });
    // Qwen2 slides only with use_sliding_window, and only the layers from max_window_layers on
    // (transformers' default 28); the runtime runs one window for every layer or none
    const qwen2 = { ...base, architectures: ['Qwen2ForCausalLM'], sliding_window: 4 };
    const windowOf = (fields: Record<string, unknown>) => parseConfig({ ...qwen2, ...fields }).slidingWindow;
    expect(windowOf({})).toBeUndefined();
    expect(windowOf({ use_sliding_window: true })).toBeUndefined(); // 1 layer < 28: none slides
    expect(windowOf({ use_sliding_window: true, max_window_layers: 0 })).toBe(4);
    expect(windowOf({ use_sliding_window: true, layer_types: ['sliding_attention'] })).toBe(4);
    expect(windowOf({ use_sliding_window: true, layer_types: ['full_attention'] })).toBeUndefined();
    expect(
      parseConfig({ ...base, architectures: ['MistralForCausalLM'], sliding_window: 4 }).slidingWindow,
    ).toBe(4);
    const bad: Array<[Record<string, unknown>, string, string]> = [
      [{ ...base, hidden_size: undefined }, 'config.hidden_size', 'INVALID_INPUT'],
      [
        { ...base, architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' },
        'config.architectures',
        'UNSUPPORTED',
      ],
      [{ ...base, num_key_value_heads: 3 }, 'config.num_key_value_heads', 'INVALID_INPUT'],
      [{ ...base, hidden_act: 'gelu' }, 'config.hidden_act', 'UNSUPPORTED'],
      [
        { ...base, rope_scaling: { rope_type: 'longrope', factor: 2 } },
        'config.rope_scaling.rope_type',
        'UNSUPPORTED',
      ],
      [
        { ...base, rope_parameters: { rope_type: 'llama3', factor: 8 } },
        'config.rope_parameters.original_max_position_embeddings',
        'INVALID_INPUT',
      ],
      [{ ...base, rope_scaling: { type: 'linear' } }, 'config.rope_scaling.factor', 'INVALID_INPUT'],
      [
        { ...qwen2, use_sliding_window: true, num_hidden_layers: 4, max_window_layers: 2 },
        'config.max_window_layers',
        'UNSUPPORTED',
      ],
      [
        {
          ...qwen2,
          use_sliding_window: true,
          num_hidden_layers: 2,
          layer_types: ['full_attention', 'sliding_attention'],
        },
        'config.layer_types',
        'UNSUPPORTED',
      ],
    ];
    for (const [json, field, code] of bad)
      expect(() => parseConfig(json), field).toThrow(expect.objectContaining({ field, code }));
  });

  it('checkpoints: a quantized tensor, a missing weight, a wrong shape, no config', async () => {
    const backend = createReferenceBackend();
    const dir = join(root, 'refusals');
    const ckpt = await writeTinyCheckpoint(dir, { ...LLAMA, shards: 1 }, rng(seed + 1));
    const names = [...ckpt.weights.keys()];
    const file = join(dir, 'model.safetensors');
    await writeSafetensors(file, names, ckpt.weights, 'f32', 'I8');
    await expect(loadModel(dir, { backend })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining('I8'),
    });
    await writeSafetensors(file, names.slice(1), ckpt.weights, 'f32');
    await expect(loadModel(dir, { backend })).rejects.toMatchObject({
      message: expect.stringContaining('model.embed_tokens.weight'),
    });
    const wrong = new Map(ckpt.weights);
    wrong.set('model.norm.weight', { shape: [3], values: new Float64Array(3) });
    await writeSafetensors(file, names, wrong, 'f32');
    await expect(loadModel(dir, { backend })).rejects.toMatchObject({
      message: expect.stringContaining('model.norm.weight'),
    });
    await writeFile(join(dir, 'config.json'), '{');
    await expect(loadModel(dir, { backend })).rejects.toMatchObject({ field: 'path' });
    await expect(loadModel(dir, { backend, dtype: 'f8' as never })).rejects.toMatchObject({ field: 'dtype' });
    await expect(loadModel(dir, { backend: { name: 'none' } as never })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      field: 'backend',
    });
    await backend.dispose();
  });
});
