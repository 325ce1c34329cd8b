/**
 * `model.generate`: the options checked and turned into a scheduler request (scheduler.ts runs
 * every request of the model together), and the tokens turned into chunks of text as they come:
 * incremental detokenization, stop strings, stop tokens.
 */
import {
  checkSamplingParams,
  DEFAULT_SAMPLING,
  invalidInput,
  type SamplingParams,
} from '@fastattention/core';
import type { ModelConfig } from './config.js';
import type { Scheduler } from './scheduler.js';
import {
  applyChatTemplate,
  type ChatMessage,
  IncrementalDecoder,
  StopMatcher,
  type Tokenizer,
} from './tokenizer.js';

export interface GenerateOptions extends Partial<SamplingParams> {
  /** The prompt: token ids, text (encoded with the tokenizer's special tokens), or a conversation (the chat template). One of the three. */
  readonly tokens?: Int32Array;
  readonly prompt?: string;
  readonly messages?: readonly ChatMessage[];
  /** Text that ends the generation; the text before it is the last emitted, the stop string is not. */
  readonly stop?: readonly string[];
  /** Tokens to generate at most (default 256; never past the model's max positions). */
  readonly maxTokens?: number;
  /**
   * Also report the n most likely tokens of each step with their log-probabilities under the
   * model's raw logits (OpenAI's `top_logprobs`; 0-20). Reads each step's logits back to the host.
   */
  readonly topLogprobs?: number;
  /**
   * Tokens that end the generation (default: the config's EOS ids). Not yielded, unless text was
   * held back when one came (a possible stop string, half a character): its chunk carries that text.
   */
  readonly stopTokens?: readonly number[];
  readonly signal?: AbortSignal;
}

