import { FastAttentionError, toFastAttentionError } from '@fastattention/core';
import type { NativeContext } from './native.js';
import { DeviceTensor, type TensorDType } from './tensor.js';

/**
 * The device memory of one backend: its tensors and the temporaries its launches keep between
 * calls. Once released, allocation throws DISPOSED and tensors stop freeing their memory
 * themselves (the context's release frees it).
 */
export class DeviceMemory {
  readonly #context: NativeContext;
  /** What every tensor of this backend holds on to: the context, and whether it was released. */
  readonly owner: { readonly context: NativeContext; readonly disposed: boolean };
  #released = false;
  /**
   * Fused split-KV combine (every path): per-(batch, head, q-tile) arrival counters, zero
   * between launches (the last split CTA resets its counter). Grown on demand; outgrown buffers are
   * kept until release() since launches already enqueued may still use them.
   */
  #counters: DeviceTensor<'i32'> | undefined;
  readonly #oldCounters: DeviceTensor[] = [];

  constructor(context: NativeContext) {
    this.#context = context;
    const self = this;
    this.owner = {
      context,
      get disposed() {
        return self.#released;
      },
    };
  }

  /** Allocates an uninitialized device tensor (DISPOSED once released; DEVICE or OOM from the driver). */
  empty<T extends TensorDType>(dtype: T, shape: readonly number[]): DeviceTensor<T> {
    if (this.#released) throw new FastAttentionError('DISPOSED', 'the cuda backend was disposed');
    try {
      return new DeviceTensor(this.owner, dtype, shape);
    } catch (error) {
      throw toFastAttentionError(error, 'DEVICE');
    }
  }

  /** A zeroed counter buffer of at least n entries (see #counters). */
  async counters(n: number): Promise<bigint> {
    if (!this.#counters || this.#counters.length < n) {
      const t = this.empty('i32', [Math.max(n, 4096)]);
      await t.write(new Int32Array(t.length));
      if (this.#counters) this.#oldCounters.push(this.#counters);
      this.#counters = t;
    }
    return this.#counters.ptr;
  }

  /** Marks the memory released (the context is about to go) and drops the temporaries. */
  release(): void {
    this.#released = true;
    for (const t of [...this.#oldCounters, ...(this.#counters ? [this.#counters] : [])]) t.dispose();
  }

  /** Free and total device memory, in bytes. */
  info(): { free: number; total: number } {
    return this.#context.memInfo();
  }
}
