/**
 * The OpenAI request bodies `fastattn serve` accepts, as zod schemas, and its error JSON:
 * `{ error: { message, type, param, code } }` with the status code OpenAI uses for the same fault
 * (`toApiError` maps the runtime's and fastify's errors to it).
 * Fields this server cannot honour (tools, a JSON response format, logit biases, best_of, suffix)
 * are refused naming the field, so that a client never gets an answer that silently ignored them;
 * other unknown fields are ignored, as vLLM and llama.cpp's servers do.
 */
import { isFastAttentionError } from '@fastattention/core';
import { z } from 'zod';

/** A field that may be absent, null or empty, and is refused otherwise. */
const unsupported = (what: string) =>
  z
    .unknown()
    .refine(
      (v) =>
        v == null ||
        (Array.isArray(v) && v.length === 0) ||
        (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0),
      `${what} is not supported by this server`,
    )
    .optional();

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish();

/** The sampling fields chat and completions share. */
const sampling = {
  model: z.string().nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(0).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().min(0).max(0xffffffff).nullish(),
  stop,
  n: z.number().int().min(1).max(16).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  /** vLLM's extension: generate max_tokens whatever the end-of-sequence tokens say (benchmarks). */
  ignore_eos: z.boolean().nullish(),
  user: z.string().nullish(),
  logit_bias: unsupported('logit_bias'),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
};

const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(z.object({ type: z.literal('text'), text: z.string() })).min(1)]),
});

export const chatRequest = z
  .object({
    ...sampling,
    messages: z.array(message).min(1),
    max_completion_tokens: z.number().int().min(1).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(20).nullish(),
    tools: unsupported('tools (function calling)'),
    tool_choice: z
      .unknown()
      .refine((v) => v == null || v === 'none', 'tool_choice: tools are not supported by this server')
      .optional(),
    functions: unsupported('functions (function calling)'),
    function_call: unsupported('function_call'),
    response_format: z
      .unknown()
      .refine(
        (v) => v == null || (typeof v === 'object' && (v as { type?: unknown }).type === 'text'),
        "only response_format { type: 'text' } is supported by this server",
      )
      .optional(),
  })
  .refine((r) => r.top_logprobs == null || r.logprobs === true, {
    message: 'logprobs must be true when top_logprobs is set',
    path: ['top_logprobs'],
  });

export const completionRequest = z.object({
  ...sampling,
  // text, several texts, token ids, or several lists of token ids (OpenAI's four forms)
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z.array(z.number().int().min(0)).min(1),
    z.array(z.array(z.number().int().min(0)).min(1)).min(1),
  ]),
  logprobs: z.number().int().min(0).max(20).nullish(),
  echo: z.literal(false).nullish(),
  best_of: z.literal(1).nullish(),
  suffix: z.string().max(0, 'suffix is not supported by this server').nullish(),
});

export type ChatRequest = z.infer<typeof chatRequest>;
export type CompletionRequest = z.infer<typeof completionRequest>;

/** An error as the response body and status OpenAI's API uses. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    options: {
      type?: string;
      param?: string | null;
      code?: string | null;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
    this.status = status;
    this.type = options.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.headers = options.headers ?? {};
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** The first schema issue as a 400 naming its field (`messages[0].role`). */
export function invalidRequest(error: z.ZodError): ApiError {
  const issue = error.issues[0]!;
  const param = issue.path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
  return new ApiError(400, param ? `${param}: ${issue.message}` : issue.message, {
    param: param || null,
    code: 'invalid_request',
  });
}

/** Any failure as OpenAI's error: the runtime's bad input is a 400 naming its field. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (isFastAttentionError(error)) {
    if (error.code === 'INVALID_INPUT' || error.code === 'UNSUPPORTED') {
      return new ApiError(400, error.message, { param: error.field ?? null, code: 'invalid_request' });
    }
    if (error.code === 'ABORTED')
      return new ApiError(499, 'The request was cancelled.', { code: 'cancelled' });
  }
  const e = error as { statusCode?: number; code?: string; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError(413, 'The request body is too large.', { code: 'request_too_large' });
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, e.message ?? 'Bad request.', { code: 'invalid_request' });
  }
  return new ApiError(500, 'The server had an error while processing the request.');
}
