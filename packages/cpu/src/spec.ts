import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import type { HardwareSpec } from '@fastattention/core';

/** Per-core data cache capacities in bytes, and where they came from. */
export interface CpuCaches {
  readonly l1d: number;
  readonly l2: number;
  readonly l3: number;
  readonly source: 'sysfs' | 'default';
}

/** Used where sysfs says nothing (macOS, containers hiding /sys): typical of current x86 and arm64 cores. */
export const DEFAULT_CACHES: CpuCaches = {
  l1d: 32 * 1024,
  l2: 512 * 1024,
  l3: 8 * 1024 * 1024,
  source: 'default',
};

/** Parses sysfs sizes such as "32K", "1024K", "32M". */
export function parseCacheSize(text: string): number | undefined {
  const m = /^\s*(\d+)\s*([KMG]?)/i.exec(text);
  if (!m) return undefined;
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * unit;
}

/** Reads cpu0's caches from `/sys/devices/system/cpu/cpu0/cache`; falls back to DEFAULT_CACHES per level. */
export function readCpuCaches(root = '/sys/devices/system/cpu/cpu0/cache'): CpuCaches {
  const found: { l1d?: number; l2?: number; l3?: number } = {};
  try {
    for (const entry of readdirSync(root)) {
      if (!entry.startsWith('index')) continue;
      const read = (f: string): string => readFileSync(join(root, entry, f), 'utf8').trim();
      try {
        const level = Number(read('level'));
        const type = read('type');
        const size = parseCacheSize(read('size'));
        if (size === undefined || type === 'Instruction') continue;
        if (level === 1) found.l1d = size;
        else if (level === 2) found.l2 = size;
        else if (level === 3) found.l3 = size;
      } catch {
        // an unreadable index is skipped; the defaults cover it
      }
    }
  } catch {
    return DEFAULT_CACHES;
  }
  if (found.l1d === undefined && found.l2 === undefined) return DEFAULT_CACHES;
  return {
    l1d: found.l1d ?? DEFAULT_CACHES.l1d,
    l2: found.l2 ?? DEFAULT_CACHES.l2,
    l3: found.l3 ?? DEFAULT_CACHES.l3,
    source: 'sysfs',
  };
}

/** The CPU's model name (from os.cpus(), else /proc/cpuinfo), e.g. "AMD EPYC 9R14". */
export function cpuModelName(): string {
  const fromOs = cpus()[0]?.model?.trim();
  if (fromOs) return fromOs;
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // not Linux
  }
  return 'unknown CPU';
}

/** x86 feature flags worth reporting (F16C, AVX-512 BF16, ...), from /proc/cpuinfo; empty elsewhere. */
export function cpuFlags(): ReadonlySet<string> {
  try {
    const m = /^flags\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return new Set(m ? m[1]!.split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

export interface CpuSpecOptions {
  /** Worker threads, each owning first-level blocks. Default: all cores. */
  readonly threads?: number;
  /** f32 lanes per vector register of the kernel (16 AVX-512, 8 AVX2, 4 portable). Default 16. */
  readonly lanes?: number;
  /** Override the caches read from sysfs. */
  readonly caches?: CpuCaches;
  /**
   * f32 FLOP/s of all threads and main-memory bytes/s for the planner's cost model. Defaults are
   * rough (2 FMA pipes at 3 GHz per thread; 20 GB/s): only the ranking of tilings depends on
   * them. The bench measures the real figures (addon.measureFmaPeak / measureReadBandwidth).
   */
  readonly peakFlops?: number;
  readonly memoryBandwidth?: number;
  /**
   * Fixed cost of one (q-block, k-block) step, seconds: the online-softmax bookkeeping and the
   * rescale of the output accumulator. Default 0.5 µs, which steers the planner away from
   * many tiny tiles (32x32 measured about 30% slower than 256x128 at S = 2048, hd 128).
   */
  readonly tileOverhead?: number;
}

/**
 * The CPU as core's planner sees it. First level: the q-block a thread owns and the K/V block it
 * streams, with the scores and output accumulators, all resident in that core's L2. Second level:
 * the Q panel and K rows the register micro-kernel touches, resident in L1d. The native tile is
 * the kernel's register tile: `lanes` query rows per vector, 8 keys per score tile.
 */
export function cpuHardwareSpec(options: CpuSpecOptions = {}): HardwareSpec {
  const caches = options.caches ?? readCpuCaches();
  const threads = options.threads ?? availableParallelism();
  const lanes = options.lanes ?? 16;
  return {
    name: `cpu (${cpuModelName()}, ${threads} threads)`,
    kind: 'cpu',
    parallelUnits: threads,
    nativeTile: { m: lanes, n: 8, k: 1 },
    memory: [
      {
        name: 'L2',
        bytes: caches.l2,
        tileLevel: 'first',
        holds: ['q', 'k', 'v', 's', 'o', 'stats'],
        alignment: 64,
      },
      { name: 'L1d', bytes: caches.l1d, tileLevel: 'second', holds: ['q', 'k'], alignment: 64 },
    ],
    peakFlops: options.peakFlops ?? threads * lanes * 2 * 2 * 3e9,
    memoryBandwidth: options.memoryBandwidth ?? 20e9,
    tileOverhead: options.tileOverhead ?? 0.5e-6,
  };
}
