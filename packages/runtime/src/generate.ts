/**
 * Generation for one sequence: a prefill of the prompt, then one decode step per token over the
 * same paged cache, each token picked on the device by the `sample` op (core's sampling pipeline:
 * penalties, temperature, top-k, top-p, min-p, a seeded counter-based draw). Only the chosen token
 * (and its log-probability) is read back per step.
 */
import {
  checkSamplingParams,
  DEFAULT_SAMPLING,
  type DType,
  type Executor,
  invalidInput,
  type Op,
  type SamplingParams,
  type StepGraph,
  type Tensor,
  topLogprobs,
} from '@fastattention/core';
import type { ModelConfig } from './config.js';
import {
  createSequenceCache,
  createStepInputs,
  disposeCache,
  disposeStepInputs,
  enqueueForward,
  type SequenceCache,
  type StepInputs,
  writeStepInputs,
} from './forward.js';
import {
  applyChatTemplate,
  type ChatMessage,
  IncrementalDecoder,
  StopMatcher,
  type Tokenizer,
} from './tokenizer.js';
import type { ModelWeights } from './weights.js';

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
  /** Tokens that end the generation (default: the config's EOS ids). Not yielded. */
  readonly stopTokens?: readonly number[];
  readonly signal?: AbortSignal;
}

