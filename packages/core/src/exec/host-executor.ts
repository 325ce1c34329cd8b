import type { AttentionInput, AttentionOutput } from '../attention.js';
import type { DType } from '../dtype.js';
import { invalidInput, unsupported } from '../errors.js';
import { Lifetime } from '../lifetime.js';
import type { Executor, StepGraph, Stream } from './executor.js';
import { attentionInputOf } from './host-attention.js';
import type { HostTensor } from './host-tensor.js';
import { HostTensors } from './host-tensors.js';
import { opListGraph } from './op-list-graph.js';
import type { AttentionAlgorithm, AttentionOp, Op, OpKind, OpOf } from './ops.js';
import { QueueStream } from './queue-stream.js';
import type { MemoryKind, Tensor, TensorArrayOf, TensorDType } from './tensor.js';
import { validateOp } from './validate-op.js';

/** The tensor whose float dtype an op runs in (sample: f32 logits, always). */
const FLOAT_FIELD: { readonly [K in OpKind]?: string } = {
  linear: 'x',
  rmsNorm: 'x',
  rope: 'x',
  swiglu: 'gate',
  geglu: 'gate',
  embedding: 'table',
  add: 'a',
  kvAppend: 'k',
  attention: 'q',
  lseMerge: 'out',
  copy: 'dst',
};

/** How a host executor runs each op kind it supports (asynchronously, off the caller's turn). */
export type OpHandlers = { readonly [K in OpKind]?: (op: OpOf<K>) => Promise<void> | void };

/**
 * Runs a recorded step's consecutive ops in one call to native code, instead of one call (and one
 * return to the JS thread) per op. `plan` says how an op would run: its native calls, or undefined
 * when it needs JavaScript (then its handler runs it); the calls read the tensors' values when they
 * run, not when they are planned. `prepare`, when given, turns each run of planned calls into what
 * `run` takes, once per recorded step (arguments read and checked once, not at every replay);
 * without it `run` takes the calls. `run` runs them in order.
 */
export interface OpBatcher<Call = unknown, Prepared = unknown> {
  plan(op: Op): Call[] | undefined;
  prepare?(calls: Call[]): Prepared;
  run(prepared: Prepared): Promise<void>;
}

/** A recorded step's ops as the batcher runs them: prepared runs of calls, and ops for their handlers. */
type BatchedStep = ReadonlyArray<{ readonly prepared: unknown } | { readonly op: number }>;

/**
 * An executor whose device memory is host memory (the cpu backend, a simulator): HostTensor
 * storage, QueueStream streams, and the ops it has handlers for, each enqueued in stream order.
 * Every other op is UNSUPPORTED and `supportsOp` says so. Backends build one from their handlers.
 */
export class HostExecutor implements Executor {
  readonly name: string;
  readonly stream = new QueueStream('default');
  readonly #handlers: OpHandlers;
  readonly #dtypes: readonly DType[];
  readonly #lifetime: Lifetime;
  readonly #tensors: HostTensors;
  readonly #batcher: OpBatcher | undefined;
  /** Each recorded step's plan, made at its first replay (keyed by the graph's op list). */
  readonly #batchedSteps = new WeakMap<readonly Op[], BatchedStep>();

  constructor(
    name: string,
    handlers: OpHandlers,
    options: { readonly dtypes: readonly DType[]; readonly batcher?: OpBatcher },
  ) {
    this.name = name;
    this.#handlers = handlers;
    this.#dtypes = options.dtypes;
    this.#batcher = options.batcher;
    this.#tensors = new HostTensors(`the ${name} executor`);
    this.#lifetime = new Lifetime(`the ${name} executor`, () => this.#tensors.disposeAll());
  }

  supportsOp(kind: OpKind, dtype?: DType): boolean {
    return this.#handlers[kind] !== undefined && (dtype === undefined || this.#dtypes.includes(dtype));
  }

  empty<T extends TensorDType>(
    dtype: T,
    shape: readonly number[],
    options: { readonly memory?: MemoryKind } = {},
  ): Tensor<T> {
    this.#lifetime.check();
    return this.#tensors.empty(dtype, shape, options);
  }

  hostView<T extends TensorDType>(tensor: Tensor<T>): TensorArrayOf<T> {
    this.#lifetime.check();
    return this.#tensors.hostView(tensor);
  }

