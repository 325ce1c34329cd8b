import {
  allocateTensorArray,
  checkAlive,
  checkHostViewable,
  checkShape,
  checkTensorData,
  type DType,
  type Executor,
  elementCount,
  FastAttentionError,
  forEachOpTensor,
  invalidInput,
  isContiguous,
  Lifetime,
  type MemoryKind,
  OP_KINDS,
  type Op,
  type OpKind,
  type StepGraph,
  type Stream,
  type StreamEvent,
  type Tensor,
  type TensorArrayOf,
  type TensorDType,
  tensorArrayOver,
  tensorBytesOf,
  toFastAttentionError,
  unsupported,
  validateOp,
} from '@fastattention/core';
import type { NativeContext } from '../native.js';
import { type AttentionChecks, attentionChecks } from './attention-checks.js';
import { CudaTensor, type DeviceStorage } from './device-tensor.js';
import { type OpContext, prepareOp, runOp } from './ops.js';

/** A CUDA stream of the executor (a driver stream by handle). */
export class CudaStream implements Stream {
  readonly name: string;
  /** @internal The driver stream's handle. */
  readonly id: number;
  readonly #executor: CudaExecutor;

  /** @internal Use `executor.createStream()`. */
  constructor(executor: CudaExecutor, id: number, name: string) {
    this.#executor = executor;
    this.id = id;
    this.name = name;
  }

  synchronize(): Promise<void> {
    return this.#executor.track(() => this.#executor.context.streamSynchronize(this.id));
  }

  record(): StreamEvent {
    const executor = this.#executor;
    const id = executor.context.eventRecord(this.id);
    let done: Promise<void> | undefined;
    const event = {
      [EVENT]: id,
      // The wait starts when someone asks: a pending wait holds one of libuv's few pool threads.
      synchronize: () => (done ??= executor.track(() => executor.context.eventSynchronize(id))),
    };
    events.register(event, { executor, id });
    return event;
  }

  wait(event: StreamEvent): void {
    const id = (event as unknown as Record<symbol, number | undefined>)[EVENT];
    if (id === undefined)
      throw invalidInput('event', 'expected an event recorded on a stream of this executor');
    this.#executor.context.streamWait(this.id, id);
  }
}

const EVENT = Symbol('cuda event');

/** An event is destroyed once nothing can use it any more (or with its executor's context). */
const events = new FinalizationRegistry<{ executor: CudaExecutor; id: number }>(({ executor, id }) => {
  try {
    executor.context.eventDestroy(id);
  } catch {
    // the context is gone, and its events with it
  }
});

export interface CudaExecutorOptions {
  /** The cuBLAS library file for `linear` (default: libcublas.so.13, .12, .11 on the library path). */
  readonly cublasPath?: string;
  /**
   * How `linear` calls cuBLAS: 'cublasLt' (default; an algorithm chosen once per problem, falling
   * back to cublasGemmEx where cuBLASLt is missing or finds none) or 'gemmEx' (cublasGemmEx's own
   * choice on every call).
   */
  readonly gemm?: 'cublasLt' | 'gemmEx';
}

/**
 * The execution contract on CUDA: tensors in device memory (allocated and freed in stream order by
 * the driver's memory pool), streams and events of the driver, and ops enqueued without waiting.
 * Reads and synchronizations wait on libuv's pool, never on the JS thread, and report what a
 * kernel found wrong in the data (INVALID_INPUT naming the op's field).
 */
export class CudaExecutor implements Executor {
  readonly name = 'cuda';
  readonly stream: CudaStream;
  /** @internal */
  readonly context: NativeContext;
  readonly #ops: Omit<OpContext, 'stream' | 'temp' | 'executor' | 'counters'>;
  readonly #life: Lifetime;
  readonly #streams = new Set<CudaStream>();
  readonly #storages = new Set<DeviceStorage>();
  readonly #graphs = new Set<number>();
  /** One op context per stream, reused: ops are enqueued often (a decode step: hundreds). */
  readonly #scopes = new Map<CudaStream, OpScope>();

  /** @internal Use the backend's `createExecutor()`. */
  constructor(context: NativeContext, ops: Omit<OpContext, 'stream' | 'temp' | 'executor' | 'counters'>) {
    this.context = context;
    this.#ops = ops;
    this.#life = new Lifetime('the cuda executor', () => this.#release());
    this.stream = new CudaStream(this, context.streamCreate(), 'default');
    this.#streams.add(this.stream);
  }

