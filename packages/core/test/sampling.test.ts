import { describe, expect, it } from 'vitest';
import { FastAttentionError } from '../src/errors.js';
import {
  checkSamplingParams,
  DEFAULT_SAMPLING,
  philox4x32,
  randomUniform,
  type SamplingParams,
  type SeenTokens,
  sampleToken,
  samplingDistribution,
  topLogprobs,
} from '../src/exec/sampling.js';
import { randInt, randomSeed, randomValues, rng } from './helpers.js';

const NONE: ReadonlyMap<number, number> = new Map();
const INF = Number.POSITIVE_INFINITY;

const params = (overrides: Partial<SamplingParams>): SamplingParams => checkSamplingParams(overrides);
const logitsOf = (...values: number[]): Float64Array => Float64Array.from(values);
/** Logits whose temperature-1 softmax is `probs` (up to rounding). */
const logitsFor = (...probs: number[]): Float64Array => Float64Array.from(probs, Math.log);

/** log-softmax written out here, independently of the module: max-shifted log-sum-exp. */
function logSoftmax(x: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(x));
  const sum = Array.from(x).reduce((s, v) => s + Math.exp(v - max), 0);
  return Array.from(x, (v) => v - max - Math.log(sum));
}

const softmax = (x: ArrayLike<number>): number[] => logSoftmax(x).map(Math.exp);

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, digits = 12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i]!, digits);
}

function expectInvalid(run: () => unknown, field: string): void {
  expect(run).toThrow(FastAttentionError);
  expect(run).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', field }));
}

