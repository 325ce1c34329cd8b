import { describe, expect, it } from 'vitest';
import {
  type AttentionProblem,
  classifyBatch,
  estimateCost,
  FastAttentionError,
  type HardwareSpec,
  planTiles,
  workItems,
} from '../src/index.js';
import { randInt, randomSeed, rng } from './helpers.js';

const cpuLike = (units: number, l1: number, l2: number): HardwareSpec => ({
  name: `test-cpu-${units}`,
  kind: 'cpu',
  parallelUnits: units,
  nativeTile: { m: 1, n: 16, k: 1 },
  memory: [
    { name: 'L2', bytes: l2, tileLevel: 'first', holds: ['q', 'k', 'v', 'o', 'stats'] },
    { name: 'L1', bytes: l1, tileLevel: 'second', holds: ['s', 'o'], alignment: 64 },
  ],
  peakFlops: 1e11 * units,
  memoryBandwidth: 2e10,
});

const gpuLike: HardwareSpec = {
  name: 'test-gpu',
  kind: 'gpu',
  parallelUnits: 132,
  nativeTile: { m: 16, n: 8, k: 16 },
  memory: [
    { name: 'shared', bytes: 227 * 1024, tileLevel: 'first', holds: ['q', 'k', 'v'], buffers: 2 },
    { name: 'registers', bytes: 64 * 1024, tileLevel: 'second', holds: ['s', 'o'] },
  ],
  configs: [
    { name: '128x64', blockQ: 128, blockK: 64, subQ: 16, subK: 64, stages: 2 },
    { name: '64x64', blockQ: 64, blockK: 64, subQ: 16, subK: 64, stages: 2 },
    { name: '64x128-hd64', blockQ: 64, blockK: 128, subQ: 16, subK: 128, stages: 2, headDims: [64] },
  ],
};

function randomProblem(rand: () => number): AttentionProblem {
  const headsKV = randInt(rand, 1, 4);
  return {
    dtype: rand() < 0.5 ? 'f16' : 'f32',
    batch: randInt(rand, 1, 8),
    seqQ: rand() < 0.3 ? randInt(rand, 1, 4) : randInt(rand, 1, 5000),
    seqK: randInt(rand, 1, 40000),
    headsQ: headsKV * randInt(rand, 1, 4),
    headsKV,
    headDim: 8 * randInt(rand, 2, 32),
  };
}

