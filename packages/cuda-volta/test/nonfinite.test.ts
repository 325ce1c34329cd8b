// The contract's non-finite promises (README "Using it"), on every path:
// - keys a row may not see (causally masked, outside its window, beyond seqLensK) never influence
//   it, whatever K and V hold there: a KV cache's unused slots hold garbage, Inf and NaN included;
// - NaN in a visible q or k gives a NaN row and a NaN LSE; Inf/NaN in V at a visible key reaches
//   exactly the output columns the float64 reference puts it in.
// Each case is compared element by element with core's float64 reference: the non-finite pattern
// must match exactly, the finite elements within the contract's tolerances.
import { type AttentionInput, kvIndex, qIndex } from '@fastattention/core';
import { compareToReference, type ReferenceErrors } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import type { CudaBackend, CudaDType } from '../src/index.js';
import { type Case, describeCase, randomInput, TOL, tryBackend } from './helpers.js';

// FASTATTN_CUDA_TEST_KERNEL_DIR runs these cases on another kernel build (e.g. a baseline, to see
// them fail there).
const kernelDir = process.env.FASTATTN_CUDA_TEST_KERNEL_DIR;
const { backend, reason } = await tryBackend(kernelDir ? { kernelDir } : {});
if (!backend) console.warn(`[cuda] non-finite GPU tests skipped: ${reason}`);

const BITS = {
  f16: { nan: 0x7e00, inf: 0x7c00, ninf: 0xfc00 },
  bf16: { nan: 0x7fc0, inf: 0x7f80, ninf: 0xff80 },
} as const;
type Poison = 'nan' | 'inf' | 'ninf';
const CYCLE: readonly Poison[] = ['nan', 'inf', 'ninf'];

type Poisoner = (input: AttentionInput<CudaDType>, c: Case) => void;

/** Every K and V element of the keys `hidden(b, j)` selects, cycling NaN, +Inf, -Inf. */
const poisonKeys =
  (hidden: (b: number, j: number, c: Case) => boolean): Poisoner =>
  (input, c) => {
    const bits = BITS[c.dtype];
    let n = 0;
    for (let b = 0; b < c.batch; b++)
      for (let j = 0; j < c.seqK; j++) {
        if (!hidden(b, j, c)) continue;
        for (let h = 0; h < c.headsKV; h++) {
          const at = kvIndex(input, b, j, h);
          for (let d = 0; d < c.headDim; d++) {
            (input.k as Uint16Array)[at + d] = bits[CYCLE[n % 3]!];
            (input.v as Uint16Array)[at + d] = bits[CYCLE[(n + 1) % 3]!];
            n++;
          }
        }
      }
  };

interface NonFiniteCase {
  readonly name: string;
  readonly c: Case;
  readonly poison: Poisoner;
  /** The reference must have non-finite rows (the poison reaches rows that see it). */
  readonly expectNonfinite: boolean;
}

