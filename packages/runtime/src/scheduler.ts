/**
 * Continuous batching over the shared paged KV cache (vLLM's scheduler, in small): every running
 * generation advances by one token per iteration in one batched decode step, requests join and
 * leave between iterations, long prompts are prefilled in chunks between decode steps, prompts that
 * share a prefix share its cache blocks, and when the cache is full the newest request is
 * preempted (its blocks freed, its tokens recomputed once there is room again).
 *
 * Decode steps are pipelined: iteration n's step is enqueued before iteration n-1's tokens are
 * read back, since each step takes its input tokens from the device. A request that stops is
 * therefore computed one step past its end, and that token is dropped. Requests with penalties
 * need their token counts written before each step, so while one runs every iteration waits.
 */
import {
  FastAttentionError,
  invalidInput,
  type SamplingParams,
  type StreamEvent,
  topLogprobs,
} from '@fastattention/core';
import { BlockManager, type SequenceBlocks } from './block-manager.js';
import { DecodeRows, type RowStep } from './decode-rows.js';
import {
  createKvCache,
  disposeKvCache,
  enqueueForward,
  type KvCache,
  type ModelRun,
  slotOf,
  writeSequenceInputs,
} from './forward.js';

export interface SchedulerOptions {
  /** Sequences decoded together at most (default 64). */
  readonly maxBatch?: number;
  /** Tokens of context the KV cache holds over all sequences (default: twice the model's positions, at most 16384). */
  readonly cacheTokens?: number;
  /** Tokens per cache block, a power of two (default 64: the paged attention kernels read blocks of 64 as fast as a dense cache, 16 up to 20% slower). */
  readonly blockSize?: number;
  /** Prompt tokens computed per iteration at most, over all prefilling requests (default 2048). */
  readonly prefillChunk?: number;
}

export interface SequenceRequest {
  readonly prompt: Int32Array;
  readonly maxTokens: number;
  readonly sampling: SamplingParams;
  /** Alternatives per token to report (0: logits stay on the device). */
  readonly topLogprobs: number;
  readonly signal?: AbortSignal;
  /** Each generated token in order; true ends the generation after it (a stop token or string). */
  onToken(token: number, logprob: number, top: TopLogprobs | undefined): boolean;
}

export type TopLogprobs = ReadonlyArray<{ readonly token: number; readonly logprob: number }>;

export interface SequenceOutcome {
  readonly tokens: Int32Array;
  readonly finishReason: 'stop' | 'length' | 'abort';
}

export interface SchedulerStats {
  readonly running: number;
  readonly waiting: number;
  readonly usedBlocks: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  /** Prompt tokens whose keys and values came from the prefix cache, of all prompt tokens admitted. */
  readonly prefixHitTokens: number;
  readonly promptTokens: number;
  readonly preemptions: number;
  /** Rows of the last decode step's graph (its batch bucket; 0 before the first step). */
  readonly decodeBatch: number;
}

type State = 'waiting' | 'prefill' | 'decode' | 'done';

interface Sequence {
  readonly id: number;
  readonly request: SequenceRequest;
  readonly promptLength: number;
  /** The prompt and every generated token delivered so far. */
  readonly tokens: number[];
  state: State;
  /** Tokens sampled: delivered or still on their way back. */
  issued: number;
  /** Tokens whose keys and values are in the cache or enqueued. */
  computed: number;
  blocks?: SequenceBlocks;
  row?: number;
  /** Blocks of this row's table the device has. */
  tableBlocks: number;
  /** Host token counts, for a request with penalties. */
  readonly counts?: Int32Array;
  /** Removes the abort listener from the request's signal. */
  unlisten(): void;
  readonly done: { resolve(o: SequenceOutcome): void; reject(e: unknown): void };
}

/** Tokens sampled in one iteration, on their way back, and what to free once they arrive. */
interface Delivery {
  readonly reads: Array<{
    readonly tokens: Promise<Int32Array>;
    readonly logprobs: Promise<Float32Array>;
    readonly rows: Array<{
      readonly seq: Sequence;
      readonly index: number;
      readonly logits?: Promise<Float32Array>;
    }>;
  }>;
  readonly writes: Promise<unknown>[];
  readonly temps: Array<{ dispose(): void }>;
  /** Completes after the iteration's last op: then its temporaries can go. */
  fence?: StreamEvent;
}

