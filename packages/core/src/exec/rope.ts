/**
 * Rotary position embeddings (RoPE) in float64: the executable specification RoPE kernels are
 * tested against. Frequencies follow the `rope_type`s of Hugging Face transformers (a config's
 * `rope_scaling`, later `rope_parameters`): default, linear, dynamic, llama3 and yarn, and per-pair
 * factors (a GGUF's `rope_freqs`). The rotation
 * uses the half-split layout of Llama checkpoints in HF format ("rotate_half"): dim i pairs with
 * dim i + rotaryDim/2, and the dims from rotaryDim on pass through untouched.
 */
import { describeValue as describe, FastAttentionError, invalidInput } from '../errors.js';
import { MAX_DIMENSION } from '../validate.js';

/**
 * How a checkpoint stretches RoPE past the context it was trained on (`rope_type` and its
 * parameters). `originalMaxPositions` is `rope_scaling.original_max_position_embeddings` for
 * llama3 and yarn, but `max_position_embeddings` for dynamic (transformers reads that one there).
 */
export type RopeScaling =
  | { readonly kind: 'default' }
  | LinearScaling
  | DynamicScaling
  | Llama3Scaling
  | YarnScaling
  | FactorsScaling;

/** Position interpolation: positions divided by `factor`, i.e. every frequency divided by it. */
export interface LinearScaling {
  readonly kind: 'linear';
  readonly factor: number;
}

/** NTK-aware scaling: once the sequence passes `originalMaxPositions`, the base grows with it. */
export interface DynamicScaling {
  readonly kind: 'dynamic';
  readonly factor: number;
  readonly originalMaxPositions: number;
}

/** Llama 3.1: low frequencies divided by `factor`, high ones kept, a linear blend between. */
export interface Llama3Scaling {
  readonly kind: 'llama3';
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalMaxPositions: number;
}

/** YaRN ("NTK-by-parts" with a ramp over the pairs, plus a cos/sin scale). */
export interface YarnScaling {
  readonly kind: 'yarn';
  readonly factor: number;
  readonly originalMaxPositions: number;
  /** Pairs turning more than this many times over the original context keep their frequency (32). */
  readonly betaFast?: number;
  /** Pairs turning fewer than this many times are fully interpolated (1). */
  readonly betaSlow?: number;
  /** The cos/sin scale, overriding the one derived from `factor` (and `mscale`). */
  readonly attentionFactor?: number;
  /**
   * DeepSeek-style checkpoints: given both, the scale is mscale(factor, mscale) / mscale(factor,
   * mscaleAllDim); one alone is ignored, as in transformers (which also treats 0 as absent: here 0
   * is refused, leave the field out instead).
   */
  readonly mscale?: number;
  readonly mscaleAllDim?: number;
}

/**
 * Each pair's frequency divided by its own factor: llama.cpp's `rope_freqs` tensor, which GGUF
 * files of Llama 3.1 and later carry instead of the llama3 parameters. rotaryDim / 2 factors.
 */
export interface FactorsScaling {
  readonly kind: 'factors';
  readonly factors: readonly number[];
}

export type RopeKind = RopeScaling['kind'];

export const ROPE_KINDS: readonly RopeKind[] = ['default', 'linear', 'dynamic', 'llama3', 'yarn', 'factors'];

export interface RopeSpec {
  /** `rope_theta`: the base of the frequency progression. */
  readonly theta: number;
  /** Dims rotated per head: head_dim, or partial_rotary_factor * head_dim; even. */
  readonly rotaryDim: number;
  readonly scaling: RopeScaling;
}

export interface RopeFrequencies {
  /** Radians per position of pair i, for i < rotaryDim / 2. */
  readonly invFreq: Float64Array;
  /** Multiplies cos and sin (so q.k scales by its square); 1 except for yarn. */
  readonly attentionScaling: number;
}

const YARN_BETA_FAST = 32;
const YARN_BETA_SLOW = 1;

/**
 * The inverse frequencies and the cos/sin scale of a spec. `seqLen`, the current sequence length,
 * matters only to 'dynamic' (left out: no stretch, the frequencies a fresh model starts with).
 */
export function ropeFrequencies(spec: RopeSpec, seqLen?: number): RopeFrequencies {
  const checked = readSpec(spec, 'rope', MAX_DIMENSION);
  return frequenciesOf(checked, seqLen === undefined ? undefined : checkSeqLen(seqLen));
}

/**
 * Rotates x in place: x is [tokens, heads, headDim] row-major, token t at `positions[t]`. Pair
 * (i, i + rotaryDim/2) is the complex number x[i] + j x[i + rotaryDim/2], multiplied by
 * attentionScaling * e^(j * position * invFreq[i]). `seqLen` defaults to the largest position + 1,
 * what transformers' dynamic update computes for one call (it also keeps the largest length seen
 * across calls: pass `seqLen` to model that).
 */
