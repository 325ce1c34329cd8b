// `fastattn serve`'s server against the official `openai` client, on 127.0.0.1, over a tiny
// checkpoint the test writes and runs on the cpu backend: chat and completions, streamed and not,
// n, stop, seeds, logprobs, usage, every error path, 64 concurrent streams, and disconnects that
// give their KV blocks back.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomSeed, rng } from '@fastattention/core/testing';
import { createBackend } from '@fastattention/cpu';
import { loadModel, type Model } from '@fastattention/runtime';
import { writeTinyCheckpoint, writeTinyTokenizer } from '@fastattention/runtime/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from '../src/server/app.js';

const seed = randomSeed();
let root: string;
let model: Model;
let backend: Awaited<ReturnType<typeof createBackend>>;
let server: Server;
let client: OpenAI;
let base: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fa-serve-'));
  const dir = join(root, 'tiny');
  const spec = {
    architecture: 'llama',
    vocab: 272,
    hidden: 32,
    intermediate: 48,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    dtype: 'f32',
    maxPositions: 8192, // room for the long generations the shutdown and disconnect tests cut
  } as const;
  await writeTinyCheckpoint(dir, spec, rng(seed));
  await writeTinyTokenizer(dir);
  backend = await createBackend({ threads: 2 });
  model = await loadModel(dir, { backend, scheduler: { maxBatch: 16, cacheTokens: 16384 } });
  server = createServer({ model, modelName: 'tiny' });
  base = await server.app.listen({ host: '127.0.0.1', port: 0 });
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server?.shutdown(0);
  await model?.dispose();
  await backend?.dispose();
  await rm(root, { recursive: true, force: true });
});

const hello = [{ role: 'user' as const, content: 'hello world' }];
const greedy = { model: 'tiny', temperature: 0 } as const;

/** The KV blocks in use, once the scheduler has settled (it frees a finished request's blocks after its step). */
async function settledBlocks(): Promise<number> {
  for (let i = 0; i < 250; i++) {
    const s = model.stats();
    if (!s || (s.running === 0 && s.waiting === 0)) return s?.usedBlocks ?? 0;
    await new Promise((r) => setTimeout(r, 20));
  }
  return model.stats()!.usedBlocks;
}

