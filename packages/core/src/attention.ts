import type { ArrayOf, DType } from './dtype.js';
import type { MaskSpec } from './mask/spec.js';
import type { PagedKV, ResolvedPagedKV } from './paged.js';
import type { AttentionShape } from './shape.js';

/** The host-array input of `backend.attention()`. Shapes are row-major and dense. */
export interface AttentionInput<D extends DType = DType> extends AttentionShape {
  readonly dtype: D;
  /** [batch, seqQ, headsQ, headDim] */
  readonly q: ArrayOf<D>;
  /** [batch, seqK, headsKV, headDim], or [numBlocks, blockSize, headsKV, headDim] with `pagedKV` */
  readonly k: ArrayOf<D>;
  /** The same layout as k. */
  readonly v: ArrayOf<D>;
  /** Multiplies q·k before the softmax. Default `1 / sqrt(headDim)`. */
  readonly scale?: number;
  /** Valid key count per batch row (keys `j >= seqLensK[b]` are masked). Default: all `seqK`. */
  readonly seqLensK?: Int32Array;
  /** Default `{ kind: 'none' }`. */
  readonly mask?: MaskSpec;
  /** k and v are a paged cache read through a block table (needs `seqLensK`). */
  readonly pagedKV?: PagedKV;
}

export interface AttentionOutput<D extends DType = DType> {
  /** Same dtype and shape as q. */
  readonly out: ArrayOf<D>;
  /** [batch, headsQ, seqQ]: natural log of the softmax denominator; -Infinity for a row with no key. */
  readonly lse: Float32Array;
  /** Bytes the call allocated besides its inputs and outputs, when the backend knows (for memory reports). */
  readonly workspaceBytes?: number;
}

export interface AttentionOptions {
  /** Cancels work that has not started yet; the promise rejects with code ABORTED. */
  readonly signal?: AbortSignal;
}

/** An input after validation: every default filled in. */
export interface ResolvedAttentionInput<D extends DType = DType> extends AttentionInput<D> {
  readonly scale: number;
  readonly seqLensK: Int32Array;
  readonly mask: MaskSpec;
  readonly pagedKV?: ResolvedPagedKV;
}
