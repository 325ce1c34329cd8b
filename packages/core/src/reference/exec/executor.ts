import type { DType } from '../../dtype.js';
import { FastAttentionError, invalidInput } from '../../errors.js';
import type { Executor, StepGraph, Stream, StreamEvent } from '../../exec/executor.js';
import { opListGraph } from '../../exec/op-list-graph.js';
import type { Op, OpKind } from '../../exec/ops.js';
import { OP_KINDS } from '../../exec/ops.js';
import {
  checkShape,
  type MemoryKind,
  type Tensor,
  type TensorArrayOf,
  type TensorDType,
  tensorBytesOf,
} from '../../exec/tensor.js';
import { validateOp } from '../../exec/validate-op.js';
import { Lifetime } from '../../lifetime.js';
import { runReferenceOp } from './ops.js';
import { HostTensor } from './tensor.js';

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
  readonly #tensors = new Set<HostTensor>();

  constructor() {
    this.#lifetime = new Lifetime('the reference executor', () => {
      for (const t of this.#tensors) t.dispose();
      this.#tensors.clear();
    });
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
    if (!(['f32', 'f16', 'bf16', 'i32'] as const).includes(dtype))
      throw invalidInput('dtype', `expected f32, f16, bf16 or i32, got ${String(dtype)}`);
    const dims = checkShape(shape, dtype);
    const memory = options.memory ?? 'device';
    if (memory !== 'device' && memory !== 'pinned')
      throw invalidInput('memory', `expected 'device' or 'pinned', got ${String(memory)}`);
    const bytes = dims.reduce((a, b) => a * b, 1) * tensorBytesOf(dtype);
    if (bytes > 2 ** 31)
      throw new FastAttentionError(
        'OOM',
        `the reference executor keeps tensors under 2 GiB; asked for ${bytes} bytes`,
      );
    const t: HostTensor<T> = HostTensor.contiguous(dtype, dims, memory, () => this.#tensors.delete(t));
    this.#tensors.add(t);
    return t;
  }

  async write<T extends TensorDType>(
    tensor: Tensor<T>,
    data: TensorArrayOf<T>,
    _stream?: Stream,
  ): Promise<void> {
    const t = this.#own(tensor, 'tensor');
    const want = { f32: Float32Array, i32: Int32Array, f16: Uint16Array, bf16: Uint16Array }[t.dtype];
    if (!(data instanceof want) || data.length !== t.length) {
      throw invalidInput('data', `expected a ${want.name} of ${t.length} elements`);
    }
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
    for (const [field, t] of tensorsOf(op)) this.#own(t, `${op.op}.${field}`);
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
    if (!(tensor instanceof HostTensor))
      throw invalidInput(field, 'expected a tensor of the reference executor');
    if (tensor.disposed)
      throw new FastAttentionError('DISPOSED', `${field}: the tensor was disposed`, { field });
    return tensor as HostTensor<T>;
  }
}

/** Every tensor an op names, with its field. */
export function tensorsOf(op: Op): Array<[string, Tensor]> {
  const found: Array<[string, Tensor]> = [];
  const visit = (prefix: string, value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    if ('dtype' in value && 'shape' in value && 'view' in value) {
      found.push([prefix, value as Tensor]);
      return;
    }
    for (const [k, v] of Object.entries(value)) visit(prefix ? `${prefix}.${k}` : k, v);
  };
  for (const [k, v] of Object.entries(op)) if (k !== 'op') visit(k, v);
  return found;
}