  write<T extends TensorDType>(
    tensor: Tensor<T>,
    data: TensorArrayOf<T>,
    stream: Stream = this.stream,
  ): Promise<void> {
    try {
      const t = this.#own(tensor, 'tensor');
      this.#tensors.checkData(t, data);
      const copy = data.slice() as TensorArrayOf<T>; // the caller may reuse its array at once
      const queue = this.#queue(stream);
      return this.#lifetime.run(() => queue.enqueue(() => t.writeRaw(copy)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  read<T extends TensorDType>(tensor: Tensor<T>, stream: Stream = this.stream): Promise<TensorArrayOf<T>> {
    try {
      const t = this.#own(tensor, 'tensor');
      const queue = this.#queue(stream);
      return this.#lifetime.run(() => queue.enqueue(() => t.raw() as TensorArrayOf<T>));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  createStream(name = 'stream'): Stream {
    this.#lifetime.check();
    return new QueueStream(name);
  }

  run(op: Op, stream: Stream = this.stream): void {
    const handler = this.#check(op);
    const queue = this.#queue(stream);
    // Tracked from enqueue to completion: dispose() waits for it, on every stream.
    void this.#lifetime.run(() => queue.enqueue(() => handler(op)));
  }

  record(build: (recorder: { run(op: Op): void }) => void): StepGraph {
    this.#lifetime.check();
    const batcher = this.#batcher;
    return opListGraph(
      build,
      (op) => this.#check(op),
      (op, stream) => this.run(op, stream),
      batcher && ((ops, stream) => this.#replayBatched(batcher, ops, stream)),
    );
  }

  /**
   * A replay as one task: the planned ops gathered into one native call between the ops that need
   * JavaScript, which run through their handlers. The step is planned (and its calls prepared) at
   * its first replay; every replay checks its ops again (a disposed tensor is refused).
   */
  #replayBatched(batcher: OpBatcher, ops: readonly Op[], stream: Stream = this.stream): void {
    const handlers = ops.map((op) => this.#check(op));
    const queue = this.#queue(stream);
    const parts = this.#batchedSteps.get(ops) ?? batchedStep(batcher, ops);
    this.#batchedSteps.set(ops, parts);
    void this.#lifetime.run(() =>
      queue.enqueue(async () => {
        for (const part of parts) {
          if ('op' in part) await handlers[part.op]!(ops[part.op]!);
          else await batcher.run(part.prepared);
        }
      }),
    );
  }

  /** Refuses new work at once, waits for the work enqueued on every stream, then frees every tensor. */
  dispose(): Promise<void> {
    return this.#lifetime.dispose();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  /** validateOp, then a handler for the op and its dtype, and tensors of this executor. */
  #check(op: Op): (op: Op) => Promise<void> | void {
    this.#lifetime.check();
    validateOp(op);
    const handler = this.#handlers[op.op] as ((op: Op) => Promise<void> | void) | undefined;
    if (!handler) throw unsupported('op', `the ${this.name} executor does not run '${op.op}'`);
    this.#tensors.ownAll(op);
    if (op.op === 'attention') {
      // what attentionHandler made says which algorithms it runs; any other handler runs flash
      const algorithms = (handler as Partial<AttentionOpHandler>).algorithms ?? ['flash'];
      if (!algorithms.includes(op.algorithm ?? 'flash')) {
        throw unsupported(
          'attention.algorithm',
          `'${op.algorithm}' (the ${this.name} executor runs ${algorithms.join(', ')})`,
        );
      }
    }
    const main = FLOAT_FIELD[op.op];
    const dtype = main && ((op as unknown as Record<string, Tensor>)[main]!.dtype as DType);
    // i32 is index data (a copy of token ids, say), which every host executor handles.
    if (dtype && (dtype as string) !== 'i32' && !this.#dtypes.includes(dtype)) {
      throw unsupported(
        `${op.op}.${main}`,
        `dtype ${dtype} (the ${this.name} executor runs ${this.#dtypes.join(', ')})`,
      );
    }
    return handler;
  }

  #queue(stream: Stream): QueueStream {
    if (!(stream instanceof QueueStream)) throw invalidInput('stream', 'expected a stream of this executor');
    return stream;
  }

  #own<T extends TensorDType>(tensor: Tensor<T>, field: string): HostTensor<T> {
    this.#lifetime.check();
    return this.#tensors.own(tensor, field);
  }
}

/** A step's ops split into runs of planned calls (prepared) and the ops that need their handlers. */
function batchedStep(batcher: OpBatcher, ops: readonly Op[]): BatchedStep {
  const parts: Array<{ prepared: unknown } | { op: number }> = [];
  let calls: unknown[] = [];
  const flush = () => {
    if (calls.length > 0) parts.push({ prepared: batcher.prepare ? batcher.prepare(calls) : calls });
    calls = [];
  };
  for (const [i, op] of ops.entries()) {
    const planned = batcher.plan(op);
    if (planned) {
      calls.push(...planned);
      continue;
    }
    flush();
    parts.push({ op: i });
  }
  flush();
  return parts;
}

/** A backend's host-array attention calls: FlashAttention, and optionally the standard baseline. */
export interface AttentionCalls<R extends AttentionOutput> {
  readonly flash: (input: AttentionInput) => Promise<R>;
  readonly standard?: (input: AttentionInput) => Promise<R>;
}

/** An attention op handler that says which algorithms it runs (HostExecutor refuses the others). */
export type AttentionOpHandler = ((op: AttentionOp) => Promise<void>) & {
  readonly algorithms: readonly AttentionAlgorithm[];
};

/**
 * The `attention` op of a host executor through a backend's host-array call (the op's
 * `algorithm` picks which; without a standard call the executor refuses 'standard', naming
 * `attention.algorithm`): the op's tensors become an AttentionInput, the call's out and LSE are
 * written back, and `onResult` sees the whole result (a simulator's report, say).
 */
export function attentionHandler<R extends AttentionOutput>(
  calls: AttentionCalls<R> | ((input: AttentionInput) => Promise<R>),
  onResult?: (result: R) => void,
): AttentionOpHandler {
  const { flash, standard } = typeof calls === 'function' ? { flash: calls, standard: undefined } : calls;
  const handler = async (op: AttentionOp): Promise<void> => {
    const call = op.algorithm === 'standard' && standard ? standard : flash;
    const result = await call(attentionInputOf(op, (t) => (t as HostTensor).rawView()));
    (op.out as HostTensor).writeRaw(result.out);
    if (op.lse) (op.lse as HostTensor).writeRaw(result.lse);
    onResult?.(result);
  };
  return Object.assign(handler, {
    algorithms: standard ? (['flash', 'standard'] as const) : (['flash'] as const),
  });
}
