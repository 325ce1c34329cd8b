// Paged KV in the contract: validation of pagedKV, and the reference reading keys through the block
// table. The reference on a paged cache must equal the reference on the dense twin exactly (same
// keys, same order of summation), whatever the unused slots, spare blocks and table tail hold.
import { describe, expect, it } from 'vitest';
import {
  type AttentionInput,
  type BackendCapabilities,
  exactAttention,
  FastAttentionError,
  type MaskSpec,
  mergePartials,
  standardAttention,
  validateAttentionInput,
  validateAttentionShape,
} from '../src/index.js';
import { randomPagedCase, randomSeed, rng } from '../src/testing/index.js';

const seed = randomSeed();
const MASKS: MaskSpec[] = [{ kind: 'none' }, { kind: 'causal' }, { kind: 'window', left: 9, right: 2 }];

function expectSame(paged: AttentionInput, dense: AttentionInput): void {
  const a = exactAttention(validateAttentionInput(paged));
  const b = exactAttention(validateAttentionInput(dense));
  expect(Array.from(a.out)).toEqual(Array.from(b.out));
  expect(Array.from(a.lse)).toEqual(Array.from(b.lse));
}

describe(`paged KV reference (seed ${seed})`, () => {
  const rand = rng(seed);

  it('equals the dense reference for every mask, chunked prefill, decode and GQA, with shared blocks and NaN garbage', () => {
    for (const mask of MASKS)
      for (const blockSize of [1, 16, 64, 256])
        for (const shape of [
          { batch: 3, seqQ: 7, seqK: 90, headsQ: 4, headsKV: 2, headDim: 8 },
          { batch: 2, seqQ: 1, seqK: 300, headsQ: 6, headsKV: 1, headDim: 16 },
        ]) {
          const { paged, dense } = randomPagedCase(rand, 'f32', shape, { blockSize, mask, sharedBlocks: 2 });
          expectSame(paged, dense);
        }
  });

  it('reads f16 and bf16 caches, and rows that share every block', () => {
    for (const dtype of ['f16', 'bf16'] as const) {
      const shape = { batch: 4, seqQ: 3, seqK: 64, headsQ: 2, headsKV: 2, headDim: 8 };
      const lens = [64, 64, 64, 64];
      const { paged, dense } = randomPagedCase(rand, dtype, shape, {
        blockSize: 16,
        seqLensK: lens,
        sharedBlocks: 4,
      });
      const table = paged.pagedKV!.blockTable;
      // Every row points at row 0's four blocks.
      for (let b = 1; b < 4; b++)
        expect(Array.from(table.subarray(b * 5, b * 5 + 4))).toEqual(Array.from(table.subarray(0, 4)));
      expectSame(paged, dense);
    }
  });

  it('shares a block with a row shorter than it, whose keys past that row stay unread', () => {
    const shape = { batch: 3, seqQ: 2, seqK: 100, headsQ: 2, headsKV: 1, headDim: 8 };
    const { paged, dense } = randomPagedCase(rand, 'f32', shape, {
      blockSize: 64,
      seqLensK: [100, 5, 70],
      sharedBlocks: 1,
    });
    const table = paged.pagedKV!.blockTable;
    const perRow = paged.pagedKV!.blocksPerSeq;
    // Rows 1 (5 keys) and 2 (70 keys) both read row 0's first block, which holds 64 of its keys.
    for (const b of [1, 2]) expect(table[b * perRow]).toBe(table[0]);
    expect(table[2 * perRow + 1]).not.toBe(table[1]);
    expectSame(paged, dense);
  });

  it('leaves a row with no valid key at zeros and -Infinity', () => {
    const shape = { batch: 2, seqQ: 2, seqK: 40, headsQ: 2, headsKV: 1, headDim: 4 };
    const { paged } = randomPagedCase(rand, 'f32', shape, { blockSize: 8, seqLensK: [40, 0] });
    const ref = exactAttention(validateAttentionInput(paged));
    expect(Array.from(ref.lse.subarray(4))).toEqual([-Infinity, -Infinity, -Infinity, -Infinity]);
    expect(ref.out.subarray(16).every((x) => x === 0)).toBe(true);
  });

  it('attention over two disjoint block sets, merged by LSE, equals attention over their union', () => {
    // Decode (one query row per head, batch 1), so out rows and lse rows line up for mergePartials.
    const shape = { batch: 1, seqQ: 1, seqK: 200, headsQ: 4, headsKV: 2, headDim: 8 };
    const { paged } = randomPagedCase(rand, 'f32', shape, { blockSize: 16, seqLensK: [200] });
    const full = exactAttention(validateAttentionInput(paged));
    const table = paged.pagedKV!.blockTable;
    const part = (from: number, to: number) => {
      const blocks = table.slice(from, to);
      return exactAttention(
        validateAttentionInput({
          ...paged,
          seqK: Math.min(200, blocks.length * 16),
          seqLensK: Int32Array.of(Math.min(200, to * 16) - from * 16),
          pagedKV: { blockSize: 16, blockTable: blocks, blocksPerSeq: blocks.length },
        }),
      );
    };
    const merged = mergePartials([part(0, 5), part(5, 13)], shape.headsQ, shape.headDim);
    for (let i = 0; i < full.out.length; i++) expect(merged.out[i]).toBeCloseTo(full.out[i]!, 12);
    for (let i = 0; i < full.lse.length; i++) expect(merged.lse[i]).toBeCloseTo(full.lse[i]!, 12);
  });

  it('standard attention reads the same keys', () => {
    const shape = { batch: 2, seqQ: 5, seqK: 50, headsQ: 2, headsKV: 2, headDim: 8 };
    const { paged, dense } = randomPagedCase(rand, 'f32', shape, { blockSize: 16, mask: { kind: 'causal' } });
    expect(Array.from(standardAttention(paged).out)).toEqual(Array.from(standardAttention(dense).out));
  });
});