const lens = (c: Case, b: number): number => c.seqLensK?.[b] ?? c.seqK;
const cases: NonFiniteCase[] = [];
for (const dtype of ['f16', 'bf16'] as const) {
  // Beyond seqLensK: prefill (causal, several q-tiles, the last k-tile partly valid).
  cases.push({
    name: 'K/V beyond seqLensK hold NaN/Inf (causal prefill)',
    c: {
      dtype,
      batch: 2,
      seqQ: 100,
      seqK: 300,
      headsQ: 4,
      headsKV: 2,
      headDim: 128,
      mask: { kind: 'causal' },
      seqLensK: [170, 257],
    },
    poison: poisonKeys((b, j, c) => j >= lens(c, b)),
    expectNonfinite: false,
  });
  // Beyond seqLensK: decode, planned with split-KV (asserted below), and chunked decode at hd 64.
  cases.push({
    name: 'K/V beyond seqLensK hold NaN/Inf (decode, split-KV)',
    c: { dtype, batch: 2, seqQ: 1, seqK: 8192, headsQ: 8, headsKV: 2, headDim: 128, seqLensK: [5001, 8000] },
    poison: poisonKeys((b, j, c) => j >= lens(c, b)),
    expectNonfinite: false,
  });
  cases.push({
    name: 'K/V beyond seqLensK hold NaN/Inf (chunked decode, causal, hd 64)',
    c: {
      dtype,
      batch: 1,
      seqQ: 4,
      seqK: 3000,
      headsQ: 4,
      headsKV: 4,
      headDim: 64,
      mask: { kind: 'causal' },
      seqLensK: [2050],
    },
    poison: poisonKeys((b, j, c) => j >= lens(c, b)),
    expectNonfinite: false,
  });
  // Outside every row's window (keys before the band of the first row, and after the last).
  cases.push({
    name: 'K/V outside every row window hold NaN/Inf (window 20/0)',
    c: {
      dtype,
      batch: 1,
      seqQ: 64,
      seqK: 500,
      headsQ: 2,
      headsKV: 1,
      headDim: 80,
      mask: { kind: 'window', left: 20, right: 0 },
    },
    poison: poisonKeys((_b, j, c) => j < c.seqK - c.seqQ - 20),
    expectNonfinite: false,
  });
  // A key hidden from some rows and seen by others (the diagonal tile of a causal mask): its NaN
  // or Inf must reach the rows that see it, in its column only, and no other row.
  cases.push({
    name: 'causal: NaN/+Inf in V at single keys reach exactly the rows (and columns) that see them',
    c: {
      dtype,
      batch: 1,
      seqQ: 150,
      seqK: 150,
      headsQ: 2,
      headsKV: 1,
      headDim: 96,
      mask: { kind: 'causal' },
    },
    poison: (input, c) => {
      const bits = BITS[c.dtype];
      (input.v as Uint16Array)[kvIndex(input, 0, 70, 0) + 3] = bits.nan;
      (input.v as Uint16Array)[kvIndex(input, 0, 71, 0) + 5] = bits.inf;
      (input.v as Uint16Array)[kvIndex(input, 0, 140, 0) + 7] = bits.ninf;
    },
    expectNonfinite: true,
  });
  cases.push({
    name: 'window 10/3: NaN in V at one key reaches exactly the rows whose band holds it',
    c: {
      dtype,
      batch: 1,
      seqQ: 200,
      seqK: 333,
      headsQ: 2,
      headsKV: 2,
      headDim: 128,
      mask: { kind: 'window', left: 10, right: 3 },
    },
    poison: (input) => {
      const bits = BITS[input.dtype as CudaDType];
      for (const h of [0, 1]) (input.v as Uint16Array)[kvIndex(input, 0, 250, h) + 9] = bits.nan;
    },
    expectNonfinite: true,
  });
  // NaN in a visible q or k: the row is NaN, its LSE too (prefill and split-KV decode).
  cases.push({
    name: 'NaN in a visible q or k gives NaN rows and LSE (causal prefill)',
    c: {
      dtype,
      batch: 1,
      seqQ: 130,
      seqK: 130,
      headsQ: 2,
      headsKV: 1,
      headDim: 128,
      mask: { kind: 'causal' },
    },
    poison: (input) => {
      const bits = BITS[input.dtype as CudaDType];
      (input.q as Uint16Array)[qIndex(input, 0, 20, 1) + 11] = bits.nan;
      (input.k as Uint16Array)[kvIndex(input, 0, 100, 0) + 2] = bits.nan;
    },
    expectNonfinite: true,
  });
  cases.push({
    name: 'NaN in a visible q or k gives NaN rows and LSE (decode, split-KV)',
    c: { dtype, batch: 2, seqQ: 1, seqK: 8192, headsQ: 8, headsKV: 2, headDim: 128, seqLensK: [8192, 6000] },
    poison: (input) => {
      const bits = BITS[input.dtype as CudaDType];
      (input.q as Uint16Array)[qIndex(input, 0, 0, 3) + 1] = bits.nan;
      (input.k as Uint16Array)[kvIndex(input, 1, 5000, 1) + 0] = bits.nan;
    },
    expectNonfinite: true,
  });
}

/** Compared with the float64 reference by each entry's kind (NaN, +Inf, -Inf, finite) and value. */
async function run(b: CudaBackend, nc: NonFiniteCase): Promise<ReferenceErrors> {
  const input = randomInput(nc.c);
  nc.poison(input, nc.c);
  const { out, lse } = await b.attention(input);
  return compareToReference(input, out, lse);
}

const defaultPath = backend?.info.devices[0]?.details?.path;
const variants = [
  { label: 'default path', path: undefined },
  ...(defaultPath && defaultPath !== 'ampere'
    ? [{ label: 'ampere path (forced)', path: 'ampere' as const }]
    : []),
  { label: 'turing path (forced)', path: 'turing' as const },
  { label: 'volta path (forced)', path: 'volta' as const },
];
for (const { label, path } of variants) {
  const forced = !backend
    ? {}
    : path === undefined
      ? { backend }
      : await tryBackend({ path, ...(kernelDir ? { kernelDir } : {}) });
  if (backend && !forced.backend) console.warn(`[cuda] ${label} non-finite tests skipped: ${forced.reason}`);
  describe.skipIf(!forced.backend)(`cuda ${label}: non-finite values follow the float64 reference`, () => {
    for (const nc of cases) {
      it(`${nc.name}: ${describeCase(nc.c)}`, async () => {
        const b = forced.backend!;
        if (nc.c.seqQ === 1) expect(b.plan(nc.c).splitKV, 'decode case runs split-KV').toBeGreaterThan(1);
        const err = await run(b, nc);
        expect(err.bad, 'elements or LSEs whose NaN/Inf/finite class differs from the reference').toBe(0);
        expect(err.nonFinite > 0, 'the poison reaches rows that see it').toBe(nc.expectNonfinite);
        expect(err.out).toBeLessThan(TOL[nc.c.dtype]);
        expect(err.lse).toBeLessThan(TOL.lse);
      });
    }
  });
}
