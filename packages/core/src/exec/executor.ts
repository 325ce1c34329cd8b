import type { DType } from '../dtype.js';
import type { Op, OpKind } from './ops.js';
import type { MemoryKind, Tensor, TensorArrayOf, TensorDType } from './tensor.js';

/**
 * An ordered queue of device work. Ops and copies enqueued on a stream run in order and the call
 * that enqueues them returns at once; only `synchronize` (and the promise of a read) waits.
 */
export interface Stream {
  readonly name: string;
  /** Resolves once everything enqueued so far has finished. */
  synchronize(): Promise<void>;
  /** An event that completes when everything enqueued so far has. */
  record(): StreamEvent;
  /** Work enqueued after this call waits for the event (recorded on any stream of the executor). */
  wait(event: StreamEvent): void;
}

export interface StreamEvent {
  /** Resolves once the work before the event has finished. */
  synchronize(): Promise<void>;
}

/**
 * A recorded forward step: a fixed list of ops over fixed tensors. The per-step values (positions,
 * lengths, block tables, sampling parameters) live in tensors the caller rewrites between replays,
 * so a replay never re-records (on CUDA, one graph launch).
 */
export interface StepGraph extends Disposable {
  readonly ops: number;
  /** Enqueues the whole step on the stream (default: the executor's). */
  replay(stream?: Stream): void;
  dispose(): void;
}

/**
 * What a backend gives the runtime to run models: tensors in its memory, streams, the op set and
 * step graphs. The runtime sees devices only through this interface (docs/architecture.md,
 * "Executing models").
 */
export interface Executor extends AsyncDisposable {
  readonly name: string;
  /** The stream ops and copies use when none is given. */
  readonly stream: Stream;
  /** Whether `run` takes ops of this kind (with tensors of this float dtype, when given). */
  supportsOp(kind: OpKind, dtype?: DType): boolean;
  /** A new tensor, its contents unspecified. Sizes are checked before anything is allocated; OOM names the request. */
  empty<T extends TensorDType>(
    dtype: T,
    shape: readonly number[],
    options?: { readonly memory?: MemoryKind },
  ): Tensor<T>;
  /**
   * The elements of a dense pinned tensor as a host array over its own memory, with no copy: a
   * loader reads a file straight into it, then a `copy` op moves it to the device. Host writes are
   * not ordered with the streams: synchronize the work that reads or writes the tensor first. Once
   * the tensor is disposed the array is empty (cuda) or detached from the tensor (host backends).
   */
  hostView<T extends TensorDType>(tensor: Tensor<T>): TensorArrayOf<T>;
  /** Enqueues a copy of a host array (the tensor's length, its dtype's array type) into a tensor. */
  write<T extends TensorDType>(tensor: Tensor<T>, data: TensorArrayOf<T>, stream?: Stream): Promise<void>;
  /** Enqueues a copy of a tensor (any layout) to a new host array; resolves once it has arrived. */
  read<T extends TensorDType>(tensor: Tensor<T>, stream?: Stream): Promise<TensorArrayOf<T>>;
  createStream(name?: string): Stream;
  /** Checks the op (validateOp, then supportsOp) and enqueues it; returns at once. */
  run(op: Op, stream?: Stream): void;
  /** Records the ops `build` runs on the recorder into a graph; nothing runs while recording. */
  record(build: (recorder: { run(op: Op): void }) => void): StepGraph;
  /** Frees every tensor, stream and graph of the executor once the work in flight has finished. */
  dispose(): Promise<void>;
}
