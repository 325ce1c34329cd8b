import { describe, expect, it } from 'vitest';
import { FastAttentionError } from '../src/errors.js';
import {
  applyRope,
  checkRopeSpec,
  ROPE_KINDS,
  type RopeKind,
  type RopeScaling,
  type RopeSpec,
  ropeFrequencies,
} from '../src/exec/rope.js';
// kit.js rather than helpers.js: the package index is not needed here
import { randomSeed, randomValues, rng } from '../src/testing/kit.js';

// ---- expectations, written out element by element from the formulas (not from rope.ts) ----

/** 1 / theta^(2i/d): the plain RoPE frequency of pair i. */
function plain(theta: number, d: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < d / 2; i++) out.push(1 / theta ** ((2 * i) / d));
  return out;
}

/** Dynamic NTK: a larger base once the sequence outgrows the trained length. */
function dynamic(theta: number, d: number, factor: number, trained: number, seqLen: number): number[] {
  let base = theta;
  if (seqLen > trained) base = theta * ((factor * seqLen) / trained - factor + 1) ** (d / (d - 2));
  return plain(base, d);
}

/** Llama 3.1 through wavelengths, as Meta's and transformers' code state it. */
function llama3(theta: number, d: number, s: Extract<RopeScaling, { kind: 'llama3' }>): number[] {
  const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
  return plain(theta, d).map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f;
    if (wavelen > lowFreqWavelen) return f / s.factor;
    const smooth =
      (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return ((1 - smooth) * f) / s.factor + smooth * f;
  });
}

/** YaRN with the correction range and ramp of the paper, in transformers' clamping. */
function yarn(theta: number, d: number, s: Extract<RopeScaling, { kind: 'yarn' }>): number[] {
  const correctionDim = (rotations: number): number =>
    (d * Math.log(s.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  let low = Math.floor(correctionDim(s.betaFast ?? 32));
  let high = Math.ceil(correctionDim(s.betaSlow ?? 1));
  if (low < 0) low = 0;
  if (high > d - 1) high = d - 1;
  if (high === low) high += 0.001;
  return plain(theta, d).map((f, i) => {
    let ramp = (i - low) / (high - low);
    if (ramp < 0) ramp = 0;
    if (ramp > 1) ramp = 1;
    const extrapolationFactor = 1 - ramp;
    return (f / s.factor) * (1 - extrapolationFactor) + f * extrapolationFactor;
  });
}

function yarnScale(s: Extract<RopeScaling, { kind: 'yarn' }>): number {
  const getMscale = (scale: number, m: number): number => {
    if (scale <= 1) return 1;
    return 0.1 * m * Math.log(scale) + 1;
  };
  if (s.attentionFactor !== undefined) return s.attentionFactor;
  if (s.mscale !== undefined && s.mscaleAllDim !== undefined) {
    return getMscale(s.factor, s.mscale) / getMscale(s.factor, s.mscaleAllDim);
  }
  return 0.1 * Math.log(s.factor) + 1;
}

function expected(spec: RopeSpec, seqLen: number | undefined): { invFreq: number[]; scale: number } {
  const { theta, rotaryDim: d, scaling: s } = spec;
  switch (s.kind) {
    case 'default':
      return { invFreq: plain(theta, d), scale: 1 };
    case 'linear':
      return { invFreq: plain(theta, d).map((f) => f / s.factor), scale: 1 };
    case 'dynamic':
      return { invFreq: dynamic(theta, d, s.factor, s.originalMaxPositions, seqLen ?? 0), scale: 1 };
    case 'llama3':
      return { invFreq: llama3(theta, d, s), scale: 1 };
    case 'yarn':
      return { invFreq: yarn(theta, d, s), scale: yarnScale(s) };
    case 'factors':
      return { invFreq: plain(theta, d).map((f, i) => f / s.factors[i]!), scale: 1 };
  }
}

// ---- random specs and data ----

const between = (rand: () => number, lo: number, hi: number): number => lo + (hi - lo) * rand();
const intBetween = (rand: () => number, lo: number, hi: number): number =>
  lo + Math.floor(rand() * (hi - lo + 1));

function randomScaling(rand: () => number, kind: RopeKind, rotaryDim: number): RopeScaling {
  const factor = between(rand, 1.5, 40);
  const originalMaxPositions = intBetween(rand, 256, 131072);
  switch (kind) {
    case 'default':
      return { kind };
    case 'linear':
      return { kind, factor };
    case 'dynamic':
      return { kind, factor, originalMaxPositions };
    case 'llama3': {
      const lowFreqFactor = between(rand, 0.5, 2);
      return {
        kind,
        factor,
        originalMaxPositions,
        lowFreqFactor,
        highFreqFactor: lowFreqFactor + between(rand, 0.5, 6),
      };
    }
    case 'yarn': {
      const extra = [
        {},
        { betaFast: between(rand, 8, 64), betaSlow: between(rand, 0.25, 4) },
        { mscale: between(rand, 0.5, 1.5), mscaleAllDim: between(rand, 0.5, 1.5) },
        { attentionFactor: between(rand, 0.5, 2) },
      ][intBetween(rand, 0, 3)];
      return { kind, factor, originalMaxPositions, ...extra };
    }
    case 'factors':
      return { kind, factors: Array.from({ length: rotaryDim / 2 }, () => between(rand, 1, 10)) };
  }
}

const randomSpec = (rand: () => number, kind: RopeKind, rotaryDim: number): RopeSpec => ({
  theta: 10 ** between(rand, 3, 7),
  rotaryDim,
  scaling: randomScaling(rand, kind, rotaryDim),
});

/** Roughly normal values, never all zero. */
const randomArray = (rand: () => number, n: number): Float64Array => Float64Array.from(randomValues(rand, n));

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, relTol: number, where: string): void {
  expect(got.length, where).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!) / Math.abs(want[i]!);
    if (!(err <= relTol)) expect.fail(`${where}: [${i}] ${got[i]} vs ${want[i]} (relative ${err})`);
  }
}

