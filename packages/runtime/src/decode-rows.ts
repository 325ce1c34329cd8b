/**
 * The device side of the scheduler's decode batch: one row per running sequence, each holding the
 * sequence's next input token (written by the `sample` op of the step before, so a step never
 * waits for the host to read a token), its sampling parameters, penalty counts, block table and
 * per-step scalars. A decode step over the first `bucket` rows is a step graph recorded once per
 * bucket and context length (a power of two at least as long as the longest row: attention is
 * planned for the keys it will see) and replayed; rows past the running ones are padding (no cache
 * append, no keys). The graphs of one bucket share their activations.
 */
import {
  contiguousStrides,
  DEFAULT_SAMPLING,
  type Op,
  type SamplingParams,
  type SamplingTensors,
  type StepGraph,
  type Tensor,
} from '@fastattention/core';
import { enqueueForward, type KvCache, type ModelRun, type StepInputs, TensorPool } from './forward.js';

/** One row's values for a decode step. */
export interface RowStep {
  readonly position: number;
  readonly slot: number;
  readonly counter: number;
}

const PARAM_NAMES = Object.keys(DEFAULT_SAMPLING) as (keyof SamplingParams)[];
const INT_PARAMS = new Set<keyof SamplingParams>(['topK', 'seed']);

export class DecodeRows {
  readonly maxBatch: number;
  readonly blocksPerSeq: number;
  /** The next input token of each row. */
  readonly tokens: Tensor<'i32'>;
  readonly logprobs: Tensor<'f32'>;
  /** Each row's last logits in f32 (read back for `topLogprobs`). */
  readonly logits: Tensor<'f32'>;
  readonly counts: Tensor<'i32'>;
  readonly params: SamplingTensors;
  /** positions | slots | seqLensK | counters, maxBatch each: one write per step. */
  readonly #scalars: Tensor<'i32'>;
  readonly #blockTable: Tensor<'i32'>;
  readonly #graphs = new Map<string, StepGraph>();
  readonly #pools = new Map<number, TensorPool>();
  readonly #run: ModelRun;
  readonly #cache: KvCache;
  readonly #owned: Tensor[] = [];