export function applyRope(
  x: Float64Array,
  tokens: number,
  heads: number,
  headDim: number,
  positions: Int32Array,
  spec: RopeSpec,
  seqLen?: number,
): void {
  checkCount(headDim, 'headDim', 1);
  checkCount(tokens, 'tokens', 0);
  checkCount(heads, 'heads', 0);
  const checked = checkRopeSpec(spec, headDim);
  if (!(x instanceof Float64Array)) throw invalidInput('x', `expected a Float64Array, got ${describe(x)}`);
  if (x.length !== tokens * heads * headDim) {
    throw invalidInput('x', `expected ${tokens} * ${heads} * ${headDim} elements, got ${x.length}`);
  }
  if (!(positions instanceof Int32Array)) {
    throw invalidInput('positions', `expected an Int32Array, got ${describe(positions)}`);
  }
  if (positions.length !== tokens) {
    throw invalidInput('positions', `expected ${tokens} elements (one per token), got ${positions.length}`);
  }
  const length = seqLen === undefined ? lengthCovering(positions) : checkSeqLen(seqLen);
  const { invFreq, attentionScaling } = frequenciesOf(checked, length);

  const half = checked.rotaryDim / 2;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let t = 0; t < tokens; t++) {
    const position = positions[t]!;
    for (let i = 0; i < half; i++) {
      const angle = position * invFreq[i]!;
      cos[i] = Math.cos(angle) * attentionScaling;
      sin[i] = Math.sin(angle) * attentionScaling;
    }
    for (let h = 0; h < heads; h++) {
      const row = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const re = x[row + i]!;
        const im = x[row + i + half]!;
        x[row + i] = re * cos[i]! - im * sin[i]!;
        x[row + i + half] = im * cos[i]! + re * sin[i]!;
      }
    }
  }
}

/**
 * Checks a RoPE spec for heads of `headDim` dims and returns a plain snapshot of it (each field
 * read once; unknown fields dropped). Throws INVALID_INPUT naming the field, under `field`.
 */
export function checkRopeSpec(spec: unknown, headDim: number, field = 'rope'): RopeSpec {
  checkCount(headDim, 'headDim', 1);
  return readSpec(spec, field, headDim);
}

function frequenciesOf(spec: RopeSpec, seqLen: number | undefined): RopeFrequencies {
  const { theta, rotaryDim, scaling } = spec;
  switch (scaling.kind) {
    case 'default':
      return { invFreq: plainFrequencies(theta, rotaryDim), attentionScaling: 1 };
    case 'linear':
      return {
        invFreq: plainFrequencies(theta, rotaryDim).map((f) => f / scaling.factor),
        attentionScaling: 1,
      };
    case 'dynamic':
      return {
        invFreq: plainFrequencies(ntkBase(theta, rotaryDim, scaling, seqLen), rotaryDim),
        attentionScaling: 1,
      };
    case 'llama3':
      return { invFreq: llama3Frequencies(theta, rotaryDim, scaling), attentionScaling: 1 };
    case 'yarn':
      return {
        invFreq: yarnFrequencies(theta, rotaryDim, scaling),
        attentionScaling: yarnAttentionScaling(scaling),
      };
    case 'factors':
      return {
        invFreq: plainFrequencies(theta, rotaryDim).map((f, i) => f / scaling.factors[i]!),
        attentionScaling: 1,
      };
  }
}

/** Plain RoPE: pair i turns at base^(-2i / rotaryDim) radians per position. */
function plainFrequencies(base: number, rotaryDim: number): Float64Array {
  return Float64Array.from({ length: rotaryDim / 2 }, (_, i) => base ** (-(2 * i) / rotaryDim));
}

/**
 * Dynamic NTK: past the trained length the base grows so that the lowest frequency (pair
 * rotaryDim/2 - 1) is divided by exactly `stretch` while pair 0 stays at 1: hence the exponent
 * rotaryDim / (rotaryDim - 2). At or below the trained length, stretch is 1 and the base theta.
 */
function ntkBase(theta: number, rotaryDim: number, s: DynamicScaling, seqLen: number | undefined): number {
  if (seqLen === undefined || seqLen <= s.originalMaxPositions) return theta;
  const stretch = (s.factor * seqLen) / s.originalMaxPositions - (s.factor - 1);
  return theta * stretch ** (rotaryDim / (rotaryDim - 2));
}