describe('philox4x32 and randomUniform', () => {
  it('matches the Random123 known-answer vectors for Philox-4x32-10', () => {
    // counter[4] key[2] -> output[4], from Random123's tests/kat_vectors.
    expect(philox4x32([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    const ones = 0xffffffff;
    expect(philox4x32([ones, ones, ones, ones], [ones, ones])).toEqual([
      0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd,
    ]);
    expect(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([
      0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1,
    ]);
  });

  it('agrees with a BigInt Philox written here on random counters and keys', () => {
    const mask = 0xffffffffn;
    const bigPhilox = (ctr: bigint[], key: bigint[]): number[] => {
      let [c0, c1, c2, c3] = ctr as [bigint, bigint, bigint, bigint];
      let [k0, k1] = key as [bigint, bigint];
      for (let round = 0; round < 10; round++) {
        const p0 = 0xd2511f53n * c0;
        const p1 = 0xcd9e8d57n * c2;
        [c0, c1, c2, c3] = [(p1 >> 32n) ^ c1 ^ k0, p1 & mask, (p0 >> 32n) ^ c3 ^ k1, p0 & mask];
        k0 = (k0 + 0x9e3779b9n) & mask;
        k1 = (k1 + 0xbb67ae85n) & mask;
      }
      return [c0, c1, c2, c3].map(Number);
    };
    const rand = rng(7);
    const word = () => Math.floor(rand() * 2 ** 32);
    for (let t = 0; t < 200; t++) {
      const ctr = [word(), word(), word(), word()] as const;
      const key = [word(), word()] as const;
      expect(philox4x32(ctr, key)).toEqual(bigPhilox([...ctr].map(BigInt), [...key].map(BigInt)));
    }
  });

  it('pins randomUniform: (seed, counter) -> u * 2^24', () => {
    // Written down once from this implementation. They pin the whole algorithm (Philox-4x32-10,
    // the counter/key layout, the top 24 bits of word 0), so a CPU or GPU kernel that reproduces
    // them draws the same numbers; change them only together with every kernel.
    const pinned: [seed: number, counter: number, scaled: number][] = [
      [0, 0, 6694888],
      [0, 1, 16311500],
      [42, 0, 10283760],
      [42, 7, 6012291],
      [0xffffffff, 2 ** 32 + 5, 11568738], // counter word 1 in use
      [123456789, 2 ** 53 - 1, 15570107],
    ];
    for (const [seed, counter, scaled] of pinned) expect(randomUniform(seed, counter) * 2 ** 24).toBe(scaled);
  });

  it('is uniform on [0, 1) with 24-bit resolution: mean, variance, lag-1 correlation within 5 sigma', () => {
    // Fixed seed and counters: the bounds are 5 standard errors of these statistics for 1e5
    // independent uniforms, and the outcome is the same on every run.
    const n = 100_000;
    const u = Array.from({ length: n }, (_, c) => randomUniform(2024, c));
    for (const v of u) {
      expect(v >= 0 && v < 1).toBe(true);
      expect(Number.isInteger(v * 2 ** 24)).toBe(true);
    }
    const mean = u.reduce((s, v) => s + v, 0) / n;
    const second = u.reduce((s, v) => s + (v - 0.5) ** 2, 0) / n;
    let lag = 0;
    for (let i = 1; i < n; i++) lag += (u[i]! - 0.5) * (u[i - 1]! - 0.5);
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(second - 1 / 12)).toBeLessThan(5 * Math.sqrt(1 / 180 / n)); // Var((U - 1/2)^2) = 1/180
    expect(Math.abs(lag / (n - 1))).toBeLessThan(5 * Math.sqrt(1 / 144 / n)); // Var of a product = 1/144
  });

  it('gives different streams for different counters and seeds', () => {
    const stream = (seed: number, from: number) =>
      Array.from({ length: 1000 }, (_, c) => randomUniform(seed, from + c));
    // 1000 draws of 2^24 values: about 0.03 collisions expected
    expect(new Set(stream(5, 0)).size).toBeGreaterThan(995);
    const a = stream(5, 0);
    for (const other of [stream(5, 1), stream(6, 0), stream(5, 2 ** 32)]) {
      expect(other.filter((v, i) => v === a[i]).length).toBeLessThan(5);
    }
  });

  it('names seed and counter when they are out of range', () => {
    for (const seed of [-1, 2 ** 32, 1.5, Number.NaN]) expectInvalid(() => randomUniform(seed, 0), 'seed');
    for (const counter of [-1, 0.5, 2 ** 53, INF]) expectInvalid(() => randomUniform(0, counter), 'counter');
  });
});

describe('sampleToken', () => {
  it('greedy equals the argmax on fresh random logits, with its log-softmax as logprob', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 100; t++) {
      const logits = Float64Array.from(randomValues(rand, randInt(rand, 1, 300)), (v) => 5 * v);
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
      const picked = sampleToken(logits, DEFAULT_SAMPLING, NONE, t);
      expect(picked.token, `seed ${seed}`).toBe(best);
      expect(picked.logprob).toBeCloseTo(logSoftmax(logits)[best]!, 12);
    }
  });

  it('greedy breaks ties by the lowest id (all-zero logits here on purpose: the point is a tie)', () => {
    expect(sampleToken(new Float64Array(7), DEFAULT_SAMPLING, NONE, 0).token).toBe(0);
    expect(sampleToken(logitsOf(1, 4, -2, 4, 4), DEFAULT_SAMPLING, NONE, 0).token).toBe(1);
  });

  it('is deterministic in (seed, counter), and the token is the inverse CDF of the distribution at u', () => {
    const logits = logitsOf(0.3, -1.2, 2.0, 0.7, 1.1, -0.4, 0.9, 1.6);
    const p = params({ temperature: 1.3, topK: 6, topP: 0.95, seed: 99 });
    const probs = samplingDistribution(logits, p, NONE);
    const tokens = new Set<number>();
    for (let counter = 0; counter < 200; counter++) {
      const first = sampleToken(logits, p, NONE, counter);
      expect(sampleToken(logits, { ...p }, NONE, counter)).toEqual(first);
      // the inverse CDF, written here: first token whose running sum exceeds u
      const u = randomUniform(99, counter);
      let expected = 0;
      for (let sum = probs[0]!; sum <= u; sum += probs[expected]!) expected++;
      expect(first.token).toBe(expected);
      tokens.add(first.token);
    }
    expect(tokens.size).toBeGreaterThan(3); // different counters, different draws
  });

  it('samples each token with the frequency the distribution gives, within 5 sigma', () => {
    // Fixed seeds and counters 0..9999: deterministic. Per token, |count - N p| < 5 sqrt(N p (1 - p));
    // in all, Pearson's chi-square below df + 5 sqrt(2 df).
    const logits = logitsOf(1.2, -0.3, 0.8, 2.1, -1.5, 0.1, 1.7, -0.9, 0.4, 1.0);
    const draws = 10_000;
    for (const p of [
      params({ temperature: 0.8, seed: 1234 }),
      params({ temperature: 1.5, topK: 7, topP: 0.9, seed: 98765 }),
      params({ temperature: 1, minP: 0.1, repetitionPenalty: 1.3, presencePenalty: 0.2, seed: 5 }),
    ]) {
      const seen = new Map([
        [3, 2],
        [6, 1],
      ]);
      const probs = samplingDistribution(logits, p, seen);
      const counts = new Array<number>(logits.length).fill(0);
      for (let c = 0; c < draws; c++) counts[sampleToken(logits, p, seen, c).token]!++;
      let chi2 = 0;
      let df = -1;
      for (const [t, q] of probs.entries()) {
        if (q === 0) {
          expect(counts[t]).toBe(0);
          continue;
        }
        expect(Math.abs(counts[t]! - draws * q)).toBeLessThan(5 * Math.sqrt(draws * q * (1 - q)));
        chi2 += (counts[t]! - draws * q) ** 2 / (draws * q);
        df++;
      }
      expect(chi2).toBeLessThan(df + 5 * Math.sqrt(2 * df));
    }
  });

  it('reports the log-probability before truncation: log-softmax of penalized logits / temperature', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 100; t++) {
      const vocab = randInt(rand, 2, 60);
      const logits = Float64Array.from(randomValues(rand, vocab), (v) => 4 * v);
      const seen = new Map<number, number>();
      const repeats = randInt(rand, 0, 5);
      for (let i = 0; i < repeats; i++) seen.set(randInt(rand, 0, vocab - 1), randInt(rand, 1, 4));
      const p = params({
        temperature: rand() < 0.2 ? 0 : 0.3 + 2 * rand(),
        topK: randInt(rand, 0, vocab),
        topP: 0.5 + 0.5 * rand(),
        minP: 0.2 * rand(),
        repetitionPenalty: 1 + rand(),
        presencePenalty: rand() - 0.5,
        frequencyPenalty: rand() - 0.5,
        seed: randInt(rand, 0, 2 ** 32 - 1),
      });
      // the penalties, by hand
      const penalized = Array.from(logits, (x, i) => {
        const count = seen.get(i) ?? 0;
        if (count === 0) return x;
        return (
          (x > 0 ? x / p.repetitionPenalty : x * p.repetitionPenalty) -
          p.frequencyPenalty * count -
          p.presencePenalty
        );
      });
      const picked = sampleToken(logits, p, seen, t);
      const scaled = penalized.map((y) => y / (p.temperature === 0 ? 1 : p.temperature));
      expect(picked.logprob, `seed ${seed}`).toBeCloseTo(logSoftmax(scaled)[picked.token]!, 10);
      expect(samplingDistribution(logits, p, seen)[picked.token]).toBeGreaterThan(0);
    }
  });
});

