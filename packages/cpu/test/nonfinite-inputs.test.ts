import type { AttentionInput, DType, PlanOptions } from '@fastattention/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  backendCache,
  type Case,
  compare,
  encode,
  LSE_TOLERANCE,
  OUT_TOLERANCE,
  REAL_WORK_TIMEOUT_MS,
  randomInput,
  reference,
  runnableIsas,
  TEST_DTYPES,
} from './helpers.js';

// NaN or Infinity in a visible q or k gives what the float64 reference gives: a NaN row with a NaN
// LSE (a -Infinity score alone just weighs nothing), never a finite row beside a -Infinity LSE.
// An f32 score that overflows from finite inputs makes its row NaN: never silently wrong.

const ISAS = runnableIsas();
const DTYPES = TEST_DTYPES;
const VALUES = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];

const CASES: (Omit<Case, 'dtype'> & { tiling?: PlanOptions })[] = [
  {
    name: 'prefill, causal',
    batch: 1,
    seqQ: 40,
    seqK: 40,
    headsQ: 2,
    headsKV: 1,
    headDim: 64,
    mask: { kind: 'causal' },
  },
  { name: 'decode kernel, GQA 8:2', batch: 1, seqQ: 1, seqK: 200, headsQ: 8, headsKV: 2, headDim: 64 },
  {
    name: 'decode kernel, split-KV 4',
    batch: 1,
    seqQ: 1,
    seqK: 300,
    headsQ: 4,
    headsKV: 1,
    headDim: 32,
    tiling: { splitKV: 4, blockK: 32 },
  },
];

const backends = backendCache();
const backendFor = backends.get;
afterAll(() => backends.disposeAll());

/** A copy of `input` with element `at` of q or k set to `value`. */
function withElement<D extends DType>(input: AttentionInput<D>, field: 'q' | 'k', at: number, value: number) {
  const array = input[field].slice() as AttentionInput<D>['q'];
  array[at] = encode(value, input.dtype);
  return { ...input, [field]: array };
}

describe.each(CASES)('$name', (c) => {
  describe.each(DTYPES)('%s', (dtype) => {
    it.each(ISAS)(
      'NaN and ±Infinity in a visible q or k element give the reference NaN pattern on the %s kernel',
      async (isa) => {
        const backend = await backendFor(isa, c.tiling);
        const clean = randomInput({ ...c, dtype });
        const last = c.seqQ - 1; // the last query row sees every key under either mask
        const qAt = (last * c.headsQ + 1) * c.headDim + 3; // head 1, element 3
        const kAt = (5 * c.headsKV + 0) * c.headDim + 7; // key 5, KV head 0, element 7
        for (const [field, at] of [
          ['q', qAt],
          ['k', kAt],
        ] as const) {
          for (const value of VALUES) {
            const input = withElement(clean, field, at, value);
            const ref = reference(input);
            const result = await backend.attention(input);
            const errors = compare(result, ref, dtype);
            const where = `${field}[${at}] = ${value}`;
            expect(errors.bad, where).toBe(0);
            expect(errors.out, where).toBeLessThanOrEqual(OUT_TOLERANCE[dtype]);
            expect(errors.lse, where).toBeLessThanOrEqual(LSE_TOLERANCE);
            // NaN in q or k always poisons a row (the test has something to check); so does an
            // Infinity in q (its scores are ±Infinity and NaN). An Infinity in one k element gives
            // the rows it reaches a ±Infinity score: NaN rows for +Infinity, a zero weight for -Infinity.
            if (Number.isNaN(value) || field === 'q') expect(errors.nonFinite, where).toBeGreaterThan(0);
            expect(Array.from(result.lse).some((x) => x === Number.NEGATIVE_INFINITY)).toBe(false);
          }
        }
      },
      REAL_WORK_TIMEOUT_MS,
    );
  });
});

describe('f32 score overflow from finite inputs', () => {
  it.each(['f32', 'bf16'] as const)(
    'makes the overflowing row NaN, never a finite wrong answer (%s)',
    async (dtype) => {
      for (const isa of ISAS) {
        const backend = await backendFor(isa);
        const c = { name: '', dtype, batch: 1, seqQ: 6, seqK: 30, headsQ: 1, headsKV: 1, headDim: 32 };
        const clean = randomInput(c);
        // Row 2 of q and key 9 of k near 1e20, all positive: their product (1e40) is finite in the
        // float64 reference, beyond f32 in the kernel's score.
        const q = clean.q.slice();
        const k = clean.k.slice();
        for (let d = 0; d < c.headDim; d++) {
          q[2 * c.headDim + d] = encode(1e20, dtype);
          k[9 * c.headDim + d] = encode(1e20, dtype);
        }
        const input = { ...clean, q, k } as AttentionInput;
        const ref = reference(input);
        expect(Number.isFinite(ref.lse[2]!)).toBe(true);
        const result = await backend.attention(input);
        expect(Number.isNaN(result.lse[2]!), isa).toBe(true);
        const row = Array.from(result.out.slice(2 * c.headDim, 3 * c.headDim));
        expect(
          row.every((x) => (dtype === 'f32' ? Number.isNaN(x) : (x & 0x7fff) > 0x7f80)),
          isa,
        ).toBe(true);
        // The other rows (scores up to ~1e21, finite in f32) still match the reference.
        for (const r of [0, 1, 3, 4, 5])
          expect(Number.isFinite(result.lse[r]!), `${isa} row ${r}`).toBe(true);
      }
    },
  );
});