describe('pagedKV validation', () => {
  const base = () => {
    const shape = { batch: 2, seqQ: 2, seqK: 20, headsQ: 2, headsKV: 1, headDim: 4 };
    return randomPagedCase(rng(7), 'f32', shape, { blockSize: 8, seqLensK: [20, 9] }).paged;
  };
  const reject = (input: unknown, code: string, field: string, capabilities?: BackendCapabilities) => {
    try {
      validateAttentionInput(input as AttentionInput, capabilities);
    } catch (error) {
      expect(error).toBeInstanceOf(FastAttentionError);
      expect((error as FastAttentionError).code).toBe(code);
      expect((error as FastAttentionError).field).toBe(field);
      return;
    }
    throw new Error('accepted');
  };
  const withPaged = (change: Record<string, unknown>) => {
    const x = base();
    return { ...x, pagedKV: { ...x.pagedKV!, ...change } };
  };

  it('accepts the case, copies the table and infers numBlocks from k', () => {
    const x = base();
    const resolved = validateAttentionInput(x);
    expect(resolved.pagedKV!.numBlocks).toBe(x.k.length / (8 * 1 * 4));
    expect(resolved.pagedKV!.blockTable).not.toBe(x.pagedKV!.blockTable);
    expect(Array.from(resolved.pagedKV!.blockTable)).toEqual(Array.from(x.pagedKV!.blockTable));
  });

  it('ignores table entries past each row', () => {
    const x = base();
    const table = x.pagedKV!.blockTable.slice();
    table[2] = -5; // row 0 needs entries 0..2 (20 keys of 8): entry 2 is used
    reject({ ...x, pagedKV: { ...x.pagedKV, blockTable: table } }, 'INVALID_INPUT', 'pagedKV.blockTable[2]');
    table[2] = x.pagedKV!.blockTable[2]!;
    table[3] = -5; // row 0's fourth entry, past its 20 keys
    table[6] = 1e9; // row 1 (9 keys) reads entries 4 and 5 only
    expect(() =>
      validateAttentionInput({ ...x, pagedKV: { ...x.pagedKV!, blockTable: table } }),
    ).not.toThrow();
  });

  it('rejects each bad field by name', () => {
    reject(withPaged({ blockSize: 12 }), 'INVALID_INPUT', 'pagedKV.blockSize');
    reject(withPaged({ blockSize: 0 }), 'INVALID_INPUT', 'pagedKV.blockSize');
    reject(withPaged({ blocksPerSeq: 0 }), 'INVALID_INPUT', 'pagedKV.blocksPerSeq');
    reject(withPaged({ blocksPerSeq: 2 }), 'INVALID_INPUT', 'seqK'); // 2 x 8 < 20 keys
    reject(withPaged({ blockTable: [0, 1, 2, 3, 4, 5, 6, 7] }), 'INVALID_INPUT', 'pagedKV.blockTable');
    reject(withPaged({ blockTable: new Int32Array(3) }), 'INVALID_INPUT', 'pagedKV.blockTable');
    reject(withPaged({ numBlocks: 1 }), 'INVALID_INPUT', 'k');
    reject({ ...base(), pagedKV: 'yes' }, 'INVALID_INPUT', 'pagedKV');
    reject({ ...base(), seqLensK: undefined }, 'INVALID_INPUT', 'seqLensK');
    const x = base();
    reject({ ...x, k: x.k.subarray(3) }, 'INVALID_INPUT', 'k');
    reject({ ...x, v: x.v.subarray(32) }, 'INVALID_INPUT', 'v');
  });

  it('answers UNSUPPORTED where a backend does not read paged caches or the block size', () => {
    const caps: BackendCapabilities = { dtypes: ['f32'], headDims: { kind: 'any' }, masks: ['none'] };
    reject(base(), 'UNSUPPORTED', 'pagedKV', caps);
    reject(base(), 'UNSUPPORTED', 'pagedKV.blockSize', {
      ...caps,
      pagedKV: { minBlockSize: 16, maxBlockSize: 256 },
    });
  });

  it('needs numBlocks when there is no k to count', () => {
    const { q: _q, k: _k, v: _v, ...problem } = base();
    expect(() => validateAttentionShape(problem)).toThrow(/pagedKV\.numBlocks/);
    expect(
      validateAttentionShape({ ...problem, pagedKV: { ...problem.pagedKV!, numBlocks: 7 } }).pagedKV!
        .numBlocks,
    ).toBe(7);
  });
});
