import { describe, expect, it } from 'vitest';
import { mergePartials, OnlineSoftmax } from '../src/index.js';
import { randInt, randomSeed, randomValues, rng } from './helpers.js';

/** Softmax-weighted sum of `values` over the keys in [from, to), with -Infinity scores masked. */
function partial(scores: number[][], values: number[][], from: number, to: number) {
  const rows = scores.length;
  const d = values[0]!.length;
  const state = new OnlineSoftmax(rows, d);
  const block = new Float64Array(rows * (to - from));
  for (let r = 0; r < rows; r++)
    for (let c = from; c < to; c++) block[r * (to - from) + c - from] = scores[r]![c]!;
  state.update(block, to - from, values.slice(from, to).flat(), 0, d);
  const out = new Float64Array(rows * d);
  const lse = new Float64Array(rows);
  for (let r = 0; r < rows; r++) lse[r] = state.finish(r, out, r * d);
  return { out, lse };
}

describe('mergePartials', () => {
  it('merging random splits of the keys equals the unsplit result', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 50; t++) {
      const rows = randInt(rand, 1, 6);
      const keys = randInt(rand, 2, 40);
      const d = randInt(rand, 1, 8);
      const scores = Array.from({ length: rows }, () =>
        randomValues(rand, keys).map((s) => (rand() < 0.2 ? Number.NEGATIVE_INFINITY : 4 * s)),
      );
      const values = Array.from({ length: keys }, () => randomValues(rand, d));
      const whole = partial(scores, values, 0, keys);
      const cuts = [
        0,
        ...new Set(Array.from({ length: randInt(rand, 1, 4) }, () => randInt(rand, 1, keys - 1))),
      ]
        .sort((a, b) => a - b)
        .concat(keys);
      const parts = cuts.slice(1).map((end, i) => partial(scores, values, cuts[i]!, end));
      const merged = mergePartials(parts, rows, d);
      for (let i = 0; i < whole.out.length; i++) expect(merged.out[i]).toBeCloseTo(whole.out[i]!, 12);
      for (let r = 0; r < rows; r++) {
        if (whole.lse[r] === Number.NEGATIVE_INFINITY) expect(merged.lse[r]).toBe(Number.NEGATIVE_INFINITY);
        else expect(merged.lse[r]).toBeCloseTo(whole.lse[r]!, 12);
      }
    }
  });

  it('keeps a row empty (zeros, -Infinity) when every part is empty', () => {
    const empty = { out: new Float64Array(3), lse: Float64Array.of(Number.NEGATIVE_INFINITY) };
    const merged = mergePartials([empty, empty], 1, 3);
    expect([...merged.out]).toEqual([0, 0, 0]);
    expect(merged.lse[0]).toBe(Number.NEGATIVE_INFINITY);
  });
});
