// What the tuning options change in the plans and launches, without a GPU: the addon is replaced by
// a fake one (an sm_90 device, the ampere hd-128 configurations, a context that records each launch
// descriptor instead of running it). The kernels themselves are the GPU suite's.
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { CudaTuning, DeviceAttentionInput } from '../src/index.js';
import type { LaunchDesc, NativeConfig } from '../src/native.js';

const fake = vi.hoisted(() => {
  const launches: LaunchDesc[] = [];
  const opPdl: boolean[] = [];
  let disposed = 0;
  const config = (
    role: NativeConfig['role'],
    blockQ: number,
    blockK: number,
    stages: number,
    sharedBytes: number,
    warps = 4,
    producerWarps = 0,
  ): NativeConfig => {
    const suffix = `hd128_${blockQ}x${blockK}w${warps}s${stages}`;
    // As kernels/common/kernel_names.h names them (an alt row's symbol keeps its role).
    const kernel = (dtype: string) => `fa_ampere_${role}_${dtype}_${suffix}`;
    return {
      path: 'ampere',
      role,
      headDim: 128,
      blockQ,
      blockK,
      warps,
      producerWarps,
      stages,
      sharedBytes,
      suffix,
      kernels: { f16: kernel('f16'), bf16: kernel('bf16') },
      pagedKernels: { f16: `${kernel('f16')}_paged`, bf16: `${kernel('bf16')}_paged` },
    };
  };
  const configs: NativeConfig[] = [
    config('prefill', 128, 64, 2, 104448),
    // Planned where rows see few keys (a hopper-style short tile with a producer warpgroup).
    config('prefill_short', 64, 64, 2, 42240, 8, 4),
    config('decode', 16, 128, 3, 213248),
    config('decode_alt', 16, 64, 3, 108800),
    // Fits shared memory only with its own ring depth (one stage), not with the default's two.
    config('prefill_alt', 64, 224, 1, 131072),
    // Two consumer warpgroups and a producer warpgroup (the hopper path's copy-engine mainloop).
    config('prefill_alt', 128, 128, 3, 230528, 12, 4),
  ];
  let next = 0x1000n;
  let blocksPerSM = 1;
  class Context {
    async loadModules(): Promise<void> {}
    hasFunction(): boolean {
      return true;
    }
    functionInfo() {
      return { registers: 128, localBytes: 0, blocksPerSM };
    }
    alloc(bytes: number): bigint {
      const ptr = next;
      next += BigInt(Math.max(bytes, 256));
      return ptr;
    }
    free(): void {}
    async upload(): Promise<void> {}
    async attention(desc: LaunchDesc): Promise<void> {
      launches.push(desc);
    }
    setOpPdl(on: boolean): void {
      opPdl.push(on);
    }
    dispose(): void {
      disposed++;
    }
  }
  const device = {
    index: 0,
    name: 'fake sm_90',
    major: 9,
    minor: 0,
    multiprocessors: 132,
    sharedPerBlockOptin: 232448,
    sharedPerMultiprocessor: 233472,
    l2Bytes: 50 << 20,
    clockKHz: 1980000,
    memoryClockKHz: 2619000,
    memoryBusBits: 5120,
    memoryBytes: 80e9,
  };
  const addon = {
    probe: () => ({ driverVersion: 12080, devices: [device] }),
    configs: (path: string) => (path === 'ampere' ? configs : []),
    Context,
  };
  return {
    addon,
    launches,
    opPdl,
    disposedCount: () => disposed,
    setBlocksPerSM: (n: number) => {
      blocksPerSM = n;
    },
  };
});

vi.mock('../src/native.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../src/native.js')>()),
  loadAddon: () => ({ addon: fake.addon }),
  // sm_90 machine code of the ampere path: programmatic dependent launch is available.
  readManifest: () => ({
    nvcc: '13.0',
    paths: { ampere: { sm: [90], ptx: 90 } },
    common: { sm: [90], ptx: 90 },
  }),
  readKernelImages: (_dir: string, path: string) => [{ name: `${path}/fwd_hd128`, data: Buffer.alloc(0) }],
}));

