// GGUF files as llama.cpp's converter writes them (llama.cpp names, dimensions innermost first,
// Llama q/k rows in llama.cpp's RoPE order) load into the same model as the safetensors checkpoint
// they came from; quantized tensors and unknown architectures are refused by name.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReferenceBackend, type DType } from '@fastattention/core';
import { randomSeed, rng } from '@fastattention/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/index.js';
import { referenceLogits, type TinySpec, writeTinyCheckpoint, writeTinyGguf } from './tiny-checkpoint.js';

const seed = randomSeed();
let root: string;
const backend = createReferenceBackend();
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fa-gguf-'));
});
afterAll(async () => {
  await backend.dispose();
  await rm(root, { recursive: true, force: true });
});

const BASE: TinySpec = {
  architecture: 'llama',
  vocab: 37,
  hidden: 40,
  intermediate: 56,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 12,
  tie: true,
  dtype: 'f32',
};

describe(`runtime: GGUF (seed ${seed})`, () => {
  it.each([
    ['llama, GQA, head dim 12, tied, f16 tensors', BASE, 'f16'],
    [
      'qwen2 with q/k/v bias, untied, bf16 tensors',
      { ...BASE, architecture: 'qwen2', tie: false, headDim: undefined },
      'bf16',
    ],
  ] as Array<[string, TinySpec, DType]>)(
    '%s: the same logits as its safetensors checkpoint',
    async (name, spec, dtype) => {
      const rand = rng(seed + name.length);
      const dir = join(root, name.replace(/\W+/g, '-'));
      const ckpt = await writeTinyCheckpoint(dir, { ...spec, dtype }, rand);
      const file = join(root, `${name.replace(/\W+/g, '-')}.gguf`);
      await writeTinyGguf(file, ckpt, dtype);
      const [fromGguf, fromDir] = [await loadModel(file, { backend }), await loadModel(dir, { backend })];
      expect(fromGguf.info.config).toMatchObject({
        architecture: spec.architecture,
        heads: 4,
        kvHeads: 2,
        tieWordEmbeddings: spec.tie,
        eosTokenIds: [2],
      });
      const tokens = Int32Array.from({ length: 6 }, () => Math.floor(rand() * spec.vocab));
      const [a, b] = [await fromGguf.logits(tokens), await fromDir.logits(tokens)];
      const want = referenceLogits(ckpt, tokens);
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < a.length; i++) {
        diff += (a[i]! - b[i]!) ** 2;
        norm += want[i]! ** 2;
      }
      expect(Math.sqrt(diff / norm)).toBeLessThan(1e-6);
      expect(fromGguf.tokenizer).toBeUndefined();
      await Promise.all([fromGguf.dispose(), fromDir.dispose()]);
    },
  );

  it('refuses quantized tensors and unknown files, naming them', async () => {
    const ckpt = await writeTinyCheckpoint(join(root, 'q'), BASE, rng(seed));
    const file = join(root, 'q.gguf');
    await writeTinyGguf(file, ckpt, 'f16', 2); // every tensor marked Q4_0
    await expect(loadModel(file, { backend })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining('Q4_0'),
    });
    await expect(loadModel(join(root, 'missing.gguf'), { backend })).rejects.toMatchObject({
      field: 'checkpoint',
    });
  });
});
