import type { HardwareSpec, TileConfig } from '@fastattention/core';
import type { NativeConfig, NativeDevice } from './native.js';

/**
 * The HardwareSpec of a CUDA device for one kernel role and head dim: what core's planTiles needs
 * to choose among the compiled configurations and to size split-KV.
 *
 * `parallelUnits` counts resident CTAs (SMs x CTAs per SM from the occupancy calculator), not
 * SMs: split-KV exists to fill every CTA slot, and decode is memory-bound, so it wants all of them.
 */
export function cudaSpec(
  device: NativeDevice,
  role: 'prefill' | 'decode',
  configs: readonly NativeConfig[],
  blocksPerSM: number,
): HardwareSpec {
  const first = configs[0];
  const stages = first?.stages ?? 2;
  const tileConfigs: TileConfig[] = configs.map(tileConfigOf);
  // Dense f16 mma.sync rate: 1024 FMA per clock per SM on sm_80/sm_90 (2048 FLOP).
  const peakFlops = device.multiprocessors * device.clockKHz * 1e3 * 2048;
  // DDR/HBM: two transfers per memory clock.
  const memoryBandwidth = (device.memoryClockKHz * 1e3 * 2 * device.memoryBusBits) / 8;
  return {
    name: `${device.name} (sm_${device.major}${device.minor}, ${role})`,
    kind: 'gpu',
    parallelUnits: device.multiprocessors * Math.max(1, blocksPerSM),
    nativeTile: { m: 16, n: 8, k: 16 },
    memory: [
      {
        name: 'shared',
        bytes: device.sharedPerBlockOptin,
        tileLevel: 'first',
        holds: ['q', 'k', 'v'],
        buffers: stages,
        alignment: 128,
      },
      // One warp's registers (255 x 32 lanes x 4 B) hold its rows' S tile, O accumulator and stats.
      { name: 'registers', bytes: 255 * 32 * 4, tileLevel: 'second', holds: ['s', 'o', 'stats'] },
    ],
    peakFlops,
    ...(memoryBandwidth > 0 ? { memoryBandwidth } : {}),
    configs: tileConfigs,
    maxSplitKV: 64,
  };
}

/**
 * A compiled configuration as core's TileConfig. The second level is one computing warp's tile: BM / warps
 * rows of every key of a k-tile, or, for a KSPLIT decode tile (fewer than 16 rows per warp: run 6,
 * kernels/ampere/mainloop.cuh), all BM rows of BN / warps keys.
 */
export function tileConfigOf(c: NativeConfig): TileConfig {
  const warps = c.warps - c.producerWarps;
  const ksplit = c.blockQ < 16 * warps;
  return {
    name: c.suffix,
    blockQ: c.blockQ,
    blockK: c.blockK,
    subQ: ksplit ? c.blockQ : c.blockQ / warps,
    subK: ksplit ? c.blockK / warps : c.blockK,
    stages: c.stages,
    headDims: [c.headDim],
  };
}