// ---- frequencies ----

describe('ropeFrequencies', () => {
  for (const kind of ROPE_KINDS) {
    it(`${kind}: matches the element-by-element formula on random specs`, () => {
      const seed = randomSeed();
      const rand = rng(seed);
      for (let c = 0; c < 40; c++) {
        const spec = randomSpec(rand, kind, 2 * intBetween(rand, 2, 80));
        const seqLen = intBetween(rand, 1, 4 * 131072);
        const got = ropeFrequencies(spec, seqLen);
        const want = expected(spec, seqLen);
        const where = `seed ${seed} case ${c} ${JSON.stringify(spec)} seqLen ${seqLen}`;
        expectClose(got.invFreq, want.invFreq, 1e-14, where);
        expect(got.attentionScaling, where).toBeCloseTo(want.scale, 15);
      }
    });
  }

  it('default: pair 0 turns once per position, the last pair at theta^(-(d-2)/d)', () => {
    const { invFreq, attentionScaling } = ropeFrequencies({
      theta: 10000,
      rotaryDim: 128,
      scaling: { kind: 'default' },
    });
    expect(invFreq.length).toBe(64);
    expect(invFreq[0]).toBe(1);
    expect(invFreq[63]! * 10000 ** (126 / 128)).toBeCloseTo(1, 15);
    expect(attentionScaling).toBe(1);
  });

  it('linear: position p under factor s turns like position p / s unscaled', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    const theta = 10 ** between(rand, 3, 7);
    const factor = between(rand, 1.5, 16);
    const base = ropeFrequencies({ theta, rotaryDim: 96, scaling: { kind: 'default' } }).invFreq;
    const scaled = ropeFrequencies({ theta, rotaryDim: 96, scaling: { kind: 'linear', factor } }).invFreq;
    const p = intBetween(rand, 1, 1 << 20);
    expectClose(
      scaled.map((f) => f * p),
      base.map((f) => (f * p) / factor),
      1e-15,
      `seed ${seed}`,
    );
  });

  it('linear and llama3 with factor 1, and yarn with factor 1, are plain RoPE', () => {
    const plainSpec = { theta: 500000, rotaryDim: 128, scaling: { kind: 'default' } } as const;
    const base = ropeFrequencies(plainSpec).invFreq;
    const linear = ropeFrequencies({ ...plainSpec, scaling: { kind: 'linear', factor: 1 } });
    expect(linear.invFreq).toEqual(base);
    const l3 = ropeFrequencies({
      ...plainSpec,
      scaling: { kind: 'llama3', factor: 1, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    });
    expectClose(l3.invFreq, base, 1e-15, 'llama3 factor 1');
    const y = ropeFrequencies({
      ...plainSpec,
      scaling: { kind: 'yarn', factor: 1, originalMaxPositions: 8192 },
    });
    expectClose(y.invFreq, base, 1e-15, 'yarn factor 1');
    expect(y.attentionScaling).toBe(1);
  });

  it('dynamic: plain RoPE up to the trained length, then pair 0 fixed and the last pair slowed by the stretch', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    const theta = 10 ** between(rand, 3, 7);
    const factor = between(rand, 1.5, 8);
    const trained = intBetween(rand, 512, 32768);
    const d = 2 * intBetween(rand, 2, 64);
    const spec: RopeSpec = {
      theta,
      rotaryDim: d,
      scaling: { kind: 'dynamic', factor, originalMaxPositions: trained },
    };
    const base = ropeFrequencies({ theta, rotaryDim: d, scaling: { kind: 'default' } }).invFreq;
    for (const seqLen of [undefined, 1, intBetween(rand, 2, trained - 2), trained - 1, trained]) {
      expect(ropeFrequencies(spec, seqLen).invFreq, `seed ${seed} seqLen ${seqLen}`).toEqual(base);
    }
    const seqLen = trained + intBetween(rand, 1, 8 * trained);
    const stretched = ropeFrequencies(spec, seqLen).invFreq;
    const stretch = (factor * seqLen) / trained - (factor - 1);
    expect(stretched[0]).toBe(1);
    expect(stretched[d / 2 - 1]! * stretch, `seed ${seed}`).toBeCloseTo(base[d / 2 - 1]!, 14);
    for (let i = 1; i < d / 2; i++) expect(stretched[i]!, `seed ${seed} pair ${i}`).toBeLessThan(base[i]!);
  });

  it('llama3 (Llama 3.1 8B): 29 pairs kept, 6 blended, 29 divided by 8', () => {
    const spec: RopeSpec = {
      theta: 500000,
      rotaryDim: 128,
      scaling: { kind: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    };
    const base = ropeFrequencies({ ...spec, scaling: { kind: 'default' } }).invFreq;
    const got = ropeFrequencies(spec);
    expect(got.attentionScaling).toBe(1);
    const ratio = [...got.invFreq].map((f, i) => f / base[i]!);
    // pair i turns 8192 * 500000^(-i/64) / 2π times: above 4 for i <= 28, below 1 for i >= 35
    for (let i = 0; i < 29; i++) expect(ratio[i]).toBe(1);
    for (let i = 35; i < 64; i++) expect(ratio[i]).toBeCloseTo(1 / 8, 15);
    for (let i = 29; i < 35; i++) {
      expect(ratio[i]).toBeGreaterThan(1 / 8);
      expect(ratio[i]).toBeLessThan(1);
      expect(ratio[i]).toBeLessThan(ratio[i - 1]!); // the blend falls steadily towards 1/8
    }
  });

  it("factors (a GGUF's rope_freqs) built from llama3's ratios give llama3's frequencies", () => {
    const llama3: RopeSpec = {
      theta: 500000,
      rotaryDim: 128,
      scaling: { kind: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    };
    const base = ropeFrequencies({ ...llama3, scaling: { kind: 'default' } }).invFreq;
    const want = ropeFrequencies(llama3).invFreq;
    const factors = [...want].map((f, i) => base[i]! / f);
    const got = ropeFrequencies({ ...llama3, scaling: { kind: 'factors', factors } });
    expectClose(got.invFreq, want, 1e-15, 'llama3 as factors');
    expect(got.attentionScaling).toBe(1);
  });

  it('llama3: a pair exactly on a band edge gets the same value from both sides', () => {
    // theta chosen so that pair 8 turns exactly lowFreqFactor times over the original context
    const d = 32;
    const L = 4096;
    const lowFreqFactor = 2;
    const theta = (L / (2 * Math.PI * lowFreqFactor)) ** 2; // pair 8 turns L theta^(-1/2) / 2π times
    const spec: RopeSpec = {
      theta,
      rotaryDim: d,
      scaling: { kind: 'llama3', factor: 4, lowFreqFactor, highFreqFactor: 6, originalMaxPositions: L },
    };
    const base = plain(theta, d);
    const got = ropeFrequencies(spec).invFreq;
    expect(got[8]! / base[8]!).toBeCloseTo(1 / 4, 12);
  });

  it('yarn: pairs turning more than betaFast times keep their frequency, fewer than betaSlow are divided by factor', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let c = 0; c < 40; c++) {
      const spec = randomSpec(rand, 'yarn', 2 * intBetween(rand, 8, 80));
      const s = spec.scaling as Extract<RopeScaling, { kind: 'yarn' }>;
      // exactly the default frequencies where yarn keeps them
      const base = ropeFrequencies({ ...spec, scaling: { kind: 'default' } }).invFreq;
      const got = ropeFrequencies(spec).invFreq;
      const where = `seed ${seed} case ${c} ${JSON.stringify(spec)}`;
      let high = 0;
      let low = 0;
      base.forEach((f, i) => {
        const turns = (s.originalMaxPositions * f) / (2 * Math.PI);
        if (turns > (s.betaFast ?? 32)) {
          high++;
          expect(got[i], where).toBe(f);
        } else if (turns < (s.betaSlow ?? 1)) {
          low++;
          expect(got[i]! / (f / s.factor), where).toBeCloseTo(1, 14);
        } else {
          expect(got[i]!, where).toBeLessThanOrEqual(f);
          expect(got[i]!, where).toBeGreaterThanOrEqual((f / s.factor) * (1 - 1e-15));
        }
      });
      expect(high + low, where).toBeGreaterThan(0);
    }
  });

  it('yarn (Qwen2.5, factor 4 over 32768): pairs 0-23 kept, 40-63 divided by 4, a linear ramp between', () => {
    const spec: RopeSpec = {
      theta: 1e6,
      rotaryDim: 128,
      scaling: { kind: 'yarn', factor: 4, originalMaxPositions: 32768 },
    };
    const base = ropeFrequencies({ ...spec, scaling: { kind: 'default' } }).invFreq;
    const got = ropeFrequencies(spec);
    // pair 23.6 turns 32 times over 32768 positions, pair 39.6 once: the band is [23, 40]
    for (let i = 0; i <= 23; i++) expect(got.invFreq[i]).toBe(base[i]);
    for (let i = 40; i < 64; i++) expect(got.invFreq[i]! / base[i]!).toBeCloseTo(1 / 4, 15);
    for (let i = 24; i < 40; i++) {
      const ramp = (i - 23) / 17;
      expect(got.invFreq[i]! / base[i]!).toBeCloseTo(1 - ramp + ramp / 4, 14);
    }
    expect(got.attentionScaling).toBeCloseTo(1 + 0.1 * Math.log(4), 15);
  });

  it('yarn: degenerate correction ranges are clamped on one side each, as transformers does', () => {
    const at = (originalMaxPositions: number): RopeSpec => ({
      theta: 10,
      rotaryDim: 16,
      scaling: { kind: 'yarn', factor: 2, originalMaxPositions },
    });
    // L = 5: even pair 0 turns less than once, the range collapses to [0, 0] and becomes a step at pair 0
    const short = ropeFrequencies(at(5)).invFreq;
    expectClose(short, yarn(10, 16, at(5).scaling as Extract<RopeScaling, { kind: 'yarn' }>), 1e-15, 'L 5');
    expect(short[0]).toBe(1);
    expect(short[1]! / plain(10, 16)[1]!).toBeCloseTo(1 / 2, 15);
    // L = 100000: every pair turns more than 32 times, yet low (21) lands past high (clamped to 15)
    // and the reversed ramp interpolates every pair: not the paper's intent, but what checkpoints run
    const long = ropeFrequencies(at(100000)).invFreq;
    const yarnLong = at(100000).scaling as Extract<RopeScaling, { kind: 'yarn' }>;
    expectClose(long, yarn(10, 16, yarnLong), 1e-15, 'L 1e5');
    expectClose(
      long,
      plain(10, 16).map((f) => f / 2),
      1e-15,
      'L 1e5: all interpolated',
    );
  });

  it('yarn attention scaling: the override, the mscale ratio (DeepSeek-V3: 1), and 0.1 ln(factor) + 1', () => {
    const yarnSpec = (extra: object): RopeSpec => ({
      theta: 10000,
      rotaryDim: 64,
      scaling: { kind: 'yarn', factor: 40, originalMaxPositions: 4096, ...extra },
    });
    expect(
      ropeFrequencies(yarnSpec({ attentionFactor: 0.75, mscale: 1, mscaleAllDim: 0.5 })).attentionScaling,
    ).toBe(0.75);
    expect(ropeFrequencies(yarnSpec({ mscale: 1, mscaleAllDim: 1 })).attentionScaling).toBe(1);
    const ln40 = Math.log(40);
    expect(ropeFrequencies(yarnSpec({ mscale: 0.75, mscaleAllDim: 1 })).attentionScaling).toBeCloseTo(
      (0.075 * ln40 + 1) / (0.1 * ln40 + 1),
      15,
    );
    // mscale alone is ignored, as in transformers
    expect(ropeFrequencies(yarnSpec({ mscale: 0.75 })).attentionScaling).toBeCloseTo(0.1 * ln40 + 1, 15);
    expect(ropeFrequencies(yarnSpec({})).attentionScaling).toBeCloseTo(1.3688879454113936, 15);
  });

  it('returns fresh arrays', () => {
    const spec: RopeSpec = { theta: 10000, rotaryDim: 8, scaling: { kind: 'default' } };
    const a = ropeFrequencies(spec).invFreq;
    a[0] = 42;
    expect(ropeFrequencies(spec).invFreq[0]).toBe(1);
  });
});

