import { FastAttentionError, invalidInput } from '../errors.js';
import { HostTensor } from './host-tensor.js';
import { forEachOpTensor, type Op } from './ops.js';
import {
  checkHostViewable,
  checkShape,
  checkTensorData,
  elementCount,
  type MemoryKind,
  type Tensor,
  type TensorArrayOf,
  type TensorDType,
  tensorBytesOf,
} from './tensor.js';

const ARRAY_TYPES = { f32: Float32Array, i32: Int32Array, f16: Uint16Array, bf16: Uint16Array } as const;

/**
 * The tensors of an executor whose device memory is host memory (the reference, HostExecutor):
 * created with the contract's checks, owned until disposed (a disposed tensor leaves the set and
 * frees its storage), all freed with the executor.
 */
export class HostTensors {
  readonly #tensors = new Set<HostTensor>();
  readonly #owner: string;
  readonly #maxBytes: number;

  /** `owner` names the executor in errors; a request over `maxBytes` is OOM before it is allocated. */
  constructor(owner: string, maxBytes = Number.MAX_SAFE_INTEGER) {
    this.#owner = owner;
    this.#maxBytes = maxBytes;
  }

  empty<T extends TensorDType>(
    dtype: T,
    shape: readonly number[],
    options: { readonly memory?: MemoryKind } = {},
  ): HostTensor<T> {
    if (!(dtype in ARRAY_TYPES))
      throw invalidInput('dtype', `expected f32, f16, bf16 or i32, got ${String(dtype)}`);
    const dims = checkShape(shape, dtype);
    const memory = options.memory ?? 'device';
    if (memory !== 'device' && memory !== 'pinned') {
      throw invalidInput('memory', `expected 'device' or 'pinned', got ${String(memory)}`);
    }
    const bytes = elementCount(dims) * tensorBytesOf(dtype);
    const oom = () =>
      new FastAttentionError(
        'OOM',
        `${this.#owner}: could not allocate ${bytes} bytes for [${dims.join(', ')}] ${dtype}`,
      );
    if (bytes > this.#maxBytes) throw oom();
    let t: HostTensor<T>;
    try {
      t = HostTensor.contiguous(dtype, dims, memory, () => this.#tensors.delete(t));
    } catch (error) {
      if (error instanceof RangeError) throw oom();
      throw error;
    }
    this.#tensors.add(t);
    return t;
  }

  /** The tensor as a live host tensor, or INVALID_INPUT / DISPOSED naming `field`. */
  own<T extends TensorDType>(tensor: Tensor<T>, field: string): HostTensor<T> {
    if (!(tensor instanceof HostTensor)) throw invalidInput(field, `expected a tensor of ${this.#owner}`);
    if (tensor.disposed)
      throw new FastAttentionError('DISPOSED', `${field}: the tensor was disposed`, { field });
    return tensor as HostTensor<T>;
  }

  /** `Executor.hostView`: the pinned tensor's elements, a view of its storage array. */
  hostView<T extends TensorDType>(tensor: Tensor<T>): TensorArrayOf<T> {
    const t = this.own(tensor, 'tensor');
    checkHostViewable(t);
    return t.storage().subarray(t.offset, t.offset + t.length) as TensorArrayOf<T>;
  }

  /** Every tensor the op names (nested fields included), each owned: `<op>.<field>` in errors. */
  ownAll(op: Op): void {
    forEachOpTensor(op, (t, field) => this.own(t, field));
  }

  /** Checks that `data` is the tensor's host array type and length (INVALID_INPUT naming `data`). */
  checkData<T extends TensorDType>(t: HostTensor<T>, data: TensorArrayOf<T>): void {
    checkTensorData(t, data);
  }

  disposeAll(): void {
    for (const t of this.#tensors) t.dispose();
  }
}
