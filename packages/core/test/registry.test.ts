import { describe, expect, it, vi } from 'vitest';
import {
  type Backend,
  BackendRegistry,
  createReferenceBackend,
  FastAttentionError,
  referenceProvider,
  resolveBackend,
} from '../src/index.js';

const failing = (name: string, priority: number, reason: string) => ({
  name,
  priority,
  create: async (): Promise<Backend> => {
    throw new FastAttentionError('UNAVAILABLE', reason);
  },
});

const named = (name: string, priority: number) => ({
  name,
  priority,
  create: async (): Promise<Backend> => ({ ...createReferenceBackend(), name }),
});

declare module '../src/index.js' {
  interface BackendOptionsMap {
    typed: { readonly level: number };
  }
}

describe('backend registry', () => {
  it('passes each backend its own options, merged over the shared ones, and type-checks them', async () => {
    const registry = new BackendRegistry();
    const seen: Record<string, unknown> = {};
    const recording = (name: string, priority: number) => ({
      name,
      priority,
      create: async (options?: Record<string, unknown>): Promise<Backend> => {
        seen[name] = options;
        if (name === 'typed') throw new FastAttentionError('UNAVAILABLE', 'not here');
        return { ...createReferenceBackend(), name };
      },
    });
    registry.register(recording('typed', 2));
    registry.register(recording('other', 1));
    await registry.resolve({
      options: { threads: 2 },
      backendOptions: { typed: { level: 3 }, other: { threads: 1 } },
      onFallback: false,
    });
    expect(seen).toEqual({ typed: { threads: 2, level: 3 }, other: { threads: 1 } });
    // @ts-expect-error: 'typed' declares level as a number
    await registry.resolve({ backendOptions: { typed: { level: 'high' } }, onFallback: false });
  });

  it('falls back by priority past unusable backends', async () => {
    const registry = new BackendRegistry();
    registry.register(referenceProvider);
    registry.register(failing('gpu', 100, 'no CUDA driver'));
    registry.register(named('cpu', 10));
    expect((await registry.resolve()).name).toBe('cpu');
  });

  it('warns once per backend and reason when it falls back past an installed backend', async () => {
    const registry = new BackendRegistry();
    registry.register(referenceProvider);
    registry.register(failing('gpu', 100, 'no CUDA driver'));
    registry.register(named('cpu', 10));
    const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      await registry.resolve();
      await registry.resolve();
      expect(emit.mock.calls).toEqual([
        [
          "backend 'gpu' is unusable, using 'cpu' instead: no CUDA driver",
          { type: 'FastAttentionWarning', code: 'FASTATTN_FALLBACK' },
        ],
      ]);
      const seen: unknown[] = [];
      await registry.resolve({ onFallback: (f) => seen.push(f) });
      expect(seen).toEqual([{ skipped: 'gpu', reason: 'no CUDA driver', chosen: 'cpu' }]);
      await registry.resolve({ onFallback: false });
      expect(emit).toHaveBeenCalledTimes(1);
    } finally {
      emit.mockRestore();
    }
  });

  it('explains in one error why each backend was not usable', async () => {
    const registry = new BackendRegistry();
    registry.register(failing('gpu', 100, 'no CUDA driver'));
    registry.register(failing('cpu', 10, 'addon not built'));
    const error = await registry.resolve().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FastAttentionError);
    expect(error).toMatchObject({ code: 'UNAVAILABLE' });
    expect((error as Error).message).toMatch(/gpu: no CUDA driver/);
    expect((error as Error).message).toMatch(/cpu: addon not built/);
  });

  it('honours prefer, only and exclude, and rejects unknown names', async () => {
    const registry = new BackendRegistry();
    registry.register(named('a', 5));
    registry.register(named('b', 1));
    expect((await registry.resolve({ prefer: ['b'] })).name).toBe('b');
    expect((await registry.resolve({ exclude: ['a'] })).name).toBe('b');
    await expect(registry.resolve({ prefer: ['zzz'] })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      field: 'prefer',
    });
    await expect(registry.resolve({ prefer: ['a'], only: true, exclude: ['a'] })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });

  it('never picks a simulated backend unless it is named', async () => {
    const registry = new BackendRegistry();
    registry.register(referenceProvider);
    registry.register({ ...named('sim', 50), simulated: true });
    expect((await registry.resolve()).name).toBe('reference');
    expect((await registry.resolve({ prefer: ['sim'] })).name).toBe('sim');
  });

  it('probes every backend and reports usable ones with their info, others with the reason', async () => {
    const registry = new BackendRegistry();
    registry.register(referenceProvider);
    registry.register(failing('gpu', 100, 'no device'));
    const results = await registry.probe();
    expect(results.map((r) => [r.name, r.usable])).toEqual([
      ['gpu', false],
      ['reference', true],
    ]);
    expect(results[0]).toMatchObject({ reason: 'no device' });
  });

  it('the default registry always has the reference backend', async () => {
    const backend = await resolveBackend({ prefer: ['reference'] });
    expect(backend.name).toBe('reference');
    await backend.dispose();
  });
});
