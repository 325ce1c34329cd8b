import { describeValue as describe, invalidInput } from '../errors.js';
import { readInputFields } from '../validate.js';

/**
 * The float64 reference of logits processing and token sampling: the executable specification the
 * CPU and GPU sampling kernels (the `sample` op) are tested against.
 *
 * Pipeline, in this order (penalties, then temperature, then the truncations, as transformers'
 * default processor list and vLLM's v0 sampler apply them; vLLM's v1 sampler applies min-p before
 * top-k/top-p, which can keep a different set):
 *   1. sanitize: a NaN logit counts as -Infinity (the token can never be picked);
 *   2. penalties, per seen token (count > 0): repetition (CTRL: a logit > 0 is divided by the
 *      penalty, one < 0 multiplied), then `- frequencyPenalty * count - presencePenalty`;
 *      a NaN produced here (Infinity - Infinity) counts as -Infinity again;
 *   3. temperature: z = (y - max y) / T, which softmax cannot tell from y / T but never overflows.
 *      If max y is infinite, z = 0 for the tokens equal to it and -Infinity elsewhere: +Infinity
 *      logits share the mass (the limit of softmax), all -Infinity logits tie (uniform);
 *   4. weights w = exp(z) (the top token's weight is exactly 1), then top-k, top-p, min-p, each on
 *      what the previous step kept. Ranking for top-k/top-p: penalized logit descending, then
 *      token id ascending, so top-k keeps exactly k tokens even through ties. The top-ranked
 *      token survives every step, so the distribution is never empty.
 * Temperature 0 is greedy: the argmax of the penalized logits, lowest id on ties.
 */

export interface SamplingParams {
  /** 0 = greedy (argmax; ties -> lowest token id); else logits are divided by it. */
  readonly temperature: number;
  /** 0 = off; keep the k top-ranked tokens. */
  readonly topK: number;
  /** 1 = off; keep the smallest top-ranked prefix whose probability sum is >= topP. In (0, 1]. */
  readonly topP: number;
  /** 0 = off; drop tokens with p < minP * pMax. In [0, 1]. */
  readonly minP: number;
  /** 1 = off; CTRL-style: a seen token's logit is divided by it if > 0, multiplied if < 0. */
  readonly repetitionPenalty: number;
  /** 0 = off; subtracted once from the logit of every seen token. */
  readonly presencePenalty: number;
  /** 0 = off; subtracted count times from the logit of every seen token. */
  readonly frequencyPenalty: number;
  /** uint32: the Philox key of this sequence's generator. */
  readonly seed: number;
}

export const DEFAULT_SAMPLING: SamplingParams = Object.freeze({
  temperature: 0,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  seed: 0,
});

/**
 * Token counts of the sequence so far: sparse (token id -> count) or dense (one count per vocab
 * entry, the layout of the `sample` op's `counts` rows). A count of 0 is the same as absent.
 */
export type SeenTokens = ReadonlyMap<number, number> | Int32Array;

export interface SampledToken {
  readonly token: number;
  /** log p(token) before truncation: log-softmax of the penalized, temperature-scaled logits. */
  readonly logprob: number;
}

const UINT32_MAX = 0xffffffff;

/** Each field's rule and how an error message states it. */
const RULES: { readonly [K in keyof SamplingParams]: readonly [(v: number) => boolean, string] } = {
  temperature: [(v) => Number.isFinite(v) && v >= 0, 'a finite number >= 0'],
  topK: [(v) => Number.isSafeInteger(v) && v >= 0, 'an integer >= 0'],
  topP: [(v) => v > 0 && v <= 1, 'a number in (0, 1]'],
  minP: [(v) => v >= 0 && v <= 1, 'a number in [0, 1]'],
  repetitionPenalty: [(v) => Number.isFinite(v) && v > 0, 'a finite number > 0'],
  presencePenalty: [(v) => Number.isFinite(v), 'a finite number'],
  frequencyPenalty: [(v) => Number.isFinite(v), 'a finite number'],
  seed: [(v) => Number.isInteger(v) && v >= 0 && v <= UINT32_MAX, 'an integer in [0, 2^32 - 1]'],
};
const FIELDS = Object.keys(RULES) as (keyof SamplingParams)[];

