import { describe, expect, it } from 'vitest';
import {
  createReferenceBackend,
  exactAttention,
  kvHeadOf,
  kvIndex,
  lseIndex,
  type MaskSpec,
  qIndex,
  type ResolvedAttentionInput,
  standardAttention,
  tiledAttention,
  toFloat64,
} from '../src/index.js';
import {
  allowedByDefinition,
  lseError,
  MASKS,
  randInt,
  randomCase,
  randomInput,
  randomSeed,
  relativeError,
  rng,
} from './helpers.js';

/** Attention from the contract's text: a dense mask, exp of every allowed score, a sum. */
function bruteForce(x: ResolvedAttentionInput): { out: Float64Array; lse: Float64Array } {
  const q = toFloat64(x.q, x.dtype);
  const k = toFloat64(x.k, x.dtype);
  const v = toFloat64(x.v, x.dtype);
  const out = new Float64Array(q.length);
  const lse = new Float64Array(x.batch * x.headsQ * x.seqQ);
  const group = x.headsQ / x.headsKV;
  for (let b = 0; b < x.batch; b++) {
    const lk = x.seqLensK[b]!;
    for (let h = 0; h < x.headsQ; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < x.seqQ; i++) {
        const weights: number[] = [];
        for (let j = 0; j < x.seqK; j++) {
          if (!allowedByDefinition(x.mask, i, j, x.seqQ, lk)) {
            weights.push(0);
            continue;
          }
          let dot = 0;
          for (let d = 0; d < x.headDim; d++)
            dot += q[qIndex(x, b, i, h) + d]! * k[kvIndex(x, b, j, hk) + d]!;
          weights.push(Math.exp(dot * x.scale));
        }
        const sum = weights.reduce((a, w) => a + w, 0);
        lse[lseIndex(x, b, h, i)] = sum === 0 ? Number.NEGATIVE_INFINITY : Math.log(sum);
        if (sum === 0) continue;
        for (let j = 0; j < x.seqK; j++) {
          for (let d = 0; d < x.headDim; d++) {
            out[qIndex(x, b, i, h) + d]! += (weights[j]! / sum) * v[kvIndex(x, b, j, hk) + d]!;
          }
        }
      }
    }
  }
  return { out, lse };
}

