/**
 * `loadModel(path, options)`: a Hugging Face checkpoint directory loaded onto a backend's
 * executor, and the `Model` that runs it: logits for a token sequence, and generation of one
 * sequence. Tokenizers, chat templates and the batching scheduler build on it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ATTENTION_ALGORITHMS,
  type AttentionAlgorithm,
  type Backend,
  DTYPES,
  type DType,
  type Executor,
  FastAttentionError,
  invalidInput,
  Lifetime,
  type Tensor,
  toFloat32,
  unsupported,
} from '@fastattention/core';
import { type ModelConfig, parseConfig } from './config.js';
import { defaultBackend } from './default-backend.js';
import {
  createKvCache,
  disposeKvCache,
  enqueueForward,
  type ModelRun,
  writeSequenceInputs,
} from './forward.js';
import { type GenerateOptions, type Generation, startGeneration } from './generate.js';
import { readGguf } from './gguf.js';
import { type CheckpointTensor, readCheckpoint } from './safetensors.js';
import { Scheduler, type SchedulerOptions, type SchedulerStats } from './scheduler.js';
import { applyChatTemplate, type ChatMessage, readTokenizer, type Tokenizer } from './tokenizer.js';
import { type LoadProgress, loadWeights, type ModelWeights } from './weights.js';

export interface LoadModelOptions {
  /**
   * The backend whose executor runs the model (it must implement `createExecutor`). Default: the
   * best installed backend package that runs here (cuda-volta, then cpu), else the float64
   * reference backend; the model then owns it and disposes of it with itself.
   */
  readonly backend?: Backend;
  /** The run dtype; default: f32 when the backend runs f32 attention, else f16. */
  readonly dtype?: DType;
  readonly onProgress?: (progress: LoadProgress) => void;
  readonly signal?: AbortSignal;
  /** The batch scheduler's limits and KV cache size (made at the first `generate`). */
  readonly scheduler?: SchedulerOptions;
  /**
   * The attention algorithm (default 'flash'). 'standard' is the FlashAttention papers' baseline:
   * the same model with the score matrix of every attention op materialized in memory, to measure
   * what tiling buys. A backend without it refuses the first forward (UNSUPPORTED, field
   * `attention.algorithm`); every backend of this repository has it.
   */
  readonly attention?: AttentionAlgorithm;
}

export interface ModelInfo {
  readonly config: ModelConfig;
  readonly dtype: DType;
  readonly attention: AttentionAlgorithm;
  readonly backend: string;
  readonly parameters: number;
}

export class Model implements AsyncDisposable {
  readonly info: ModelInfo;
  /** The checkpoint's tokenizer (`tokenizer.json`); undefined when it has none. */
  readonly tokenizer: Tokenizer | undefined;
  readonly #run: ModelRun;
  readonly #life: Lifetime;
  readonly #schedulerOptions: SchedulerOptions;
  #scheduler: Scheduler | undefined;

