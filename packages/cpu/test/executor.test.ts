// The execution contract on the cpu: the attention op passes core's op conformance suite in every
// dtype on the backend's thread pool; other ops are UNSUPPORTED until their kernels exist.
import { randomSeed, runOpConformance } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import { createBackend } from '../src/index.js';
import { REAL_WORK_TIMEOUT_MS } from './helpers.js';

const seed = randomSeed();

describe(`cpu executor (seed ${seed})`, { timeout: REAL_WORK_TIMEOUT_MS }, () => {
  it('runs the attention op as the reference does, and refuses the ops it has no kernels for', async () => {
    const backend = await createBackend({ threads: 2 });
    const executor = backend.createExecutor();
    const all = await runOpConformance(executor, { seed });
    const results = all.filter((r) => !r.skipped);
    expect(all.length).toBeGreaterThan(results.length); // the other ops are listed as skipped
    expect(results.map((r) => r.name)).toEqual([
      'attention paged f32 causal GQA 4/2',
      'attention paged f16 causal GQA 4/2',
      'attention paged bf16 causal GQA 4/2',
    ]);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(executor.supportsOp('linear')).toBe(false);
    const x = executor.empty('f32', [2, 3]);
    expect(() => executor.run({ op: 'add', a: x, b: x, out: x })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'op' }),
    );
    await backend.dispose();
    expect(x.disposed).toBe(true);
    expect(() => backend.createExecutor()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });
});
