import { describe, expect, it } from 'vitest';
import { createReferenceBackend, fromNumbers } from '../src/index.js';
import {
  compareToReference,
  randomInput,
  randomSeed,
  rng,
  TOLERANCE,
  withinTolerance,
} from '../src/testing/index.js';

const shape = { batch: 2, seqQ: 5, seqK: 7, headsQ: 4, headsKV: 2, headDim: 8 };

describe('the conformance kit (@fastattention/core/testing)', () => {
  it('replays the same inputs from the same seed, and never gives all zeros', () => {
    const seed = randomSeed();
    const a = randomInput(rng(seed), 'f16', shape);
    const b = randomInput(rng(seed), 'f16', shape);
    expect(a.q).toEqual(b.q);
    expect(a.v.some((x) => x !== 0)).toBe(true);
  });

  it('passes the reference backend and catches poisoned, perturbed and wrong -Infinity results', async () => {
    const input = randomInput(rng(randomSeed()), 'f32', shape, { seqLensK: Int32Array.of(0, 7) });
    const { out, lse } = await createReferenceBackend().attention(input);
    expect(withinTolerance(compareToReference(input, out, lse), 'f32')).toBe(true);

    const poisoned = Float32Array.from(out);
    poisoned[3] = Number.NaN;
    expect(compareToReference(input, poisoned, lse)).toMatchObject({ bad: 1, out: Number.POSITIVE_INFINITY });

    const perturbed = Float32Array.from(out, (x) => x * (1 + 10 * TOLERANCE.f32));
    expect(withinTolerance(compareToReference(input, perturbed, lse), 'f32')).toBe(false);

    const finiteLse = Float32Array.from(lse, (x) => (Number.isFinite(x) ? x : 0));
    expect(compareToReference(input, out, finiteLse).bad).toBe(shape.headsQ * shape.seqQ); // batch row 0 has no key
  });

  it('decodes f16 and bf16 outputs before comparing', async () => {
    const input = randomInput(rng(randomSeed()), 'bf16', shape);
    const { out, lse } = await createReferenceBackend().attention(input);
    expect(withinTolerance(compareToReference(input, out, lse), 'bf16')).toBe(true);
    const zeros = fromNumbers(new Array(out.length).fill(0), 'bf16');
    expect(compareToReference(input, zeros, lse).out).toBeCloseTo(1, 5);
  });
});