export interface GenerateChunk {
  readonly token: number;
  /**
   * The text this token completes ('' while a multi-byte character or a possible stop string is
   * incomplete, or without a tokenizer). The chunks' texts, concatenated, are the result's text.
   */
  readonly text: string;
  /** The token's log-probability under the sampling distribution's logits (after penalties). */
  readonly logprob: number;
  /** With `topLogprobs`: the most likely tokens of this step, most likely first. */
  readonly topLogprobs?: ReadonlyArray<{ readonly token: number; readonly logprob: number }>;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerateResult {
  /** Every token generated, the stop token included (counted; yielded only to release held-back text). */
  readonly tokens: Int32Array;
  /** The generated text (without a stop string), when the model has a tokenizer. */
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly usage: { readonly promptTokens: number; readonly completionTokens: number };
}

/** What `model.generate` returns: the chunks as they come, and the result once done. */
export interface Generation extends AsyncIterable<GenerateChunk> {
  readonly result: Promise<GenerateResult>;
}

interface Run {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer | undefined;
  readonly scheduler: Scheduler;
}

/** The prompt's tokens from `tokens`, `prompt` or `messages`. */
function promptTokens(run: Run, options: GenerateOptions): Int32Array {
  const given = [options.tokens, options.prompt, options.messages].filter((p) => p !== undefined).length;
  if (given !== 1) throw invalidInput('tokens', 'expected exactly one of tokens, prompt and messages');
  if (options.tokens !== undefined) {
    if (!(options.tokens instanceof Int32Array) || options.tokens.length === 0) {
      throw invalidInput('tokens', 'expected a non-empty Int32Array');
    }
    return options.tokens;
  }
  const field = options.prompt !== undefined ? 'prompt' : 'messages';
  if (!run.tokenizer) throw invalidInput(field, 'the checkpoint has no tokenizer.json: pass tokens');
  const tokens =
    options.prompt !== undefined
      ? run.tokenizer.encode(String(options.prompt))
      : // the template writes the special tokens it wants (BOS included)
        run.tokenizer.encode(applyChatTemplate(run.tokenizer, options.messages!), {
          addSpecialTokens: false,
        });
  if (tokens.length === 0) throw invalidInput(field, 'encodes to no tokens');
  return tokens;
}

export function startGeneration(run: Run, options: GenerateOptions): Generation {
  const { config } = run;
  const prompt = promptTokens(run, options);
  const bad = prompt.findIndex((t) => t < 0 || t >= config.vocabSize);
  if (bad >= 0)
    throw invalidInput(`tokens[${bad}]`, `${prompt[bad]} is outside the vocabulary (${config.vocabSize})`);
  // a sequence holds the model's positions, or the KV cache's share of one when that is smaller
  const limit = run.scheduler.maxSequenceTokens;
  const room = limit - prompt.length;
  if (room <= 0) {
    throw invalidInput(
      'tokens',
      `the prompt (${prompt.length} tokens) fills the ${limit} positions a sequence may hold`,
    );
  }
  // checked before the clamp: a bad value is refused whatever room the prompt leaves
  const asked = options.maxTokens ?? 256;
  if (!Number.isSafeInteger(asked) || asked < 1) {
    throw invalidInput('maxTokens', `expected a positive integer, got ${options.maxTokens}`);
  }
  const maxTokens = Math.min(asked, room);
  const sampling = checkSamplingParams(
    Object.fromEntries(
      Object.keys(DEFAULT_SAMPLING).map((k) => [
        k,
        options[k as keyof SamplingParams] ?? DEFAULT_SAMPLING[k as keyof SamplingParams],
      ]),
    ),
    'options',
  );
  const top = options.topLogprobs ?? 0;
  if (!Number.isSafeInteger(top) || top < 0 || top > 20) {
    throw invalidInput('topLogprobs', `expected an integer in [0, 20], got ${options.topLogprobs}`);
  }
  const stop = new Set(options.stopTokens ?? config.eosTokenIds);
  if (
    options.stop !== undefined &&
    (!Array.isArray(options.stop) || options.stop.some((s) => typeof s !== 'string'))
  ) {
    throw invalidInput('stop', 'expected an array of strings');
  }
  if (options.stop?.length && !run.tokenizer)
    throw invalidInput('stop', "stop strings need the checkpoint's tokenizer");
  const decoder = run.tokenizer && new IncrementalDecoder(run.tokenizer, prompt);
  const matcher = new StopMatcher(options.stop ?? []);
  const chunks: GenerateChunk[] = [];
  let text = '';
  // Iterators waiting for the next chunk (each iteration of the generation reads every chunk).
  const waiting = new Set<() => void>();
  const wake = () => {
    for (const resolve of waiting) resolve();
    waiting.clear();
  };
  let done = false;
  const push = (chunk: GenerateChunk) => {
    chunks.push(chunk);
    text += chunk.text;
    wake();
  };
  // Text held back for a possible stop string or an unfinished character, released when the
  // generation ends on a stop token or at maxTokens (it was text after all). The decoder's last
  // bytes may still complete a stop string: the text ends before it and the finish reason is 'stop'.
  let stoppedAtRelease = false;
  const release = () => {
    const tail = matcher.push(decoder?.flush() ?? '');
    if (tail.stopped) stoppedAtRelease = true;
    return tail.text + matcher.flush();
  };
  let generated = 0;
  const result = run.scheduler
    .submit({
      prompt,
      maxTokens,
      sampling,
      topLogprobs: top,
      ...(options.signal && { signal: options.signal }),
      onToken: (token, logprob, alternatives) => {
        generated++;
        const extra = alternatives && { topLogprobs: alternatives };
        if (stop.has(token)) {
          // counted, not yielded, unless it releases held-back text: then its chunk carries that
          const rest = release();
          if (rest) push({ token, text: rest, logprob, ...extra });
          return true;
        }
        const piece = matcher.push(decoder ? decoder.push(token) : '');
        const last = !piece.stopped && generated === maxTokens;
        push({ token, text: last ? piece.text + release() : piece.text, logprob, ...extra });
        return piece.stopped;
      },
    })
    .then((r): GenerateResult => {
      return {
        tokens: r.tokens,
        text,
        finishReason: stoppedAtRelease && r.finishReason === 'length' ? 'stop' : r.finishReason,
        usage: { promptTokens: prompt.length, completionTokens: r.tokens.length },
      };
    })
    .finally(() => {
      done = true;
      wake();
    });
  result.catch(() => undefined); // the iterator or `result` reports it
  return {
    result,
    async *[Symbol.asyncIterator]() {
      let next = 0;
      for (;;) {
        if (next < chunks.length) {
          yield chunks[next++]!;
          continue;
        }
        if (done) {
          await result; // rethrows a failure
          return;
        }
        await new Promise<void>((resolve) => waiting.add(resolve));
      }
    },
  };
}
