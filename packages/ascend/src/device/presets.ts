import type { HardwareSpec, MemoryLevel } from '@fastattention/core';
import { DEFAULT_PIPES, type Parameter, type PipeTable } from './pipes.js';

export type AscendChipName = '910B1' | '910B2' | '910B3' | '910B4';

export const ASCEND_CHIPS: readonly AscendChipName[] = ['910B1', '910B2', '910B3', '910B4'];

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** On-chip buffers of one AIC (L1, L0A/B/C) and one AIV (UB), with their alignment rules. */
export interface AscendBuffers {
  readonly l1: number;
  readonly l0a: number;
  readonly l0b: number;
  readonly l0c: number;
  /** Per AIV. */
  readonly ub: number;
  readonly align: {
    readonly l1: number;
    readonly l0a: number;
    readonly l0b: number;
    readonly l0c: number;
    readonly ub: number;
  };
}

/** Everything the simulator knows about one 910B variant. */
export interface AscendDevice {
  readonly name: AscendChipName;
  /** AI Cube cores; each is paired with `aivPerAic` Vector cores (910B's 1:2 split architecture). */
  readonly aicCores: number;
  readonly aivPerAic: 2;
  readonly clockHz: Parameter;
  readonly buffers: AscendBuffers;
  readonly hbmBytes: Parameter;
  readonly hbmBandwidth: Parameter;
  readonly l2Bytes: Parameter;
  readonly l2Bandwidth: Parameter;
  /**
   * Cycles from the producer's last GM write to the consumer being allowed to read it: the
   * cross-core flag of an AIC <-> AIV hand-off through GM. The parameter the two-level tiling
   * amortizes; swept by the bench.
   */
  readonly syncCycles: Parameter;
  /** Cycles between two kernels of standard attention (launch + tail drain). */
  readonly launchCycles: Parameter;
  readonly pipes: PipeTable;
}

const BUFFERS: AscendBuffers = {
  l1: 512 * KiB,
  l0a: 64 * KiB,
  l0b: 64 * KiB,
  l0c: 128 * KiB,
  ub: 192 * KiB,
  align: { l1: 32, l0a: 512, l0b: 512, l0c: 64, ub: 32 },
};

const cfg = 'CANN platform_config <soc>.ini';

function chip(
  name: AscendChipName,
  aicCores: 24 | 20,
  ghz: number,
  hbmGiB: number,
  hbmTBs: number,
  l2MiB: number,
  l2TBs: number,
): AscendDevice {
  return {
    name,
    aicCores,
    aivPerAic: 2,
    clockHz: {
      value: ghz * 1e9,
      unit: 'Hz',
      provenance: 'assumption',
      note: 'commonly reported AI Core clock',
    },
    buffers: BUFFERS,
    hbmBytes: { value: hbmGiB * GiB, unit: 'B', provenance: 'documented', note: 'product sheet' },
    hbmBandwidth: {
      value: hbmTBs * 1e12,
      unit: 'B/s',
      provenance: 'assumption',
      note: 'commonly reported HBM2e figure',
    },
    l2Bytes: {
      value: l2MiB * MiB,
      unit: 'B',
      provenance: 'assumption',
      note: `${cfg} l2_size as commonly reported`,
    },
    l2Bandwidth: {
      value: l2TBs * 1e12,
      unit: 'B/s',
      provenance: 'assumption',
      note: 'no public figure; ~4x HBM',
    },
    syncCycles: {
      value: 1000,
      unit: 'cycles',
      provenance: 'assumption',
      note: 'cross-core flag through GM (~0.55 us); the bench sweeps it',
    },
    launchCycles: {
      value: 5000,
      unit: 'cycles',
      provenance: 'assumption',
      note: 'kernel launch + tail between the kernels of standard attention (~3 us)',
    },
    pipes: DEFAULT_PIPES,
  };
}

