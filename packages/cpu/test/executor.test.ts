// The execution contract on the cpu: every op but sample passes core's op conformance suite in
// every dtype, natively on the backend's thread pool.
import { randomSeed, runOpConformance } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import { createBackend } from '../src/index.js';
import { REAL_WORK_TIMEOUT_MS } from './helpers.js';

const seed = randomSeed();

describe(`cpu executor (seed ${seed})`, { timeout: REAL_WORK_TIMEOUT_MS }, () => {
  it('runs every op but sample as the reference does, and refuses sample', async () => {
    const backend = await createBackend({ threads: 2 });
    const executor = backend.createExecutor();
    const all = await runOpConformance(executor, { seed });
    const failures = all.filter((r) => !r.skipped && !r.ok);
    expect(failures).toEqual([]);
    const skipped = [...new Set(all.filter((r) => r.skipped).map((r) => r.name.split(' ')[0]))];
    expect(skipped).toEqual(['sample']);
    expect(all.filter((r) => !r.skipped).length).toBeGreaterThan(30);
    expect(executor.supportsOp('linear', 'bf16')).toBe(true);
    expect(executor.supportsOp('sample')).toBe(false);
    const logits = executor.empty('f32', [2, 3]);
    await backend.dispose();
    expect(logits.disposed).toBe(true);
    expect(() => backend.createExecutor()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });
});
