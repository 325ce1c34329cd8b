import {
  contiguousStrides,
  elementCount,
  FastAttentionError,
  type MemoryKind,
  type Tensor,
  type TensorDType,
  type TensorLayout,
  tensorBytesOf,
  type ViewSpec,
  viewLayout,
} from '@fastattention/core';

/**
 * Memory one tensor and its views share, freed through its owner in stream order: device memory,
 * or pinned host memory (`host`: the buffer over it) that kernels reach through unified addressing.
 */
export interface DeviceStorage {
  readonly ptr: bigint;
  /** Elements of the tensor's dtype. */
  readonly length: number;
  readonly host?: ArrayBuffer;
  disposed: boolean;
}

/**
 * A tensor of the cuda executor: a dtype and a layout over device memory. Host code reaches its
 * elements only through the executor (`write`, `read`); ops read and write it on the device.
 */
export class CudaTensor<T extends TensorDType = TensorDType> implements Tensor<T> {
  readonly dtype: T;
  readonly memory: MemoryKind;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly length: number;
  readonly #storage: DeviceStorage;
  readonly #release: (() => void) | undefined;
  #viewDisposed = false;

  /** @internal Use the executor's `empty`. `release` frees the storage (undefined: a view). */
  constructor(dtype: T, layout: TensorLayout, storage: DeviceStorage, release?: () => void) {
    this.dtype = dtype;
    this.shape = layout.shape;
    this.strides = layout.strides;
    this.offset = layout.offset;
    this.length = elementCount(layout.shape);
    this.#storage = storage;
    this.#release = release;
    this.memory = storage.host ? 'pinned' : 'device';
  }

  static dense<T extends TensorDType>(
    dtype: T,
    shape: readonly number[],
    storage: DeviceStorage,
    release: () => void,
  ): CudaTensor<T> {
    return new CudaTensor(dtype, { shape, strides: contiguousStrides(shape), offset: 0 }, storage, release);
  }

  get disposed(): boolean {
    return this.#storage.disposed || this.#viewDisposed;
  }

  sharesStorage(other: Tensor): boolean {
    return other instanceof CudaTensor && other.storage === this.#storage;
  }

  /** @internal The storage this tensor views (ownership checks, aliasing). */
  get storage(): DeviceStorage {
    return this.#storage;
  }

  /** @internal The device address of element `at` of the storage (default: this view's first). */
  address(at = this.offset): bigint {
    if (this.disposed) throw new FastAttentionError('DISPOSED', 'the tensor was disposed');
    return this.#storage.ptr + BigInt(at) * BigInt(tensorBytesOf(this.dtype));
  }

  view(spec: ViewSpec): CudaTensor<T> {
    if (this.disposed)
      throw new FastAttentionError('DISPOSED', 'view: the tensor was disposed', { field: 'view' });
    return new CudaTensor(
      this.dtype,
      viewLayout(this, this.#storage.length, spec, this.dtype),
      this.#storage,
    );
  }

  /** A view: marks it disposed. The tensor itself: frees its memory once the work enqueued so far is done. */
  dispose(): void {
    if (!this.#release) {
      this.#viewDisposed = true;
      return;
    }
    if (this.#storage.disposed) return;
    this.#storage.disposed = true;
    this.#release();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