describe(`fastattn serve (seed ${seed})`, { timeout: 60_000 }, () => {
  it('lists its model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);
  });

  it('answers a chat completion, streamed and not, with the same text and usage', async () => {
    const whole = await client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 12 });
    const choice = whole.choices[0]!;
    expect(choice.message.role).toBe('assistant');
    expect(typeof choice.message.content).toBe('string');
    expect(['stop', 'length']).toContain(choice.finish_reason);
    expect(whole.usage!.completion_tokens).toBeGreaterThan(0);
    expect(whole.usage!.total_tokens).toBe(whole.usage!.prompt_tokens + whole.usage!.completion_tokens);
    const stream = await client.chat.completions.create({
      ...greedy,
      messages: hello,
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        finish ??= c.finish_reason;
      }
    }
    expect(text).toBe(choice.message.content);
    expect(finish).toBe(choice.finish_reason);
    expect(usage).toEqual(whole.usage);
  });

  it('answers completions, streamed and not, and several prompts with n choices each', async () => {
    const whole = await client.completions.create({ ...greedy, prompt: 'hello', max_tokens: 10 });
    let text = '';
    for await (const chunk of await client.completions.create({
      ...greedy,
      prompt: 'hello',
      max_tokens: 10,
      stream: true,
    }))
      text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(whole.choices[0]!.text);
    const many = await client.completions.create({
      ...greedy,
      prompt: ['hello', 'world'],
      max_tokens: 4,
      n: 2,
    });
    expect(many.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(many.choices[0]!.text).toBe(many.choices[1]!.text); // greedy: both choices alike
    const prompts = (await client.completions.create({ ...greedy, prompt: 'world', max_tokens: 1 })).usage!
      .prompt_tokens;
    expect(many.usage!.prompt_tokens).toBe(whole.usage!.prompt_tokens + prompts); // each prompt once
    // token ids instead of text (a checkpoint without a tokenizer is served this way)
    const ids = await client.completions.create({ ...greedy, prompt: [1, 40, 41, 42], max_tokens: 3 });
    expect(ids.usage!.prompt_tokens).toBe(4);
    expect(ids.usage!.completion_tokens).toBeGreaterThan(0);
    const bad = client.completions.create({ ...greedy, prompt: [1, -2], max_tokens: 3 });
    await expect(bad).rejects.toMatchObject({ status: 400 });
  });

  it('streams n choices of completions with logprobs, stop strings and the usage chunk last', async () => {
    const request = {
      model: 'tiny',
      prompt: 'hello',
      max_tokens: 12,
      temperature: 1,
      seed: 99,
      n: 2,
      logprobs: 2,
      stop: ['\u0001', 'zz'], // an array of stop strings (here none is likely to come)
      ignore_eos: true, // so that every generated token is yielded and counted alike
    };
    const whole = await client.completions.create(request as never);
    const texts = ['', ''];
    const tokens: string[][] = [[], []];
    const finishes: (string | null)[] = [null, null];
    let usage: OpenAI.CompletionUsage | undefined;
    let afterUsage = 0;
    const stream = (await client.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    } as never)) as unknown as AsyncIterable<OpenAI.Completion>;
    for await (const chunk of stream) {
      if (usage) afterUsage++;
      if (chunk.usage) {
        usage = chunk.usage;
        expect(chunk.choices).toEqual([]);
      }
      for (const c of chunk.choices) {
        expect(finishes[c.index]).toBeNull(); // nothing of a choice after its finish
        texts[c.index] += c.text;
        tokens[c.index]!.push(...(c.logprobs?.tokens ?? []));
        if (c.logprobs) expect(Object.keys(c.logprobs.top_logprobs![0]!).length).toBeLessThanOrEqual(2);
        finishes[c.index] = c.finish_reason;
      }
    }
    expect(afterUsage).toBe(0);
    // the same seed: the streamed choices are the whole ones, token by token
    expect(texts).toEqual(whole.choices.map((c) => c.text));
    expect(tokens).toEqual(whole.choices.map((c) => c.logprobs!.tokens));
    expect(finishes).toEqual(whole.choices.map((c) => c.finish_reason));
    expect(usage).toEqual(whole.usage);
    expect(whole.usage!.completion_tokens).toBe(tokens[0]!.length + tokens[1]!.length);
  });

  it('gives n choices that a seed makes repeatable, and stops at a stop string', async () => {
    const sampled = { model: 'tiny', messages: hello, max_tokens: 10, temperature: 1, n: 2, seed: 1234 };
    const a = await client.chat.completions.create(sampled);
    const b = await client.chat.completions.create(sampled);
    expect(a.choices).toHaveLength(2);
    expect(b.choices.map((c) => c.message.content)).toEqual(a.choices.map((c) => c.message.content));
    const free = await client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 16 });
    const text = free.choices[0]!.message.content!;
    if (text.length >= 4) {
      const stop = text.slice(2, 4);
      const stopped = await client.chat.completions.create({
        ...greedy,
        messages: hello,
        max_tokens: 16,
        stop,
      });
      expect(stopped.choices[0]!.message.content).toBe(text.slice(0, text.indexOf(stop)));
      expect(stopped.choices[0]!.finish_reason).toBe('stop');
    }
  });

  it('reports log-probabilities with top alternatives', async () => {
    // ignore_eos: a first token that ends the sequence would leave nothing to check
    const r = (await client.chat.completions.create({
      ...greedy,
      messages: hello,
      max_tokens: 6,
      logprobs: true,
      top_logprobs: 3,
      ignore_eos: true,
    } as never)) as unknown as OpenAI.ChatCompletion;
    const content = r.choices[0]!.logprobs!.content!;
    expect(content.length).toBeGreaterThan(0);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      // greedy: the chosen token is the most likely one
      expect(entry.top_logprobs[0]!.logprob).toBeCloseTo(entry.logprob, 4);
    }
  });

  it("answers every bad request with OpenAI's error, naming the field", async () => {
    const status = async (p: Promise<unknown>) => {
      const e = (await p.then(
        () => undefined,
        (err: unknown) => err,
      )) as InstanceType<typeof OpenAI.APIError>;
      expect(e).toBeInstanceOf(OpenAI.APIError);
      return { status: e.status, param: e.param, type: e.type };
    };
    expect(await status(client.chat.completions.create({ model: 'tiny', messages: [] }))).toMatchObject({
      status: 400,
      param: 'messages',
      type: 'invalid_request_error',
    });
    expect(
      await status(client.chat.completions.create({ ...greedy, messages: hello, temperature: 3 })),
    ).toMatchObject({
      status: 400,
      param: 'temperature',
    });
    expect(
      await status(
        client.chat.completions.create({
          model: 'tiny',
          messages: [{ role: 'wizard', content: 'x' }],
        } as never),
      ),
    ).toMatchObject({ status: 400, param: 'messages[0].role' });
    expect(await status(client.completions.create({ ...greedy, prompt: 'x', max_tokens: 0 }))).toMatchObject({
      status: 400,
      param: 'max_tokens',
    });
    const raw = async (path: string, init?: RequestInit) => {
      const r = await fetch(`${base}${path}`, init);
      return {
        status: r.status,
        body: (await r.json()) as { error?: { type: string; param: string | null } },
      };
    };
    expect((await raw('/v1/nothing')).status).toBe(404);
    // another model than the one served: OpenAI's 404
    await expect(
      client.chat.completions.create({ ...greedy, model: 'gpt-4o', messages: hello }),
    ).rejects.toMatchObject({ status: 404, param: 'model', code: 'model_not_found' });
    // what this server cannot honour is refused, naming the field, never silently ignored
    const refused: [Record<string, unknown>, string][] = [
      [{ tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'],
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [{ logit_bias: { '12': 5 } }, 'logit_bias'],
      [{ top_logprobs: 2 }, 'top_logprobs'], // without logprobs: true
    ];
    for (const [fields, param] of refused) {
      expect(
        await status(client.chat.completions.create({ ...greedy, messages: hello, ...fields } as never)),
      ).toMatchObject({ status: 400, param });
    }
    for (const [fields, param] of [
      [{ suffix: 'tail' }, 'suffix'],
      [{ best_of: 3 }, 'best_of'],
    ] as const) {
      expect(
        await status(client.completions.create({ ...greedy, prompt: 'x', ...fields } as never)),
      ).toMatchObject({
        status: 400,
        param,
      });
    }
    // null is "not given", as OpenAI takes it; an empty tools list or a text format asks for nothing
    const fine = await client.chat.completions.create({
      ...greedy,
      messages: hello,
      max_tokens: 2,
      stop: null,
      user: null,
      tools: [],
      response_format: { type: 'text' },
    } as never);
    expect(fine.choices[0]!.finish_reason).toMatch(/^(stop|length)$/);
    const badJson = await raw('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    expect(badJson.status).toBe(400);
    expect(badJson.body.error?.type).toBe('invalid_request_error');
    const huge = JSON.stringify({
      model: 'tiny',
      messages: [{ role: 'user', content: 'x'.repeat(2 << 20) }],
    });
    expect(
      (
        await raw('/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: huge,
        })
      ).status,
    ).toBe(413);
  });

  it('requires the API key when one is set, and answers 429 past its request limit', async () => {
    const guarded = createServer({ model, modelName: 'tiny', apiKey: 'sekrit', maxRequests: 1 });
    const url = await guarded.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const wrong = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'nope', maxRetries: 0 });
      await expect(wrong.models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
      // the route is checked, not the raw URL: a percent-encoded /v1 is the same route
      for (const path of ['/%761/models', '/v%31/models', '/v1/%6dodels'])
        expect((await fetch(`${url}${path}`)).status).toBe(401);
      const right = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sekrit', maxRetries: 0 });
      expect((await right.models.list()).data).toHaveLength(1);
      expect((await fetch(`${url}/health`)).status).toBe(200); // health needs no key
      // ignore_eos: the first request stays in flight until it is aborted below
      const long = (await right.chat.completions.create({
        ...greedy,
        messages: hello,
        max_tokens: 4000,
        stream: true,
        ignore_eos: true,
      } as never)) as unknown as AsyncIterable<unknown> & { controller: AbortController };
      const iterator = long[Symbol.asyncIterator]();
      await iterator.next(); // the first request is in flight
      const busy = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sekrit' },
        body: JSON.stringify({ model: 'tiny', messages: hello }),
      });
      expect(busy.status).toBe(429);
      expect(busy.headers.get('retry-after')).toBe('1');
      long.controller.abort();
    } finally {
      await guarded.shutdown(0);
    }
  });

  it('serves 64 concurrent streams, each equal to its request served alone, then frees every block', async () => {
    const baseline = await settledBlocks();
    const request = (i: number) => ({ ...greedy, prompt: `hello ${i % 9} world`, max_tokens: 8 + (i % 5) });
    const alone = new Map<number, string>();
    for (let i = 0; i < 9 * 5; i++) {
      const key = i;
      alone.set(key, (await client.completions.create(request(key))).choices[0]!.text);
    }
    const streamed = await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        let text = '';
        let finishes = 0;
        for await (const chunk of await client.completions.create({ ...request(i), stream: true })) {
          for (const c of chunk.choices) {
            expect(c.index).toBe(0);
            text += c.text;
            if (c.finish_reason) finishes++;
          }
        }
        expect(finishes).toBe(1);
        return text;
      }),
    );
    for (const [i, text] of streamed.entries()) expect(text).toBe(alone.get(i % 45));
    expect(await settledBlocks()).toBe(baseline);
  });

  it('shuts down gracefully: no new requests, the streams in flight cancelled after the grace period', async () => {
    const baseline = await settledBlocks();
    const closing = createServer({ model, modelName: 'tiny' });
    const url = await closing.app.listen({ host: '127.0.0.1', port: 0 });
    const local = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    // ignore_eos: the stream runs its 4000 tokens unless something stops it
    const stream = await local.chat.completions.create({
      ...greedy,
      messages: hello,
      max_tokens: 4000,
      stream: true,
      ignore_eos: true,
    } as never);
    const iterator = (stream as unknown as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    await iterator.next(); // in flight
    const started = performance.now();
    const shutdown = closing.shutdown(100);
    // the listener is closed at once: a new request is refused
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    await shutdown;
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(90); // the grace period was given
    expect(took).toBeLessThan(2000);
    // the stream was cut off long before its 4000 tokens, ending in an error event, not a finish
    // that would pass the cut text for a whole answer; its blocks are back
    let received = 1;
    let failure: unknown;
    for (;;) {
      const next = await iterator.next().catch((error: unknown) => {
        failure = error;
        return { done: true, value: undefined };
      });
      if (next.done) break;
      expect(
        (next.value as { choices: { finish_reason: string | null }[] }).choices[0]?.finish_reason,
      ).toBeNull();
      received++;
    }
    expect(received).toBeLessThan(4000);
    expect(String(failure)).toMatch(/shut down before this generation finished/);
    expect(await settledBlocks()).toBe(baseline);
  });

  it('cancels a stream whose client disconnects, and its KV blocks come back', async () => {
    const baseline = await settledBlocks();
    const cancelled = async () =>
      Number(
        /fastattn_requests_cancelled_total (\d+)/.exec(await (await fetch(`${base}/metrics`)).text())![1],
      );
    const before = await cancelled();
    const controller = new AbortController();
    const generated = async () =>
      Number(/fastattn_generated_tokens_total (\d+)/.exec(await (await fetch(`${base}/metrics`)).text())![1]);
    const tokensBefore = await generated();
    // ignore_eos: 4000 tokens unless the disconnect stops it
    const stream = (await client.chat.completions.create(
      { ...greedy, messages: hello, max_tokens: 4000, stream: true, ignore_eos: true } as never,
      { signal: controller.signal },
    )) as unknown as AsyncIterable<unknown>;
    try {
      for await (const _ of stream) {
        controller.abort();
      }
    } catch {
      // the client reports its own abort
    }
    expect(await settledBlocks()).toBe(baseline);
    await expect.poll(cancelled).toBe(before + 1);
    expect((await generated()) - tokensBefore).toBeLessThan(4000);
    // a request just now, so the 10 s rate window holds tokens however slow the machine was above
    await client.completions.create({ ...greedy, prompt: 'x', max_tokens: 2, ignore_eos: true } as never);
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const metrics = await response.text();
    for (const name of [
      'fastattn_kv_cache_usage_ratio',
      'fastattn_queue_depth',
      'fastattn_requests_in_flight',
    ])
      expect(metrics).toMatch(new RegExp(`^${name} [\\d.]+$`, 'm'));
    expect(metrics).toMatch(/fastattn_generated_tokens_total \d+/);
    expect(metrics).toMatch(/^fastattn_time_to_first_token_seconds_count [1-9]\d*$/m);
    expect(Number(/^fastattn_generation_tokens_per_second ([\d.]+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
  });
});
