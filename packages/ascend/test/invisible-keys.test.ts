import { type AttentionInput, fromNumbers, kvIndex, type MaskSpec, qIndex } from '@fastattention/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AscendBackend, createBackend } from '../src/index.js';
import { LSE_TOLERANCE, randomInput, rng, SEED, type Shape, TOLERANCE, WORK_TIMEOUT } from './helpers.js';
import { compareRows, type Row, visibleKeys } from './rows.js';

let backend: AscendBackend;
beforeAll(async () => {
  backend = await createBackend();
});
afterAll(async () => {
  await backend.dispose();
});

/** NaN, +Inf and -Inf in turn, as the dtype's raw bits. */
const POISON = fromNumbers([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY], 'f16');

/**
 * Fills K and V with NaN/+Inf/-Inf at every key that none of the `target` rows may see (causally
 * masked, outside the window, beyond seqLensK), in every KV head. Returns the poisoned copy and a
 * test for the rows that see no poisoned key: the target rows and any other row left clean.
 */
function poisonInvisibleKeys(
  input: AttentionInput<'f16'>,
  target: (i: number) => boolean,
): { input: AttentionInput<'f16'>; clean: (row: Row) => boolean; poisoned: number } {
  const k = input.k.slice();
  const v = input.v.slice();
  const poisonedKeys: Uint8Array[] = [];
  let poisoned = 0;
  for (let b = 0; b < input.batch; b++) {
    const seen = new Uint8Array(input.seqK);
    for (let i = 0; i < input.seqQ; i++) {
      if (!target(i)) continue;
      const [start, end] = visibleKeys(input, b, i);
      seen.fill(1, start, end);
    }
    const keys = seen.map((s) => 1 - s);
    poisonedKeys.push(keys);
    for (let j = 0; j < input.seqK; j++) {
      if (!keys[j]) continue;
      poisoned++;
      for (let hk = 0; hk < input.headsKV; hk++) {
        const at = kvIndex(input, b, j, hk);
        for (let e = 0; e < input.headDim; e++) {
          k[at + e] = POISON[(j + e) % 3]!;
          v[at + e] = POISON[(j + e + 1) % 3]!;
        }
      }
    }
  }
  const clean = ({ b, i }: Row): boolean => {
    const [start, end] = visibleKeys(input, b, i);
    return !poisonedKeys[b]!.subarray(start, end).includes(1);
  };
  return { input: { ...input, k, v }, clean, poisoned };
}

describe(`keys a row may not see never influence it (seed ${SEED})`, { timeout: WORK_TIMEOUT }, () => {
  const rand = rng(SEED);
  const cases: Array<[string, Shape, { mask?: MaskSpec; seqLensK?: Int32Array }, (i: number) => boolean]> = [
    [
      'causal self-attention, padded batch rows, GQA 2:1',
      { batch: 2, seqQ: 100, seqK: 100, headsQ: 4, headsKV: 2, headDim: 32 },
      { mask: { kind: 'causal' }, seqLensK: new Int32Array([100, 61]) },
      (i) => i < 60,
    ],
    [
      'chunked prefill with a sliding window',
      { batch: 1, seqQ: 64, seqK: 300, headsQ: 2, headsKV: 1, headDim: 64 },
      { mask: { kind: 'window', left: 7, right: 3 }, seqLensK: new Int32Array([260]) },
      (i) => i < 32,
    ],
    [
      'no mask, keys beyond seqLensK',
      { batch: 3, seqQ: 20, seqK: 90, headsQ: 2, headsKV: 2, headDim: 16 },
      { seqLensK: new Int32Array([90, 33, 0]) },
      () => true,
    ],
    [
      'split-KV decode in a window',
      { batch: 1, seqQ: 1, seqK: 700, headsQ: 2, headsKV: 1, headDim: 64 },
      { mask: { kind: 'window', left: 100, right: 0 }, seqLensK: new Int32Array([500]) },
      () => true,
    ],
  ];
  for (const [name, shape, extra, target] of cases) {
    const check = (
      got: { out: Uint16Array | Float32Array; lse: Float32Array },
      x: ReturnType<typeof poisonInvisibleKeys>,
    ) => {
      const e = compareRows(x.input, got, x.clean);
      expect(x.poisoned).toBeGreaterThan(0);
      expect(e.compared).toBeGreaterThan(0);
      expect(e.badEmpty).toBe(0);
      expect(e.notNaN).toBe(0);
      expect(e.out).toBeLessThan(TOLERANCE.f16);
      expect(e.lse).toBeLessThan(LSE_TOLERANCE);
    };
    it(`${name}: FastAttention`, async () => {
      const x = poisonInvisibleKeys(randomInput(rand, 'f16', shape, extra), target);
      check(await backend.attention(x.input), x);
    });
    it(`${name}: standard attention on the model`, async () => {
      const x = poisonInvisibleKeys(randomInput(rand, 'f16', shape, extra), target);
      const r = await backend.simulate(x.input, { kernel: 'standard', scoreDType: 'f32' });
      check({ out: r.out!, lse: r.lse! }, x);
    });
  }
});

