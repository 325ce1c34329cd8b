import type { AttentionInput, AttentionShape } from '@fastattention/core';
import { compareToReference, randomSeed } from '@fastattention/core/testing';

export { LSE_TOLERANCE, randomInput, rng, TOLERANCE } from '@fastattention/core/testing';

/** This run's seed: printed in test names, so a failure replays. */
export const SEED = randomSeed();

/**
 * Timeout of a test that runs the simulator for real. CI runs every package's tests at once on
 * two cores, where a call that takes 1 s here can take 5 s or more.
 */
export const WORK_TIMEOUT = 60_000;

export type Shape = AttentionShape;

/** Relative L2 error of out and worst relative LSE error; Infinity for unwritten (NaN) outputs. */
export function errors(
  input: AttentionInput,
  got: { out: Uint16Array | Float32Array; lse: Float32Array },
): { out: number; lse: number } {
  const e = compareToReference(input, got.out, got.lse);
  return e.bad > 0
    ? { out: Number.POSITIVE_INFINITY, lse: Number.POSITIVE_INFINITY }
    : { out: e.out, lse: e.lse };
}