// ---- rotation ----

/** Multiplies x[i] + j x[i + half] by scale * e^(j angle) as complex numbers: [re, im]. */
function rotatePair(re: number, im: number, angle: number, scale: number): [number, number] {
  const wRe = scale * Math.cos(angle);
  const wIm = scale * Math.sin(angle);
  return [re * wRe - im * wIm, re * wIm + im * wRe];
}

describe('applyRope', () => {
  const tokens = 3;
  const heads = 5;
  const headDim = 80;
  const rotaryDim = 64;

  for (const kind of ROPE_KINDS) {
    it(`${kind}: rotates each pair as a complex number and leaves the dims past rotaryDim alone`, () => {
      const seed = randomSeed();
      const rand = rng(seed);
      for (let c = 0; c < 10; c++) {
        const spec = randomSpec(rand, kind, rotaryDim);
        const positions = Int32Array.from({ length: tokens }, () => intBetween(rand, 0, 300000));
        positions[intBetween(rand, 0, tokens - 1)] = 0;
        const x = randomArray(rand, tokens * heads * headDim);
        const got = x.slice();
        applyRope(got, tokens, heads, headDim, positions, spec);
        // with no seqLen, dynamic sees the largest position + 1
        const { invFreq, attentionScaling } = ropeFrequencies(spec, Math.max(...positions) + 1);
        const where = `seed ${seed} case ${c} ${JSON.stringify(spec)} positions ${positions}`;
        for (let t = 0; t < tokens; t++) {
          for (let h = 0; h < heads; h++) {
            const row = (t * heads + h) * headDim;
            for (let i = 0; i < rotaryDim / 2; i++) {
              const angle = positions[t]! * invFreq[i]!;
              const [re, im] = rotatePair(x[row + i]!, x[row + i + 32]!, angle, attentionScaling);
              expect(Math.abs(got[row + i]! - re), where).toBeLessThan(1e-12);
              expect(Math.abs(got[row + i + 32]! - im), where).toBeLessThan(1e-12);
            }
            for (let i = rotaryDim; i < headDim; i++) expect(got[row + i], where).toBe(x[row + i]);
          }
        }
      }
    });
  }

  it('scales the norm of every pair by attentionScaling', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (const kind of ROPE_KINDS) {
      const spec = randomSpec(rand, kind, rotaryDim);
      const positions = Int32Array.from({ length: tokens }, () => intBetween(rand, 0, 1 << 20));
      const x = randomArray(rand, tokens * heads * headDim);
      const got = x.slice();
      applyRope(got, tokens, heads, headDim, positions, spec);
      const { attentionScaling } = ropeFrequencies(spec, Math.max(...positions) + 1);
      const where = `seed ${seed} ${JSON.stringify(spec)}`;
      for (let row = 0; row < tokens * heads * headDim; row += headDim) {
        for (let i = 0; i < rotaryDim / 2; i++) {
          const before = Math.hypot(x[row + i]!, x[row + i + 32]!);
          const after = Math.hypot(got[row + i]!, got[row + i + 32]!);
          expect(Math.abs(after - attentionScaling * before) / before, where).toBeLessThan(1e-14);
        }
      }
    }
  });

  it('position 0 is the identity (times attentionScaling for yarn)', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (const kind of ROPE_KINDS) {
      const spec = randomSpec(rand, kind, rotaryDim);
      const x = randomArray(rand, tokens * heads * headDim);
      const got = x.slice();
      applyRope(got, tokens, heads, headDim, new Int32Array(tokens), spec);
      const { attentionScaling } = ropeFrequencies(spec);
      if (kind !== 'yarn') expect(attentionScaling).toBe(1);
      const want = x.map((v, i) => (i % headDim < rotaryDim ? v * attentionScaling : v));
      expect(got, `seed ${seed} ${JSON.stringify(spec)}`).toEqual(want);
    }
  });

  it('q.k after rotation depends only on the distance between the positions', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (const kind of ROPE_KINDS) {
      const spec = randomSpec(rand, kind, rotaryDim);
      const q = randomArray(rand, headDim);
      const k = randomArray(rand, headDim);
      const m = intBetween(rand, 0, 5000);
      const n = intBetween(rand, 0, 5000);
      const shift = intBetween(rand, 1, 5000);
      const seqLen = 20000; // fixed, so that dynamic uses one set of frequencies throughout
      const dot = (pm: number, pn: number): number => {
        const qk = Float64Array.from([...q, ...k]);
        applyRope(qk, 2, 1, headDim, Int32Array.of(pm, pn), spec, seqLen);
        let sum = 0;
        for (let i = 0; i < headDim; i++) sum += qk[i]! * qk[headDim + i]!;
        return sum;
      };
      const where = `seed ${seed} ${JSON.stringify(spec)} m ${m} n ${n} shift ${shift}`;
      expect(Math.abs(dot(m + shift, n + shift) - dot(m, n)), where).toBeLessThan(1e-9);
    }
  });

  it('dynamic: an explicit seqLen picks the frequencies, the default is the largest position + 1', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    const spec: RopeSpec = {
      theta: 10000,
      rotaryDim,
      scaling: { kind: 'dynamic', factor: between(rand, 2, 8), originalMaxPositions: 2048 },
    };
    const positions = Int32Array.of(5, 4000, 17);
    const x = randomArray(rand, tokens * heads * headDim);
    const run = (seqLen?: number): Float64Array => {
      const y = x.slice();
      applyRope(y, tokens, heads, headDim, positions, spec, seqLen);
      return y;
    };
    expect(run(), `seed ${seed}`).toEqual(run(4001));
    expect(run(8000), `seed ${seed}`).not.toEqual(run(4001));
    // at or below the trained length: plain RoPE
    const plainRun = x.slice();
    applyRope(plainRun, tokens, heads, headDim, positions, { ...spec, scaling: { kind: 'default' } });
    expect(run(2048), `seed ${seed}`).toEqual(plainRun);
  });

  it('accepts no tokens', () => {
    const spec: RopeSpec = {
      theta: 10000,
      rotaryDim: 8,
      scaling: { kind: 'dynamic', factor: 2, originalMaxPositions: 16 },
    };
    expect(() => applyRope(new Float64Array(0), 0, 4, 8, new Int32Array(0), spec)).not.toThrow();
  });
});