  supportsOp(kind: OpKind, dtype?: DType): boolean {
    // The attention kernels run f16 and bf16; every other op any float dtype.
    return OP_KINDS.includes(kind) && !(kind === 'attention' && dtype === 'f32');
  }

  empty<T extends TensorDType>(
    dtype: T,
    shape: readonly number[],
    options: { readonly memory?: MemoryKind } = {},
  ): CudaTensor<T> {
    this.#life.check();
    if (!['f32', 'f16', 'bf16', 'i32'].includes(dtype)) {
      throw invalidInput('dtype', `expected f32, f16, bf16 or i32, got ${String(dtype)}`);
    }
    const memory = options.memory ?? 'device';
    if (memory !== 'device' && memory !== 'pinned') {
      throw invalidInput('memory', `expected 'device' or 'pinned', got ${String(memory)}`);
    }
    const dims = checkShape(shape, dtype);
    const length = elementCount(dims);
    const storage = this.#allocate(length * tensorBytesOf(dtype), length, memory);
    return CudaTensor.dense(dtype, dims, storage, () => void this.#free(storage));
  }

  hostView<T extends TensorDType>(tensor: Tensor<T>): TensorArrayOf<T> {
    const t = this.#own(tensor, 'tensor');
    checkHostViewable(t);
    return tensorArrayOver(t.dtype, t.storage.host!, t.offset * tensorBytesOf(t.dtype), t.length);
  }

  write<T extends TensorDType>(
    tensor: Tensor<T>,
    data: TensorArrayOf<T>,
    stream: Stream = this.stream,
  ): Promise<void> {
    try {
      const t = this.#own(tensor, 'tensor');
      const s = this.#stream(stream);
      checkTensorData(t, data);
      if (isContiguous(t)) {
        this.context.enqueueWrite(s.id, t.address(), data);
      } else {
        // Into a dense temporary, then scattered into the view on the device.
        this.#enqueue(s, (c) => {
          const dense = c.temp(t.dtype, t.shape);
          this.context.enqueueWrite(s.id, dense.address(), data);
          runOp({ op: 'copy', src: dense, dst: t }, c);
        });
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(toFastAttentionError(error, 'DEVICE'));
    }
  }