describe('reference attention', () => {
  it('equals the brute-force definition on random shapes, masks and paddings', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 40; t++) {
      const { shape, mask, seqLensK } = randomCase(rand, {
        batch: 3,
        seqQ: 12,
        seqK: 14,
        group: 3,
        headsKV: 3,
        headDim: 9,
      });
      const x = randomInput(rand, 'f32', shape, { mask, seqLensK, scale: 0.1 + rand() });
      const ref = exactAttention(x);
      const brute = bruteForce(x);
      expect(relativeError(ref.out, brute.out), `seed ${seed} case ${t}`).toBeLessThan(1e-12);
      expect(lseError(ref.lse, brute.lse), `seed ${seed} case ${t}`).toBeLessThan(1e-12);
    }
  });

  const alignment: [string, { seqQ: number; seqK: number; lk?: number }, MaskSpec][] = [
    ['decode: one query row sees every key under causal', { seqQ: 1, seqK: 9 }, { kind: 'causal' }],
    ['chunked prefill: a chunk of 3 rows after 6 cached keys', { seqQ: 3, seqK: 9 }, { kind: 'causal' }],
    [
      'padding: causal aligns to the valid length, not seqK',
      { seqQ: 4, seqK: 10, lk: 6 },
      { kind: 'causal' },
    ],
    ['window on both sides', { seqQ: 6, seqK: 6 }, { kind: 'window', left: 1, right: 2 }],
    [
      'window with more queries than keys leaves early rows empty',
      { seqQ: 8, seqK: 3 },
      { kind: 'window', left: 1, right: 0 },
    ],
  ];
  for (const [name, dims, mask] of alignment) {
    it(`aligns masks bottom-right (${name})`, () => {
      const rand = rng(randomSeed());
      const shape = { batch: 1, seqQ: dims.seqQ, seqK: dims.seqK, headsQ: 1, headsKV: 1, headDim: 4 };
      const seqLensK = Int32Array.of(dims.lk ?? dims.seqK);
      const x = randomInput(rand, 'f32', shape, { mask, seqLensK });
      const ref = exactAttention(x);
      expect(relativeError(ref.out, bruteForce(x).out)).toBeLessThan(1e-12);
      // the last query row always sits on the diagonal of the last valid key
      if (mask.kind === 'causal') expect(ref.lse[dims.seqQ - 1]).toBeGreaterThan(Number.NEGATIVE_INFINITY);
    });
  }

  it('gives zeros and lse = -Infinity for a row with no allowed key', async () => {
    const rand = rng(randomSeed());
    const x = randomInput(
      rand,
      'f16',
      { batch: 2, seqQ: 3, seqK: 5, headsQ: 2, headsKV: 1, headDim: 8 },
      {
        seqLensK: Int32Array.of(0, 5),
      },
    );
    const { out, lse } = await createReferenceBackend().attention(x);
    expect(out).toBeInstanceOf(Uint16Array);
    for (let i = 0; i < 3 * 2 * 8; i++) expect(out[i]).toBe(0);
    expect([...lse.subarray(0, 6)]).toEqual(Array(6).fill(Number.NEGATIVE_INFINITY));
    expect(lse.subarray(6).every(Number.isFinite)).toBe(true);
  });

  it('reads KV head floor(h / group) under GQA', () => {
    const rand = rng(randomSeed());
    const x = randomInput(rand, 'f32', { batch: 1, seqQ: 2, seqK: 4, headsQ: 6, headsKV: 2, headDim: 3 });
    expect([0, 1, 2, 3, 4, 5].map((h) => kvHeadOf(x, h))).toEqual([0, 0, 0, 1, 1, 1]);
    expect(relativeError(exactAttention(x).out, bruteForce(x).out)).toBeLessThan(1e-12);
  });
});

describe('tiled attention (the executable FlashAttention-2 spec)', () => {
  it('equals the reference for random tiles, masks, paddings and split-KV', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 30; t++) {
      const { shape, mask, seqLensK } = randomCase(rand, {
        batch: 2,
        seqQ: 40,
        seqK: 50,
        group: 2,
        headsKV: 2,
        headDim: 8,
      });
      const x = randomInput(rand, 'f32', shape, { mask, seqLensK });
      const blocks = {
        blockQ: randInt(rand, 1, 16),
        blockK: randInt(rand, 1, 16),
        splitKV: randInt(rand, 1, 4),
      };
      const tiled = tiledAttention(x, blocks);
      const ref = exactAttention(x);
      const where = `seed ${seed} case ${t} ${JSON.stringify(blocks)}`;
      expect(relativeError(tiled.out, ref.out), where).toBeLessThan(1e-12);
      expect(lseError(tiled.lse, ref.lse), where).toBeLessThan(1e-12);
    }
  });
});

describe('standard attention (the materialized baseline)', () => {
  for (const mask of MASKS.slice(0, 3)) {
    it(`matches the reference within f32 tolerance (${mask.kind})`, () => {
      const rand = rng(randomSeed());
      const x = randomInput(
        rand,
        'f32',
        { batch: 2, seqQ: 17, seqK: 23, headsQ: 4, headsKV: 2, headDim: 16 },
        {
          mask,
          seqLensK: Int32Array.of(23, 11),
        },
      );
      const std = standardAttention(x);
      const ref = exactAttention(x);
      expect(relativeError(std.out, ref.out)).toBeLessThan(1e-5);
      expect(lseError(std.lse, ref.lse)).toBeLessThan(1e-5);
    });
  }

  it('reports O(S²) workspace: scores for every head and a full mask', () => {
    const rand = rng(randomSeed());
    const x = randomInput(rand, 'f32', { batch: 1, seqQ: 64, seqK: 64, headsQ: 2, headsKV: 2, headDim: 8 });
    const { workspaceBytes } = standardAttention(x);
    expect(workspaceBytes).toBeGreaterThanOrEqual(2 * 64 * 64 * 4 + 64 * 64);
  });
});