  /** @internal Use `loadModel`. */
  constructor(
    info: ModelInfo,
    executor: Executor,
    weights: ModelWeights,
    tokenizer: Tokenizer | undefined,
    schedulerOptions: SchedulerOptions = {},
    releaseBackend: () => Promise<void> = async () => {},
  ) {
    this.info = info;
    this.tokenizer = tokenizer;
    this.#run = { executor, config: info.config, weights, dtype: info.dtype, attention: info.attention };
    this.#schedulerOptions = schedulerOptions;
    this.#life = new Lifetime('the model', async () => {
      await this.#scheduler?.dispose();
      for (const t of weights.all) t.dispose();
      await executor.dispose();
      await releaseBackend(); // the backend loadModel chose, if it chose one
    });
  }

  /** What the scheduler is doing: requests, KV blocks in use, prefix-cache hits, preemptions. */
  stats(): SchedulerStats | undefined {
    return this.#scheduler?.stats();
  }

  #ensureScheduler(): Scheduler {
    this.#scheduler ??= new Scheduler(this.#run, this.#schedulerOptions);
    return this.#scheduler;
  }

  /** Logits of every position of `tokens` (one sequence from position 0): [n, vocab], row-major. */
  logits(tokens: Int32Array): Promise<Float32Array> {
    return this.#life.run(async () => {
      const { config, dtype } = this.info;
      if (!(tokens instanceof Int32Array) || tokens.length === 0) {
        throw invalidInput('tokens', 'expected a non-empty Int32Array');
      }
      const bad = tokens.findIndex((t) => t < 0 || t >= config.vocabSize);
      if (bad >= 0)
        throw invalidInput(
          `tokens[${bad}]`,
          `${tokens[bad]} is outside the vocabulary (${config.vocabSize})`,
        );
      // a cache of its own, its blocks in order
      const ex = this.#run.executor;
      const blockSize = 16;
      const blocks = Array.from({ length: Math.ceil(tokens.length / blockSize) }, (_, i) => i);
      const cache = createKvCache(ex, config, dtype, blocks.length, blockSize);
      const owned: { dispose(): void }[] = [];
      try {
        const step = writeSequenceInputs(ex, tokens, 0, blocks, blockSize, blocks.length);
        owned.push(step);
        const { logits, temps } = enqueueForward(this.#run, cache, step.inputs);
        owned.push(logits!, ...temps);
        await step.written;
        return toFloat32(await ex.read(logits as Tensor<DType>), dtype);
      } finally {
        for (const t of owned) t.dispose();
        disposeKvCache(cache);
      }
    });
  }

  /**
   * Generates tokens after `options.tokens`: an async iterable of chunks as each token is chosen on
   * the device, and `result` (every token, the finish reason, usage) once it ends. Stops at a stop
   * token (default: the config's EOS ids), at `maxTokens`, or when `signal` aborts.
   */
  generate(options: GenerateOptions): Generation {
    this.#life.check();
    const generation = startGeneration(
      { config: this.info.config, tokenizer: this.tokenizer, scheduler: this.#ensureScheduler() },
      options,
    );
    // dispose() ends the generations in flight ('abort') and waits for them
    void this.#life.run(() => generation.result).catch(() => undefined);
    return generation;
  }

  /** The conversation as the checkpoint's chat template writes it, ready for the assistant's turn. */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    options?: { readonly addGenerationPrompt?: boolean },
  ): string {
    return applyChatTemplate(this.tokenizer, messages, options);
  }

  dispose(): Promise<void> {
    const done = this.#life.dispose();
    void this.#scheduler?.dispose();
    return done;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/**
 * Loads a Hugging Face checkpoint directory (config.json, safetensors, tokenizer files) or a GGUF
 * file onto `options.backend`, or onto the best installed backend when none is given.
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<Model> {
  const given = options.backend;
  // options first, before any file is read; a backend found later is checked the same way
  if (given !== undefined && !runsModels(given)) throw noModels(given);
  if (options.dtype !== undefined && !(DTYPES as readonly string[]).includes(options.dtype)) {
    throw invalidInput('dtype', `expected one of ${DTYPES.join(', ')}, got ${String(options.dtype)}`);
  }
  const attention = options.attention ?? 'flash';
  if (!ATTENTION_ALGORITHMS.includes(attention)) {
    throw invalidInput(
      'attention',
      `expected one of ${ATTENTION_ALGORITHMS.join(', ')}, got ${String(attention)}`,
    );
  }
  const source = await readSource(path);
  const { config, tokenizer } = source;
  // A backend chosen here belongs to the model: disposed with it, or now if the load fails.
  const backend = given ?? (await defaultBackend());
  const release = given === undefined ? () => backend.dispose() : async () => {};
  let executor: Executor | undefined;
  try {
    if (!runsModels(backend)) throw noModels(backend);
    executor = backend.createExecutor();
    const dtype = options.dtype ?? (executor.supportsOp('attention', 'f32') ? 'f32' : 'f16');
    if (!executor.supportsOp('attention', dtype)) {
      throw unsupported('dtype', `${backend.name} does not run attention in ${dtype}`);
    }
    const weights = await loadWeights(executor, source.tensors, config, dtype, options);
    const parameters = weights.all.reduce((a, t) => a + t.length, 0);
    return new Model(
      { config, dtype, attention, backend: backend.name, parameters },
      executor,
      weights,
      tokenizer,
      options.scheduler,
      release,
    );
  } catch (error) {
    await executor?.dispose();
    await release();
    throw error;
  }
}

const runsModels = (
  b: Backend | null | undefined,
): b is Backend & Required<Pick<Backend, 'createExecutor'>> => typeof b?.createExecutor === 'function';
const noModels = (b: Backend | null | undefined) =>
  unsupported('backend', `${b?.name ?? 'this backend'} does not run models (no createExecutor)`);

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FastAttentionError('INVALID_INPUT', `${file}: ${(error as Error).message}`, {
      field: 'path',
      cause: error,
    });
  }
}

/** `generation_config.json`'s BOS and EOS ids, which override config.json's. */
function withGenerationConfig(config: ModelConfig, generation: unknown): ModelConfig {
  if (typeof generation !== 'object' || generation === null) return config;
  const g = generation as { bos_token_id?: unknown; eos_token_id?: unknown };
  const ids = (v: unknown): number[] | undefined =>
    typeof v === 'number'
      ? [v]
      : Array.isArray(v) && v.every((x) => Number.isInteger(x))
        ? (v as number[])
        : undefined;
  const eos = ids(g.eos_token_id);
  return {
    ...config,
    ...(typeof g.bos_token_id === 'number' && { bosTokenId: g.bos_token_id }),
    ...(eos && { eosTokenIds: eos }),
  };
}

/**
 * A checkpoint: a Hugging Face directory (config.json, safetensors, tokenizer files) or a GGUF
 * file (its metadata as the config; its tokenizer is not read yet).
 */
async function readSource(path: string): Promise<{
  config: ModelConfig;
  tensors: Map<string, CheckpointTensor>;
  tokenizer: Tokenizer | undefined;
}> {
  if (path.endsWith('.gguf')) {
    return readGguf(path);
  }
  let json: unknown;
  try {
    json = JSON.parse(await readFile(join(path, 'config.json'), 'utf8'));
  } catch (error) {
    throw new FastAttentionError(
      'INVALID_INPUT',
      `${path}: no readable config.json (${(error as Error).message})`,
      { field: 'path', cause: error },
    );
  }
  const config = withGenerationConfig(
    parseConfig(json),
    await readJson(join(path, 'generation_config.json')),
  );
  return { config, tensors: await readCheckpoint(path), tokenizer: await readTokenizer(path) };
}