  constructor(run: ModelRun, cache: KvCache, maxBatch: number, blocksPerSeq: number) {
    this.#run = run;
    this.#cache = cache;
    this.maxBatch = maxBatch;
    this.blocksPerSeq = blocksPerSeq;
    const V = run.config.vocabSize;
    const own = <T extends 'i32' | 'f32'>(dtype: T, shape: number[]): Tensor<T> => {
      const t = run.executor.empty(dtype, shape);
      this.#owned.push(t);
      return t;
    };
    try {
      this.tokens = own('i32', [maxBatch]);
      this.logprobs = own('f32', [maxBatch]);
      this.logits = own('f32', [maxBatch, V]);
      this.counts = own('i32', [maxBatch, V]);
      this.params = Object.fromEntries(
        PARAM_NAMES.map((name) => [name, own(INT_PARAMS.has(name) ? 'i32' : 'f32', [maxBatch])]),
      ) as unknown as SamplingTensors;
      this.#scalars = own('i32', [4 * maxBatch]);
      this.#blockTable = own('i32', [maxBatch, blocksPerSeq]);
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  /** Zeroes every row and gives each default sampling parameters, so padding rows compute valid tokens. */
  initialize(): Promise<void> {
    const ex = this.#run.executor;
    const n = this.maxBatch;
    return Promise.all([
      ex.write(this.tokens, new Int32Array(n)),
      ex.write(this.counts, new Int32Array(this.counts.length)),
      ex.write(this.#blockTable, new Int32Array(this.#blockTable.length)),
      ...PARAM_NAMES.map((name) => this.#writeParam(name, 0, n, DEFAULT_SAMPLING[name])),
    ]).then(() => undefined);
  }

  /** Rows first..first + count - 1 of a [maxBatch, ...] tensor. */
  static rows<T extends Tensor>(t: T, count: number, first = 0): T {
    const shape = [count, ...t.shape.slice(1)];
    const strides = contiguousStrides(shape);
    return t.view({ shape, strides, offset: t.offset + first * strides[0]! }) as T;
  }

  setSampling(r: number, sampling: SamplingParams): Promise<unknown> {
    return Promise.all(PARAM_NAMES.map((name) => this.#writeParam(name, r, 1, sampling[name])));
  }

  writeCounts(r: number, counts: Int32Array): Promise<void> {
    return this.#run.executor.write(DecodeRows.rows(this.counts, 1, r), counts);
  }

  writeBlocks(r: number, blocks: readonly number[]): Promise<void> {
    const row = new Int32Array(this.blocksPerSeq);
    row.set(blocks.slice(0, this.blocksPerSeq));
    return this.#run.executor.write(DecodeRows.rows(this.#blockTable, 1, r), row);
  }

  /**
   * Moves row `from`'s device state (next token, sampling parameters, penalty counts, block table)
   * to row `to`, in stream order: after the work enqueued so far, before the next step.
   */
  move(from: number, to: number): void {
    const ex = this.#run.executor;
    const tensors: Tensor[] = [this.tokens, this.counts, this.#blockTable, ...Object.values(this.params)];
    for (const t of tensors)
      ex.run({ op: 'copy', src: DecodeRows.rows(t, 1, from), dst: DecodeRows.rows(t, 1, to) });
  }

  /**
   * The ops that turn `logits` ([count, vocab], the run dtype) into the tokens of rows
   * first..first + count - 1: an f32 copy into the rows' logits, then the `sample` op.
   */
  sampleOps(logits: Tensor, first: number, count: number, counters: Tensor<'i32'>): Op[] {
    const pick = <T extends Tensor>(t: T): T => DecodeRows.rows(t, count, first);
    const f32 = pick(this.logits);
    const params = Object.fromEntries(
      PARAM_NAMES.map((name) => [name, pick(this.params[name])]),
    ) as unknown as SamplingTensors;
    return [
      { op: 'copy', src: logits, dst: f32 },
      {
        op: 'sample',
        logits: f32,
        params,
        counters,
        counts: pick(this.counts),
        tokens: pick(this.tokens),
        logprobs: pick(this.logprobs),
      },
    ];
  }

  /**
   * Enqueues a decode step of rows [0, bucket): row r reads its token from `tokens`, appends at
   * `steps[r].slot`, attends over its blocks up to `position + 1`, and samples its next token into
   * `tokens`. Rows without a step are padding.
   */
  step(bucket: number, steps: ReadonlyMap<number, RowStep>): Promise<void> {
    const n = this.maxBatch;
    const scalars = new Int32Array(4 * n);
    scalars.fill(-1, n, 2 * n); // padding: no append
    let longest = 0;
    for (const [r, s] of steps) {
      scalars[r] = s.position;
      scalars[n + r] = s.slot;
      scalars[2 * n + r] = s.position + 1;
      scalars[3 * n + r] = s.counter;
      longest = Math.max(longest, s.position + 1);
    }
    const written = this.#run.executor.write(this.#scalars, scalars);
    this.#graph(bucket, this.#columns(longest)).replay();
    return written;
  }

  /** Block-table columns a step needs for rows of up to `tokens` tokens: a power of two (4 at least), at most the table. */
  #columns(tokens: number): number {
    let columns = 4;
    while (columns * this.#cache.blockSize < tokens) columns *= 2;
    return Math.min(columns, this.blocksPerSeq);
  }

  #graph(bucket: number, columns: number): StepGraph {
    const key = `${bucket}/${columns}`;
    let graph = this.#graphs.get(key);
    if (graph) return graph;
    const ex = this.#run.executor;
    const n = this.maxBatch;
    const scalar = (i: number) => DecodeRows.rows(this.#scalars, bucket, i * n);
    const inputs: StepInputs = {
      tokens: DecodeRows.rows(this.tokens, bucket),
      positions: scalar(0),
      slots: scalar(1),
      seqLensK: scalar(2),
      blockTable: this.#blockTable.view({
        shape: [bucket, columns],
        strides: [this.blocksPerSeq, 1],
        offset: 0,
      }),
    };
    let pool = this.#pools.get(bucket);
    if (!pool) {
      pool = new TensorPool(ex);
      this.#pools.set(bucket, pool);
    }
    const allocate = pool.rewind();
    graph = ex.record((r) => {
      const run = (op: Op) => r.run(op);
      const step = enqueueForward(this.#run, this.#cache, inputs, { run, rows: 'last', allocate });
      for (const op of this.sampleOps(step.logits!, 0, bucket, scalar(3))) r.run(op);
    });
    this.#graphs.set(key, graph);
    return graph;
  }

  #writeParam(name: keyof SamplingParams, first: number, count: number, value: number): Promise<void> {
    const view = DecodeRows.rows(this.params[name], count, first);
    const data = INT_PARAMS.has(name)
      ? new Int32Array(count).fill(value | 0)
      : new Float32Array(count).fill(value);
    return this.#run.executor.write(view as Tensor<'i32' | 'f32'>, data as never);
  }

  dispose(): void {
    for (const graph of this.#graphs.values()) graph.dispose();
    this.#graphs.clear();
    for (const pool of this.#pools.values()) pool.dispose();
    this.#pools.clear();
    for (const t of this.#owned) t.dispose();
  }
}