describe('samplingDistribution', () => {
  it('at temperature 1 with nothing else on is the softmax', () => {
    const logits = logitsOf(0.5, -2, 3.25, 1, -0.75);
    expectClose(samplingDistribution(logits, params({ temperature: 1 }), NONE), softmax(logits));
    expectClose(
      samplingDistribution(logits, params({ temperature: 0.5 }), NONE),
      softmax(logits.map((x) => 2 * x)),
    );
  });

  it('greedy is a one-hot at the argmax', () => {
    expect([...samplingDistribution(logitsOf(0.1, 2, -1, 1.9), DEFAULT_SAMPLING, NONE)]).toEqual([
      0, 1, 0, 0,
    ]);
  });

  it('top-k keeps exactly k tokens: the largest, ties by lower id', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 50; t++) {
      const vocab = randInt(rand, 2, 80);
      const logits = Float64Array.from(randomValues(rand, vocab), (v) => 3 * v);
      const k = randInt(rand, 1, vocab - 1);
      const probs = samplingDistribution(logits, params({ temperature: 1, topK: k }), NONE);
      const kept = [...probs.keys()].filter((i) => probs[i]! > 0);
      const largest = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, k);
      expect(kept, `seed ${seed}`).toEqual(largest.sort((a, b) => a - b));
      expectClose(
        kept.map((i) => probs[i]!),
        softmax(kept.map((i) => logits[i]!)),
      );
    }
    // ties at the k-th place: the lower ids win, and exactly k stay
    const tied = samplingDistribution(logitsOf(1, 3, 3, 3, 0.5), params({ temperature: 1, topK: 2 }), NONE);
    expect([...tied]).toEqual([0, 0.5, 0.5, 0, 0]);
  });

  it('top-p keeps the smallest prefix of the ranking whose probability reaches p', () => {
    const logits = logitsFor(0.1, 0.4, 0.2, 0.3); // ranking: 1, 3, 2, 0
    const kept = (topP: number) => {
      const probs = samplingDistribution(logits, params({ temperature: 1, topP }), NONE);
      return [...probs.keys()].filter((i) => probs[i]! > 0);
    };
    expect(kept(0.3)).toEqual([1]);
    expect(kept(0.65)).toEqual([1, 3]);
    expect(kept(0.75)).toEqual([1, 2, 3]);
    expect(kept(0.95)).toEqual([0, 1, 2, 3]);
    expectClose(samplingDistribution(logits, params({ temperature: 1, topP: 0.65 }), NONE), [
      0,
      4 / 7,
      0,
      3 / 7,
    ]);
    // ties (equal logits on purpose): ranked by id, so two of the three equal tokens reach 0.5
    const tied = samplingDistribution(logitsOf(2, 2, 2, -1), params({ temperature: 1, topP: 0.5 }), NONE);
    expectClose(tied, [0.5, 0.5, 0, 0]);
  });

  it('top-p on random logits: the kept mass reaches p and dropping the last kept token falls short', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 50; t++) {
      const logits = Float64Array.from(randomValues(rand, randInt(rand, 2, 80)), (v) => 3 * v);
      const topP = 0.05 + 0.9 * rand();
      const full = softmax(logits);
      const probs = samplingDistribution(logits, params({ temperature: 1, topP }), NONE);
      const kept = [...probs.keys()].filter((i) => probs[i]! > 0);
      const mass = kept.reduce((s, i) => s + full[i]!, 0);
      const smallest = Math.min(...kept.map((i) => full[i]!));
      expect(mass, `seed ${seed}`).toBeGreaterThanOrEqual(topP - 1e-12);
      expect(mass - smallest).toBeLessThan(topP + 1e-12);
      for (let i = 0; i < logits.length; i++) {
        if (probs[i] === 0) expect(full[i]).toBeLessThanOrEqual(smallest); // a prefix of the ranking
      }
    }
  });

  it('min-p drops tokens below minP times the top probability', () => {
    const logits = logitsFor(0.5, 0.3, 0.15, 0.05);
    expectClose(
      samplingDistribution(logits, params({ temperature: 1, minP: 0.4 }), NONE),
      [0.625, 0.375, 0, 0],
    );
    expectClose(samplingDistribution(logits, params({ temperature: 1, minP: 0.25 }), NONE), [
      0.5 / 0.95,
      0.3 / 0.95,
      0.15 / 0.95,
      0,
    ]);
    expectClose(samplingDistribution(logits, params({ temperature: 1, minP: 1 }), NONE), [1, 0, 0, 0]);
  });

  describe('penalties, against hand computations', () => {
    const logits = logitsOf(2, -1, 0.5, 3);
    const at1 = (p: Partial<SamplingParams>, seen: SeenTokens) =>
      samplingDistribution(logits, params({ temperature: 1, ...p }), seen);

    it('repetition divides positive logits and multiplies negative ones', () => {
      const seen = new Map([
        [0, 1],
        [1, 2],
      ]);
      expectClose(at1({ repetitionPenalty: 2 }, seen), softmax([1, -2, 0.5, 3]));
      expectClose(at1({ repetitionPenalty: 0.5 }, seen), softmax([4, -0.5, 0.5, 3]));
    });

    it('presence subtracts once, frequency count times', () => {
      const seen = new Map([
        [0, 3],
        [2, 1],
      ]);
      expectClose(at1({ presencePenalty: 0.5 }, seen), softmax([1.5, -1, 0, 3]));
      expectClose(at1({ frequencyPenalty: 0.25 }, seen), softmax([1.25, -1, 0.25, 3]));
    });

    it('all three together: repetition first, then the subtractions', () => {
      const seen = new Map([
        [0, 3],
        [1, 2],
      ]);
      const p = { repetitionPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25 };
      // token 0: 2 / 2 - 3 * 0.25 - 0.5; token 1: -1 * 2 - 2 * 0.25 - 0.5
      expectClose(at1(p, seen), softmax([-0.25, -3, 0.5, 3]));
    });

    it('dense Int32Array counts equal the Map, and a count of 0 is no penalty', () => {
      const p = { repetitionPenalty: 1.7, presencePenalty: 0.3, frequencyPenalty: 0.2 };
      const map = new Map([
        [0, 3],
        [2, 0],
        [3, 1],
      ]);
      expect([...at1(p, Int32Array.of(3, 0, 0, 1))]).toEqual([...at1(p, map)]);
      expect([...at1(p, new Map([[2, 0]]))]).toEqual([...at1(p, NONE)]);
    });

    it('can move the greedy pick', () => {
      const picked = sampleToken(logitsOf(3, 2.9), params({ repetitionPenalty: 1.5 }), new Map([[0, 1]]), 0);
      expect(picked.token).toBe(1);
      expect(picked.logprob).toBeCloseTo(logSoftmax([2, 2.9])[1]!, 12);
    });
  });

  describe('order of operations (each case gives another answer in another order)', () => {
    it('penalties before temperature', () => {
      // (1 - 1) / 0.5 = 0 ties with token 1; temperature first would give 1 / 0.5 - 1 = 1
      const probs = samplingDistribution(
        logitsOf(1, 0),
        params({ temperature: 0.5, presencePenalty: 1 }),
        new Map([[0, 1]]),
      );
      expectClose(probs, [0.5, 0.5]);
    });

    it('temperature before top-p', () => {
      // at T = 0.5 the top token alone has 0.25 / 0.38 > 0.6; at T = 1 it has 0.5 < 0.6
      const probs = samplingDistribution(
        logitsFor(0.5, 0.3, 0.2),
        params({ temperature: 0.5, topP: 0.6 }),
        NONE,
      );
      expect([...probs]).toEqual([1, 0, 0]);
    });

    it('top-k before top-p: top-p sees the renormalized top-k mass', () => {
      // top-k 2 leaves (4/7, 3/7), and 4/7 >= 0.5; top-p first would keep two tokens
      const probs = samplingDistribution(
        logitsFor(0.4, 0.3, 0.3),
        params({ temperature: 1, topK: 2, topP: 0.5 }),
        NONE,
      );
      expect([...probs]).toEqual([1, 0, 0]);
    });

    it('top-p before min-p', () => {
      // top-p 0.6 keeps (0.5, 0.3), which min-p 0.5 (threshold 0.25) leaves; min-p first would leave
      // (0.625, 0.375), where top-p 0.6 keeps only the first token
      const probs = samplingDistribution(
        logitsFor(0.5, 0.3, 0.2),
        params({ temperature: 1, topP: 0.6, minP: 0.5 }),
        NONE,
      );
      expectClose(probs, [0.625, 0.375, 0]);
    });
  });

  describe('edge cases', () => {
    it('NaN logits count as -Infinity: probability 0, never drawn, never the greedy pick', () => {
      const logits = logitsOf(Number.NaN, 0.2, Number.NaN, -0.4);
      const p = params({ temperature: 1, seed: 3 });
      const [a, b] = softmax([0.2, -0.4]) as [number, number];
      expectClose(samplingDistribution(logits, p, NONE), [0, a, 0, b]);
      for (let c = 0; c < 500; c++) expect([1, 3]).toContain(sampleToken(logits, p, NONE, c).token);
      expect(sampleToken(logitsOf(Number.NaN, -5), DEFAULT_SAMPLING, NONE, 0).token).toBe(1);
      expect(topLogprobs(logits, 4).map((e) => e.token)).toEqual([1, 3, 0, 2]);
    });

    it('-Infinity logits get probability 0 and logprob -Infinity', () => {
      const logits = logitsOf(-INF, 1, -INF, 2);
      const probs = samplingDistribution(logits, params({ temperature: 0.7, topK: 3 }), NONE);
      const [a, b] = softmax([1 / 0.7, 2 / 0.7]) as [number, number];
      expectClose(probs, [0, a, 0, b]);
      expect(topLogprobs(logits, 4)[3]).toEqual({ token: 2, logprob: -INF });
    });

    it('every logit -Infinity (or NaN): all tie, so the distribution is uniform and greedy picks 0', () => {
      const logits = logitsOf(-INF, Number.NaN, -INF);
      expectClose(samplingDistribution(logits, params({ temperature: 1 }), NONE), [1 / 3, 1 / 3, 1 / 3]);
      expect(sampleToken(logits, DEFAULT_SAMPLING, NONE, 0)).toEqual({ token: 0, logprob: -Math.log(3) });
      expect([...samplingDistribution(logits, params({ temperature: 1, topK: 1 }), NONE)]).toEqual([1, 0, 0]);
    });

    it('+Infinity logits share all the mass', () => {
      const logits = logitsOf(INF, 5, INF);
      expect([...samplingDistribution(logits, params({ temperature: 2 }), NONE)]).toEqual([0.5, 0, 0.5]);
      expect(sampleToken(logits, params({ temperature: 2 }), NONE, 0).logprob).toBe(-Math.LN2);
    });

    it('a vocab of one always gives token 0 with logprob 0', () => {
      for (const p of [DEFAULT_SAMPLING, params({ temperature: 1.5, topK: 1, topP: 0.1, minP: 1 })]) {
        expect([...samplingDistribution(logitsOf(-3.5), p, NONE)]).toEqual([1]);
        expect(sampleToken(logitsOf(-3.5), p, new Map([[0, 4]]), 11)).toEqual({ token: 0, logprob: 0 });
      }
    });

    it('very large logits and tiny temperatures neither overflow nor produce NaN', () => {
      // powers of two keep the differences exact: they are -2 and -4 temperatures
      const big = logitsOf(2 ** 1000, 2 ** 1000 - 2 ** 980, 2 ** 1000 - 2 ** 981);
      expectClose(samplingDistribution(big, params({ temperature: 2 ** 979 }), NONE), softmax([0, -2, -4]));
      const extreme = logitsOf(1.7e308, -1.7e308);
      expect([...samplingDistribution(extreme, params({ temperature: 0.5 }), NONE)]).toEqual([1, 0]);
      // 1 / 1e-300 and 2 / 1e-300 overflow to Infinity; the max-shifted scaling keeps the argmax
      expect([...samplingDistribution(logitsOf(1, 2), params({ temperature: 1e-300 }), NONE)]).toEqual([
        0, 1,
      ]);
      expect(sampleToken(logitsOf(1, 2), params({ temperature: 1e-300 }), NONE, 0).logprob).toBe(0);
    });

    it('does not modify the logits', () => {
      const logits = logitsOf(1, Number.NaN, 3, -INF);
      const copy = [...logits];
      samplingDistribution(logits, params({ temperature: 1, repetitionPenalty: 2 }), new Map([[0, 1]]));
      sampleToken(logits, params({ temperature: 1, presencePenalty: 1 }), new Map([[2, 1]]), 0);
      topLogprobs(logits, 2);
      expect([...logits]).toEqual(copy);
    });
  });
});

