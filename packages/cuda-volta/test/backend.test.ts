import { classifyTiles, registerBackend, resolveBackend, TileKind } from '@fastattention/core';
import { describe, expect, it } from 'vitest';
import { candidatePaths, createBackend, cudaProvider, loadAddon, selectPath } from '../src/index.js';
import { tryBackend } from './helpers.js';

const loaded = loadAddon();
const addon = 'addon' in loaded ? loaded.addon : undefined;
if (!addon) console.warn(`[cuda] addon tests skipped: ${'reason' in loaded ? loaded.reason : ''}`);
const { backend, reason } = await tryBackend();

describe('path selection', () => {
  it('picks hopper on sm_90, ampere on sm_80 and newer, turing on sm_75, volta on sm_70', () => {
    expect(selectPath(90).name).toBe('hopper');
    expect(selectPath(80).name).toBe('ampere');
    expect(selectPath(100).name).toBe('ampere'); // sm_90a code does not run on later generations
    expect(selectPath(90, 'ampere').name).toBe('ampere');
    expect(selectPath(75).name).toBe('turing');
    expect(selectPath(70).name).toBe('volta');
  });
  it('falls back from hopper to ampere where a build has no sm_90a kernels', () => {
    expect(candidatePaths(90).map((p) => p.name)).toEqual(['hopper', 'ampere', 'turing', 'volta']);
    expect(candidatePaths(90, 'hopper').map((p) => p.name)).toEqual(['hopper']);
  });
  it('forces an older path on a newer device (how volta and turing are validated on an H100)', () => {
    expect(selectPath(90, 'volta').name).toBe('volta');
    expect(selectPath(90, 'turing').name).toBe('turing');
  });
  it('rejects forcing an unknown path, or one newer than the device, with UNSUPPORTED', () => {
    expect(() => selectPath(90, 'blackwell')).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'path' }),
    );
    expect(() => selectPath(89, 'hopper')).toThrow(
      expect.objectContaining({
        code: 'UNSUPPORTED',
        field: 'path',
        message: expect.stringMatching(/needs sm_90;/),
      }),
    );
    expect(() => selectPath(100, 'hopper')).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
    expect(() => selectPath(75, 'ampere')).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'path' }),
    );
    expect(() => selectPath(70, 'turing')).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED', field: 'path' }),
    );
  });
  it('has no path for a device older than every implemented one', () => {
    expect(() => selectPath(61)).toThrow(expect.objectContaining({ code: 'UNAVAILABLE' }));
  });
});

describe('provider', () => {
  it('is named cuda with priority 100', () => {
    expect(cudaProvider.name).toBe('cuda');
    expect(cudaProvider.priority).toBe(100);
  });
  it('createBackend() either works or says why (UNAVAILABLE)', async () => {
    if (backend) {
      const sm = Number(String(backend.info.devices[0]?.details?.computeCapability).replace('.', ''));
      expect(backend.info.devices[0]?.details?.path).toBe(sm === 90 ? 'hopper' : 'ampere');
      return;
    }
    await expect(createBackend()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(reason).toMatch(/no CUDA driver|no device|kernels not built|addon/);
  });
  it('resolveBackend prefers cuda when it works and explains when it does not', async () => {
    const unregister = registerBackend(cudaProvider);
    try {
      if (backend) {
        const b = await resolveBackend({ prefer: ['cuda'] });
        expect(b.name).toBe('cuda');
        await b.dispose();
      } else {
        await expect(resolveBackend({ prefer: ['cuda'], only: true })).rejects.toThrow(/cuda: /);
      }
    } finally {
      unregister();
    }
  });
});

describe.skipIf(!addon)('kernel tiling-mask formulas agree with core classifyTiles', () => {
  it('for random shapes, masks, block sizes and valid lengths', () => {
    const INF = 2 ** 30;
    for (let trial = 0; trial < 400; trial++) {
      const seqQ = 1 + Math.floor(Math.random() * 300);
      const seqK = 1 + Math.floor(Math.random() * 400);
      const lk = Math.floor(Math.random() * (seqK + 1));
      const blockQ = [16, 64, 128][trial % 3]!;
      const blockK = [32, 64][trial % 2]!;
      const kinds = [
        { kind: 'none' },
        { kind: 'causal' },
        { kind: 'window', left: Math.floor(Math.random() * 50), right: Math.floor(Math.random() * 50) },
        { kind: 'window', left: Number.POSITIVE_INFINITY, right: Math.floor(Math.random() * 5) },
      ] as const;
      const mask = kinds[trial % 4]!;
      const map = classifyTiles(mask, { seqQ, seqK, lk }, { blockQ, blockK });
      const left = mask.kind === 'window' ? Math.min(mask.left, INF) : INF;
      const right = mask.kind === 'window' ? Math.min(mask.right, INF) : mask.kind === 'causal' ? 0 : INF;
      for (let qt = 0; qt < map.qTiles; qt++) {
        const q0 = qt * blockQ;
        const q1 = Math.min(seqQ, q0 + blockQ);
        const dMin = q0 + lk - seqQ;
        const dMax = q1 - 1 + lk - seqQ;
        expect(addon!.kRange(left, right, lk, dMin, dMax, blockK)).toEqual([map.kStart[qt], map.kEnd[qt]]);
        for (let kt = 0; kt < map.kTiles; kt++) {
          const k0 = kt * blockK;
          const kind = addon!.tileKind(left, right, lk, dMin, dMax, k0, Math.min(seqK, k0 + blockK));
          expect(kind).toBe(map.kinds[qt * map.kTiles + kt] ?? TileKind.EMPTY);
        }
      }
    }
  });
});

describe.skipIf(!backend)('errors', () => {
  it('rejects an unsupported head dim before native code', async () => {
    const q = new Uint16Array(48);
    await expect(
      backend!.attention({
        dtype: 'f16',
        batch: 1,
        seqQ: 1,
        seqK: 1,
        headsQ: 1,
        headsKV: 1,
        headDim: 48,
        q,
        k: q,
        v: q,
      }),
    ).rejects.toMatchObject({ code: 'UNSUPPORTED', field: 'headDim' });
  });
  it('rejects f32 as UNSUPPORTED', async () => {
    const q = new Float32Array(64);
    await expect(
      backend!.attention({
        dtype: 'f32',
        batch: 1,
        seqQ: 1,
        seqK: 1,
        headsQ: 1,
        headsKV: 1,
        headDim: 64,
        q,
        k: q,
        v: q,
      }),
    ).rejects.toMatchObject({ code: 'UNSUPPORTED', field: 'dtype' });
  });
  it('maps a failed allocation to OOM', () => {
    expect(() => backend!.empty('f16', [2 ** 47])).toThrow(expect.objectContaining({ code: 'OOM' }));
  });
  it('forcing an unknown path rejects with UNSUPPORTED', async () => {
    // Every named path is implemented (forcing them is tested in attention.test.ts); a path name
    // that does not exist must still be refused.
    await expect(createBackend({ path: 'blackwell' as 'auto' })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
  });
  it('a disposed backend rejects with DISPOSED', async () => {
    const b = await createBackend();
    await b.dispose();
    await b.dispose();
    const q = new Uint16Array(64);
    await expect(
      b.attention({
        dtype: 'f16',
        batch: 1,
        seqQ: 1,
        seqK: 1,
        headsQ: 1,
        headsKV: 1,
        headDim: 64,
        q,
        k: q,
        v: q,
      }),
    ).rejects.toMatchObject({ code: 'DISPOSED' });
  });
});
