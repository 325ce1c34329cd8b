import { FastAttentionError } from '../errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../numeric/half.js';
import {
  allocateTensorArray,
  contiguousStrides,
  elementCount,
  isContiguous,
  type MemoryKind,
  type Tensor,
  type TensorArray,
  type TensorDType,
  type TensorLayout,
  type ViewSpec,
  viewLayout,
} from './tensor.js';

/** The storage of host tensors: a host array standing in for device memory. */
interface Storage {
  array: TensorArray;
  disposed: boolean;
}

/**
 * A tensor in host memory: any layout over a host array, float64 element access. The reference
 * executor's tensors, and those of backends whose device memory is host memory (cpu, simulators).
 */
export class HostTensor<T extends TensorDType = TensorDType> implements Tensor<T> {
  readonly dtype: T;
  readonly memory: MemoryKind;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly length: number;
  readonly #storage: Storage;
  readonly #isView: boolean;
  readonly #onDispose: (() => void) | undefined;
  #viewDisposed = false;

  /** @internal Use `HostTensor.contiguous` or an executor's `empty`. */
  constructor(dtype: T, layout: TensorLayout, memory: MemoryKind, storage?: Storage, onDispose?: () => void) {
    this.dtype = dtype;
    this.memory = memory;
    this.shape = layout.shape;
    this.strides = layout.strides;
    this.offset = layout.offset;
    this.length = elementCount(layout.shape);
    this.#isView = storage !== undefined;
    this.#onDispose = onDispose;
    this.#storage = storage ?? { array: allocateTensorArray(dtype, this.length), disposed: false };
  }

  /** A new dense tensor; `onDispose` runs once when it is disposed (its owner stops tracking it). */
  static contiguous<T extends TensorDType>(
    dtype: T,
    shape: readonly number[],
    memory: MemoryKind,
    onDispose?: () => void,
  ): HostTensor<T> {
    return new HostTensor(
      dtype,
      { shape, strides: contiguousStrides(shape), offset: 0 },
      memory,
      undefined,
      onDispose,
    );
  }

  get disposed(): boolean {
    return this.#storage.disposed || this.#viewDisposed;
  }

  sharesStorage(other: Tensor): boolean {
    return other instanceof HostTensor && other.#storage === this.#storage;
  }

  view(spec: ViewSpec): HostTensor<T> {
    if (this.disposed)
      throw new FastAttentionError('DISPOSED', 'view: the tensor was disposed', { field: 'view' });
    const layout = viewLayout(this, this.#storage.array.length, spec, this.dtype);
    return new HostTensor(this.dtype, layout, this.memory, this.#storage);
  }

  /** A view: marks the view disposed. The tensor itself: frees the storage (its views go with it). */
  dispose(): void {
    if (this.#isView) {
      this.#viewDisposed = true;
      return;
    }
    if (this.#storage.disposed) return;
    this.#storage.disposed = true;
    this.#storage.array = allocateTensorArray(this.dtype, 0);
    this.#onDispose?.();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Storage index of the view's i-th element in row-major order. */
  #at(i: number): number {
    let at = this.offset;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      const size = this.shape[d]!;
      at += (i % size) * this.strides[d]!;
      i = Math.floor(i / size);
    }
    return at;
  }

  /** The elements in row-major order as float64 (f16/bf16 decoded, i32 exact). */
  values(): Float64Array {
    const a = this.#storage.array;
    const out = new Float64Array(this.length);
    const decode = this.dtype === 'f16' ? f16ToF32 : this.dtype === 'bf16' ? bf16ToF32 : (x: number) => x;
    for (let i = 0; i < this.length; i++) out[i] = decode(a[this.#at(i)]!);
    return out;
  }

  /** Stores row-major float64 values, rounded to the dtype (f32: to nearest; i32: truncated toward zero). */
  store(values: ArrayLike<number>): void {
    const a = this.#storage.array;
    const encode =
      this.dtype === 'f16'
        ? f32ToF16
        : this.dtype === 'bf16'
          ? f32ToBf16
          : this.dtype === 'i32'
            ? (x: number) => x | 0
            : (x: number) => x;
    for (let i = 0; i < this.length; i++) a[this.#at(i)] = encode(values[i]!);
  }

  /**
   * The whole storage array this tensor views, elements at `offset` and `strides`. For backends
   * whose device memory is host memory, to run native code on a tensor in place.
   */
  storage(): TensorArray {
    return this.#storage.array;
  }

  /** The raw elements in row-major order (the dtype's host array): a copy. */
  raw(): TensorArray {
    const a = this.#storage.array;
    if (isContiguous(this)) return a.slice(this.offset, this.offset + this.length);
    const out = allocateTensorArray(this.dtype, this.length);
    for (let i = 0; i < this.length; i++) out[i] = a[this.#at(i)]!;
    return out;
  }

  /**
   * The raw elements in row-major order, over the storage itself when the layout is dense (no
   * copy: a paged cache is read in place), else a copy. Read only.
   */
  rawView(): TensorArray {
    return isContiguous(this)
      ? this.#storage.array.subarray(this.offset, this.offset + this.length)
      : this.raw();
  }

  /** Writes raw elements (the dtype's host array) in row-major order. */
  writeRaw(data: TensorArray): void {
    const a = this.#storage.array;
    if (isContiguous(this)) {
      (a as Float32Array).set(data as Float32Array, this.offset);
      return;
    }
    for (let i = 0; i < this.length; i++) a[this.#at(i)] = data[i]!;
  }
}