/** Tokens the sequence has generated and delivered. */
const generated = (seq: Sequence) => seq.tokens.length - seq.promptLength;

const penalized = (s: SamplingParams) =>
  s.repetitionPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0;

export class Scheduler {
  readonly #run: ModelRun;
  readonly #cache: KvCache;
  readonly #blocks: BlockManager;
  readonly #rows: DecodeRows;
  readonly #ready: Promise<void>;
  readonly #maxBatch: number;
  readonly #prefillChunk: number;
  /** Tokens one sequence may hold (its block table's width). */
  readonly maxSequenceTokens: number;
  readonly #live = new Map<number, Sequence>();
  /** Decode rows no sequence holds, highest first: a new sequence takes the lowest (see #takeRow). */
  readonly #freeRows: number[];
  #nextId = 0;
  #preemptions = 0;
  #decodeBatch = 0;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #disposed: Promise<void> | undefined;

  constructor(run: ModelRun, options: SchedulerOptions = {}) {
    const { config } = run;
    const maxBatch = options.maxBatch ?? 64;
    const blockSize = options.blockSize ?? 64;
    const cacheTokens = options.cacheTokens ?? Math.min(2 * config.maxPositions, 16384);
    const prefillChunk = options.prefillChunk ?? 2048;
    for (const [field, value] of Object.entries({ maxBatch, cacheTokens, prefillChunk })) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw invalidInput(field, `expected a positive integer, got ${value}`);
    }
    const numBlocks = Math.ceil(cacheTokens / blockSize);
    this.#blocks = new BlockManager(numBlocks, blockSize); // checks blockSize
    const blocksPerSeq = Math.ceil(Math.min(config.maxPositions, numBlocks * blockSize) / blockSize);
    this.maxSequenceTokens = blocksPerSeq * blockSize;
    this.#run = run;
    this.#maxBatch = maxBatch;
    this.#prefillChunk = prefillChunk;
    this.#freeRows = Array.from({ length: maxBatch }, (_, i) => maxBatch - 1 - i);
    this.#cache = createKvCache(run.executor, config, run.dtype, numBlocks, blockSize);
    try {
      this.#rows = new DecodeRows(run, this.#cache, maxBatch, blocksPerSeq);
    } catch (error) {
      disposeKvCache(this.#cache);
      throw error;
    }
    this.#ready = this.#rows.initialize();
    this.#ready.catch(() => undefined);
  }

