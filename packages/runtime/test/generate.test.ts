// model.generate on a tiny checkpoint: greedy tokens equal the argmax of the float64 forward at
// every step (so the decode steps over the cache match a full forward), seeded sampling repeats
// itself, and stop tokens, maxTokens, abort and bad options end or refuse it as documented.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReferenceBackend } from '@fastattention/core';
import { randomSeed, rng } from '@fastattention/core/testing';
import { createBackend as createCpuBackend } from '@fastattention/cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GenerateChunk, loadModel, type Model } from '../src/index.js';
import {
  referenceLogits,
  type TinyCheckpoint,
  type TinySpec,
  writeTinyCheckpoint,
} from '../src/testing/index.js';

const seed = randomSeed();
const SPEC: TinySpec = {
  architecture: 'llama',
  vocab: 53,
  hidden: 32,
  intermediate: 48,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  dtype: 'f32',
};
let root: string;
let ckpt: TinyCheckpoint;
let qwen2: TinyCheckpoint;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fa-generate-'));
  ckpt = await writeTinyCheckpoint(join(root, 'llama'), SPEC, rng(seed));
  qwen2 = await writeTinyCheckpoint(
    join(root, 'qwen2'),
    { ...SPEC, architecture: 'qwen2', form: 'v5' },
    rng(seed + 1),
  );
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function collect(model: Model, options: Parameters<Model['generate']>[0]) {
  const generation = model.generate(options);
  const chunks: GenerateChunk[] = [];
  for await (const chunk of generation) chunks.push(chunk);
  return { chunks, result: await generation.result };
}

const argmax = (row: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
};