const { createBackend } = await import('../src/index.js');

const backendWith = (tuning?: CudaTuning) => createBackend({ path: 'ampere', ...(tuning ? { tuning } : {}) });

/** Batch-1 decode over 32K keys, GQA 32/8, hd 128: split-KV on an idle GPU. */
const decode = {
  dtype: 'f16',
  batch: 1,
  seqQ: 1,
  seqK: 32768,
  headsQ: 32,
  headsKV: 8,
  headDim: 128,
} as const;

/** The launch descriptor of one decode call on device tensors. */
async function decodeLaunch(tuning?: CudaTuning): Promise<LaunchDesc> {
  const backend = await backendWith(tuning);
  const input: DeviceAttentionInput = {
    ...decode,
    q: backend.empty('f16', [1, 1, 32, 128]),
    k: backend.empty('f16', [1, 32768, 8, 128]),
    v: backend.empty('f16', [1, 32768, 8, 128]),
  };
  fake.launches.length = 0;
  await backend.attentionDevice(input);
  await backend.dispose();
  expect(fake.launches).toHaveLength(1);
  return fake.launches[0]!;
}

const ENV = [
  'FASTATTN_CUDA_FUSED_COMBINE',
  'FASTATTN_CUDA_PDL',
  'FASTATTN_CUDA_DECODE_CONFIG',
  'FASTATTN_CUDA_PREFILL_CONFIG',
  'FASTATTN_CUDA_DECODE_SPLIT',
] as const;
// The suite sets them itself: whatever the shell set is put aside for its duration.
const saved = Object.fromEntries(ENV.map((name) => [name, process.env[name]]));
for (const name of ENV) delete process.env[name];
afterEach(() => {
  for (const name of ENV) delete process.env[name];
});
afterAll(() => {
  for (const name of ENV) if (saved[name] !== undefined) process.env[name] = saved[name];
});

