import type { MaskSpec, PlanOptions } from '@fastattention/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  backendCache,
  type Case,
  compare,
  invisibleToAll,
  LSE_TOLERANCE,
  OUT_TOLERANCE,
  poisonKeys,
  REAL_WORK_TIMEOUT_MS,
  randomInput,
  reference,
  runnableIsas,
  TEST_DTYPES,
} from './helpers.js';

// Keys a row may not see never influence it, whatever they hold: a preallocated KV cache has
// garbage (NaN and Inf included) in its unused slots, and p = 0 times NaN is NaN.

const ISAS = runnableIsas();
const DTYPES = TEST_DTYPES;
const POISONS = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];

interface PoisonCase extends Omit<Case, 'dtype'> {
  readonly tiling?: PlanOptions;
  /** Which plan the case must exercise. */
  readonly path: 'prefill' | 'decode kernel' | 'all-heads';
}

const causal: MaskSpec = { kind: 'causal' };
const CASES: PoisonCase[] = [
  {
    name: 'prefill, no mask, padding via seqLensK',
    path: 'prefill',
    batch: 2,
    seqQ: 37,
    seqK: 90,
    headsQ: 2,
    headsKV: 1,
    headDim: 40,
    seqLensK: [61, 90],
  },
  {
    name: 'prefill, causal, square (diagonal tiles)',
    path: 'prefill',
    batch: 1,
    seqQ: 70,
    seqK: 70,
    headsQ: 2,
    headsKV: 2,
    headDim: 64,
    mask: causal,
  },
  {
    name: 'prefill, causal, chunked with padding',
    path: 'prefill',
    batch: 2,
    seqQ: 20,
    seqK: 120,
    headsQ: 4,
    headsKV: 2,
    headDim: 32,
    mask: causal,
    seqLensK: [100, 47],
  },
  {
    name: 'prefill, window 9/2',
    path: 'prefill',
    batch: 1,
    seqQ: 50,
    seqK: 80,
    headsQ: 2,
    headsKV: 1,
    headDim: 48,
    mask: { kind: 'window', left: 9, right: 2 },
  },
  {
    name: 'decode seqQ 1, GQA 8:2, padding',
    path: 'decode kernel',
    batch: 2,
    seqQ: 1,
    seqK: 300,
    headsQ: 8,
    headsKV: 2,
    headDim: 64,
    seqLensK: [300, 129],
  },
  {
    name: 'decode seqQ 2, window 30/0, split-KV 4',
    path: 'decode kernel',
    batch: 1,
    seqQ: 2,
    seqK: 260,
    headsQ: 4,
    headsKV: 2,
    headDim: 36,
    mask: { kind: 'window', left: 30, right: 0 },
    seqLensK: [201],
    tiling: { splitKV: 4, blockK: 32 },
  },
  {
    name: 'decode seqQ 3, GQA 4:1 (all-heads layout), causal, padding, split-KV',
    path: 'all-heads',
    batch: 2,
    seqQ: 3,
    seqK: 400,
    headsQ: 8,
    headsKV: 2,
    headDim: 64,
    mask: causal,
    seqLensK: [333, 90],
    tiling: { blockK: 64, splitKV: 3 },
  },
];

const backends = backendCache();
const backendFor = backends.get;
afterAll(() => backends.disposeAll());

describe.each(CASES)('$name', (c) => {
  describe.each(DTYPES)('%s', (dtype) => {
    it.each(ISAS)(
      'NaN, +Inf and -Inf in invisible K/V slots leave every row exact on the %s kernel',
      async (isa) => {
        const backend = await backendFor(isa, c.tiling);
        const clean = randomInput({ ...c, dtype });
        const plan = backend.explain(clean);
        expect(plan.decode).toBe(c.path === 'decode kernel');
        if (c.path === 'all-heads') expect(plan.allHeads && plan.splitKV === 3).toBe(true);
        const lk = clean.seqLensK ?? new Int32Array(c.batch).fill(c.seqK);
        // Two poisonings: every slot no row sees; and the last valid key, which only some rows
        // see (its tile is partial for the others: p = 0 there must not meet its NaN).
        const selections: [string, (b: number, j: number) => boolean][] = [
          ['slots no row sees', (b, j) => invisibleToAll(clean, b, j)],
          ['the last valid key', (b, j) => j === lk[b]! - 1],
        ];
        for (const [what, select] of selections) {
          for (const value of POISONS) {
            const input = poisonKeys(clean, select, value);
            const errors = compare(await backend.attention(input), reference(input), dtype);
            const where = `${what} = ${value}`;
            expect(errors.bad, where).toBe(0);
            expect(errors.out, where).toBeLessThanOrEqual(OUT_TOLERANCE[dtype]);
            expect(errors.lse, where).toBeLessThanOrEqual(LSE_TOLERANCE);
            if (what === 'slots no row sees') expect(errors.nonFinite, where).toBe(0);
          }
        }
      },
      REAL_WORK_TIMEOUT_MS,
    );
  });
});
