import { FastAttentionError } from '@fastattention/core';
import type { NativeContext } from './native.js';

/** Element types of device tensors: the attention dtypes, f32 (LSE) and i32 (seqLensK). */
export type TensorDType = 'f16' | 'bf16' | 'f32' | 'i32';

export type HostOf<T extends TensorDType> = T extends 'f32'
  ? Float32Array
  : T extends 'i32'
    ? Int32Array
    : Uint16Array;

const BYTES: Record<TensorDType, number> = { f16: 2, bf16: 2, f32: 4, i32: 4 };

export const elementBytes = (dtype: TensorDType): number => BYTES[dtype];

function hostArray<T extends TensorDType>(dtype: T, length: number): HostOf<T> {
  const ctor = dtype === 'f32' ? Float32Array : dtype === 'i32' ? Int32Array : Uint16Array;
  return new ctor(length) as HostOf<T>;
}

interface Owner {
  readonly context: NativeContext;
  readonly disposed: boolean;
}

// Backstop for tensors the caller forgot to dispose: their device memory is freed when the JS
// object is collected. dispose() stays the way to free memory on time (GC does not see the GPU).
const registry = new FinalizationRegistry<{ owner: Owner; ptr: bigint }>(({ owner, ptr }) => {
  if (!owner.disposed) {
    try {
      owner.context.free(ptr);
    } catch {
      // a finalizer has no one to report to; the context's own release frees the rest
    }
  }
});

/**
 * Device memory holding a dense row-major tensor. Upload once, run many times, download.
 * Free it with `dispose()` (or `using`); a FinalizationRegistry frees forgotten ones eventually.
 */
export class DeviceTensor<T extends TensorDType = TensorDType> implements Disposable {
  readonly dtype: T;
  readonly shape: readonly number[];
  readonly length: number;
  readonly bytes: number;
  readonly #owner: Owner;
  #ptr: bigint | undefined;

  /** @internal Use the backend's `empty`, `upload` or `random`. */
  constructor(owner: Owner, dtype: T, shape: readonly number[]) {
    // Checked before anything is allocated: a negative or fractional size would otherwise reach
    // the driver as a huge byte count.
    const dims = Array.isArray(shape) ? [...shape] : [];
    const length = dims.reduce<number>((a, b) => a * (b as number), 1);
    if (
      !Array.isArray(shape) ||
      !dims.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      !Number.isSafeInteger(length * BYTES[dtype])
    ) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `shape: expected sizes that are non-negative integers (at most 2^53 bytes in all), got ${String(shape)}`,
        { field: 'shape' },
      );
    }
    this.#owner = owner;
    this.dtype = dtype;
    this.shape = Object.freeze(dims);
    this.length = length;
    this.bytes = this.length * BYTES[dtype];
    this.#ptr = owner.context.alloc(this.bytes);
    registry.register(this, { owner, ptr: this.#ptr }, this);
  }

  /** @internal The device address, for launches. Throws DISPOSED after dispose(). */
  get ptr(): bigint {
    if (this.#ptr === undefined || this.#owner.disposed) {
      throw new FastAttentionError('DISPOSED', 'the device tensor was disposed');
    }
    return this.#ptr;
  }

  get disposed(): boolean {
    return this.#ptr === undefined || this.#owner.disposed;
  }

  /** Copies the tensor to a new host array (through pinned staging, off the JS thread). */
  async download(): Promise<HostOf<T>> {
    const out = hostArray(this.dtype, this.length);
    await this.#owner.context.download(this.ptr, out);
    return out;
  }

  /** Copies a host array of the same length into the tensor. */
  async write(src: HostOf<T>): Promise<void> {
    // Any typed array of the element size (SharedArrayBuffer-backed too): the copy is of its bytes,
    // so a wider array of the same length would write past the tensor.
    const view = src as unknown;
    if (
      !ArrayBuffer.isView(view) ||
      view instanceof DataView ||
      (view as Uint8Array).BYTES_PER_ELEMENT !== BYTES[this.dtype] ||
      (view as Uint8Array).length !== this.length
    ) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `src: expected a typed array of ${this.length} ${BYTES[this.dtype]}-byte elements`,
        { field: 'src' },
      );
    }
    await this.#owner.context.upload(this.ptr, src);
  }

  /**
   * Copies `count` elements of `src` (same dtype), starting at element `srcOffset`, into this
   * tensor at element `dstOffset`, on the device (no host round trip). Offsets may exceed 2^32
   * elements: addresses are 64-bit. E.g. one batch row of a large K cache into a batch-1 tensor.
   */
  async copyFrom(
    src: DeviceTensor<T>,
    options: { readonly srcOffset?: number; readonly dstOffset?: number; readonly count?: number } = {},
  ): Promise<void> {
    const { srcOffset = 0, dstOffset = 0 } = options;
    const count = options.count ?? Math.min(src.length - srcOffset, this.length - dstOffset);
    const ok = (x: number): boolean => Number.isSafeInteger(x) && x >= 0;
    if (src.dtype !== this.dtype) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `src: expected a ${this.dtype} tensor, got ${src.dtype}`,
        {
          field: 'src',
        },
      );
    }
    if (
      !ok(srcOffset) ||
      !ok(dstOffset) ||
      !ok(count) ||
      srcOffset + count > src.length ||
      dstOffset + count > this.length
    ) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `copy of ${count} elements from ${srcOffset} into ${dstOffset} is out of bounds (${src.length} -> ${this.length})`,
        { field: 'count' },
      );
    }
    const eb = BigInt(BYTES[this.dtype]);
    await this.#owner.context.copy(
      this.ptr + BigInt(dstOffset) * eb,
      src.ptr + BigInt(srcOffset) * eb,
      count * BYTES[this.dtype],
    );
  }

  /** Sets every byte to `value` (tests poison outputs with 0xff: NaN in f16, bf16 and f32). */
  async fillBytes(value: number): Promise<void> {
    await this.#owner.context.memset(this.ptr, value, this.bytes);
  }

  dispose(): void {
    if (this.#ptr === undefined) return;
    const ptr = this.#ptr;
    this.#ptr = undefined;
    registry.unregister(this);
    if (!this.#owner.disposed) this.#owner.context.free(ptr);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
