// The scheduler through model.generate: concurrent requests batched into shared decode steps, each
// continuation still the float64 forward's greedy choice at every step (so rows never see each
// other's cache), requests joining mid-flight, prompts longer than a prefill chunk, a shared prompt
// prefix served from the cache, preemption when the cache is full, cancellation freeing blocks,
// seeded sampling that does not depend on what else is running, and dispose ending every request.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReferenceBackend } from '@fastattention/core';
import { randomSeed, rng } from '@fastattention/core/testing';
import { createBackend as createCpuBackend } from '@fastattention/cpu';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type GenerateOptions, loadModel, type Model, type SchedulerOptions } from '../src/index.js';
import { referenceLogits, type TinyCheckpoint, writeTinyCheckpoint } from '../src/testing/index.js';

const seed = randomSeed();
const random = rng(seed);
let root: string;
let ckpt: TinyCheckpoint;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fa-scheduler-'));
  ckpt = await writeTinyCheckpoint(
    join(root, 'llama'),
    {
      architecture: 'llama',
      vocab: 61,
      hidden: 32,
      intermediate: 40,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      dtype: 'f32',
    },
    random,
  );
});
afterAll(() => rm(root, { recursive: true, force: true }));

const prompt = (n: number) => Int32Array.from({ length: n }, () => Math.floor(random() * 61));

async function tokensOf(model: Model, options: GenerateOptions): Promise<number[]> {
  const generation = model.generate({ stopTokens: [], ...options });
  const tokens: number[] = [];
  for await (const chunk of generation) tokens.push(chunk.token);
  expect(Array.from((await generation.result).tokens)).toEqual(tokens);
  return tokens;
}

/** Each token is the float64 forward's argmax after the tokens before it, or within 1e-4 of it. */
function expectGreedy(promptTokens: Int32Array, tokens: readonly number[]): void {
  const seq = Array.from(promptTokens);
  for (const token of tokens) {
    const last = referenceLogits(ckpt, seq).subarray((seq.length - 1) * 61);
    let best = 0;
    for (let i = 1; i < last.length; i++) if (last[i]! > last[best]!) best = i;
    if (token !== best) expect(last[best]! - last[token]!).toBeLessThan(1e-4);
    seq.push(token);
  }
}

async function withModel<T>(
  name: 'reference' | 'cpu',
  scheduler: SchedulerOptions,
  body: (model: Model) => Promise<T>,
): Promise<T> {
  const backend = name === 'cpu' ? await createCpuBackend({ threads: 2 }) : createReferenceBackend();
  const model = await loadModel(ckpt.dir, { backend, dtype: 'f32', scheduler });
  try {
    return await body(model);
  } finally {
    await model.dispose();
    await backend.dispose();
  }
}

