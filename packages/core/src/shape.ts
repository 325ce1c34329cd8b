import type { DType } from './dtype.js';

/** The sizes of one attention call: q is [batch, seqQ, headsQ, headDim], k/v [batch, seqK, headsKV, headDim]. */
export interface AttentionShape {
  readonly batch: number;
  readonly seqQ: number;
  readonly seqK: number;
  readonly headsQ: number;
  readonly headsKV: number;
  readonly headDim: number;
}

/** Query heads that share one KV head (1 = MHA, headsQ = MQA). */
export const groupSize = (s: AttentionShape): number => s.headsQ / s.headsKV;

export const qLength = (s: AttentionShape): number => s.batch * s.seqQ * s.headsQ * s.headDim;
export const kvLength = (s: AttentionShape): number => s.batch * s.seqK * s.headsKV * s.headDim;
export const lseLength = (s: AttentionShape): number => s.batch * s.headsQ * s.seqQ;

/** A shape with its storage type: what a tile planner or a cost model needs to know. */
export interface AttentionProblem extends AttentionShape {
  readonly dtype: DType;
}