  stats(): SchedulerStats {
    let running = 0;
    let waiting = 0;
    for (const s of this.#live.values())
      if (s.state === 'waiting') waiting++;
      else running++;
    const hits = this.#blocks.prefixHits;
    return {
      running,
      waiting,
      usedBlocks: this.#blocks.usedBlocks,
      numBlocks: this.#blocks.numBlocks,
      blockSize: this.#blocks.blockSize,
      prefixHitTokens: hits.hitTokens,
      promptTokens: hits.lookupTokens,
      preemptions: this.#preemptions,
      decodeBatch: this.#decodeBatch,
    };
  }

  /** Queues a request; resolves when it ends (the tokens went to `onToken` as they came). */
  submit(request: SequenceRequest): Promise<SequenceOutcome> {
    if (this.#disposed) throw new FastAttentionError('DISPOSED', 'the model was disposed');
    const need = request.prompt.length + request.maxTokens;
    if (need > this.maxSequenceTokens) {
      throw invalidInput(
        'maxTokens',
        `the prompt (${request.prompt.length}) and maxTokens (${request.maxTokens}) exceed the ${this.maxSequenceTokens} tokens a sequence may hold (cacheTokens)`,
      );
    }
    return new Promise<SequenceOutcome>((resolve, reject) => {
      const seq: Sequence = {
        id: this.#nextId++,
        request,
        promptLength: request.prompt.length,
        tokens: Array.from(request.prompt),
        state: 'waiting',
        issued: 0,
        computed: 0,
        tableBlocks: 0,
        ...(penalized(request.sampling) && {
          counts: countsOf(request.prompt, this.#run.config.vocabSize),
        }),
        unlisten: () => request.signal?.removeEventListener('abort', onAbort),
        done: { resolve, reject },
      };
      const onAbort = () => this.#wake?.();
      this.#live.set(seq.id, seq);
      request.signal?.addEventListener('abort', onAbort, { once: true });
      this.#wake?.();
      this.#loop ??= this.#serve();
    });
  }

  /** Ends every request ('abort'), waits for the work in flight, frees the cache. */
  dispose(): Promise<void> {
    this.#disposed ??= (async () => {
      this.#wake?.();
      await this.#loop;
      await this.#ready.catch(() => undefined);
      this.#rows.dispose();
      disposeKvCache(this.#cache);
    })();
    return this.#disposed;
  }

  /** The loop: one iteration enqueues a decode step and prompt chunks, then delivers the last one's tokens. */
  async #serve(): Promise<void> {
    let inFlight: Delivery | undefined;
    try {
      await this.#ready;
      while (this.#live.size > 0 || inFlight) {
        for (const seq of this.#live.values()) {
          if (this.#disposed !== undefined || seq.request.signal?.aborted) this.#finish(seq, 'abort');
        }
        this.#admit();
        const delivery: Delivery = { reads: [], writes: [], temps: [] };
        this.#decode(delivery);
        this.#prefill(delivery);
        if (delivery.temps.length > 0) delivery.fence = this.#run.executor.stream.record();
        const enqueued = delivery.reads.length + delivery.temps.length > 0;
        const waited = inFlight !== undefined;
        if (inFlight) await this.#deliver(inFlight);
        inFlight = enqueued ? delivery : undefined;
        const sync = [...this.#live.values()].some((s) => s.counts && s.state !== 'waiting');
        if (inFlight && sync) {
          await this.#deliver(inFlight);
          inFlight = undefined;
        }
        if (!enqueued && !waited && this.#live.size > 0) {
          // Nothing could run and nothing came back: only an abort or a new request changes that.
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          this.#wake = undefined;
        }
      }
    } catch (error) {
      if (inFlight) for (const t of inFlight.temps) t.dispose();
      for (const seq of this.#live.values()) this.#end(seq, { error });
    }
    this.#loop = undefined;
  }

  /** Admits waiting requests in arrival order while a row and their prompt's blocks are free. */
  #admit(): void {
    const decoding = [...this.#live.values()].filter((s) => s.state === 'decode').length;
    for (const seq of this.#live.values()) {
      if (seq.state !== 'waiting') continue;
      // a preempted request comes back once every token it sampled has arrived
      if (seq.issued !== generated(seq)) break;
      if (this.#freeRows.length === 0) break;
      // leave each decoding sequence room to grow by a block before anyone is preempted
      const blocks = this.#blocks.allocate(seq.tokens, { keep: decoding });
      if (!blocks) break;
      seq.blocks = blocks;
      seq.row = this.#takeRow();
      seq.tableBlocks = 0;
      seq.computed = blocks.cachedTokens;
      seq.state = 'prefill';
      const writes = [this.#rows.setSampling(seq.row, seq.request.sampling)];
      if (seq.counts) writes.push(this.#rows.writeCounts(seq.row, seq.counts));
      for (const w of writes) w.catch(() => undefined); // the next read reports a failure
    }
  }

  /** One decode step for every decoding sequence that has tokens left to sample. */
  #decode(delivery: Delivery): void {
    const decoding = [...this.#live.values()].filter(
      (s) => s.state === 'decode' && s.issued < s.request.maxTokens,
    );
    // Room for each one's next token, oldest first; when the cache is full, the newest running
    // request gives its blocks back.
    for (const seq of decoding) {
      while (seq.state === 'decode' && !this.#blocks.reserve(seq.blocks!, seq.computed + 1)) {
        this.#preempt(this.#newestRunning());
      }
    }
    this.#compact();
    const steps = new Map<number, RowStep>();
    const rows: Array<{ seq: Sequence; index: number }> = [];
    let top = -1;
    for (const seq of decoding) {
      if (seq.state !== 'decode') continue;
      const r = seq.row!;
      this.#syncTable(seq, delivery);
      if (seq.counts) delivery.writes.push(this.#rows.writeCounts(r, seq.counts));
      steps.set(r, {
        position: seq.computed,
        slot: slotOf(seq.blocks!.blocks, this.#blocks.blockSize, seq.computed),
        counter: seq.issued,
      });
      rows.push({ seq, index: r });
      top = Math.max(top, r);
    }
    if (rows.length === 0) return;
    const bucket = this.#bucket(top + 1);
    this.#decodeBatch = bucket;
    delivery.writes.push(this.#rows.step(bucket, steps));
    delivery.reads.push(this.#readBack(0, bucket, rows));
    for (const { seq } of rows) {
      seq.computed += 1;
      seq.issued += 1;
      this.#blocks.commit(seq.blocks!, seq.computed);
    }
  }

  /** Prompt chunks, oldest request first, up to `prefillChunk` tokens in all. */
  #prefill(delivery: Delivery): void {
    let budget = this.#prefillChunk;
    for (const seq of this.#live.values()) {
      if (budget === 0) break;
      if (seq.state !== 'prefill') continue;
      const count = Math.min(seq.tokens.length - seq.computed, budget);
      budget -= count;
      this.#enqueueChunk(seq, count, delivery);
    }
  }

  /** The next `count` prompt tokens of `seq`; the last chunk samples its first token into its row. */
  #enqueueChunk(seq: Sequence, count: number, delivery: Delivery): void {
    const ex = this.#run.executor;
    const start = seq.computed;
    const last = start + count === seq.tokens.length;
    const blocks = seq.blocks!;
    const chunk = writeSequenceInputs(
      ex,
      seq.tokens.slice(start, start + count),
      start,
      blocks.blocks,
      this.#blocks.blockSize,
      // the table as wide as this chunk's keys: attention is planned for them
      Math.ceil((start + count) / this.#blocks.blockSize),
      seq.issued,
    );
    delivery.temps.push(chunk);
    delivery.writes.push(chunk.written);
    const step = enqueueForward(this.#run, this.#cache, chunk.inputs, { rows: last ? 'last' : 'none' });
    delivery.temps.push(...step.temps);
    seq.computed += count;
    this.#blocks.commit(blocks, seq.computed);
    if (!last) return;
    const r = seq.row!;
    delivery.temps.push(step.logits!);
    for (const op of this.#rows.sampleOps(step.logits!, r, 1, chunk.counter)) ex.run(op);
    delivery.reads.push(this.#readBack(r, 1, [{ seq, index: r }]));
    seq.issued += 1;
    seq.state = 'decode';
  }

  /**
   * Reads back the tokens (and log-probabilities, and the logits of requests that want
   * alternatives) of rows first..first + count - 1; each entry names its sequence's row.
   */
  #readBack(
    first: number,
    count: number,
    rows: ReadonlyArray<{ seq: Sequence; index: number }>,
  ): Delivery['reads'][number] {
    const ex = this.#run.executor;
    return {
      tokens: ex.read(DecodeRows.rows(this.#rows.tokens, count, first)),
      logprobs: ex.read(DecodeRows.rows(this.#rows.logprobs, count, first)),
      rows: rows.map(({ seq, index }) => ({
        seq,
        index: index - first,
        ...(seq.request.topLogprobs > 0 && { logits: ex.read(DecodeRows.rows(this.#rows.logits, 1, index)) }),
      })),
    };
  }

  /** Hands each sampled token to its request, in order; frees what the iteration used. */
  async #deliver(delivery: Delivery): Promise<void> {
    try {
      await Promise.all(delivery.writes);
      for (const read of delivery.reads) {
        const [tokens, logprobs] = await Promise.all([read.tokens, read.logprobs]);
        for (const { seq, index, logits } of read.rows) {
          const row = logits && (await logits);
          if (seq.state === 'done') continue;
          const alternatives = row && topLogprobs(Float64Array.from(row), seq.request.topLogprobs);
          this.#accept(seq, tokens[index]!, logprobs[index]!, alternatives);
        }
      }
      await delivery.fence?.synchronize();
    } finally {
      for (const t of delivery.temps) t.dispose();
    }
  }

  #accept(seq: Sequence, token: number, logprob: number, top: TopLogprobs | undefined): void {
    seq.tokens.push(token);
    if (seq.counts) seq.counts[token]! += 1;
    let end: boolean;
    try {
      end = seq.request.onToken(token, logprob, top);
    } catch (error) {
      this.#end(seq, { error });
      return;
    }
    if (end) this.#finish(seq, 'stop');
    else if (generated(seq) >= seq.request.maxTokens) this.#finish(seq, 'length');
  }

  #finish(seq: Sequence, reason: SequenceOutcome['finishReason']): void {
    this.#end(seq, {
      outcome: { tokens: Int32Array.from(seq.tokens.slice(seq.promptLength)), finishReason: reason },
    });
  }

  /** The request's end: its row and blocks given back, its promise settled. */
  #end(seq: Sequence, end: { outcome: SequenceOutcome } | { error: unknown }): void {
    if (seq.state === 'done') return;
    this.#release(seq);
    seq.state = 'done';
    this.#live.delete(seq.id);
    seq.unlisten();
    if ('outcome' in end) seq.done.resolve(end.outcome);
    else seq.done.reject(end.error);
  }

  /** Gives back the sequence's row and blocks (its queued work still runs first, in stream order). */
  #release(seq: Sequence): void {
    if (seq.blocks) this.#blocks.free(seq.blocks);
    seq.blocks = undefined;
    if (seq.row !== undefined) this.#giveRow(seq.row);
    seq.row = undefined;
  }

  #preempt(seq: Sequence): void {
    this.#release(seq);
    seq.state = 'waiting';
    seq.computed = 0;
    this.#preemptions += 1;
  }

  #newestRunning(): Sequence {
    let newest: Sequence | undefined;
    for (const s of this.#live.values())
      if ((s.state === 'decode' || s.state === 'prefill') && (!newest || s.id > newest.id)) newest = s;
    return newest!;
  }

  /**
   * Moves decoding sequences from the highest rows into free lower ones while the highest held row
   * makes the decode graph's batch bucket larger than the rows held need: as requests finish in
   * any order, the remaining ones would otherwise decode with padding rows.
   */
  #compact(): void {
    const held = this.#maxBatch - this.#freeRows.length;
    for (;;) {
      let top: Sequence | undefined;
      for (const s of this.#live.values()) if (s.row !== undefined && (!top || s.row > top.row!)) top = s;
      if (top?.state !== 'decode') return;
      if (this.#bucket(top.row! + 1) === this.#bucket(held)) return;
      const from = top.row!;
      top.row = this.#takeRow();
      this.#rows.move(from, top.row);
      this.#giveRow(from);
    }
  }

  /** Writes the row's block table when the sequence got blocks the device has not seen. */
  #syncTable(seq: Sequence, delivery: Delivery): void {
    const blocks = seq.blocks!.blocks;
    if (seq.tableBlocks === blocks.length) return;
    delivery.writes.push(this.#rows.writeBlocks(seq.row!, blocks));
    seq.tableBlocks = blocks.length;
  }

  /**
   * The lowest free row. A decode step runs the graph of the smallest batch bucket that holds the
   * highest occupied row, so a lone request on a high row would pay for a whole batch of padding
   * rows (and for attention planned for that batch: no split-KV).
   */
  #takeRow(): number {
    return this.#freeRows.pop()!;
  }

  #giveRow(row: number): void {
    // kept sorted, highest first: rows come back in any order
    const at = this.#freeRows.findIndex((r) => r < row);
    this.#freeRows.splice(at < 0 ? this.#freeRows.length : at, 0, row);
  }

  /** The decode graph's batch for rows [0, used): a power of two, or maxBatch. */
  #bucket(used: number): number {
    let b = 1;
    while (b < used) b *= 2;
    return Math.min(b, this.#maxBatch);
  }
}

function countsOf(tokens: Int32Array, vocab: number): Int32Array {
  const counts = new Int32Array(vocab);
  for (const t of tokens) counts[t]! += 1;
  return counts;
}
