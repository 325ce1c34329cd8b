// The tokenizer, chat template and streaming text on a tiny checkpoint with a byte-level BPE
// tokenizer written by the test: round trips of multi-byte text, incremental decoding that never
// emits half a character, stop strings that are never partly emitted, and generation from a
// prompt and from a conversation.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReferenceBackend } from '@fastattention/core';
import { randomSeed, rng } from '@fastattention/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncrementalDecoder, loadModel, type Model, StopMatcher } from '../src/index.js';
import { writeTinyCheckpoint, writeTinyTokenizer } from '../src/testing/index.js';

const seed = randomSeed();
let root: string;
let model: Model;
const backend = createReferenceBackend();
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fa-tokenizer-'));
  const dir = join(root, 'llama');
  await writeTinyCheckpoint(
    dir,
    {
      architecture: 'llama',
      vocab: 272,
      hidden: 32,
      intermediate: 48,
      layers: 1,
      heads: 4,
      kvHeads: 2,
      dtype: 'f32',
    },
    rng(seed),
  );
  expect(await writeTinyTokenizer(dir)).toBeLessThanOrEqual(272);
  model = await loadModel(dir, { backend });
});
afterAll(async () => {
  await model.dispose();
  await backend.dispose();
  await rm(root, { recursive: true, force: true });
});

const TEXT = 'hello wörld, 你好 🙂 — héllo!';

describe(`runtime: tokenizer and text (seed ${seed})`, () => {
  it('encodes with BOS, decodes multi-byte text back, and merges what its BPE merges', () => {
    const tok = model.tokenizer!;
    const ids = tok.encode(TEXT);
    expect(ids[0]).toBe(1);
    expect(tok.decode(ids)).toBe(TEXT);
    expect(tok.encode('hello', { addSpecialTokens: false }).length).toBe(2); // "hell" + "o"
  });

  it('decodes incrementally without splitting a character', () => {
    const tok = model.tokenizer!;
    const ids = tok.encode(TEXT, { addSpecialTokens: false });
    const decoder = new IncrementalDecoder(tok);
    const pieces = Array.from(ids, (id) => decoder.push(id));
    expect(pieces.join('') + decoder.flush()).toBe(TEXT);
    expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
    expect(pieces.filter((p) => p === '').length).toBeGreaterThan(3); // the multi-byte characters waited
  });

  it('holds back a possible stop string and cuts at the first one', () => {
    const m = new StopMatcher(['|stop', 'END']);
    expect(m.push('ab|').text).toBe('ab');
    expect(m.push('st').text).toBe('');
    expect(m.push('x')).toEqual({ text: '|stx', stopped: false });
    expect(m.push('y|sto')).toEqual({ text: 'y', stopped: false });
    expect(m.push('p and more')).toEqual({ text: '', stopped: true });
    expect(new StopMatcher(['END']).push('xEN').text).toBe('x');
  });

  it('generates from a prompt and a conversation; a stop string ends the text before it', async () => {
    const rendered = model.applyChatTemplate([{ role: 'user', content: 'hi' }]);
    expect(rendered).toBe('<s><|user|>hi<|eot|><|assistant|>');
    const run = async (options: Parameters<Model['generate']>[0]) => {
      const g = model.generate(options);
      let text = '';
      for await (const chunk of g) text += chunk.text;
      return { text, result: await g.result };
    };
    const chat = await run({ messages: [{ role: 'user', content: 'hi' }], maxTokens: 4, stopTokens: [] });
    expect(chat.result.usage.promptTokens).toBe(
      model.tokenizer!.encode(rendered, { addSpecialTokens: false }).length,
    );
    const free = await run({ prompt: 'hello', maxTokens: 24, stopTokens: [] });
    expect(free.text).toBe(free.result.text);
    const visible = free.result.text;
    expect(visible.length).toBeGreaterThanOrEqual(6); // 24 byte-level tokens
    const stop = visible.slice(3, 5);
    const cut = await run({ prompt: 'hello', maxTokens: 24, stopTokens: [], stop: [stop] });
    expect(cut.result).toMatchObject({
      finishReason: 'stop',
      text: visible.slice(0, visible.indexOf(stop)),
    });
    expect(cut.text).toBe(cut.result.text);
    // Text held back for a stop string that never comes is streamed when the generation ends:
    // at maxTokens (in the last token's chunk) and at a stop token (in that token's own chunk).
    const last = visible.at(-1)!;
    const atLength = await run({
      prompt: 'hello',
      maxTokens: 24,
      stopTokens: [],
      stop: [`${last}\u0001\u0002\u0003`],
    });
    expect(atLength.result).toMatchObject({ finishReason: 'length', text: visible });
    expect(atLength.text).toBe(visible);
    const tokens = Array.from(free.result.tokens);
    // the first token not seen before it (a tiny greedy model may loop on a few; then nothing to stop on)
    const k = tokens.findIndex((t, i) => i >= 2 && !tokens.slice(0, i).includes(t));
    if (k > 0) {
      const before = await run({ prompt: 'hello', maxTokens: k, stopTokens: [] });
      const held = before.result.text.at(-1)!;
      const g = model.generate({
        prompt: 'hello',
        maxTokens: 24,
        stopTokens: [tokens[k]!],
        stop: [`${held}\u0001\u0002\u0003`],
      });
      const chunks = [];
      for await (const chunk of g) chunks.push(chunk);
      const atStop = await g.result;
      expect(atStop).toMatchObject({ finishReason: 'stop', text: before.result.text });
      expect(chunks.map((c) => c.text).join('')).toBe(atStop.text);
      // the stop token's chunk released what was held (the stop string's first character, and any
      // bytes of an unfinished character before it)
      expect(chunks.at(-1)!.token).toBe(tokens[k]);
      expect(chunks.at(-1)!.text).not.toBe('');
      expect(atStop.text.endsWith(chunks.at(-1)!.text)).toBe(true);
    }
    expect(() => model.generate({ prompt: 'x', tokens: Int32Array.of(1) })).toThrow(
      expect.objectContaining({ field: 'tokens' }),
    );
  });
});