describe(`runtime: generate (seed ${seed})`, () => {
  it.each([
    ['llama', 'reference'],
    ['llama', 'cpu'],
    ['qwen2', 'cpu'],
  ] as const)(
    'greedy decode steps over the cache equal full float64 forwards (%s on %s)',
    async (architecture, name) => {
      const checkpoint = architecture === 'qwen2' ? qwen2 : ckpt;
      const backend = name === 'cpu' ? await createCpuBackend({ threads: 2 }) : createReferenceBackend();
      const model = await loadModel(checkpoint.dir, { backend, dtype: 'f32' });
      const prompt = Int32Array.of(5, 17, 3, 40, 22);
      const { chunks, result } = await collect(model, { tokens: prompt, maxTokens: 10, stopTokens: [] });
      // Each token is the float64 forward's argmax over the same prefix, or within 1e-4 of it (a
      // near-tie that f32 rounding may break either way).
      expect(chunks.length).toBe(10);
      const seq = Array.from(prompt);
      for (const { token } of chunks) {
        const last = referenceLogits(checkpoint, seq).subarray((seq.length - 1) * SPEC.vocab);
        const best = argmax(last);
        if (token !== best) expect(last[best]! - last[token]!).toBeLessThan(1e-4);
        seq.push(token);
      }
      expect(chunks.every((c) => c.logprob <= 0 && Number.isFinite(c.logprob))).toBe(true);
      expect(result).toMatchObject({
        finishReason: 'length',
        usage: { promptTokens: 5, completionTokens: 10 },
      });
      await model.dispose();
      await backend.dispose();
    },
  );

  it('seeded sampling repeats itself; stop tokens, maxTokens and abort end it', async () => {
    const backend = createReferenceBackend();
    const model = await loadModel(ckpt.dir, { backend });
    const prompt = Int32Array.of(1, 2, 3);
    const sampled = { tokens: prompt, maxTokens: 8, temperature: 1.3, topK: 20, topP: 0.95, stopTokens: [] };
    const a = await collect(model, { ...sampled, seed: 7 });
    // Two iterations of one generation both see every chunk.
    const twice = model.generate({ ...sampled, seed: 7 });
    const read = async () => {
      const tokens: number[] = [];
      for await (const c of twice) tokens.push(c.token);
      return tokens;
    };
    const [first, second] = await Promise.all([read(), read()]);
    expect(first).toEqual(a.chunks.map((c) => c.token));
    expect(second).toEqual(first);
    const b = await collect(model, { ...sampled, seed: 7 });
    expect(b.chunks).toEqual(a.chunks);
    const others = await Promise.all([8, 9, 10].map((s) => collect(model, { ...sampled, seed: s })));
    expect(
      others.some((o) => o.chunks.map((c) => c.token).join() !== a.chunks.map((c) => c.token).join()),
    ).toBe(true);
    // A stop token ends it and is counted, not yielded.
    const greedy = await collect(model, { tokens: prompt, maxTokens: 6, stopTokens: [] });
    // min-p 1 keeps only the most likely token: sampling at any temperature is then greedy
    const minP = await collect(model, {
      tokens: prompt,
      maxTokens: 6,
      stopTokens: [],
      temperature: 1.3,
      minP: 1,
      seed: 3,
    });
    expect(minP.chunks.map((c) => c.token)).toEqual(greedy.chunks.map((c) => c.token));
    const third = greedy.chunks[2]!.token;
    const firstAt = greedy.chunks.findIndex((c) => c.token === third);
    const stopped = await collect(model, { tokens: prompt, maxTokens: 6, stopTokens: [third] });
    expect(stopped.chunks.map((c) => c.token)).toEqual(greedy.chunks.slice(0, firstAt).map((c) => c.token));
    expect(stopped.result).toMatchObject({ finishReason: 'stop', usage: { completionTokens: firstAt + 1 } });
    // Abort after the second chunk.
    const controller = new AbortController();
    const generation = model.generate({
      tokens: prompt,
      maxTokens: 20,
      stopTokens: [],
      signal: controller.signal,
    });
    let seen = 0;
    for await (const _ of generation) if (++seen === 2) controller.abort();
    const aborted = await generation.result;
    expect(aborted.finishReason).toBe('abort');
    expect(aborted.usage.completionTokens).toBeLessThan(20);
    await model.dispose();
    await backend.dispose();
  });

  it('reports the top alternatives of each step, as the float64 forward ranks them', async () => {
    const backend = createReferenceBackend();
    const model = await loadModel(ckpt.dir, { backend, dtype: 'f32' });
    const prompt = Int32Array.of(4, 9, 33);
    const { chunks } = await collect(model, { tokens: prompt, maxTokens: 4, stopTokens: [], topLogprobs: 3 });
    const seq = Array.from(prompt);
    for (const chunk of chunks) {
      const top = chunk.topLogprobs!;
      expect(top.length).toBe(3);
      expect(top[0]!.token).toBe(chunk.token); // greedy: the most likely token
      expect(top[0]!.logprob).toBeCloseTo(chunk.logprob, 5);
      const last = referenceLogits(ckpt, seq).subarray((seq.length - 1) * SPEC.vocab);
      const max = Math.max(...last);
      const logSum = max + Math.log(last.reduce((a, v) => a + Math.exp(v - max), 0));
      for (const alt of top) expect(alt.logprob).toBeCloseTo(last[alt.token]! - logSum, 4);
      expect(top[0]!.logprob >= top[1]!.logprob && top[1]!.logprob >= top[2]!.logprob).toBe(true);
      seq.push(chunk.token);
    }
    expect(() => model.generate({ tokens: prompt, topLogprobs: 21 })).toThrow(
      expect.objectContaining({ field: 'topLogprobs' }),
    );
    await model.dispose();
    await backend.dispose();
  });

  it("stops at the EOS ids of generation_config.json, which override config.json's, by default", async () => {
    const backend = createReferenceBackend();
    const prompt = Int32Array.of(5, 17, 3, 40, 22);
    const plain = await loadModel(ckpt.dir, { backend, dtype: 'f32' });
    const free = await collect(plain, { tokens: prompt, maxTokens: 6, stopTokens: [] });
    await plain.dispose();
    const tokens = Array.from(free.result.tokens);
    // the third token generated becomes an end-of-sequence id, with one the greedy run never makes
    const eos = tokens[2]!;
    const never = Array.from({ length: SPEC.vocab }, (_, i) => i).find((i) => !tokens.includes(i))!;
    const dir = join(root, 'with-generation-config');
    await writeTinyCheckpoint(dir, SPEC, rng(seed));
    await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [never, eos] }));
    const model = await loadModel(dir, { backend, dtype: 'f32' });
    expect(model.info.config.eosTokenIds).toEqual([never, eos]);
    const stopped = await collect(model, { tokens: prompt, maxTokens: 6 }); // no stopTokens: the EOS ids
    const first = tokens.indexOf(eos);
    expect(stopped.result).toMatchObject({ finishReason: 'stop', usage: { completionTokens: first + 1 } });
    expect(stopped.chunks.map((c) => c.token)).toEqual(tokens.slice(0, first)); // EOS counted, not yielded
    await model.dispose();
  });

  it('refuses bad options, naming them', async () => {
    const backend = createReferenceBackend();
    const model = await loadModel(ckpt.dir, { backend });
    const tokens = Int32Array.of(1, 2);
    expect(() => model.generate({ tokens, temperature: -1 })).toThrow(
      expect.objectContaining({ field: 'options.temperature' }),
    );
    // refused whether or not the room left after the prompt would cut it down
    for (const maxTokens of [0, 2.5, 1e9 + 0.5, Number.POSITIVE_INFINITY]) {
      expect(() => model.generate({ tokens, maxTokens })).toThrow(
        expect.objectContaining({ field: 'maxTokens' }),
      );
    }
    expect(() => model.generate({ tokens: Int32Array.of(99) })).toThrow(
      expect.objectContaining({ field: 'tokens[0]' }),
    );
    expect(() => model.generate({ tokens: new Int32Array(0) })).toThrow(
      expect.objectContaining({ field: 'tokens' }),
    );
    await model.dispose();
    expect(() => model.generate({ tokens })).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    await backend.dispose();
  });
});
