import {
  type AttentionOp,
  attentionInputOf,
  checkShape,
  type DType,
  type Executor,
  FastAttentionError,
  HostTensor,
  invalidInput,
  Lifetime,
  type MemoryKind,
  type Op,
  type OpKind,
  QueueStream,
  type StepGraph,
  type Stream,
  type Tensor,
  type TensorArrayOf,
  type TensorDType,
  unsupported,
  validateOp,
} from '@fastattention/core';
import type { AscendAttentionOutput, AscendBackend } from './backend.js';
import type { SimulationReport } from './sim/report.js';

export interface AscendExecutorOptions {
  /** Called with each attention op's simulated timing report, in stream order. */
  readonly onReport?: (report: SimulationReport) => void;
}

/**
 * The execution contract on the simulated 910B: tensors in host memory (the simulator's GM), and
 * the one op the simulator models, `attention`, run on its worker threads in stream order. Every
 * other op is UNSUPPORTED (`supportsOp` says so): the simulator models attention kernels only.
 */
export class AscendExecutor implements Executor {
  readonly name = 'ascend-sim';
  readonly stream: QueueStream;
  readonly #backend: AscendBackend;
  readonly #onReport: ((report: SimulationReport) => void) | undefined;
  readonly #lifetime: Lifetime;
  readonly #tensors = new Set<HostTensor>();

  constructor(backend: AscendBackend, options: AscendExecutorOptions = {}) {
    this.#backend = backend;
    this.#onReport = options.onReport;
    this.stream = new QueueStream('default');
    this.#lifetime = new Lifetime('the ascend-sim executor', () => {
      for (const t of this.#tensors) t.dispose();
      this.#tensors.clear();
    });
  }

  supportsOp(kind: OpKind, dtype?: DType): boolean {
    return (
      kind === 'attention' && (dtype === undefined || this.#backend.info.capabilities.dtypes.includes(dtype))
    );
  }

  empty<T extends TensorDType>(
    dtype: T,
    shape: readonly number[],
    options: { readonly memory?: MemoryKind } = {},
  ): Tensor<T> {
    this.#lifetime.check();
    if (!(['f32', 'f16', 'bf16', 'i32'] as const).includes(dtype)) {
      throw invalidInput('dtype', `expected f32, f16, bf16 or i32, got ${String(dtype)}`);
    }
    const t = HostTensor.contiguous(dtype, checkShape(shape, dtype), options.memory ?? 'device');
    this.#tensors.add(t);
    return t;
  }

  write<T extends TensorDType>(
    tensor: Tensor<T>,
    data: TensorArrayOf<T>,
    stream: Stream = this.stream,
  ): Promise<void> {
    const t = this.#own(tensor, 'tensor');
    if (!ArrayBuffer.isView(data) || (data as TensorArrayOf<T>).length !== t.length) {
      return Promise.reject(invalidInput('data', `expected a typed array of ${t.length} elements`));
    }
    const copy = data.slice() as TensorArrayOf<T>; // the caller may reuse its array at once
    return this.#queue(stream).enqueue(() => t.writeRaw(copy));
  }

  read<T extends TensorDType>(tensor: Tensor<T>, stream: Stream = this.stream): Promise<TensorArrayOf<T>> {
    const t = this.#own(tensor, 'tensor');
    return this.#queue(stream).enqueue(() => t.raw() as TensorArrayOf<T>);
  }

  createStream(name = 'stream'): Stream {
    this.#lifetime.check();
    return new QueueStream(name);
  }

  run(op: Op, stream: Stream = this.stream): void {
    this.#lifetime.check();
    validateOp(op);
    if (op.op !== 'attention')
      throw unsupported('op', `the ascend simulator runs only 'attention', not '${op.op}'`);
    if (!this.supportsOp(op.op, op.q.dtype as DType)) throw unsupported('attention.q', `dtype ${op.q.dtype}`);
    const { q, k, v, seqLensK, out, lse, paged } = op;
    for (const [field, t] of Object.entries({ q, k, v, seqLensK, out, lse, blockTable: paged?.blockTable })) {
      if (t) this.#own(t, `attention.${field}`);
    }
    this.#queue(stream).enqueue(() => this.#lifetime.run(() => this.#attention(op)));
  }

  record(build: (recorder: { run(op: Op): void }) => void): StepGraph {
    this.#lifetime.check();
    const ops: Op[] = [];
    build({
      run: (op) => {
        validateOp(op);
        if (op.op !== 'attention')
          throw unsupported('op', `the ascend simulator runs only 'attention', not '${op.op}'`);
        ops.push(op);
      },
    });
    let disposed = false;
    const graph: StepGraph = {
      ops: ops.length,
      replay: (stream) => {
        if (disposed) throw new FastAttentionError('DISPOSED', 'the step graph was disposed');
        for (const op of ops) this.run(op, stream);
      },
      dispose: () => {
        disposed = true;
      },
      [Symbol.dispose]: () => graph.dispose(),
    };
    return graph;
  }

  async dispose(): Promise<void> {
    await this.stream.synchronize().catch(() => {});
    await this.#lifetime.dispose();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  async #attention(op: AttentionOp): Promise<void> {
    const input = attentionInputOf(op, (t) => (t as HostTensor).raw());
    const { out, lse, report } = (await this.#backend.attention(input)) as AscendAttentionOutput;
    (op.out as HostTensor).writeRaw(out);
    if (op.lse) (op.lse as HostTensor).writeRaw(lse);
    this.#onReport?.(report);
  }

  #queue(stream: Stream): QueueStream {
    if (!(stream instanceof QueueStream)) throw invalidInput('stream', 'expected a stream of this executor');
    return stream;
  }

  #own<T extends TensorDType>(tensor: Tensor<T>, field: string): HostTensor<T> {
    this.#lifetime.check();
    if (!(tensor instanceof HostTensor)) throw invalidInput(field, 'expected a tensor of this executor');
    if (tensor.disposed)
      throw new FastAttentionError('DISPOSED', `${field}: the tensor was disposed`, { field });
    return tensor as HostTensor<T>;
  }
}