describe('planTiles', () => {
  it('never exceeds a capacity of the spec and covers every output element exactly once', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 60; t++) {
      const spec = cpuLike(
        randInt(rand, 1, 64),
        32 * 1024 * randInt(rand, 1, 2),
        256 * 1024 * randInt(rand, 1, 8),
      );
      const problem = randomProblem(rand);
      const plan = planTiles(problem, spec);
      const where = `seed ${seed} case ${t} ${JSON.stringify(problem)} -> ${plan.blockQ}x${plan.blockK}/${plan.subQ}x${plan.subK} split ${plan.splitKV}`;
      for (const use of plan.bufferUse)
        expect(use.bytes, `${where} ${use.level}`).toBeLessThanOrEqual(use.capacity);
      expect(plan.blockQ % plan.subQ, where).toBe(0);
      expect(plan.blockK % plan.subK, where).toBe(0);
      expect(plan.reasons.length, where).toBeGreaterThan(0);

      // coverage: every (q-block, k-block) pair of one (batch, head) exactly once, and the
      // q-blocks partition the rows
      const small = { ...problem, batch: 1, headsQ: 1, headsKV: 1 };
      const coverage = new Uint8Array(plan.qBlocks * plan.kBlocks);
      const rows = new Uint8Array(problem.seqQ);
      let items = 0;
      for (const w of workItems(small, plan)) {
        items++;
        const qb = w.qStart / plan.blockQ;
        for (let kb = w.kBlockStart; kb < w.kBlockEnd; kb++) coverage[qb * plan.kBlocks + kb]!++;
        if (w.split === 0) for (let i = w.qStart; i < w.qEnd; i++) rows[i]!++;
      }
      expect(items * problem.batch * problem.headsQ, where).toBe(plan.workItems);
      expect(
        rows.every((c) => c === 1),
        where,
      ).toBe(true);
      expect(
        coverage.every((c) => c === 1),
        where,
      ).toBe(true);
    }
  });

  it('splits the keys of decode across idle units, and not prefill', () => {
    const spec = cpuLike(32, 48 * 1024, 2 * 1024 * 1024);
    const decode = planTiles(
      { dtype: 'f16', batch: 1, seqQ: 1, seqK: 32768, headsQ: 4, headsKV: 4, headDim: 128 },
      spec,
    );
    expect(decode.splitKV).toBe(8); // 4 heads x 8 splits = one full wave of 32 units
    expect(decode.workItems).toBe(32);
    const gqa = planTiles(
      { dtype: 'f16', batch: 1, seqQ: 1, seqK: 32768, headsQ: 8, headsKV: 8, headDim: 128 },
      {
        ...spec,
        parallelUnits: 132,
      },
    );
    expect(gqa.workItems).toBeLessThanOrEqual(132); // 8 x 16, not 8 x 17 = 136 (a second wave)
    expect(gqa.splitKV).toBe(16);
    expect(decode.reasons.join('\n')).toMatch(/split-KV/);
    const prefill = planTiles(
      { dtype: 'f16', batch: 4, seqQ: 4096, seqK: 4096, headsQ: 32, headsKV: 32, headDim: 128 },
      spec,
    );
    expect(prefill.splitKV).toBe(1);
  });

  it('chooses among compiled configurations only, honouring their head dims', () => {
    const p: AttentionProblem = {
      dtype: 'f16',
      batch: 4,
      seqQ: 4096,
      seqK: 4096,
      headsQ: 32,
      headsKV: 8,
      headDim: 128,
    };
    const plan = planTiles(p, gpuLike);
    expect(['128x64', '64x64']).toContain(plan.config);
    expect(planTiles({ ...p, headDim: 64 }, gpuLike, { blockK: 128 }).config).toBe('64x128-hd64');
  });

  it('honours forced first-level blocks (single- vs two-level comparisons)', () => {
    const plan = planTiles(
      { dtype: 'f16', batch: 1, seqQ: 2048, seqK: 2048, headsQ: 8, headsKV: 8, headDim: 128 },
      cpuLike(8, 48 * 1024, 2 * 1024 * 1024),
      { blockQ: 64, blockK: 64 },
    );
    expect([plan.blockQ, plan.blockK]).toEqual([64, 64]);
  });

  it('ranks candidates with a caller-supplied cost model when given one', () => {
    const p: AttentionProblem = {
      dtype: 'f16',
      batch: 1,
      seqQ: 2048,
      seqK: 2048,
      headsQ: 8,
      headsKV: 8,
      headDim: 64,
    };
    const spec = cpuLike(8, 48 * 1024, 2 * 1024 * 1024);
    // a model that wants the squarest 64x64 block, whatever the built-in model thinks
    const plan = planTiles(p, spec, {
      score: (c) => Math.abs(c.blockQ - 64) + Math.abs(c.blockK - 64) + 1 / c.subK,
    });
    expect([plan.blockQ, plan.blockK, plan.subK]).toEqual([64, 64, 64]);
    expect(plan.reasons.join('\n')).toMatch(/caller-scored/);
  });

  it('rejects with UNSUPPORTED naming headDim when nothing fits', () => {
    const tiny = cpuLike(4, 1024, 4096);
    const run = () =>
      planTiles({ dtype: 'f32', batch: 1, seqQ: 64, seqK: 64, headsQ: 1, headsKV: 1, headDim: 256 }, tiny);
    expect(run).toThrow(FastAttentionError);
    expect(run).toThrow(expect.objectContaining({ code: 'UNSUPPORTED', field: 'headDim' }));
  });
});

describe('estimateCost', () => {
  it('counts causal work over non-empty tiles: about half of dense', () => {
    const p: AttentionProblem = {
      dtype: 'f16',
      batch: 1,
      seqQ: 4096,
      seqK: 4096,
      headsQ: 8,
      headsKV: 8,
      headDim: 128,
    };
    const spec = cpuLike(8, 48 * 1024, 2 * 1024 * 1024);
    const plan = planTiles(p, spec, { blockQ: 128, blockK: 128 });
    const causal = classifyBatch({ kind: 'causal' }, p, plan, Int32Array.of(4096)).maps;
    const none = classifyBatch({ kind: 'none' }, p, plan, Int32Array.of(4096)).maps;
    const c = estimateCost(p, plan, causal, spec);
    const n = estimateCost(p, plan, none, spec);
    expect(n.flops).toBe(n.denseFlops);
    expect(c.flops / n.flops).toBeGreaterThan(0.5);
    expect(c.flops / n.flops).toBeLessThan(0.52);
    expect(c.usefulFlops).toBeLessThan(c.flops);
    expect(c.tiles.empty).toBe((32 * 31) / 2);
    expect(c.seconds!.total).toBeGreaterThan(0);
    expect(c.bytesMoved).toBeLessThan(n.bytesMoved);
  });
});

describe('planTiles memoisation', () => {
  it('returns the same plan for the same spec, shape and options, and plans anew otherwise', () => {
    const spec = cpuLike(4, 48 * 1024, 1024 * 1024);
    const shape = {
      dtype: 'f16',
      batch: 1,
      seqQ: 777,
      seqK: 1025,
      headsQ: 8,
      headsKV: 2,
      headDim: 64,
    } as const;
    const first = planTiles(shape, spec);
    expect(planTiles({ ...shape }, spec)).toBe(first);
    expect(planTiles({ ...shape, seqK: 1026 }, spec)).not.toBe(first);
    expect(planTiles(shape, spec, { splitKV: 1 })).not.toBe(first);
    expect(planTiles(shape, { ...spec })).not.toBe(first); // specs are told apart by identity
    expect(planTiles(shape, { ...spec })).toEqual(first);
    const score = () => 1;
    expect(planTiles(shape, spec, { score })).not.toBe(planTiles(shape, spec, { score }));
  });
});