describe('tuning, through a fake addon', () => {
  it('by default, split-KV decode on sm_90 merges in the last split CTA and uses PDL', async () => {
    const desc = await decodeLaunch();
    expect(desc.numSplits).toBeGreaterThan(1);
    expect(desc.combine).toBeNull();
    expect(desc.counters).not.toBe(0n);
    expect(desc.pdl).toBe(true);
  });

  it('fusedCombine: false launches the separate combine kernel instead', async () => {
    const desc = await decodeLaunch({ fusedCombine: false });
    expect(desc.numSplits).toBeGreaterThan(1);
    expect(desc.combine).toBe('fa_combine_f16');
    expect(desc.counters).toBe(0n);
  });

  it('pdl: false launches without programmatic dependent launch, the op kernels too', async () => {
    fake.opPdl.length = 0;
    expect((await decodeLaunch({ pdl: false })).pdl).toBe(false);
    expect((await decodeLaunch()).pdl).toBe(true);
    expect(fake.opPdl).toEqual([false, true]);
  });

  it('decodeSplit sets the decode split count, at most one split per k-tile, and leaves prefill alone', async () => {
    const planned = await backendWith();
    const split = await backendWith({ decodeSplit: 3 });
    expect(split.plan(decode).splitKV).toBe(3);
    expect(split.plan(decode).grid).toEqual([1, 8, 3]); // 4 query heads per KV head: one 16-row tile
    expect(split.plan({ ...decode, seqK: 200 }).splitKV).toBe(2); // 200 keys: two 128-key tiles
    const prefill = { ...decode, seqQ: 512, seqK: 512 };
    expect(split.plan(prefill)).toEqual(planned.plan(prefill));
    expect((await decodeLaunch({ decodeSplit: 3 })).numSplits).toBe(3);
    await Promise.all([planned.dispose(), split.dispose()]);
  });

  it('a configuration named by the call is planned with its own ring depth', async () => {
    const backend = await backendWith();
    const prefill = { ...decode, seqQ: 8192, seqK: 8192 };
    expect(backend.plan(prefill).config.suffix).toBe('hd128_128x64w4s2');
    expect(backend.plan(prefill, 'hd128_64x224w4s1').config.suffix).toBe('hd128_64x224w4s1');
    await backend.dispose();
  });

  it('prefill whose rows see few keys on average runs the short-row configuration', async () => {
    const backend = await backendWith();
    const role = (shape: object) => backend.plan({ ...decode, ...shape }).config.role;
    expect(role({ seqQ: 1024, seqK: 1024 })).toBe('prefill_short');
    expect(role({ seqQ: 4096, seqK: 4096 })).toBe('prefill');
    // Causal rows see half the keys on average: 2K at S = 4K, 4K at 8K.
    expect(role({ seqQ: 4096, seqK: 4096, mask: { kind: 'causal' } })).toBe('prefill_short');
    expect(role({ seqQ: 8192, seqK: 8192, mask: { kind: 'causal' } })).toBe('prefill');
    // A chunk of 512 rows at the end of a 16K cache sees about 16K keys a row.
    expect(role({ seqQ: 512, seqK: 16384, mask: { kind: 'causal' } })).toBe('prefill');
    expect(role({ seqQ: 16384, seqK: 16384, mask: { kind: 'window', left: 1024, right: 0 } })).toBe(
      'prefill_short',
    );
    expect(role({ seqQ: 1, seqK: 1024 })).toBe('decode');
    // A configuration named by the call or the tuning wins.
    expect(backend.plan({ ...decode, seqQ: 1024, seqK: 1024 }, 'hd128_128x64w4s2').config.role).toBe(
      'prefill',
    );
    const tuned = await backendWith({ prefillConfig: 'hd128_128x64w4s2' });
    expect(tuned.plan({ ...decode, seqQ: 1024, seqK: 1024 }).config.role).toBe('prefill');
    await Promise.all([backend.dispose(), tuned.dispose()]);
  });

  it('decodeConfig plans decode with that configuration; a call naming a configuration still wins', async () => {
    const backend = await backendWith({ decodeConfig: 'hd128_16x64w4s3' });
    expect(backend.plan(decode).config.suffix).toBe('hd128_16x64w4s3');
    expect(backend.plan(decode, 'hd128_16x128w4s3').config.suffix).toBe('hd128_16x128w4s3');
    expect(backend.plan({ ...decode, seqQ: 512 }).config.suffix).toBe('hd128_128x64w4s2');
    await backend.dispose();
  });

  it('a decodeConfig that names no decode configuration is UNSUPPORTED, and the device context is released', async () => {
    const before = fake.disposedCount();
    await expect(backendWith({ decodeConfig: 'hd128_128x64w4s2' })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      field: 'tuning.decodeConfig',
      message: expect.stringMatching(/have: hd128_16x128w4s3, hd128_16x64w4s3\)$/),
    });
    expect(fake.disposedCount()).toBe(before + 1);
  });

  it('a configuration with a producer warpgroup launches every warp and hands the copy engine its geometry', async () => {
    const backend = await backendWith({ prefillConfig: 'hd128_128x128w12s3' });
    const prefill = { ...decode, seqQ: 512, seqK: 600 };
    const plan = backend.plan(prefill);
    expect(plan.threads).toBe(384);
    expect(plan.tilePlan.subQ).toBe(16); // 128 rows over the 8 computing warps
    fake.launches.length = 0;
    await backend.attentionDevice({
      ...prefill,
      q: backend.empty('f16', [1, 512, 32, 128]),
      k: backend.empty('f16', [1, 600, 8, 128]),
      v: backend.empty('f16', [1, 600, 8, 128]),
    });
    // A paged cache of 10 blocks of 64 rows: every row of it, one box per block.
    await backend.attentionDevice({
      ...prefill,
      dtype: 'bf16',
      q: backend.empty('bf16', [1, 512, 32, 128]),
      k: backend.empty('bf16', [10, 64, 8, 128]),
      v: backend.empty('bf16', [10, 64, 8, 128]),
      seqLensK: Int32Array.of(600),
      pagedKV: {
        blockSize: 64,
        blockTable: Int32Array.from({ length: 10 }, (_, i) => 9 - i),
        blocksPerSeq: 10,
      },
    });
    expect(fake.launches.map((d) => [d.threads, d.tma])).toEqual([
      [384, { kvRows: 600, boxRows: 128, qRows: 128, bf16: false }],
      [384, { kvRows: 640, boxRows: 64, qRows: 128, bf16: true }],
    ]);
    // Every other configuration launches without tensor maps.
    fake.launches.length = 0;
    await backend.attentionDevice({
      ...decode,
      q: backend.empty('f16', [1, 1, 32, 128]),
      k: backend.empty('f16', [1, 32768, 8, 128]),
      v: backend.empty('f16', [1, 32768, 8, 128]),
    });
    expect(fake.launches[0]!.tma).toBeUndefined();
    await backend.dispose();
  });

  it('decode launches at most two CTAs per SM, however many fit', async () => {
    fake.setBlocksPerSM(3);
    try {
      const backend = await backendWith();
      // 8 CTAs of work (one 16-row tile per KV head): 396 slots would take 49 splits; 132 SMs take 33.
      expect(backend.plan(decode).splitKV).toBe(33);
      expect(backend.plan({ ...decode, batch: 4 }).splitKV).toBe(8);
      await backend.dispose();
    } finally {
      fake.setBlocksPerSM(1);
    }
    const backend = await backendWith();
    expect(backend.plan(decode).splitKV).toBe(16); // one CTA per SM: unchanged
    await backend.dispose();
  });

  it('prefillConfig plans prefill with that configuration (an alt one too), and is checked like decodeConfig', async () => {
    const backend = await backendWith({ prefillConfig: 'hd128_64x224w4s1' });
    expect(backend.plan({ ...decode, seqQ: 512, seqK: 512 }).config.suffix).toBe('hd128_64x224w4s1');
    expect(backend.plan(decode).config.suffix).not.toBe('hd128_64x224w4s1');
    await backend.dispose();
    await expect(backendWith({ prefillConfig: 'hd128_16x64w4s3' })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      field: 'tuning.prefillConfig',
    });
  });
});