describe('topLogprobs', () => {
  it('lists the n most likely tokens, ties by lower id, with log-softmax of the raw logits', () => {
    const logits = logitsOf(0.5, 2, -1, 2, 1.25, 0.5);
    const expected = logSoftmax(logits);
    const top = topLogprobs(logits, 4);
    expect(top.map((e) => e.token)).toEqual([1, 3, 4, 0]);
    for (const e of top) expect(e.logprob).toBeCloseTo(expected[e.token]!, 12);
    expect(topLogprobs(logits, 0)).toEqual([]);
    expect(topLogprobs(logits, 100).map((e) => e.token)).toEqual([1, 3, 4, 0, 5, 2]);
  });

  it('matches an independent sort on random logits', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 30; t++) {
      const logits = Float64Array.from(randomValues(rand, randInt(rand, 1, 200)), (v) => 6 * v);
      const n = randInt(rand, 0, 20);
      const expected = logSoftmax(logits);
      const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, n);
      const top = topLogprobs(logits, n);
      expect(
        top.map((e) => e.token),
        `seed ${seed}`,
      ).toEqual(order);
      for (const e of top) expect(e.logprob).toBeCloseTo(expected[e.token]!, 12);
    }
  });
});

describe('validation', () => {
  it('merges the defaults', () => {
    expect(checkSamplingParams(undefined)).toEqual(DEFAULT_SAMPLING);
    expect(checkSamplingParams({})).toEqual(DEFAULT_SAMPLING);
    expect(checkSamplingParams({ topP: 0.9, seed: 7 })).toEqual({ ...DEFAULT_SAMPLING, topP: 0.9, seed: 7 });
    expect(DEFAULT_SAMPLING).toEqual({
      temperature: 0,
      topK: 0,
      topP: 1,
      minP: 0,
      repetitionPenalty: 1,
      presencePenalty: 0,
      frequencyPenalty: 0,
      seed: 0,
    });
  });

  const bad: [keyof SamplingParams, unknown[]][] = [
    ['temperature', [-0.1, Number.NaN, INF, '1']],
    ['topK', [-1, 1.5, Number.NaN, INF]],
    ['topP', [0, -0.5, 1.01, Number.NaN]],
    ['minP', [-0.01, 1.5, Number.NaN]],
    ['repetitionPenalty', [0, -1, INF, Number.NaN]],
    ['presencePenalty', [Number.NaN, INF, -INF, null]],
    ['frequencyPenalty', [Number.NaN, INF, 1n]],
    ['seed', [-1, 2 ** 32, 0.5, Number.NaN]],
  ];
  for (const [key, values] of bad) {
    it(`names sampling.${key} for out-of-range or non-number values`, () => {
      for (const value of values)
        expectInvalid(() => checkSamplingParams({ [key]: value }), `sampling.${key}`);
      expectInvalid(
        () => checkSamplingParams({ [key]: values[0] }, 'request.sampling'),
        `request.sampling.${key}`,
      );
    });
  }

  it('names the object itself, or a field whose getter throws', () => {
    for (const value of [null, 3, 'greedy']) expectInvalid(() => checkSamplingParams(value), 'sampling');
    const hostile = Object.defineProperty({}, 'topK', {
      get() {
        throw new Error('no');
      },
    });
    expectInvalid(() => checkSamplingParams(hostile), 'sampling.topK');
  });

  it('the pipeline functions check their parameters too', () => {
    const logits = logitsOf(1, 2);
    const broken = { ...DEFAULT_SAMPLING, topP: 2 };
    expectInvalid(() => samplingDistribution(logits, broken, NONE), 'sampling.topP');
    expectInvalid(() => sampleToken(logits, broken, NONE, 0), 'sampling.topP');
  });

  it('names logits, seen, counter and n', () => {
    const p = params({ temperature: 1 });
    expectInvalid(() => sampleToken(new Float64Array(0), p, NONE, 0), 'logits');
    expectInvalid(() => sampleToken([1, 2] as unknown as Float64Array, p, NONE, 0), 'logits');
    expectInvalid(
      () => samplingDistribution(Float32Array.of(1) as unknown as Float64Array, p, NONE),
      'logits',
    );
    expectInvalid(() => topLogprobs(new Float64Array(0), 1), 'logits');
    const logits = logitsOf(1, 2, 3);
    expectInvalid(() => samplingDistribution(logits, p, new Map([[3, 1]])), 'seen');
    expectInvalid(() => samplingDistribution(logits, p, new Map([[-1, 1]])), 'seen');
    expectInvalid(() => samplingDistribution(logits, p, new Map([[0.5, 1]])), 'seen');
    expectInvalid(() => samplingDistribution(logits, p, new Map([[0, -1]])), 'seen');
    expectInvalid(() => samplingDistribution(logits, p, new Map([[0, 1.5]])), 'seen');
    expectInvalid(() => samplingDistribution(logits, p, Int32Array.of(1, 2)), 'seen');
    expectInvalid(() => samplingDistribution(logits, p, Int32Array.of(0, -2, 0)), 'seen[1]');
    expectInvalid(() => samplingDistribution(logits, p, { 0: 1 } as unknown as Map<number, number>), 'seen');
    for (const counter of [-1, 1.5, Number.NaN])
      expectInvalid(() => sampleToken(logits, p, NONE, counter), 'counter');
    for (const n of [-1, 2.5, Number.NaN]) expectInvalid(() => topLogprobs(logits, n), 'n');
  });
});
