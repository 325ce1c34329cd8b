import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttentionInput } from '@fastattention/core';
import { describe, expect, it } from 'vitest';
import { createBackend } from '../src/index.js';
import {
  compare,
  LSE_TOLERANCE,
  OUT_TOLERANCE,
  REAL_WORK_TIMEOUT_MS,
  randomInput,
  reference,
} from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The same values on a SharedArrayBuffer. */
function shared<T extends Float32Array | Uint16Array>(array: T): T {
  const copy = new (array.constructor as new (buffer: SharedArrayBuffer) => T)(
    new SharedArrayBuffer(array.byteLength),
  );
  copy.set(array);
  return copy;
}

describe('inputs on a SharedArrayBuffer', () => {
  it.each(['f32', 'f16'] as const)(
    'are read in place (%s, prefill and decode)',
    async (dtype) => {
      const backend = await createBackend({ threads: 2 });
      for (const seqQ of [1, 20]) {
        const input = randomInput({
          name: '',
          dtype,
          batch: 2,
          seqQ,
          seqK: 70,
          headsQ: 4,
          headsKV: 2,
          headDim: 64,
          mask: { kind: 'causal' },
          seqLensK: [70, 33],
        });
        const onShared = {
          ...input,
          q: shared(input.q),
          k: shared(input.k),
          v: shared(input.v),
          seqLensK: new Int32Array(new SharedArrayBuffer(8)).fill(0).map((_, b) => input.seqLensK![b]!),
        } as AttentionInput;
        const errors = compare(await backend.attention(onShared), reference(input), dtype);
        expect(errors.bad).toBe(0);
        expect(errors.out).toBeLessThanOrEqual(OUT_TOLERANCE[dtype]);
        expect(errors.lse).toBeLessThanOrEqual(LSE_TOLERANCE);
      }
      await backend.dispose();
    },
    REAL_WORK_TIMEOUT_MS,
  );
});

describe('inputs whose memory goes away during a call', () => {
  it('plain ArrayBuffers are marked untransferable (a transfer copies or throws); resizable ones are copied', async () => {
    const backend = await createBackend({ threads: 1 });
    const input = randomInput({
      name: '',
      dtype: 'f32',
      batch: 1,
      seqQ: 4,
      seqK: 8,
      headsQ: 1,
      headsKV: 1,
      headDim: 16,
    });
    // Resizable ArrayBuffers are ES2024 (Node 20 has them; this package's lib is ES2023).
    const Resizable = ArrayBuffer as unknown as new (
      bytes: number,
      options: { maxByteLength: number },
    ) => ArrayBuffer;
    const resizable = new Float32Array(
      new Resizable(input.k.byteLength, { maxByteLength: input.k.byteLength }),
    );
    resizable.set(input.k);
    await backend.attention({ ...input, k: resizable });
    const transfer = (buffer: ArrayBuffer): void => {
      try {
        structuredClone(buffer, { transfer: [buffer] });
      } catch {
        // Node 22+: DataCloneError for an untransferable buffer
      }
    };
    transfer(input.q.buffer as ArrayBuffer);
    expect(input.q.byteLength).toBe(4 * 16 * 4); // Node 20: copied, not detached
    transfer(resizable.buffer as ArrayBuffer);
    expect(resizable.byteLength).toBe(0); // not marked: the call read a copy
    await backend.dispose();
  });

  const dist = join(here, '..', 'dist', 'index.js');
  // Each scenario crashed the process (SIGSEGV) before: the workers read freed or unmapped memory.
  it.each(['resize', 'structuredClone', 'postMessage'])(
    'the process survives and the result is unchanged: %s',
    async (mode) => {
      expect(existsSync(dist), 'the child process imports dist/: run the build first').toBe(true);
      const { code, stdout, stderr } = await new Promise<{
        code: number | null;
        stdout: string;
        stderr: string;
      }>((resolve) => {
        execFile(
          process.execPath,
          ['--expose-gc', join(here, 'fixtures', 'inputs-vanish-during-call.mjs'), mode],
          { timeout: 50_000 },
          (error, stdout, stderr) =>
            resolve({ code: error ? ((error.code as number) ?? null) : 0, stdout, stderr }),
        );
      });
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(stdout.trim())).toMatchObject({ ok: true });
    },
    REAL_WORK_TIMEOUT_MS,
  );
});