describe('the FASTATTN_CUDA_* variables', () => {
  it('are the defaults of the options, read once by createBackend()', async () => {
    process.env.FASTATTN_CUDA_DECODE_SPLIT = '3';
    const backend = await backendWith();
    delete process.env.FASTATTN_CUDA_DECODE_SPLIT;
    expect(backend.plan(decode).splitKV).toBe(3); // the variable is gone: the backend kept it
    const later = await backendWith();
    const planned = later.plan(decode).splitKV;
    process.env.FASTATTN_CUDA_DECODE_SPLIT = '5';
    expect(later.plan(decode).splitKV).toBe(planned); // set after creation: not read
    expect(planned).not.toBe(5);
    await Promise.all([backend.dispose(), later.dispose()]);
  });

  it('give way to the options', async () => {
    process.env.FASTATTN_CUDA_FUSED_COMBINE = '0';
    process.env.FASTATTN_CUDA_PDL = '0';
    process.env.FASTATTN_CUDA_DECODE_SPLIT = '3';
    const desc = await decodeLaunch({ fusedCombine: true, pdl: true, decodeSplit: 5 });
    expect(desc).toMatchObject({ combine: null, pdl: true, numSplits: 5 });
    expect((await decodeLaunch()).combine).toBe('fa_combine_f16');
  });

  it('do not make an unknown decode configuration an error (one value serves backends of every path)', async () => {
    process.env.FASTATTN_CUDA_DECODE_CONFIG = 'hd64_no_such_config';
    const backend = await backendWith();
    expect(backend.plan(decode).config.suffix).toBe('hd128_16x128w4s3');
    await backend.dispose();
  });
});