describe(`a NaN in a visible q or k gives a NaN row and a NaN lse (seed ${SEED})`, {
  timeout: WORK_TIMEOUT,
}, () => {
  const rand = rng(SEED + 1);
  const shape = { batch: 2, seqQ: 40, seqK: 90, headsQ: 4, headsKV: 2, headDim: 32 };
  const extra = { mask: { kind: 'causal' } as const, seqLensK: new Int32Array([90, 70]) };
  const nan = fromNumbers([Number.NaN], 'f16')[0]!;

  const withNaN = (): AttentionInput<'f16'> => {
    const input = randomInput(rand, 'f16', shape, extra);
    const q = input.q.slice();
    const k = input.k.slice();
    // Row 17 of batch 0, head 3; key 60 of batch 1, KV head 0, which rows i >= 30 of heads 0 and
    // 1 see (causal, offset 70 - 40); key 75 of batch 1 lies beyond seqLensK: no row sees it.
    q[qIndex(input, 0, 17, 3) + 5] = nan;
    k[kvIndex(input, 1, 60, 0) + 9] = nan;
    k[kvIndex(input, 1, 75, 1) + 2] = nan;
    return { ...input, q, k };
  };

  const expectNaNRows = (
    input: AttentionInput,
    got: { out: Uint16Array | Float32Array; lse: Float32Array },
  ) => {
    const e = compareRows(input, got);
    expect(e.notNaN).toBe(0);
    expect(e.badEmpty).toBe(0);
    expect(e.out).toBeLessThan(TOLERANCE.f16);
    expect(e.lse).toBeLessThan(LSE_TOLERANCE);
    // Exactly those rows: (batch 0, head 3, row 17) and rows 30..39 of batch 1, heads 0 and 1.
    expect(Array.from(got.lse).filter(Number.isNaN).length).toBe(1 + 2 * 10);
  };

  it('FastAttention', async () => {
    const input = withNaN();
    expectNaNRows(input, await backend.attention(input));
  });

  it('FastAttention with split-KV decode', async () => {
    const input = randomInput(rand, 'f16', {
      batch: 1,
      seqQ: 1,
      seqK: 700,
      headsQ: 2,
      headsKV: 1,
      headDim: 64,
    });
    const k = input.k.slice();
    k[kvIndex(input, 0, 333, 0)] = nan;
    const poisoned = { ...input, k };
    const r = await backend.simulate(poisoned);
    expect(r.plan!.splitKV).toBeGreaterThan(1);
    const e = compareRows(poisoned, { out: r.out!, lse: r.lse! });
    expect(e.notNaN).toBe(0);
    expect(Array.from(r.lse!).every(Number.isNaN)).toBe(true);
  });

  it('standard attention on the model', async () => {
    const input = withNaN();
    const r = await backend.simulate(input, { kernel: 'standard', scoreDType: 'f32' });
    expectNaNRows(input, { out: r.out!, lse: r.lse! });
  });
});
