// The execution contract on the cpu: every op passes core's op conformance suite in every dtype,
// natively on the backend's thread pool.
import { OP_KINDS } from '@fastattention/core';
import { randomSeed, runOpConformance } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import { createBackend } from '../src/index.js';
import { REAL_WORK_TIMEOUT_MS } from './helpers.js';

const seed = randomSeed();

describe(`cpu executor (seed ${seed})`, { timeout: REAL_WORK_TIMEOUT_MS }, () => {
  it('runs every op as the reference does', async () => {
    const backend = await createBackend({ threads: 2 });
    const executor = backend.createExecutor();
    const all = await runOpConformance(executor, { seed });
    const failures = all.filter((r) => !r.skipped && !r.ok);
    expect(failures).toEqual([]);
    expect(all.filter((r) => r.skipped)).toEqual([]);
    expect(all.length).toBeGreaterThan(30);
    for (const kind of OP_KINDS) expect(executor.supportsOp(kind, 'bf16')).toBe(true);
    const logits = executor.empty('f32', [2, 3]);
    await backend.dispose();
    expect(logits.disposed).toBe(true);
    expect(() => backend.createExecutor()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });
});
