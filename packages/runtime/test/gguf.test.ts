// GGUF files as llama.cpp's converter writes them (llama.cpp names, dimensions innermost first,
// Llama q/k rows in llama.cpp's RoPE order) load into the same model as the safetensors checkpoint
// they came from; quantized tensors and unknown architectures are refused by name.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReferenceBackend, type DType, ropeFrequencies } from '@fastattention/core';
import { randomSeed, rng } from '@fastattention/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufTokenizerFiles } from '../src/gguf-tokenizer.js';
import { loadModel } from '../src/index.js';
import {
  referenceLogits,
  type TinySpec,
  tinyTokenizerJson,
  writeTinyCheckpoint,
  writeTinyGguf,
  writeTinyTokenizer,
} from '../src/testing/index.js';
import { IncrementalDecoder, tokenizerOf } from '../src/tokenizer.js';

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

/** ||a - b|| / ||scale||: how far apart two sets of logits are, relative to the reference's. */
function distance(a: ArrayLike<number>, b: ArrayLike<number>, scale: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i]! - b[i]!) ** 2;
    norm += scale[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

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
      expect(distance(a, b, referenceLogits(ckpt, tokens))).toBeLessThan(1e-6);
      expect(fromGguf.tokenizer).toBeUndefined();
      await Promise.all([fromGguf.dispose(), fromDir.dispose()]);
    },
  );

  it("reads rope_freqs (Llama 3.1's RoPE factors) into the same model as the llama3 config", async () => {
    const rand = rng(seed + 3);
    const llama3 = {
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 16,
    };
    const spec: TinySpec = { ...BASE, theta: 500000, rope: { type: 'llama3', ...llama3 } };
    const dir = join(root, 'rope-freqs');
    const ckpt = await writeTinyCheckpoint(dir, spec, rand);
    // what llama.cpp's converter writes: each pair's divisor of the plain frequency
    const rope = { theta: 500000, rotaryDim: 12 };
    const plain = ropeFrequencies({ ...rope, scaling: { kind: 'default' } }).invFreq;
    const scaled = ropeFrequencies({
      ...rope,
      scaling: { kind: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16 },
    }).invFreq;
    const factors = Float32Array.from(plain, (f, i) => f / scaled[i]!);
    expect(new Set(factors).size).toBeGreaterThan(1); // kept pairs and divided ones
    const file = join(root, 'rope-freqs.gguf');
    await writeTinyGguf(file, ckpt, 'f32', { ropeFreqs: factors });
    const model = await loadModel(file, { backend });
    expect(model.info.config.rope.scaling).toMatchObject({ kind: 'factors' });
    // positions past the original 16, where llama3's scaling matters
    const tokens = Int32Array.from({ length: 40 }, () => Math.floor(rand() * spec.vocab));
    const want = referenceLogits(ckpt, tokens);
    expect(distance(await model.logits(tokens), want, want)).toBeLessThan(1e-6);
    await model.dispose();
    // the same file without its factors is a different model
    await writeTinyGguf(file, ckpt, 'f32');
    const plainModel = await loadModel(file, { backend });
    expect(distance(await plainModel.logits(tokens), want, want)).toBeGreaterThan(1e-3);
    await plainModel.dispose();
  });

  it('rebuilds a byte-level BPE tokenizer and chat template from the metadata', async () => {
    const dir = join(root, 'tokenized');
    const ckpt = await writeTinyCheckpoint(dir, { ...BASE, vocab: 272 }, rng(seed + 5));
    await writeTinyTokenizer(dir);
    const fromDir = await loadModel(dir, { backend });
    const text = "hello wörld, 你好 🙂 — 12345 I'LL héllo!\n\n  x";
    const conversation = [{ role: 'user', content: 'hi there' }];
    for (const pre of [undefined, 'llama-bpe', 'qwen2']) {
      const file = join(root, `tokenized-${pre ?? 'gpt2'}.gguf`);
      await writeTinyGguf(file, ckpt, 'f32', { tokenizer: pre === undefined ? {} : { pre } });
      const model = await loadModel(file, { backend });
      const tokenizer = model.tokenizer!;
      expect(tokenizer, pre).toBeDefined();
      const ids = tokenizer.encode(text);
      expect(tokenizer.decode(ids), pre).toBe(text); // every byte of the text kept, split or not
      expect(ids[0]).toBe(1); // add_bos_token
      // GPT-2's split is what tokenizer.json's ByteLevel does: the same ids
      if (pre === undefined) {
        expect(Array.from(ids)).toEqual(Array.from(fromDir.tokenizer!.encode(text)));
        // control tokens (the template's <|eot|>) stay single special tokens
        const rendered = model.applyChatTemplate(conversation);
        const asIds = (t: typeof tokenizer) => Array.from(t.encode(rendered, { addSpecialTokens: false }));
        expect(asIds(tokenizer)).toEqual(asIds(fromDir.tokenizer!));
        expect(asIds(tokenizer)).toContain(3);
      }
      expect(model.applyChatTemplate(conversation)).toBe(fromDir.applyChatTemplate(conversation));
      const g = model.generate({ prompt: 'hello', maxTokens: 3, stopTokens: [] });
      for await (const _ of g);
      expect((await g.result).usage.promptTokens).toBe(tokenizer.encode('hello').length);
      await model.dispose();
    }
    // an unknown pre-tokenizer: no tokenizer rather than a wrong one
    const unknown = join(root, 'tokenized-unknown.gguf');
    await writeTinyGguf(unknown, ckpt, 'f32', { tokenizer: { pre: 'some-new-model' } });
    const plain = await loadModel(unknown, { backend });
    expect(plain.tokenizer).toBeUndefined();
    await Promise.all([plain.dispose(), fromDir.dispose()]);
  });

  it('splits text with the pre-tokenizer tokenizer.ggml.pre names (a merge across its split never applies)', () => {
    const { vocab, merges } = tinyTokenizerJson();
    const tokens = [
      ...Object.entries(vocab)
        .sort((a, b) => a[1] - b[1])
        .map(([t]) => t),
      '12',
    ];
    const meta = (pre?: string) => ({
      'tokenizer.ggml.model': 'gpt2',
      'tokenizer.ggml.tokens': tokens,
      'tokenizer.ggml.merges': [...merges, '1 2'],
      ...(pre && { 'tokenizer.ggml.pre': pre }),
    });
    const pieces = (pre: string | undefined, text: string) => {
      const files = ggufTokenizerFiles(meta(pre))!;
      const tokenizer = tokenizerOf(files.json, files.config, 'test');
      return Array.from(tokenizer.encode(text), (id) => tokens[id]);
    };
    // '1212': one piece for GPT-2 ('12' '12'), '121' '2' for Llama 3, a digit a piece for Qwen2
    expect(pieces(undefined, '1212 x')).toEqual(['12', '12', 'Ġ', 'x']);
    expect(pieces('llama-bpe', '1212 x')).toEqual(['12', '1', '2', 'Ġ', 'x']);
    expect(pieces('qwen2', '1212 x')).toEqual(['1', '2', '1', '2', 'Ġ', 'x']);
    expect(ggufTokenizerFiles({ ...meta(), 'tokenizer.ggml.model': 'llama' })).toBeUndefined();
  });

  it('rebuilds a SentencePiece tokenizer (Llama 2, Mistral) from the pieces and their scores', () => {
    // <unk>, <s>, </s>, the 256 byte pieces, then normal pieces whose scores order the merges.
    const bytes = Array.from(
      { length: 256 },
      (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`,
    );
    const pieces: [string, number][] = [
      ['\u2581', -1],
      ['h', -2],
      ['e', -3],
      ['l', -4],
      ['o', -5],
      ['w', -6],
      ['r', -7],
      ['d', -8],
      ['ll', -0.5],
      ['he', -0.6],
      ['\u2581he', -0.7],
      ['llo', -0.8],
      ['\u2581hello', -0.9],
      ['or', -1.5],
      ['\u2581w', -1.6],
    ];
    const tokens = ['<unk>', '<s>', '</s>', ...bytes, ...pieces.map(([p]) => p)];
    const meta = (extra: Record<string, unknown> = {}) => ({
      'tokenizer.ggml.model': 'llama',
      'tokenizer.ggml.tokens': tokens,
      'tokenizer.ggml.scores': [0, 0, 0, ...bytes.map(() => 0), ...pieces.map(([, s]) => s)],
      'tokenizer.ggml.token_type': [2, 3, 3, ...bytes.map(() => 6), ...pieces.map(() => 1)],
      'tokenizer.ggml.bos_token_id': 1,
      'tokenizer.ggml.eos_token_id': 2,
      'tokenizer.ggml.unknown_token_id': 0,
      ...extra,
    });
    const files = ggufTokenizerFiles(meta())!;
    expect(files.config).toEqual({ bos_token: '<s>', eos_token: '</s>' });
    const tokenizer = tokenizerOf(files.json, files.config, 'test');
    const text = 'hello world';
    const ids = Array.from(tokenizer.encode(text));
    // The highest-scoring pair merges first: ll, he, \u2581he, llo, \u2581hello, then or and \u2581w.
    expect(ids.map((id) => tokens[id])).toEqual(['<s>', '\u2581hello', '\u2581w', 'or', 'l', 'd']);
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe(text);
    // Streamed token by token, the text is the same: the space marks between words survive.
    const stream = new IncrementalDecoder(tokenizer, ids.slice(0, 1));
    expect(
      ids
        .slice(1)
        .map((id) => stream.push(id))
        .join('') + stream.flush(),
    ).toBe(text);
    // A character outside the vocabulary falls back to its UTF-8 bytes, and decodes back whole.
    const accented = Array.from(tokenizer.encode('h\u00e9', { addSpecialTokens: false }));
    expect(accented.map((id) => tokens[id])).toEqual(['\u2581', 'h', '<0xC3>', '<0xA9>']);
    expect(tokenizer.decode(accented)).toBe('h\u00e9');
    const bytewise = new IncrementalDecoder(tokenizer);
    const parts = accented.map((id) => bytewise.push(id));
    expect(parts).toEqual(['', 'h', '', '\u00e9']); // never half a character

    // Scores, not ids, rank the merges: a last piece 'el' that scores above 'll' merges first.
    const el = meta({
      'tokenizer.ggml.tokens': [...tokens, 'el'],
      'tokenizer.ggml.scores': [...(meta()['tokenizer.ggml.scores'] as number[]), -0.45],
      'tokenizer.ggml.token_type': [...(meta()['tokenizer.ggml.token_type'] as number[]), 1],
    });
    const elFiles = ggufTokenizerFiles(el)!;
    const elPieces = Array.from(tokenizerOf(elFiles.json, elFiles.config, 'test').encode(text), (id) =>
      id === tokens.length ? 'el' : tokens[id],
    );
    expect(elPieces).toEqual(['<s>', '\u2581', 'h', 'el', 'l', 'o', '\u2581w', 'or', 'l', 'd']);
    // add_bos_token false is honoured; without scores there is no faithful rebuild.
    const noBos = ggufTokenizerFiles(meta({ 'tokenizer.ggml.add_bos_token': false }))!;
    expect(tokens[Array.from(tokenizerOf(noBos.json, noBos.config, 'test').encode(text))[0]!]).toBe(
      '\u2581hello',
    );
    expect(ggufTokenizerFiles(meta({ 'tokenizer.ggml.scores': undefined }))).toBeUndefined();
  });

  it('refuses quantized tensors and unknown files, naming them', async () => {
    const ckpt = await writeTinyCheckpoint(join(root, 'q'), BASE, rng(seed));
    const file = join(root, 'q.gguf');
    await writeTinyGguf(file, ckpt, 'f16', { typeOverride: 2 }); // every tensor marked Q4_0
    await expect(loadModel(file, { backend })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining('Q4_0'),
    });
    await expect(loadModel(join(root, 'missing.gguf'), { backend })).rejects.toMatchObject({
      field: 'checkpoint',
    });
  });
});
