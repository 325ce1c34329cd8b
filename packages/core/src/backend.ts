import type { AttentionInput, AttentionOptions, AttentionOutput } from './attention.js';
import type { DType } from './dtype.js';
import type { Executor } from './exec/executor.js';
import type { MaskKind } from './mask/spec.js';
import type { PagedKVSupport } from './paged.js';

/** Which head dims a backend runs: any positive value, or a fixed list (compiled kernels). */
export type HeadDimSupport =
  | { readonly kind: 'any'; readonly max?: number }
  | { readonly kind: 'list'; readonly values: readonly number[] };

export interface BackendCapabilities {
  readonly dtypes: readonly DType[];
  readonly headDims: HeadDimSupport;
  readonly masks: readonly MaskKind[];
  /** Paged KV caches (`input.pagedKV`), if the backend reads them. */
  readonly pagedKV?: PagedKVSupport;
}

export type DeviceKind = 'host' | 'cpu' | 'gpu' | 'npu' | 'simulator';

export interface DeviceInfo {
  readonly name: string;
  readonly kind: DeviceKind;
  readonly computeUnits?: number;
  readonly memoryBytes?: number;
  /** Anything else worth printing: ISA extensions, compute capability, the chosen path. */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

export interface BackendInfo {
  readonly name: string;
  readonly devices: readonly DeviceInfo[];
  readonly capabilities: BackendCapabilities;
}

/**
 * What every backend implements: one exact-attention call on host arrays, and a lifetime.
 * A backend validates its input (see `validateAttentionInput`) before any native code runs.
 */
export interface Backend extends AsyncDisposable {
  readonly name: string;
  readonly info: BackendInfo;
  attention<D extends DType>(
    input: AttentionInput<D>,
    options?: AttentionOptions,
  ): Promise<AttentionOutput<D>>;
  /**
   * Optional: the paper's baseline on the same device and threads: standard attention with the
   * score matrix materialized (S = scale QK^T, softmax, PV). Same input, checks and result as
   * `attention()`; `workspaceBytes` counts the scores. Tools use it to show what tiling buys,
   * like with like.
   */
  standardAttention?<D extends DType>(
    input: AttentionInput<D>,
    options?: AttentionOptions,
  ): Promise<AttentionOutput<D>>;
  /**
   * Optional: an executor of the execution contract on this backend's device (tensors, streams,
   * model ops, step graphs): how the runtime runs models without knowing the backend. Disposed
   * with the backend.
   */
  createExecutor?(): Executor;
  /** Frees native resources. Later calls reject with code DISPOSED. Safe to call twice. */
  dispose(): Promise<void>;
}

/** Options every `createBackend()` understands; backends add their own. */
export interface BackendOptions {
  /** Worker threads for host-side work; default: all cores. */
  readonly threads?: number;
}