/**
 * Llama 3.1, by how many turns each pair makes over the original context: fewer than
 * lowFreqFactor, interpolated (divided by factor); more than highFreqFactor, kept; between, a
 * linear blend in the turn count. transformers states the same bands through wavelengths:
 * 2π / f > L / lowFreqFactor exactly when turns < lowFreqFactor. The blend meets both bands.
 */
function llama3Frequencies(theta: number, rotaryDim: number, s: Llama3Scaling): Float64Array {
  return plainFrequencies(theta, rotaryDim).map((f) => {
    const turns = (s.originalMaxPositions * f) / (2 * Math.PI);
    if (turns < s.lowFreqFactor) return f / s.factor;
    if (turns > s.highFreqFactor) return f;
    const kept = (turns - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - kept) * (f / s.factor) + kept * f;
  });
}

/**
 * YaRN's NTK-by-parts: pair i keeps its frequency if it turns more than betaFast times over the
 * original context, is divided by factor if it turns fewer than betaSlow times, and blends
 * linearly in i between. The band edges are the fractional pairs where the turn count equals
 * beta, widened outwards to whole pairs.
 */
function yarnFrequencies(theta: number, rotaryDim: number, s: YarnScaling): Float64Array {
  // turns(i) = L * theta^(-2i / rotaryDim) / 2π equals beta at this i:
  const pairTurning = (beta: number): number =>
    (rotaryDim * Math.log(s.originalMaxPositions / (2 * Math.PI * beta))) / (2 * Math.log(theta));
  // Clamped on these two sides only, as in transformers (and the YaRN code): degenerate contexts
  // (L < 2π betaSlow, or L > 2π betaFast theta^2) behave as they do there.
  const low = Math.max(Math.floor(pairTurning(s.betaFast ?? YARN_BETA_FAST)), 0);
  const high = Math.min(Math.ceil(pairTurning(s.betaSlow ?? YARN_BETA_SLOW)), rotaryDim - 1);
  // transformers widens an empty band to 0.001: a step at `low` (any width in (0, 1] gives the same)
  const width = high === low ? 0.001 : high - low;
  return plainFrequencies(theta, rotaryDim).map((f, i) => {
    const interpolated = Math.min(Math.max((i - low) / width, 0), 1);
    return (f / s.factor) * interpolated + f * (1 - interpolated);
  });
}

/** YaRN's mscale: sqrt(1/t) of the paper, 0.1 ln(factor) + 1, so the logits scale by its square. */
const mscaleOf = (factor: number, mscale = 1): number =>
  factor <= 1 ? 1 : 0.1 * mscale * Math.log(factor) + 1;

function yarnAttentionScaling(s: YarnScaling): number {
  if (s.attentionFactor !== undefined) return s.attentionFactor;
  if (s.mscale !== undefined && s.mscaleAllDim !== undefined) {
    return mscaleOf(s.factor, s.mscale) / mscaleOf(s.factor, s.mscaleAllDim);
  }
  return mscaleOf(s.factor);
}

/** The length 'dynamic' sees when none is given: one past the largest position, at least 1. */
function lengthCovering(positions: Int32Array): number {
  let length = 1;
  for (const p of positions) length = Math.max(length, p + 1);
  return length;
}

// --- validation ---

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const YARN_OPTIONAL = ['betaFast', 'betaSlow', 'attentionFactor', 'mscale', 'mscaleAllDim'] as const;

function readSpec(spec: unknown, field: string, headDim: number): RopeSpec {
  const raw = asObject(spec, field);
  const theta = readNumber(raw, 'theta', field, (v) => v > 1, 'a finite number > 1');
  const rotaryDim = read(raw, 'rotaryDim', field);
  if (typeof rotaryDim !== 'number' || !Number.isInteger(rotaryDim) || rotaryDim < 2 || rotaryDim % 2 !== 0) {
    throw invalidInput(`${field}.rotaryDim`, `expected an even integer >= 2, got ${describe(rotaryDim)}`);
  }
  if (rotaryDim > headDim) {
    throw invalidInput(`${field}.rotaryDim`, `${rotaryDim} is larger than the head dim ${headDim}`);
  }
  const scaling = readScaling(read(raw, 'scaling', field), `${field}.scaling`);
  if (scaling.kind === 'factors' && scaling.factors.length !== rotaryDim / 2) {
    throw invalidInput(
      `${field}.scaling.factors`,
      `expected rotaryDim / 2 = ${rotaryDim / 2} factors, got ${scaling.factors.length}`,
    );
  }
  if (scaling.kind === 'dynamic' && rotaryDim < 4) {
    // its base exponent rotaryDim / (rotaryDim - 2) has no value at 2
    throw invalidInput(`${field}.rotaryDim`, `'dynamic' scaling needs rotaryDim >= 4, got ${rotaryDim}`);
  }
  return { theta, rotaryDim, scaling };
}

