/**
 * One OpenAI request as runtime generations: its prompts and fields turned into `model.generate`
 * options, one generation per choice (`n`), each generation's tokens as OpenAI log-probability
 * entries, and the request's usage over its choices.
 */
import type { GenerateChunk, GenerateOptions, GenerateResult, Model } from '@fastattention/runtime';
import type { ChatRequest, CompletionRequest } from './protocol.js';

/** A choice being generated: its text deltas as they come, then its result. */
export interface Choice {
  readonly index: number;
  readonly chunks: AsyncIterable<GenerateChunk>;
  readonly result: Promise<GenerateResult>;
}

/** A request's choices and the top alternatives per token it wants (undefined: no logprobs). */
export interface RequestPlan {
  readonly choices: readonly Choice[];
  readonly logprobs: number | undefined;
}

type Common = ChatRequest | CompletionRequest;

/**
 * The request's generations, one per choice (indexed from 0), sharing `signal`. OpenAI's
 * defaults: temperature 1, top_p 1, one choice; without a seed, each choice draws its own. With a
 * seed, choice i uses seed + i, so n choices differ and the same request gives the same choices again.
 */
export function startChoices(
  model: Model,
  request: Common,
  prompt: Pick<GenerateOptions, 'prompt' | 'messages' | 'tokens'>,
  maxTokens: number | undefined,
  logprobs: number | undefined,
  signal: AbortSignal,
): Choice[] {
  const n = request.n ?? 1;
  const seed = request.seed ?? Math.floor(Math.random() * 0xffffffff);
  const base: GenerateOptions = {
    ...prompt,
    temperature: request.temperature ?? 1,
    topP: request.top_p ?? 1,
    ...(request.top_k != null && { topK: request.top_k }),
    ...(request.min_p != null && { minP: request.min_p }),
    ...(request.presence_penalty != null && { presencePenalty: request.presence_penalty }),
    ...(request.frequency_penalty != null && { frequencyPenalty: request.frequency_penalty }),
    ...(request.repetition_penalty != null && { repetitionPenalty: request.repetition_penalty }),
    ...(request.stop != null && { stop: typeof request.stop === 'string' ? [request.stop] : request.stop }),
    ...(maxTokens !== undefined && { maxTokens }),
    ...(request.ignore_eos && { stopTokens: [] }),
    ...(logprobs !== undefined && logprobs > 0 && { topLogprobs: logprobs }),
    signal,
  };
  return Array.from({ length: n }, (_, index) => {
    const generation = model.generate({ ...base, seed: (seed + index) % 0x100000000 });
    return { index, chunks: generation, result: generation.result };
  });
}

/** A token as OpenAI's logprobs content entry (chat) from a chunk. */
export function tokenLogprob(model: Model, chunk: GenerateChunk) {
  const text = (token: number) => model.tokenizer?.decode([token]) ?? String(token);
  const bytes = (s: string) => Array.from(Buffer.from(s, 'utf8'));
  const token = text(chunk.token);
  return {
    token,
    logprob: chunk.logprob,
    bytes: bytes(token),
    top_logprobs: (chunk.topLogprobs ?? []).map((t) => {
      const s = text(t.token);
      return { token: s, logprob: t.logprob, bytes: bytes(s) };
    }),
  };
}

/** OpenAI's finish reasons: an aborted generation never reaches a client, so it is not one of them. */
export function finishReason(result: GenerateResult): 'stop' | 'length' {
  return result.finishReason === 'length' ? 'length' : 'stop';
}

/** A completions prompt as the runtime's prompts: texts, or token ids (models without a tokenizer). */
export function promptList(
  prompt: CompletionRequest['prompt'],
): ({ prompt: string } | { tokens: Int32Array })[] {
  if (typeof prompt === 'string') return [{ prompt }];
  if (prompt.every((p) => typeof p === 'string')) return (prompt as string[]).map((p) => ({ prompt: p }));
  if (prompt.every((p) => typeof p === 'number')) return [{ tokens: Int32Array.from(prompt as number[]) }];
  return (prompt as number[][]).map((p) => ({ tokens: Int32Array.from(p) }));
}

/** Usage over a request's choices: each prompt counted once (n choices per prompt). */
export function usageOf(results: readonly GenerateResult[], n: number) {
  const prompt = results.reduce((s, r, i) => (i % n === 0 ? s + r.usage.promptTokens : s), 0);
  const completion = results.reduce((s, r) => s + r.usage.completionTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