  read<T extends TensorDType>(tensor: Tensor<T>, stream: Stream = this.stream): Promise<TensorArrayOf<T>> {
    try {
      const t = this.#own(tensor, 'tensor');
      const s = this.#stream(stream);
      const out = allocateTensorArray(t.dtype, t.length);
      let done: Promise<void> | undefined;
      if (isContiguous(t)) {
        done = this.track(() => this.context.enqueueRead(s.id, t.address(), out));
      } else {
        this.#enqueue(s, (c) => {
          const source = c.temp(t.dtype, t.shape);
          runOp({ op: 'copy', src: t, dst: source }, c);
          done = this.track(() => this.context.enqueueRead(s.id, source.address(), out));
        });
      }
      return done!.then(() => out as TensorArrayOf<T>);
    } catch (error) {
      return Promise.reject(toFastAttentionError(error, 'DEVICE'));
    }
  }

  createStream(name = 'stream'): Stream {
    this.#life.check();
    const s = new CudaStream(this, this.context.streamCreate(), name);
    this.#streams.add(s);
    return s;
  }

  run(op: Op, stream: Stream = this.stream): void {
    this.#check(op);
    try {
      this.#enqueue(this.#stream(stream), (c) => runOp(op, c));
    } catch (error) {
      throw toFastAttentionError(error, 'DEVICE');
    }
  }

  /**
   * Records the ops as a CUDA graph: each op is checked, whatever they need made up front (cuBLAS,
   * split-KV counters, kernel attributes), then the ops are captured from the executor's stream.
   * Nothing runs while recording. A replay is one graph launch; the per-step values (positions,
   * lengths, block tables) are read from their tensors at replay, so rewriting those needs no new
   * recording, while the tensors themselves and the shapes are fixed.
   */
  record(build: (recorder: { run(op: Op): void }) => void): StepGraph {
    this.#life.check();
    const ops: Op[] = [];
    build({
      run: (op) => {
        this.#check(op);
        ops.push(op);
      },
    });
    const stream = this.stream;
    try {
      this.#enqueue(stream, (c) => {
        for (const op of ops) prepareOp(op, c);
      });
      this.context.captureBegin(stream.id);
    } catch (error) {
      throw toFastAttentionError(error, 'DEVICE');
    }
    let graph: number;
    try {
      this.#enqueue(stream, (c) => {
        c.checks = attentionChecks(ops);
        try {
          for (const op of ops) runOp(op, c);
        } finally {
          c.checks = undefined;
        }
      });
      graph = this.context.captureEnd(stream.id);
    } catch (error) {
      try {
        this.context.graphDestroy(this.context.captureEnd(stream.id));
      } catch {
        // the failure invalidated the capture: ending it is all that is left to do
      }
      throw toFastAttentionError(error, 'DEVICE');
    }
    this.#graphs.add(graph);
    let disposed = false;
    const step: StepGraph = {
      ops: ops.length,
      replay: (replayStream) => {
        this.#life.check();
        if (disposed) throw new FastAttentionError('DISPOSED', 'the step graph was disposed');
        this.context.graphLaunch(this.#stream(replayStream ?? this.stream).id, graph);
      },
      dispose: () => {
        if (disposed) return;
        disposed = true;
        if (this.#graphs.delete(graph)) this.context.graphDestroy(graph);
      },
      [Symbol.dispose]: () => step.dispose(),
    };
    return step;
  }

  /** Waits for the work in flight on every stream, then frees every tensor and stream. */
  dispose(): Promise<void> {
    return this.#life.dispose();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  /** @internal Tracks device work so dispose() waits for it; errors get project codes. */
  track<R>(fn: () => Promise<R>): Promise<R> {
    return this.#life.track(async () => {
      try {
        return await fn();
      } catch (error) {
        throw toFastAttentionError(error, 'DEVICE');
      }
    });
  }

  /**
   * Runs `enqueue` with an op context on the stream, then frees the temporaries it made, in the
   * stream's order (after the work that uses them; inside a capture, as nodes of the graph).
   */
  #enqueue(stream: CudaStream, enqueue: (c: OpScope) => void): void {
    let scope = this.#scopes.get(stream);
    if (!scope) {
      scope = new OpScope(this, stream, this.#ops, (n, s) => this.#countersFor(n, s));
      this.#scopes.set(stream, scope);
    }
    const mark = scope.temps.length;
    try {
      enqueue(scope);
    } finally {
      scope.release(mark);
    }
  }

  /**
   * The fused split-KV combine's arrival counters: zero between launches (the last CTA of a tile
   * resets its own). Grown on demand; an outgrown buffer stays allocated until the executor is
   * disposed, since a step graph recorded earlier still launches kernels that count in it.
   */
  #counters: { ptr: bigint; length: number } | undefined;
  readonly #retiredCounters: bigint[] = [];
  #countersFor(n: number, stream: CudaStream): bigint {
    if (!this.#counters || this.#counters.length < n) {
      const length = Math.max(n, 4096);
      const ptr = this.context.allocAsync(stream.id, length * 4);
      this.context.enqueueWrite(stream.id, ptr, new Int32Array(length));
      if (this.#counters) this.#retiredCounters.push(this.#counters.ptr);
      this.#counters = { ptr, length };
    }
    return this.#counters.ptr;
  }

  #allocate(bytes: number, length: number, memory: MemoryKind): DeviceStorage {
    try {
      let storage: DeviceStorage;
      if (memory === 'pinned') {
        const { ptr, buffer } = this.context.allocPinned(bytes);
        storage = { ptr, host: buffer, length, disposed: false };
      } else {
        storage = { ptr: this.context.allocAsync(this.stream.id, bytes), length, disposed: false };
      }
      this.#storages.add(storage);
      return storage;
    } catch (error) {
      const e = toFastAttentionError(error, 'DEVICE');
      if (e.code === 'OOM') {
        throw new FastAttentionError(
          'OOM',
          `the cuda executor could not allocate ${bytes} bytes: ${e.message}`,
          {
            cause: error,
          },
        );
      }
      throw e;
    }
  }

  /** Frees in the order of the executor's stream; pinned memory's promise settles once it is freed. */
  #free(storage: DeviceStorage): Promise<void> {
    if (!this.#storages.delete(storage)) return Promise.resolve();
    try {
      if (storage.host)
        return this.context.freePinned(this.stream.id, storage.ptr, storage.host).catch(() => undefined);
      this.context.freeAsync(this.stream.id, storage.ptr);
    } catch {
      // the context is gone: its release freed the memory
    }
    return Promise.resolve();
  }

  async #release(): Promise<void> {
    for (const s of this.#streams) await this.context.streamSynchronize(s.id).catch(() => undefined);
    const freed: Promise<void>[] = [];
    for (const storage of [...this.#storages]) {
      storage.disposed = true;
      freed.push(this.#free(storage));
    }
    if (this.#counters) this.context.freeAsync(this.stream.id, this.#counters.ptr);
    for (const ptr of this.#retiredCounters.splice(0)) this.context.freeAsync(this.stream.id, ptr);
    this.#counters = undefined;
    for (const graph of this.#graphs) this.context.graphDestroy(graph);
    this.#graphs.clear();
    await this.context.streamSynchronize(this.stream.id).catch(() => undefined);
    await Promise.all(freed);
    for (const s of this.#streams) this.context.streamDestroy(s.id);
    this.#streams.clear();
  }

  #check(op: Op): void {
    this.#life.check();
    validateOp(op);
    if (op.op === 'attention' && op.q.dtype === 'f32') {
      throw unsupported('attention.q', 'dtype f32 (the attention kernels run f16 and bf16)');
    }
    forEachOpTensor(op, (t, field) => {
      this.#own(t, field);
      // The attention kernels' copy engines (cp.async rings, Hopper's tensor maps) read device memory.
      if (op.op === 'attention' && t.memory === 'pinned') {
        throw unsupported(field, 'pinned memory (copy the tensor to the device first)');
      }
    });
  }

  #own<T extends TensorDType>(tensor: Tensor<T>, field: string): CudaTensor<T> {
    this.#life.check();
    if (!(tensor instanceof CudaTensor) || !this.#storages.has(tensor.storage)) {
      if (tensor instanceof CudaTensor && tensor.disposed) checkAlive(tensor, field);
      throw invalidInput(field, 'expected a tensor of this executor');
    }
    checkAlive(tensor, field);
    return tensor as CudaTensor<T>;
  }

  #stream(stream: Stream): CudaStream {
    if (!(stream instanceof CudaStream) || !this.#streams.has(stream)) {
      throw invalidInput('stream', 'expected a stream of this executor');
    }
    return stream;
  }
}

/** The op context of one stream: its temporaries are freed, in stream order, after each op. */
class OpScope implements OpContext {
  readonly temps: CudaTensor[] = [];
  /** Set while a step is captured (its temporaries, the checked copies among them, live until its end). */
  checks: AttentionChecks | undefined;
  readonly planner: OpContext['planner'];
  readonly plans: OpContext['plans'];
  readonly features: OpContext['features'];
  readonly cublasPath?: string;
  readonly gemm: OpContext['gemm'];
  readonly executor: CudaExecutor;
  readonly stream: CudaStream;
  readonly counters: OpContext['counters'];

  constructor(
    executor: CudaExecutor,
    stream: CudaStream,
    ops: Omit<OpContext, 'stream' | 'temp' | 'executor' | 'counters'>,
    counters: OpContext['counters'],
  ) {
    this.executor = executor;
    this.stream = stream;
    this.planner = ops.planner;
    this.plans = ops.plans;
    this.features = ops.features;
    if (ops.cublasPath !== undefined) this.cublasPath = ops.cublasPath;
    this.gemm = ops.gemm;
    this.counters = counters;
  }

  temp<T extends TensorDType>(dtype: T, shape: readonly number[]): CudaTensor<T> {
    const context = this.executor.context;
    const id = this.stream.id;
    const length = elementCount(shape);
    const ptr = context.allocAsync(id, length * tensorBytesOf(dtype));
    const t = CudaTensor.dense(dtype, shape, { ptr, length, disposed: false }, () =>
      context.freeAsync(id, ptr),
    );
    this.temps.push(t);
    return t;
  }

  /** Frees the temporaries made since `mark`. */
  release(mark: number): void {
    for (let i = this.temps.length - 1; i >= mark; i--) this.temps[i]!.dispose();
    this.temps.length = mark;
  }
}