// ---- validation ----

const goodScaling: Record<RopeKind, Record<string, unknown>> = {
  default: { kind: 'default' },
  linear: { kind: 'linear', factor: 4 },
  dynamic: { kind: 'dynamic', factor: 2, originalMaxPositions: 4096 },
  llama3: { kind: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
  yarn: {
    kind: 'yarn',
    factor: 40,
    originalMaxPositions: 4096,
    betaFast: 32,
    betaSlow: 1,
    attentionFactor: 1.2,
    mscale: 1,
    mscaleAllDim: 1,
  },
  factors: { kind: 'factors', factors: Array.from({ length: 32 }, (_, i) => 1 + i / 4) },
};

const good = (kind: RopeKind): Record<string, unknown> => ({
  theta: 10000,
  rotaryDim: 64,
  scaling: { ...goodScaling[kind] },
});

type Mutation = [
  name: string,
  kind: RopeKind,
  change: (spec: Record<string, unknown>) => void,
  field: string,
];

const scalingOf = (spec: Record<string, unknown>): Record<string, unknown> =>
  spec.scaling as Record<string, unknown>;

const bad: Mutation[] = [
  ['NaN theta', 'default', (s) => (s.theta = Number.NaN), 'rope.theta'],
  ['infinite theta', 'default', (s) => (s.theta = Number.POSITIVE_INFINITY), 'rope.theta'],
  ['zero theta', 'default', (s) => (s.theta = 0), 'rope.theta'],
  ['negative theta', 'default', (s) => (s.theta = -10000), 'rope.theta'],
  ['theta 1 (no progression)', 'yarn', (s) => (s.theta = 1), 'rope.theta'],
  ['string theta', 'default', (s) => (s.theta = '10000'), 'rope.theta'],
  ['missing theta', 'default', (s) => delete s.theta, 'rope.theta'],
  ['odd rotaryDim', 'default', (s) => (s.rotaryDim = 63), 'rope.rotaryDim'],
  ['zero rotaryDim', 'default', (s) => (s.rotaryDim = 0), 'rope.rotaryDim'],
  ['fractional rotaryDim', 'default', (s) => (s.rotaryDim = 32.5), 'rope.rotaryDim'],
  ['rotaryDim 2 under dynamic', 'dynamic', (s) => (s.rotaryDim = 2), 'rope.rotaryDim'],
  ['missing scaling', 'default', (s) => delete s.scaling, 'rope.scaling'],
  ['scaling as a string', 'default', (s) => (s.scaling = 'llama3'), 'rope.scaling'],
  ['unknown kind', 'default', (s) => (scalingOf(s).kind = 'longrope'), 'rope.scaling.kind'],
  ['factors of the wrong count', 'factors', (s) => (scalingOf(s).factors = [1, 2]), 'rope.scaling.factors'],
  ['a zero factor', 'factors', (s) => ((scalingOf(s).factors as number[])[3] = 0), 'rope.scaling.factors[3]'],
  [
    'a NaN factor',
    'factors',
    (s) => ((scalingOf(s).factors as number[])[0] = Number.NaN),
    'rope.scaling.factors[0]',
  ],
  ['factors as a string', 'factors', (s) => (scalingOf(s).factors = '1,2'), 'rope.scaling.factors'],
  ['missing kind', 'default', (s) => delete scalingOf(s).kind, 'rope.scaling.kind'],
  ['linear factor below 1', 'linear', (s) => (scalingOf(s).factor = 0.5), 'rope.scaling.factor'],
  ['linear factor NaN', 'linear', (s) => (scalingOf(s).factor = Number.NaN), 'rope.scaling.factor'],
  ['dynamic factor missing', 'dynamic', (s) => delete scalingOf(s).factor, 'rope.scaling.factor'],
  ['llama3 infinite factor', 'llama3', (s) => (scalingOf(s).factor = Infinity), 'rope.scaling.factor'],
  ['yarn factor below 1', 'yarn', (s) => (scalingOf(s).factor = 0.9), 'rope.scaling.factor'],
  [
    'dynamic zero originalMaxPositions',
    'dynamic',
    (s) => (scalingOf(s).originalMaxPositions = 0),
    'rope.scaling.originalMaxPositions',
  ],
  [
    'llama3 fractional originalMaxPositions',
    'llama3',
    (s) => (scalingOf(s).originalMaxPositions = 8191.5),
    'rope.scaling.originalMaxPositions',
  ],
  [
    'yarn missing originalMaxPositions',
    'yarn',
    (s) => delete scalingOf(s).originalMaxPositions,
    'rope.scaling.originalMaxPositions',
  ],
  [
    'llama3 zero lowFreqFactor',
    'llama3',
    (s) => (scalingOf(s).lowFreqFactor = 0),
    'rope.scaling.lowFreqFactor',
  ],
  [
    'llama3 missing highFreqFactor',
    'llama3',
    (s) => delete scalingOf(s).highFreqFactor,
    'rope.scaling.highFreqFactor',
  ],
  [
    'llama3 lowFreqFactor above highFreqFactor',
    'llama3',
    (s) => Object.assign(scalingOf(s), { lowFreqFactor: 4, highFreqFactor: 1 }),
    'rope.scaling.lowFreqFactor',
  ],
  [
    'llama3 lowFreqFactor equal to highFreqFactor',
    'llama3',
    (s) => Object.assign(scalingOf(s), { lowFreqFactor: 2, highFreqFactor: 2 }),
    'rope.scaling.lowFreqFactor',
  ],
  ['yarn zero betaFast', 'yarn', (s) => (scalingOf(s).betaFast = 0), 'rope.scaling.betaFast'],
  ['yarn negative betaSlow', 'yarn', (s) => (scalingOf(s).betaSlow = -1), 'rope.scaling.betaSlow'],
  [
    'yarn betaFast below betaSlow',
    'yarn',
    (s) => Object.assign(scalingOf(s), { betaFast: 1, betaSlow: 2 }),
    'rope.scaling.betaFast',
  ],
  [
    'yarn betaFast below the default betaSlow',
    'yarn',
    (s) => Object.assign(scalingOf(s), { betaFast: 0.5, betaSlow: undefined }),
    'rope.scaling.betaFast',
  ],
  [
    'yarn NaN attentionFactor',
    'yarn',
    (s) => (scalingOf(s).attentionFactor = Number.NaN),
    'rope.scaling.attentionFactor',
  ],
  ['yarn zero mscale', 'yarn', (s) => (scalingOf(s).mscale = 0), 'rope.scaling.mscale'],
  ['yarn string mscaleAllDim', 'yarn', (s) => (scalingOf(s).mscaleAllDim = '1'), 'rope.scaling.mscaleAllDim'],
  ['yarn null mscaleAllDim', 'yarn', (s) => (scalingOf(s).mscaleAllDim = null), 'rope.scaling.mscaleAllDim'],
  [
    'a throwing getter',
    'default',
    (s) =>
      Object.defineProperty(s, 'theta', {
        get() {
          throw new Error('boom');
        },
      }),
    'rope.theta',
  ],
];

describe('checkRopeSpec', () => {
  for (const kind of ROPE_KINDS) {
    it(`accepts a good ${kind} spec and returns a plain copy of it`, () => {
      const spec = good(kind);
      const checked = checkRopeSpec({ ...spec, extra: 1 }, 128);
      expect(checked).toEqual(spec);
      expect(checked).not.toBe(spec);
      expect(checked.scaling).not.toBe(spec.scaling);
    });
  }

  it('leaves out the optional yarn fields that were not given, and reads each field once', () => {
    const reads = new Map<string, number>();
    const counted = (values: Record<string, unknown>): object =>
      new Proxy(values, {
        get(target, key) {
          reads.set(String(key), (reads.get(String(key)) ?? 0) + 1);
          return target[key as string];
        },
      });
    const checked = checkRopeSpec(
      counted({
        theta: 10000,
        rotaryDim: 64,
        scaling: counted({ kind: 'yarn', factor: 4, originalMaxPositions: 4096, mscale: 1 }),
      }),
      64,
    );
    expect(checked.scaling).toEqual({ kind: 'yarn', factor: 4, originalMaxPositions: 4096, mscale: 1 });
    expect(Object.keys(checked.scaling)).not.toContain('betaFast');
    for (const [key, count] of reads) expect(count, key).toBe(1);
  });

  for (const [name, kind, change, field] of bad) {
    it(`rejects ${name}, naming '${field}'`, () => {
      const spec = good(kind);
      change(spec);
      const run = () => checkRopeSpec(spec, 128);
      expect(run).toThrow(FastAttentionError);
      expect(run).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', field }));
      expect(run).toThrow(field);
      // ropeFrequencies and applyRope check the same way
      expect(() => ropeFrequencies(spec as unknown as RopeSpec)).toThrow(expect.objectContaining({ field }));
      const x = randomArray(rng(randomSeed()), 2 * 128);
      expect(() => applyRope(x, 2, 1, 128, Int32Array.of(0, 1), spec as unknown as RopeSpec)).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT', field }),
      );
    });
  }

  it('names fields under the given prefix', () => {
    const spec = good('llama3');
    scalingOf(spec).highFreqFactor = -1;
    expect(() => checkRopeSpec(spec, 128, 'layers[3].rope')).toThrow(
      expect.objectContaining({ field: 'layers[3].rope.scaling.highFreqFactor' }),
    );
    expect(() => checkRopeSpec(null, 128, 'layers[3].rope')).toThrow(
      expect.objectContaining({ field: 'layers[3].rope' }),
    );
  });

  it('rejects a rotaryDim above the head dim, and a bad headDim', () => {
    expect(() => checkRopeSpec(good('default'), 48)).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'rope.rotaryDim' }),
    );
    for (const headDim of [0, -64, 63.5, Number.NaN]) {
      expect(() => checkRopeSpec(good('default'), headDim)).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT', field: 'headDim' }),
      );
    }
  });
});

