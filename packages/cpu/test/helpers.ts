import {
  type AttentionInput,
  type AttentionOutput,
  type DType,
  type ExactResult,
  exactAttention,
  type MaskSpec,
  validateAttentionInput,
} from '@fastattention/core';
import {
  compareToExact,
  randomInput as kitRandomInput,
  type ReferenceErrors,
  randomSeed,
  rng,
} from '@fastattention/core/testing';

export { LSE_TOLERANCE, TOLERANCE as OUT_TOLERANCE } from '@fastattention/core/testing';

export interface Case {
  readonly name: string;
  readonly dtype: DType;
  readonly batch: number;
  readonly seqQ: number;
  readonly seqK: number;
  readonly headsQ: number;
  readonly headsKV: number;
  readonly headDim: number;
  readonly mask?: MaskSpec;
  readonly seqLensK?: readonly number[];
  readonly scale?: number;
}

/** Fresh random input for a case (the conformance kit's: never all zero). */
export function randomInput(c: Case): AttentionInput {
  const { dtype, mask, seqLensK, scale } = c;
  return kitRandomInput(rng(randomSeed()), dtype, c, {
    ...(mask ? { mask } : {}),
    ...(seqLensK ? { seqLensK: Int32Array.from(seqLensK) } : {}),
    ...(scale !== undefined ? { scale } : {}),
  });
}

export function reference(input: AttentionInput): ExactResult {
  return exactAttention(validateAttentionInput(input));
}

/** Errors of a backend result against the float64 reference; `bad` counts NaN outputs and -Infinity mismatches. */
export function compare(result: AttentionOutput, ref: ExactResult, dtype: DType): ReferenceErrors {
  return compareToExact(ref, dtype, result.out, result.lse);
}