/** The 910B variants: core counts per the CANN platform configs (24/48 or 20/40 AIC/AIV). */
export const PRESETS: Readonly<Record<AscendChipName, AscendDevice>> = {
  '910B1': chip('910B1', 24, 1.85, 64, 1.6, 192, 7),
  '910B2': chip('910B2', 24, 1.8, 64, 1.6, 192, 7),
  '910B3': chip('910B3', 20, 1.8, 64, 1.6, 192, 7),
  '910B4': chip('910B4', 20, 1.65, 32, 0.8, 96, 5),
};

/** Overrides accepted wherever a device is chosen: plain numbers replace the preset's values. */
export interface DeviceOverrides {
  readonly clockHz?: number;
  readonly hbmBandwidth?: number;
  readonly l2Bandwidth?: number;
  readonly syncCycles?: number;
  readonly launchCycles?: number;
  readonly pipes?: Partial<{ readonly [K in keyof PipeTable]: number }>;
}

export function withOverrides(device: AscendDevice, overrides: DeviceOverrides = {}): AscendDevice {
  const set = (p: Parameter, value: number | undefined, note = 'overridden by the caller'): Parameter =>
    value === undefined ? p : { ...p, value, provenance: 'assumption', note };
  const pipes: Record<string, Parameter> = { ...device.pipes };
  for (const [key, value] of Object.entries(overrides.pipes ?? {})) {
    const current = pipes[key];
    if (current && typeof value === 'number') pipes[key] = set(current, value);
  }
  return {
    ...device,
    clockHz: set(device.clockHz, overrides.clockHz),
    hbmBandwidth: set(device.hbmBandwidth, overrides.hbmBandwidth),
    l2Bandwidth: set(device.l2Bandwidth, overrides.l2Bandwidth),
    syncCycles: set(device.syncCycles, overrides.syncCycles),
    launchCycles: set(device.launchCycles, overrides.launchCycles),
    pipes: pipes as unknown as PipeTable,
  };
}

/**
 * The device as core's planner sees it. First level (one AIC's hand-off block) lives in L1 with
 * double-buffered K/V; second level (what one Cube/Vector instruction sequence works on) lives in
 * L0A (Q and P operands), L0B (K and V operands), L0C (S and O accumulators) and UB (the softmax
 * of an S sub-block with its P, O rows and statistics). `tileOverhead` is one hand-off's sync cost.
 */
export function ascendSpec(device: AscendDevice): HardwareSpec {
  const b = device.buffers;
  const memory: MemoryLevel[] = [
    {
      name: 'L1',
      bytes: b.l1,
      tileLevel: 'first',
      holds: ['q', 'k', 'v'],
      buffers: 2,
      alignment: b.align.l1,
    },
    { name: 'L0A', bytes: b.l0a, tileLevel: 'second', holds: ['q', 'p'], alignment: b.align.l0a },
    { name: 'L0B', bytes: b.l0b, tileLevel: 'second', holds: ['k', 'v'], alignment: b.align.l0b },
    { name: 'L0C', bytes: b.l0c, tileLevel: 'second', holds: ['s', 'o'], alignment: b.align.l0c },
    { name: 'UB', bytes: b.ub, tileLevel: 'second', holds: ['s', 'p', 'o', 'stats'], alignment: b.align.ub },
  ];
  const clock = device.clockHz.value;
  const fractalFlops = 2 * 16 * 16 * 16;
  return {
    name: `Ascend ${device.name} (simulated)`,
    kind: 'simulator',
    parallelUnits: device.aicCores,
    nativeTile: { m: 16, n: 16, k: 16 },
    memory,
    peakFlops: device.aicCores * clock * fractalFlops * device.pipes.cubeFractalsPerCycle.value,
    memoryBandwidth: device.hbmBandwidth.value,
    // Three hand-offs per first-level tile (S, P, O partial); with the AIC one tile ahead about one
    // of them is exposed, so that is what a tile costs the planner beyond its work.
    tileOverhead: device.syncCycles.value / clock,
  };
}