describe('applyRope arguments', () => {
  const spec = good('dynamic') as unknown as RopeSpec;
  const x = (): Float64Array => randomArray(rng(randomSeed()), 3 * 2 * 64);
  const cases: [name: string, run: () => void, field: string][] = [
    [
      'x as a Float32Array',
      () => applyRope(new Float32Array(384) as never, 3, 2, 64, new Int32Array(3), spec),
      'x',
    ],
    ['x too short', () => applyRope(x().subarray(1), 3, 2, 64, new Int32Array(3), spec), 'x'],
    [
      'positions as a Float64Array',
      () => applyRope(x(), 3, 2, 64, new Float64Array(3) as never, spec),
      'positions',
    ],
    ['positions too long', () => applyRope(x(), 3, 2, 64, new Int32Array(4), spec), 'positions'],
    ['negative tokens', () => applyRope(x(), -3, 2, 64, new Int32Array(3), spec), 'tokens'],
    ['fractional heads', () => applyRope(x(), 3, 2.5, 64, new Int32Array(3), spec), 'heads'],
    ['zero headDim', () => applyRope(x(), 3, 2, 0, new Int32Array(3), spec), 'headDim'],
    ['headDim below rotaryDim', () => applyRope(x(), 6, 2, 32, new Int32Array(6), spec), 'rope.rotaryDim'],
    ['zero seqLen', () => applyRope(x(), 3, 2, 64, new Int32Array(3), spec, 0), 'seqLen'],
    ['fractional seqLen', () => applyRope(x(), 3, 2, 64, new Int32Array(3), spec, 4096.5), 'seqLen'],
    ['seqLen to ropeFrequencies', () => ropeFrequencies(spec, Number.NaN), 'seqLen'],
  ];
  for (const [name, run, field] of cases) {
    it(`rejects ${name}, naming '${field}'`, () => {
      expect(run).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', field }));
      expect(run).toThrow(field);
    });
  }
});
