// The execution contract on the simulator: the attention op passes core's op conformance suite
// (every other op is UNSUPPORTED), runs in stream order off the event loop, and reports each op's
// simulated timing.
import { FastAttentionError } from '@fastattention/core';
import { randomSeed, runOpConformance } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import { createBackend, type SimulationReport } from '../src/index.js';
import { WORK_TIMEOUT } from './helpers.js';

const seed = randomSeed();

describe(`ascend-sim executor (seed ${seed})`, { timeout: WORK_TIMEOUT }, () => {
  it('passes the op conformance suite for attention (flash and standard) and reports each op', async () => {
    const backend = await createBackend({ threads: 2 });
    const reports: SimulationReport[] = [];
    const executor = backend.createExecutor({ onReport: (r) => reports.push(r) });
    const results = (await runOpConformance(executor, { seed })).filter((r) => !r.skipped);
    const names = (d: string) =>
      ['flash', 'standard'].flatMap((a) => [
        `attention ${a} paged ${d} causal GQA 4/2, NaN in unused cache rows`,
        `attention ${a} dense ${d} window 5/2 GQA 6/2, a padding row`,
      ]);
    expect(results.map((r) => r.name).sort()).toEqual([...names('f16'), ...names('bf16')].sort());
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(reports).toHaveLength(8);
    expect(reports.filter((r) => r.kernel === 'fast-attention' && r.totalCycles > 0)).toHaveLength(4);
    expect(reports.filter((r) => r.kernel === 'standard' && r.totalCycles > 0)).toHaveLength(4);
    await backend.dispose();
  });

  it('refuses every other op, names it, and says which ops it supports', async () => {
    const backend = await createBackend({ threads: 1 });
    const executor = backend.createExecutor();
    expect(executor.supportsOp('attention', 'f16')).toBe(true);
    expect(executor.supportsOp('attention', 'f32')).toBe(false);
    expect(executor.supportsOp('linear')).toBe(false);
    const a = executor.empty('f16', [2, 3]);
    const error = (() => {
      try {
        executor.run({ op: 'add', a, b: a, out: a });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(FastAttentionError);
    expect(error).toMatchObject({ code: 'UNSUPPORTED', field: 'op' });
    await backend.dispose();
    expect(() => executor.empty('f16', [1])).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });
});