/**
 * Validated sampling parameters: `undefined` or a missing field takes DEFAULT_SAMPLING's value.
 * Each field is read once; a bad one throws INVALID_INPUT naming it, e.g. `sampling.topP`.
 * Unknown fields are ignored, as elsewhere in the input objects.
 */
export function checkSamplingParams(params: unknown, field = 'sampling'): SamplingParams {
  if (params === undefined) return DEFAULT_SAMPLING;
  const raw = readInputFields(params, FIELDS, field);
  const out: Record<keyof SamplingParams, number> = { ...DEFAULT_SAMPLING };
  for (const key of FIELDS) {
    const value = raw[key];
    if (value === undefined) continue;
    const [ok, expected] = RULES[key];
    if (typeof value !== 'number' || !ok(value)) {
      throw invalidInput(`${field}.${key}`, `expected ${expected}, got ${describe(value)}`);
    }
    out[key] = value;
  }
  return Object.freeze(out);
}

// --- The generator ------------------------------------------------------------------------------

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9; // key schedule increments (golden ratio, sqrt(3) - 1)
const PHILOX_W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32s, exact: 16-bit limbs keep every step < 2^53. */
function mulhi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const mid = ah * bl + al * bh + ((al * bl) >>> 16); // < 2^34
  return (ah * bh + Math.floor(mid / 0x10000)) >>> 0;
}

/**
 * Philox-4x32-10 (Salmon et al., SC'11; the generator of Random123 and cuRAND's Philox4_32_10):
 * counter (c0, c1, c2, c3), key (k0, k1), all uint32. Ten rounds of
 *   (c0, c1, c2, c3) <- (hi(M1 * c2) ^ c1 ^ k0, lo(M1 * c2), hi(M0 * c0) ^ c3 ^ k1, lo(M0 * c0))
 * with M0 = 0xD2511F53, M1 = 0xCD9E8D57, the key bumped by (0x9E3779B9, 0xBB67AE85) mod 2^32
 * between rounds (9 bumps). On CUDA: `__umulhi` and plain `*` on `uint32_t`.
 */
export function philox4x32(
  counter: readonly [number, number, number, number],
  key: readonly [number, number],
): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0) as [number, number, number, number];
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  return [c0, c1, c2, c3];
}

const TWO_POW_32 = 0x1_0000_0000;

/**
 * The uniform draw of step `counter` of the generator keyed by `seed`, in [0, 1):
 *   x = philox4x32((counter mod 2^32, floor(counter / 2^32), 0, 0), (seed, 0))[0]
 *   u = (x >>> 8) * 2^-24
 * Only the top 24 bits are used, so `(float)(x >> 8) * 0x1p-24f` in a float32 kernel is the same
 * number exactly. Counter words 2 and 3 and key word 1 are 0, reserved for other streams.
 * `counter`: the decode step, or step * rows + row for a batch; an integer in [0, 2^53) (the
 * `sample` op's i32 counters leave word 1 at 0).
 */
export function randomUniform(seed: number, counter: number): number {
  if (!RULES.seed[0](seed)) throw invalidInput('seed', `expected ${RULES.seed[1]}, got ${describe(seed)}`);
  checkCounter(counter);
  const x = philox4x32([counter >>> 0, Math.floor(counter / TWO_POW_32), 0, 0], [seed, 0])[0];
  return (x >>> 8) / 0x100_0000;
}

function checkCounter(counter: unknown): asserts counter is number {
  if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 0) {
    throw invalidInput('counter', `expected an integer in [0, 2^53), got ${describe(counter)}`);
  }
}

// --- The pipeline -------------------------------------------------------------------------------