describe(`runtime: scheduler (seed ${seed})`, () => {
  it.each(['reference', 'cpu'] as const)(
    'batches concurrent requests, chunks long prompts, lets requests join mid-flight (%s)',
    (name) =>
      withModel(name, { maxBatch: 4, prefillChunk: 8 }, async (model) => {
        // 6 requests over 4 rows: two wait for a row; the 21- and 30-token prompts take 3-4 chunks.
        const prompts = [3, 21, 5, 30, 1, 9].map(prompt);
        const late = prompt(7);
        let most = 0;
        let joined: Promise<number[]> | undefined;
        const runs = prompts.map(async (p, i) => {
          const generation = model.generate({ tokens: p, maxTokens: 6 + i, stopTokens: [] });
          const tokens: number[] = [];
          for await (const chunk of generation) {
            tokens.push(chunk.token);
            most = Math.max(most, model.stats()!.running);
            // One more joins while the first is decoding.
            if (i === 0 && tokens.length === 2) joined = tokensOf(model, { tokens: late, maxTokens: 5 });
          }
          return tokens;
        });
        const all = await Promise.all(runs);
        all.push(await joined!);
        expect(most).toBeGreaterThan(1);
        expect(most).toBeLessThanOrEqual(4);
        [...prompts, late].forEach((p, i) => {
          expect(all[i]!.length).toBe(i < prompts.length ? 6 + i : 5);
          expectGreedy(p, all[i]!);
        });
        expect(model.stats()).toMatchObject({ running: 0, waiting: 0, usedBlocks: 0 });
      }),
  );

  it('serves a repeated prompt prefix from the cache', () =>
    withModel('cpu', { blockSize: 4 }, async (model) => {
      const shared = prompt(26);
      const first = await tokensOf(model, { tokens: shared, maxTokens: 4 });
      const before = model.stats()!;
      expect(before.prefixHitTokens).toBe(0);
      const again = await tokensOf(model, { tokens: shared, maxTokens: 4 });
      expect(again).toEqual(first);
      const longer = Int32Array.from([...shared.subarray(0, 17), ...prompt(5)]);
      expectGreedy(longer, await tokensOf(model, { tokens: longer, maxTokens: 4 }));
      const after = model.stats()!;
      // the whole blocks before the last prompt token: 24 of 26, then 16 of 22
      expect(after.prefixHitTokens).toBe(24 + 16);
      expect(after.promptTokens).toBe(26 + 26 + 22);
    }));

  it('keeps the decode batch as small as the rows held: the lowest free row first, the last rows moved down', () =>
    withModel('cpu', { maxBatch: 4, blockSize: 4 }, async (model) => {
      // Rows finish in the order 0, 1, 2, 3: the longest request is moved down from row 3 and ends
      // in a graph of 1 row, its tokens still the greedy ones; a request alone afterwards takes row 0.
      const prompts = [5, 6, 7, 8].map(prompt);
      let widest = 0;
      const all = await Promise.all(
        prompts.map(async (p, i) => {
          const tokens: number[] = [];
          for await (const chunk of model.generate({ tokens: p, maxTokens: 2 + 4 * i, stopTokens: [] })) {
            tokens.push(chunk.token);
            widest = Math.max(widest, model.stats()!.decodeBatch);
          }
          return tokens;
        }),
      );
      for (const [i, p] of prompts.entries()) expectGreedy(p, all[i]!);
      expect(widest).toBe(4);
      expect(model.stats()!.decodeBatch).toBe(1);
      const alone = prompt(5);
      expectGreedy(alone, await tokensOf(model, { tokens: alone, maxTokens: 4 }));
      expect(model.stats()!.decodeBatch).toBe(1);
    }));

  it('preempts the newest request when the cache is full, and every request still completes', () =>
    withModel('cpu', { maxBatch: 4, blockSize: 4, cacheTokens: 48 }, async (model) => {
      // Four requests that need 20-28 tokens each, in a cache of 48.
      const prompts = [8, 12, 6, 10].map(prompt);
      const all = await Promise.all(prompts.map((p) => tokensOf(model, { tokens: p, maxTokens: 16 })));
      prompts.forEach((p, i) => {
        expect(all[i]).toHaveLength(16);
        expectGreedy(p, all[i]!);
      });
      const stats = model.stats()!;
      expect(stats.preemptions).toBeGreaterThan(0);
      expect(stats.usedBlocks).toBe(0);
      // A prompt that cannot fit even alone is refused up front; maxTokens is cut to the room left.
      expect(() => model.generate({ tokens: prompt(48), maxTokens: 16 })).toThrow(
        expect.objectContaining({ field: 'tokens' }),
      );
      expect(
        (await model.generate({ tokens: prompt(40), maxTokens: 16 }).result).tokens.length,
      ).toBeLessThanOrEqual(8);
    }));

  it('frees a cancelled request at once, while the others go on', () =>
    withModel('cpu', { maxBatch: 4 }, async (model) => {
      const controller = new AbortController();
      const cancelled = model.generate({
        tokens: prompt(20),
        maxTokens: 40,
        stopTokens: [],
        signal: controller.signal,
      });
      const other = prompt(6);
      // a request that ends by itself lets go of its signal
      const kept = new AbortController();
      const removed = vi.spyOn(kept.signal, 'removeEventListener');
      const running = tokensOf(model, { tokens: other, maxTokens: 12, signal: kept.signal });
      let seen = 0;
      for await (const _ of cancelled) if (++seen === 3) controller.abort();
      const result = await cancelled.result;
      expect(result.finishReason).toBe('abort');
      expect(result.usage.completionTokens).toBeLessThan(40);
      expectGreedy(other, await running);
      expect(removed).toHaveBeenCalledWith('abort', expect.any(Function));
      expect(model.stats()).toMatchObject({ running: 0, waiting: 0, usedBlocks: 0 });
    }));

  it('gives a seeded, penalized request the same tokens alone and in a batch', () =>
    withModel('cpu', { maxBatch: 8 }, async (model) => {
      const p = prompt(5);
      const sampled = { tokens: p, maxTokens: 10, temperature: 1.1, topP: 0.9, seed: 42 };
      const penalized = { tokens: p, maxTokens: 10, repetitionPenalty: 1.3, frequencyPenalty: 0.5 };
      const alone = [await tokensOf(model, sampled), await tokensOf(model, penalized)];
      const crowd = [3, 7, 11, 2].map((n) => tokensOf(model, { tokens: prompt(n), maxTokens: 8 }));
      const together = await Promise.all([tokensOf(model, sampled), tokensOf(model, penalized), ...crowd]);
      expect(together.slice(0, 2)).toEqual(alone);
    }));

  it('ends queued and running requests with abort when the model is disposed', async () => {
    const backend = createReferenceBackend();
    const model = await loadModel(ckpt.dir, { backend, dtype: 'f32', scheduler: { maxBatch: 1 } });
    // one row: the second request waits in the queue while the first decodes
    const running = model.generate({ tokens: prompt(5), maxTokens: 50, stopTokens: [] });
    const queued = model.generate({ tokens: prompt(4), maxTokens: 50, stopTokens: [] });
    for await (const _ of running) break; // one chunk: it is decoding
    expect(model.stats()).toMatchObject({ running: 1, waiting: 1 });
    await model.dispose();
    const [a, b] = await Promise.all([running.result, queued.result]);
    expect(a.finishReason).toBe('abort');
    expect(a.usage.completionTokens).toBeLessThan(50);
    expect(b).toMatchObject({ finishReason: 'abort', usage: { completionTokens: 0 } });
    expect(() => model.generate({ tokens: prompt(3) })).toThrow(
      expect.objectContaining({ code: 'DISPOSED' }),
    );
    await backend.dispose();
  });
});