export interface GenerateChunk {
  readonly token: number;
  /** The text this token completes ('' while a multi-byte character or a possible stop string is incomplete, or without a tokenizer). */
  readonly text: string;
  /** The token's log-probability under the sampling distribution's logits (after penalties). */
  readonly logprob: number;
  /** With `topLogprobs`: the most likely tokens of this step, most likely first. */
  readonly topLogprobs?: ReadonlyArray<{ readonly token: number; readonly logprob: number }>;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerateResult {
  /** Every token generated, the stop token included (it is counted, not yielded). */
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
  readonly executor: Executor;
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
  readonly dtype: DType;
  readonly tokenizer: Tokenizer | undefined;
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
  const room = config.maxPositions - prompt.length;
  if (room <= 0)
    throw invalidInput('tokens', `the prompt fills the model's ${config.maxPositions} positions`);
  const maxTokens = Math.min(options.maxTokens ?? 256, room);
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 1) {
    throw invalidInput('maxTokens', `expected a positive integer, got ${options.maxTokens}`);
  }
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
  const result = generateTokens(
    run,
    prompt,
    maxTokens,
    sampling,
    stop,
    top,
    options.signal,
    (token, logprob, alternatives) => {
      const piece = matcher.push(decoder ? decoder.push(token) : '');
      push({ token, text: piece.text, logprob, ...(alternatives && { topLogprobs: alternatives }) });
      return piece.stopped;
    },
  )
    .then((r): GenerateResult => {
      const rest = r.stoppedByText ? '' : matcher.push(decoder?.flush() ?? '').text + matcher.flush();
      if (rest) text += rest; // held back for a stop string that never came
      return { ...r, finishReason: r.stoppedByText ? 'stop' : r.finishReason, text };
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

async function generateTokens(
  run: Run,
  prompt: Int32Array,
  maxTokens: number,
  sampling: SamplingParams,
  stop: ReadonlySet<number>,
  top: number,
  signal: AbortSignal | undefined,
  /** Called with each token that is not a stop token; true ends the generation (a stop string). */
  onToken: (token: number, logprob: number, top: GenerateChunk['topLogprobs']) => boolean,
): Promise<Omit<GenerateResult, 'text'> & { readonly stoppedByText: boolean }> {
  const { executor: ex, config, dtype } = run;
  const V = config.vocabSize;
  const owned: Tensor[] = [];
  const tensor = <T extends 'i32' | 'f32'>(dtype: T, shape: number[]): Tensor<T> => {
    const t = ex.empty(dtype, shape);
    owned.push(t);
    return t;
  };
  const cache = await createSequenceCache(ex, config, dtype, prompt.length + maxTokens);
  const generated: number[] = [];
  let finishReason: FinishReason = 'length';
  let stoppedByText = false;
  try {
    const params = {
      temperature: tensor('f32', [1]),
      topK: tensor('i32', [1]),
      topP: tensor('f32', [1]),
      minP: tensor('f32', [1]),
      repetitionPenalty: tensor('f32', [1]),
      presencePenalty: tensor('f32', [1]),
      frequencyPenalty: tensor('f32', [1]),
      seed: tensor('i32', [1]),
    };
    for (const [name, t] of Object.entries(params)) {
      const value = sampling[name as keyof SamplingParams];
      await ex.write(t, (t.dtype === 'i32' ? Int32Array.of(value | 0) : Float32Array.of(value)) as never);
    }
    const penalized =
      sampling.repetitionPenalty !== 1 || sampling.presencePenalty !== 0 || sampling.frequencyPenalty !== 0;
    const countsHost = new Int32Array(V);
    for (const t of prompt) countsHost[t]! += 1;
    const counts = penalized ? tensor('i32', [1, V]) : undefined;
    const counters = tensor('i32', [1]);
    const lastLogits = tensor('f32', [1, V]);
    const chosen = tensor('i32', [1]);
    const logprob = tensor('f32', [1]);
    // The last token's logits [1, vocab] in f32, then the token picked from them.
    const sampleInto = (logits: Tensor): Op[] => [
      { op: 'copy', src: logits, dst: lastLogits },
      {
        op: 'sample',
        logits: lastLogits,
        params,
        counters,
        ...(counts && { counts }),
        tokens: chosen,
        logprobs: logprob,
      },
    ];
    // Decode steps replay one recorded graph over fixed tensors; only these values change.
    const step1 = createStepInputs(ex, 1);
    owned.push(...new Set(Object.values(step1)));
    let decode: { graph: StepGraph; tensors: Tensor[] } | undefined;
    let position = 0;
    let next = -1;
    for (let step = 0; step < maxTokens; step++) {
      if (signal?.aborted) {
        finishReason = 'abort';
        break;
      }
      await Promise.all([
        ex.write(counters, Int32Array.of(step)),
        ...(counts ? [ex.write(counts, countsHost)] : []),
      ]);
      if (step === 0) {
        await prefill(ex, run, cache, prompt, sampleInto);
      } else {
        await writeStepInputs(ex, step1, Int32Array.of(next), position);
        decode ??= recordDecode(ex, run, cache, step1, sampleInto);
        decode.graph.replay();
      }
      const [token, lp, logits] = await Promise.all([
        ex.read(chosen),
        ex.read(logprob),
        top > 0 ? ex.read(lastLogits) : undefined,
      ]);
      position += step === 0 ? prompt.length : 1;
      const id = token[0]!;
      generated.push(id);
      countsHost[id]! += 1;
      if (stop.has(id)) {
        finishReason = 'stop';
        break;
      }
      if (onToken(id, lp[0]!, logits && topLogprobs(Float64Array.from(logits), top))) {
        stoppedByText = true;
        break;
      }
      next = id;
    }
    if (decode) {
      decode.graph.dispose();
      for (const t of decode.tensors) t.dispose();
    }
  } finally {
    for (const t of owned) t.dispose();
    disposeCache(cache);
  }
  return {
    tokens: Int32Array.from(generated),
    finishReason,
    stoppedByText,
    usage: { promptTokens: prompt.length, completionTokens: generated.length },
  };
}

/** The prompt's step, run once: its own tensors, freed once the token is chosen. */
async function prefill(
  ex: Executor,
  run: Run,
  cache: SequenceCache,
  prompt: Int32Array,
  sampleInto: (logits: Tensor) => Op[],
): Promise<void> {
  const inputs = createStepInputs(ex, prompt.length);
  const owned: Tensor[] = [];
  try {
    await writeStepInputs(ex, inputs, prompt, 0);
    const { logits, temps } = enqueueForward(
      ex,
      run.config,
      run.weights,
      cache,
      inputs,
      run.dtype,
      (op) => ex.run(op),
      'last',
    );
    owned.push(logits, ...temps);
    for (const op of sampleInto(logits)) ex.run(op);
    await ex.stream.synchronize();
  } finally {
    for (const t of owned) t.dispose();
    disposeStepInputs(inputs);
  }
}

/** One decode step (a token) recorded as a step graph over fixed tensors. */
function recordDecode(
  ex: Executor,
  run: Run,
  cache: SequenceCache,
  inputs: StepInputs,
  sampleInto: (logits: Tensor) => Op[],
): { graph: StepGraph; tensors: Tensor[] } {
  const tensors: Tensor[] = [];
  const graph = ex.record((r) => {
    const { logits, temps } = enqueueForward(ex, run.config, run.weights, cache, inputs, run.dtype, (op) =>
      r.run(op),
    );
    tensors.push(logits, ...temps);
    for (const op of sampleInto(logits)) r.run(op);
  });
  return { graph, tensors };
}
