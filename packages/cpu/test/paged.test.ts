import type { AttentionShape, MaskSpec, PlanOptions } from '@fastattention/core';
import { randomPagedCase, randomSeed, rng } from '@fastattention/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  backendCache,
  compare,
  LSE_TOLERANCE,
  OUT_TOLERANCE,
  REAL_WORK_TIMEOUT_MS,
  reference,
  runnableIsas,
  TEST_DTYPES,
} from './helpers.js';

// Paged KV on every kernel path and ISA: tiles that span several cache blocks (block sizes smaller
// than, equal to and larger than the k-tile), rows sharing blocks, NaN in every unused slot and
// spare block, garbage table entries past each row. The result must match the reference within
// the contract's tolerance (a tile that spans cache blocks runs as several key runs, so it is not
// bitwise the dense call: the online softmax rescales at different points). Standard attention
// gathers a paged cache block by block and must match too.

const ISAS = runnableIsas();
const DTYPES = TEST_DTYPES;
const seed = randomSeed();

interface PagedCase {
  readonly name: string;
  readonly path: 'prefill' | 'decode kernel' | 'all-heads';
  readonly shape: AttentionShape;
  readonly mask?: MaskSpec;
  readonly tiling?: PlanOptions;
}

const CASES: PagedCase[] = [
  {
    name: 'prefill, causal, chunked against a longer cache',
    path: 'prefill',
    shape: { batch: 3, seqQ: 37, seqK: 150, headsQ: 4, headsKV: 2, headDim: 40 },
    mask: { kind: 'causal' },
  },
  {
    name: 'prefill, window 9/2',
    path: 'prefill',
    shape: { batch: 2, seqQ: 50, seqK: 90, headsQ: 2, headsKV: 1, headDim: 64 },
    mask: { kind: 'window', left: 9, right: 2 },
  },
  {
    name: 'decode, GQA 8:2',
    path: 'decode kernel',
    shape: { batch: 2, seqQ: 1, seqK: 700, headsQ: 8, headsKV: 2, headDim: 64 },
  },
  {
    name: 'decode seqQ 3, all heads, causal, split-KV',
    path: 'all-heads',
    shape: { batch: 2, seqQ: 3, seqK: 400, headsQ: 8, headsKV: 2, headDim: 64 },
    mask: { kind: 'causal' },
    tiling: { blockK: 64, splitKV: 3 },
  },
];

const backends = backendCache();
afterAll(() => backends.disposeAll());

describe.each(CASES)(`$name (seed ${seed})`, (c) => {
  it.each(ISAS)(
    'matches the reference on the %s kernel, block sizes 1 to 256',
    async (isa) => {
      const backend = await backends.get(isa, c.tiling);
      const rand = rng(seed);
      for (const dtype of DTYPES)
        for (const blockSize of [1, 16, 64, 256]) {
          const { paged } = randomPagedCase(rand, dtype, c.shape, {
            blockSize,
            sharedBlocks: 2,
            ...(c.mask ? { mask: c.mask } : {}),
          });
          const plan = backend.explain(paged);
          expect(plan.decode).toBe(c.path === 'decode kernel');
          const got = await backend.attention(paged);
          const errors = compare(got, reference(paged), dtype);
          expect(errors.bad, `${dtype} block ${blockSize}`).toBe(0);
          expect(errors.out, `${dtype} block ${blockSize}`).toBeLessThan(OUT_TOLERANCE[dtype]);
          expect(errors.lse, `${dtype} block ${blockSize}`).toBeLessThan(LSE_TOLERANCE);
        }
    },
    REAL_WORK_TIMEOUT_MS,
  );
});

describe(`standardAttention over a paged cache (seed ${seed})`, () => {
  it.each(ISAS)(
    'gathers the blocks and matches the reference on the %s kernel, every case, blocks 1, 16 and 64',
    async (isa) => {
      const backend = await backends.get(isa);
      const rand = rng(seed + 1);
      for (const c of CASES)
        for (const dtype of DTYPES)
          for (const blockSize of [1, 16, 64]) {
            const { paged } = randomPagedCase(rand, dtype, c.shape, {
              blockSize,
              sharedBlocks: 2,
              ...(c.mask ? { mask: c.mask } : {}),
            });
            const got = await backend.standardAttention(paged);
            const errors = compare(got, reference(paged), dtype);
            const at = `${c.name}, ${dtype} block ${blockSize}`;
            expect(errors.bad, at).toBe(0);
            expect(errors.out, at).toBeLessThan(OUT_TOLERANCE[dtype]);
            expect(errors.lse, at).toBeLessThan(LSE_TOLERANCE);
          }
    },
    REAL_WORK_TIMEOUT_MS,
  );
});
