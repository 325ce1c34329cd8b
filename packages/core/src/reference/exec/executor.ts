import type { DType } from '../../dtype.js';
import type { Executor, StepGraph, Stream, StreamEvent } from '../../exec/executor.js';
import type { HostTensor } from '../../exec/host-tensor.js';
import { HostTensors } from '../../exec/host-tensors.js';
import { opListGraph } from '../../exec/op-list-graph.js';
import type { Op, OpKind } from '../../exec/ops.js';
import { OP_KINDS } from '../../exec/ops.js';
import type { MemoryKind, Tensor, TensorArrayOf, TensorDType } from '../../exec/tensor.js';
import { validateOp } from '../../exec/validate-op.js';
import { Lifetime } from '../../lifetime.js';
import { runReferenceOp } from './ops.js';

/** The reference's streams: its ops run when enqueued, in order, so every wait is already over. */
class ImmediateStream implements Stream {
  constructor(readonly name: string) {}
  async synchronize(): Promise<void> {}
  record(): StreamEvent {
    return { synchronize: async () => {} };
  }
  wait(_event: StreamEvent): void {}
}

/**
 * The execution contract in float64 TypeScript: tensors in host arrays, every op of the set
 * (reference/exec/ops.ts), graphs that replay their ops in order. It is the executable specification
 * the op conformance suite (`@fastattention/core/testing`) checks every backend against, and it
 * runs the tiny models of the tests. Slow by design.
 */
export class ReferenceExecutor implements Executor {
  readonly name = 'reference';
  readonly stream: Stream = new ImmediateStream('default');
  readonly #lifetime: Lifetime;
  // The reference keeps tensors under 2 GiB: it is for tests and tiny models.
  readonly #tensors = new HostTensors('the reference executor', 2 ** 31);

  constructor() {
    this.#lifetime = new Lifetime('the reference executor', () => this.#tensors.disposeAll());
  }

  supportsOp(kind: OpKind, _dtype?: DType): boolean {
    return OP_KINDS.includes(kind);
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

  async write<T extends TensorDType>(
    tensor: Tensor<T>,
    data: TensorArrayOf<T>,
    _stream?: Stream,
  ): Promise<void> {
    const t = this.#own(tensor, 'tensor');
    this.#tensors.checkData(t, data);
    t.writeRaw(data);
  }

  async read<T extends TensorDType>(tensor: Tensor<T>, _stream?: Stream): Promise<TensorArrayOf<T>> {
    return this.#own(tensor, 'tensor').raw() as TensorArrayOf<T>;
  }

  createStream(name = 'stream'): Stream {
    this.#lifetime.check();
    return new ImmediateStream(name);
  }

  run(op: Op, _stream?: Stream): void {
    this.#lifetime.check();
    validateOp(op);
    this.#tensors.ownAll(op);
    runReferenceOp(op);
  }

  record(build: (recorder: { run(op: Op): void }) => void): StepGraph {
    this.#lifetime.check();
    return opListGraph(build, validateOp, (op, stream) => this.run(op, stream));
  }

  dispose(): Promise<void> {
    return this.#lifetime.dispose();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  #own<T extends TensorDType>(tensor: Tensor<T>, field: string): HostTensor<T> {
    this.#lifetime.check();
    return this.#tensors.own(tensor, field);
  }
}