function readScaling(scaling: unknown, field: string): RopeScaling {
  const raw = asObject(scaling, field);
  const kind = read(raw, 'kind', field);
  if (!ROPE_KINDS.includes(kind as RopeKind)) {
    throw invalidInput(`${field}.kind`, `expected one of ${ROPE_KINDS.join(', ')}, got ${describe(kind)}`);
  }
  if (kind === 'default') return { kind };
  if (kind === 'factors') {
    const factors = read(raw, 'factors', field);
    if (!Array.isArray(factors) && !ArrayBuffer.isView(factors)) {
      throw invalidInput(`${field}.factors`, `expected an array of numbers, got ${describe(factors)}`);
    }
    const list = Array.from(factors as ArrayLike<unknown>);
    const bad = list.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v) || v <= 0);
    if (bad >= 0) {
      throw invalidInput(
        `${field}.factors[${bad}]`,
        `expected a finite number > 0, got ${describe(list[bad])}`,
      );
    }
    return { kind, factors: list as number[] };
  }
  // transformers warns below 1; a factor under 1 would shrink the context instead.
  const factor = readNumber(raw, 'factor', field, (v) => v >= 1, 'a finite number >= 1');
  if (kind === 'linear') return { kind, factor };
  const originalMaxPositions = read(raw, 'originalMaxPositions', field);
  if (!Number.isSafeInteger(originalMaxPositions) || (originalMaxPositions as number) < 1) {
    throw invalidInput(
      `${field}.originalMaxPositions`,
      `expected an integer >= 1, got ${describe(originalMaxPositions)}`,
    );
  }
  const common = { factor, originalMaxPositions: originalMaxPositions as number };
  if (kind === 'dynamic') return { kind, ...common };
  if (kind === 'llama3') {
    const lowFreqFactor = readNumber(raw, 'lowFreqFactor', field, (v) => v > 0, 'a finite number > 0');
    const highFreqFactor = readNumber(raw, 'highFreqFactor', field, (v) => v > 0, 'a finite number > 0');
    if (!(lowFreqFactor < highFreqFactor)) {
      throw invalidInput(
        `${field}.lowFreqFactor`,
        `must be below highFreqFactor, got ${lowFreqFactor} >= ${highFreqFactor}`,
      );
    }
    return { kind, ...common, lowFreqFactor, highFreqFactor };
  }
  const yarn: Mutable<YarnScaling> = { kind: 'yarn', ...common };
  for (const name of YARN_OPTIONAL) {
    const value = read(raw, name, field);
    if (value === undefined) continue;
    yarn[name] = checkNumber(
      value,
      `${field}.${name}`,
      (v) => v > 0,
      'a finite number > 0 (or leave it out)',
    );
  }
  const betaFast = yarn.betaFast ?? YARN_BETA_FAST;
  const betaSlow = yarn.betaSlow ?? YARN_BETA_SLOW;
  if (betaFast < betaSlow) {
    throw invalidInput(`${field}.betaFast`, `must be at least betaSlow, got ${betaFast} < ${betaSlow}`);
  }
  return yarn;
}

function asObject(value: unknown, field: string): object {
  if (typeof value !== 'object' || value === null) {
    throw invalidInput(field, `expected an object, got ${describe(value)}`);
  }
  return value;
}

/** One property, with a throwing getter reported against the field. */
function read(raw: object, name: string, field: string): unknown {
  const path = `${field}.${name}`;
  try {
    return (raw as Record<string, unknown>)[name];
  } catch (error) {
    throw new FastAttentionError('INVALID_INPUT', `${path}: reading it threw: ${String(error)}`, {
      field: path,
      cause: error,
    });
  }
}

function readNumber(
  raw: object,
  name: string,
  field: string,
  ok: (value: number) => boolean,
  expected: string,
): number {
  return checkNumber(read(raw, name, field), `${field}.${name}`, ok, expected);
}

function checkNumber(value: unknown, path: string, ok: (value: number) => boolean, expected: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw invalidInput(path, `expected ${expected}, got ${describe(value)}`);
  }
  return value;
}

function checkCount(value: number, field: string, min: number): void {
  if (!Number.isInteger(value) || value < min || value > MAX_DIMENSION) {
    throw invalidInput(field, `expected an integer in [${min}, ${MAX_DIMENSION}], got ${describe(value)}`);
  }
}

function checkSeqLen(seqLen: number): number {
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) {
    throw invalidInput('seqLen', `expected an integer >= 1, got ${describe(seqLen)}`);
  }
  return seqLen;
}
