/**
 * `fastattn serve`'s HTTP layer (fastify) over the runtime's public API: OpenAI's /v1/models,
 * /v1/chat/completions and /v1/completions, streamed (SSE) or not, with usage in every response;
 * /health and Prometheus /metrics. A client that disconnects cancels its generations (their KV
 * blocks are freed); past `maxRequests` in flight, requests get 429 with Retry-After.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { GenerateChunk, GenerateResult, Model } from '@fastattention/runtime';
import Fastify, { type FastifyReply } from 'fastify';
import {
  type Choice,
  finishReason,
  promptList,
  type RequestPlan,
  startChoices,
  tokenLogprob,
  usageOf,
} from './generation.js';
import { ServerMetrics } from './metrics.js';
import { ApiError, chatRequest, completionRequest, invalidRequest, toApiError } from './protocol.js';

export interface ServerOptions {
  readonly model: Model;
  /** The id /v1/models lists and responses carry. */
  readonly modelName: string;
  /** When set, every request but /health and /metrics needs `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string;
  /** Completion requests served at once; more get 429 (default 256). */
  readonly maxRequests?: number;
  /** The largest request body, in bytes (default 1 MiB). */
  readonly bodyLimit?: number;
  readonly logger?: boolean;
}

export interface Server {
  readonly app: ReturnType<typeof Fastify>;
  /** Stops taking requests, lets those in flight finish for up to `graceMs`, cancels the rest, closes. */
  shutdown(graceMs?: number): Promise<void>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const shuttingDown = (message = 'The server is shutting down.') =>
  new ApiError(503, message, { code: 'server_shutting_down' });

export function createServer(options: ServerOptions): Server {
  const { model, modelName } = options;
  const maxRequests = options.maxRequests ?? 256;
  const metrics = new ServerMetrics(model);
  // Connections are closed by shutdown(), not by fastify: its close would cut the streams in flight.
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1 << 20,
    forceCloseConnections: false,
  });
  const active = new Set<AbortController>();
  let closing = false;
  const key = options.apiKey === undefined ? undefined : digest(options.apiKey);

  // Every route but /health and /metrics needs the key. The route fastify matched is checked, not
  // the raw URL: fastify decodes the path, so /%761/models reaches /v1/models.
  const open = new Set(['/health', '/metrics']);
  app.addHook('onRequest', async (request) => {
    if (key === undefined || open.has(request.routeOptions.url ?? '')) return;
    const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
    // Compared as fixed-length digests, in constant time whatever the key's length.
    if (!timingSafeEqual(digest(given), key)) {
      throw new ApiError(401, 'Incorrect API key provided.', { code: 'invalid_api_key' });
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.requests.inc({ route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });
  app.setErrorHandler((error, _request, reply) => {
    const api = toApiError(error);
    if (api.status >= 500) app.log.error(error);
    void reply.status(api.status).headers(api.headers).send(api.body());
  });
  app.setNotFoundHandler((request, reply) => {
    const api = new ApiError(404, `Unknown request URL: ${request.method} ${request.url}.`, {
      code: 'unknown_url',
    });
    void reply.status(404).send(api.body());
  });

  app.get('/health', async () => ({ status: closing ? 'closing' : 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/v1/models', async () => ({
    object: 'list',
    data: [{ id: modelName, object: 'model', created: 0, owned_by: 'fastattn' }],
  }));

  /**
   * Admits a request for `model` (404 for another model, 429, 503) and ties its generations to the
   * client's connection.
   */
  const admit = (requested: string | null | undefined, reply: FastifyReply): AbortController => {
    if (requested != null && requested !== modelName) {
      throw new ApiError(
        404,
        `The model \`${requested}\` does not exist; this server serves \`${modelName}\`.`,
        {
          param: 'model',
          code: 'model_not_found',
        },
      );
    }
    if (closing) throw shuttingDown();
    if (active.size >= maxRequests) {
      throw new ApiError(429, `More than ${maxRequests} requests in flight; retry shortly.`, {
        type: 'rate_limit_error',
        code: 'rate_limit_exceeded',
        headers: { 'retry-after': '1' },
      });
    }
    const controller = new AbortController();
    active.add(controller);
    metrics.inFlight.set(active.size);
    // 'close' before the response finished: the client went away. Either way the request's
    // generations stop (after an error response, some may still be running).
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) metrics.cancelled.inc();
      controller.abort();
      active.delete(controller);
      metrics.inFlight.set(active.size);
    });
    return controller;
  };

  app.post('/v1/chat/completions', async (request, reply) => {
    const parsed = chatRequest.safeParse(request.body);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const body = parsed.data;
    const controller = admit(body.model, reply);
    const messages = body.messages.map((m) => ({
      role: m.role === 'developer' ? 'system' : m.role,
      content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
    }));
    const logprobs = body.logprobs ? (body.top_logprobs ?? 0) : undefined;
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    const plan: RequestPlan = {
      choices: startChoices(model, body, { messages }, maxTokens, logprobs, controller.signal),
      logprobs,
    };
    const head = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: modelName };
    const started = performance.now();
    if (body.stream) {
      const includeUsage = body.stream_options?.include_usage === true;
      return streamResponse(reply, plan, plan.choices.length, started, includeUsage, {
        chunk: (choice, delta, chunk, first) => ({
          ...head,
          object: 'chat.completion.chunk',
          choices: [
            {
              index: choice.index,
              delta: { ...(first && { role: 'assistant' }), content: delta },
              logprobs:
                chunk && plan.logprobs !== undefined ? { content: [tokenLogprob(model, chunk)] } : null,
              finish_reason: null,
            },
          ],
          ...(includeUsage && { usage: null }),
        }),
        finish: (choice, result) => ({
          ...head,
          object: 'chat.completion.chunk',
          choices: [
            {
              index: choice.index,
              delta: {},
              logprobs: null,
              finish_reason: finishReason(result),
            },
          ],
          ...(includeUsage && { usage: null }),
        }),
        usage: (usage) => ({ ...head, object: 'chat.completion.chunk', choices: [], usage }),
      });
    }
    const done = await collect(plan, started);
    return {
      ...head,
      object: 'chat.completion',
      choices: done.map(({ choice, result, chunks }) => ({
        index: choice.index,
        message: { role: 'assistant', content: result.text },
        logprobs: plan.logprobs === undefined ? null : { content: chunks.map((c) => tokenLogprob(model, c)) },
        finish_reason: finishReason(result),
      })),
      usage: usageOf(
        done.map((d) => d.result),
        plan.choices.length,
      ),
    };
  });

  app.post('/v1/completions', async (request, reply) => {
    const parsed = completionRequest.safeParse(request.body);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const body = parsed.data;
    const controller = admit(body.model, reply);
    const prompts = promptList(body.prompt);
    const n = body.n ?? 1;
    const logprobs = body.logprobs ?? undefined;
    // choice i * n + j is prompt i's j-th choice
    const choices = prompts.flatMap((prompt, i) =>
      startChoices(model, body, prompt, body.max_tokens ?? 16, logprobs, controller.signal).map((c) => ({
        ...c,
        index: i * n + c.index,
      })),
    );
    const plan: RequestPlan = { choices, logprobs };
    const head = { id: `cmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: modelName };
    const started = performance.now();
    const legacyLogprobs = (chunks: readonly GenerateChunk[]) => {
      const entries = chunks.map((c) => tokenLogprob(model, c));
      // each token's offset in the completion text: the lengths of the tokens before it
      let offset = 0;
      const textOffset = entries.map((e) => {
        const at = offset;
        offset += e.token.length;
        return at;
      });
      return {
        tokens: entries.map((e) => e.token),
        token_logprobs: entries.map((e) => e.logprob),
        top_logprobs: entries.map((e) => Object.fromEntries(e.top_logprobs.map((t) => [t.token, t.logprob]))),
        text_offset: textOffset,
      };
    };
    if (body.stream) {
      const includeUsage = body.stream_options?.include_usage === true;
      const event = (index: number, text: string, logprobs: unknown, finish: string | null) => ({
        ...head,
        object: 'text_completion',
        choices: [{ index, text, logprobs, finish_reason: finish }],
        ...(includeUsage && { usage: null }),
      });
      return streamResponse(reply, plan, n, started, includeUsage, {
        chunk: (choice, delta, chunk) =>
          event(choice.index, delta, chunk && logprobs !== undefined ? legacyLogprobs([chunk]) : null, null),
        finish: (choice, result) => event(choice.index, '', null, finishReason(result)),
        usage: (usage) => ({ ...head, object: 'text_completion', choices: [], usage }),
      });
    }
    const done = await collect(plan, started);
    return {
      ...head,
      object: 'text_completion',
      choices: done.map(({ choice, result, chunks }) => ({
        index: choice.index,
        text: result.text,
        logprobs: logprobs === undefined ? null : legacyLogprobs(chunks),
        finish_reason: finishReason(result),
      })),
      usage: usageOf(
        done.map((d) => d.result),
        n,
      ),
    };
  });

  /** Every choice run to its end, its chunks kept (for logprobs). */
  async function collect(plan: RequestPlan, started: number) {
    let first = true;
    return Promise.all(
      plan.choices.map(async (choice) => {
        const chunks: GenerateChunk[] = [];
        for await (const chunk of choice.chunks) {
          if (first) metrics.timeToFirstToken.observe((performance.now() - started) / 1e3);
          first = false;
          metrics.tokenGenerated();
          chunks.push(chunk);
        }
        const result = await settled(choice);
        return { choice, result, chunks };
      }),
    );
  }

  interface StreamEvents {
    chunk(choice: Choice, delta: string, chunk: GenerateChunk | undefined, first: boolean): unknown;
    finish(choice: Choice, result: GenerateResult): unknown;
    usage(usage: ReturnType<typeof usageOf>): unknown;
  }

  /**
   * Server-sent events: each choice's deltas as they come, its finish, the usage if asked (its
   * prompts counted once: `perPrompt` choices each), then [DONE].
   */
  async function streamResponse(
    reply: FastifyReply,
    plan: RequestPlan,
    perPrompt: number,
    started: number,
    includeUsage: boolean,
    events: StreamEvents,
  ): Promise<void> {
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    // A slow reader is not written past the socket's buffer: the events wait (in the generation's
    // own chunk list, at most max_tokens of them) until it drains.
    const send = async (data: unknown) => {
      if (raw.destroyed) return;
      if (raw.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          raw.off('drain', done);
          raw.off('close', done);
          resolve();
        };
        raw.on('drain', done);
        raw.on('close', done);
      });
    };
    let firstToken = true;
    try {
      const results = await Promise.all(
        plan.choices.map(async (choice) => {
          let first = true;
          for await (const chunk of choice.chunks) {
            if (firstToken) metrics.timeToFirstToken.observe((performance.now() - started) / 1e3);
            firstToken = false;
            metrics.tokenGenerated();
            // a token may complete no text yet (half a character, a possible stop string)
            if (chunk.text === '' && plan.logprobs === undefined && !first) continue;
            await send(events.chunk(choice, chunk.text, chunk, first));
            first = false;
          }
          const result = await settled(choice); // its chunks carried all its text
          await send(events.finish(choice, result));
          return result;
        }),
      );
      if (includeUsage) await send(events.usage(usageOf(results, perPrompt)));
      await send('[DONE]');
    } catch (error) {
      await send(toApiError(error).body());
    } finally {
      raw.end();
    }
  }

  /**
   * A choice's result, counted. A generation cancelled by the server's shutdown is an error (503),
   * not a short answer that looks finished; one whose client left answers no one.
   */
  async function settled(choice: Choice): Promise<GenerateResult> {
    const result = await choice.result;
    metrics.tokens.inc(result.usage.completionTokens);
    metrics.promptTokens.inc(result.usage.promptTokens);
    if (result.finishReason !== 'abort') return result;
    throw closing
      ? shuttingDown('The server shut down before this generation finished.')
      : new ApiError(499, 'The request was cancelled.', { code: 'cancelled' });
  }

  return {
    app,
    async shutdown(graceMs = 10_000) {
      closing = true;
      const closed = app.close(); // stops listening at once
      const timer = setTimeout(() => {
        for (const controller of active) controller.abort();
      }, graceMs);
      // Wait for the requests in flight (cut at the grace period), then close the connections
      // they leave open for keep-alive.
      while (active.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      clearTimeout(timer);
      app.server.closeAllConnections();
      await closed;
    },
  };
}