/** Where a distribution came from: log-probabilities before truncation need z and log(sum exp z). */
interface Prepared {
  readonly penalized: Float64Array;
  /** Temperature-scaled, max-shifted: max z = 0. For greedy, scaled by 1. */
  readonly z: Float64Array;
  readonly logSum: number;
}

/**
 * The distribution a token is drawn from: the pipeline at the top of this file over logits [vocab]
 * (not modified), as probabilities in token-id order, 0 for removed tokens. Greedy (temperature 0)
 * gives a one-hot at the argmax.
 */
export function samplingDistribution(
  logits: Float64Array,
  params: SamplingParams,
  seen: SeenTokens,
): Float64Array {
  const p = checkSamplingParams(params);
  checkLogits(logits);
  return truncate(prepare(logits, p, seen), p);
}

/**
 * Picks a token: the argmax when temperature is 0 (no draw), else inverse-CDF over the
 * distribution in token-id order with u = randomUniform(seed, counter): the first token whose
 * running probability sum exceeds u * (sum of all). The log-probability is of the distribution
 * before truncation: log-softmax of the penalized logits divided by the temperature (by 1 for greedy).
 */
export function sampleToken(
  logits: Float64Array,
  params: SamplingParams,
  seen: SeenTokens,
  counter: number,
): SampledToken {
  const p = checkSamplingParams(params);
  checkLogits(logits);
  checkCounter(counter);
  const prepared = prepare(logits, p, seen);
  const token =
    p.temperature === 0
      ? argmax(prepared.penalized)
      : inverseCdf(truncate(prepared, p), randomUniform(p.seed, counter));
  return { token, logprob: prepared.z[token]! - prepared.logSum };
}

/**
 * The n most likely tokens (fewer when the vocab is smaller) with their log-probabilities under
 * the raw logits (log-softmax, NaN as -Infinity), most likely first, ties by lower id: OpenAI-style
 * `top_logprobs`. No penalty or temperature applies, as that API reports the model's own numbers.
 */
export function topLogprobs(logits: Float64Array, n: number): ReadonlyArray<SampledToken> {
  checkLogits(logits);
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw invalidInput('n', `expected an integer >= 0, got ${describe(n)}`);
  }
  const y = sanitize(logits);
  const { z, logSum } = scale(y, 1);
  const order = rank(y);
  return Array.from({ length: Math.min(n, y.length) }, (_, r) => {
    const token = order[r]!;
    return { token, logprob: z[token]! - logSum };
  });
}

function checkLogits(logits: unknown): asserts logits is Float64Array {
  if (!(logits instanceof Float64Array)) {
    throw invalidInput('logits', `expected a Float64Array, got ${describe(logits)}`);
  }
  if (logits.length === 0) throw invalidInput('logits', 'expected a vocabulary of at least one token');
}

function prepare(logits: Float64Array, params: SamplingParams, seen: SeenTokens): Prepared {
  const penalized = penalize(logits, params, seen);
  return { penalized, ...scale(penalized, params.temperature === 0 ? 1 : params.temperature) };
}

/** NaN reads as -Infinity: such a token can never be picked and never outranks another. */
function sanitize(logits: Float64Array): Float64Array {
  return logits.map((x) => (Number.isNaN(x) ? Number.NEGATIVE_INFINITY : x));
}

function penalize(logits: Float64Array, params: SamplingParams, seen: SeenTokens): Float64Array {
  const y = sanitize(logits);
  const { repetitionPenalty: rep, presencePenalty: presence, frequencyPenalty: frequency } = params;
  forEachSeen(seen, y.length, (token, count) => {
    let x = y[token]!;
    x = x > 0 ? x / rep : x * rep; // 0 and -Infinity stay put
    x = x - frequency * count - presence;
    y[token] = Number.isNaN(x) ? Number.NEGATIVE_INFINITY : x;
  });
  return y;
}

