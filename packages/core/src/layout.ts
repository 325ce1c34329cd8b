import type { AttentionShape } from './shape.js';

/** Element offsets into the contract's row-major tensors. */
export const qIndex = (s: AttentionShape, b: number, i: number, h: number): number =>
  ((b * s.seqQ + i) * s.headsQ + h) * s.headDim;

export const kvIndex = (s: AttentionShape, b: number, j: number, hk: number): number =>
  ((b * s.seqK + j) * s.headsKV + hk) * s.headDim;

export const lseIndex = (s: AttentionShape, b: number, h: number, i: number): number =>
  (b * s.headsQ + h) * s.seqQ + i;

/** The KV head that query head `h` reads (GQA/MQA). */
export const kvHeadOf = (s: AttentionShape, h: number): number => Math.floor(h / (s.headsQ / s.headsKV));