/** Calls `visit` for every token with count > 0, after checking ids and counts. */
function forEachSeen(seen: SeenTokens, vocab: number, visit: (token: number, count: number) => void): void {
  if (seen instanceof Int32Array) {
    if (seen.length !== vocab)
      throw invalidInput('seen', `expected ${vocab} counts (the vocab), got ${seen.length}`);
    for (let t = 0; t < vocab; t++) {
      const count = seen[t]!;
      if (count < 0) throw invalidInput(`seen[${t}]`, `expected a count >= 0, got ${count}`);
      if (count > 0) visit(t, count);
    }
    return;
  }
  if (!(seen instanceof Map)) {
    throw invalidInput('seen', `expected a Map of token counts or an Int32Array, got ${describe(seen)}`);
  }
  for (const [token, count] of seen) {
    if (!Number.isInteger(token) || token < 0 || token >= vocab) {
      throw invalidInput('seen', `token ${describe(token)} is not an id in [0, ${vocab})`);
    }
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
      throw invalidInput('seen', `token ${token}: expected a count >= 0, got ${describe(count)}`);
    }
    if (count > 0) visit(token, count);
  }
}

/** z = (y - max) / t and log(sum exp z), with the infinite-max rule of step 3. */
function scale(y: Float64Array, t: number): { z: Float64Array; logSum: number } {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of y) if (v > max) max = v;
  const infinite = !Number.isFinite(max);
  const z = y.map((v) => (infinite ? (v === max ? 0 : Number.NEGATIVE_INFINITY) : (v - max) / t));
  let sum = 0;
  for (const v of z) sum += Math.exp(v);
  return { z, logSum: Math.log(sum) };
}

/** Token ids by penalized logit descending, then id ascending. */
function rank(y: Float64Array): Uint32Array {
  const order = new Uint32Array(y.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  return order.sort((a, b) => (y[a] === y[b] ? a - b : y[a]! > y[b]! ? -1 : 1));
}

/** Step 4: the kept tokens' normalized weights. */
function truncate({ penalized, z }: Prepared, params: SamplingParams): Float64Array {
  const vocab = z.length;
  const probs = new Float64Array(vocab);
  if (params.temperature === 0) {
    probs[argmax(penalized)] = 1;
    return probs;
  }
  const weights = z.map(Math.exp);
  const keep = new Uint8Array(vocab).fill(1);
  const { topK, topP, minP } = params;
  if ((topK > 0 && topK < vocab) || topP < 1) {
    const order = rank(penalized);
    let kept = topK > 0 && topK < vocab ? topK : vocab;
    if (topP < 1) {
      let total = 0;
      for (let r = 0; r < kept; r++) total += weights[order[r]!]!;
      // the weights are not normalized: reaching topP of the kept mass is reaching topP * total
      let sum = 0;
      let r = 0;
      while (r < kept) {
        sum += weights[order[r++]!]!;
        if (sum >= topP * total) break;
      }
      kept = r;
    }
    keep.fill(0);
    for (let r = 0; r < kept; r++) keep[order[r]!] = 1;
  }
  // pMax is the top token's weight, exactly 1, and renormalization after top-k/top-p scales every
  // probability alike, so `p < minP * pMax` is `weight < minP`.
  if (minP > 0) for (let t = 0; t < vocab; t++) if (weights[t]! < minP) keep[t] = 0;
  let total = 0;
  for (let t = 0; t < vocab; t++) if (keep[t]) total += weights[t]!;
  for (let t = 0; t < vocab; t++) if (keep[t]) probs[t] = weights[t]! / total;
  return probs;
}

/** The first index of the largest value. */
function argmax(values: Float64Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function inverseCdf(probs: Float64Array, u: number): number {
  let total = 0;
  for (const p of probs) total += p;
  const target = u * total; // < total, as u <= 1 - 2^-24
  let sum = 0;
  let last = 0;
  for (let t = 0; t < probs.length; t++) {
    if (probs[t] === 0) continue;
    sum += probs[t]!;
    last = t;
    if (target < sum) return t;
  }
  return last; // unreachable: the running sum ends at total, as it is the same sum in the same order
}
