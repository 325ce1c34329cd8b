import { describe, expect, it } from 'vitest';
import {
  PIPE_KINDS,
  PRESETS,
  type SimulationReport,
  simulateAttention,
  type TimingProblem,
  toChromeTrace,
  withOverrides,
} from '../src/index.js';
import { WORK_TIMEOUT } from './helpers.js';

const device = PRESETS['910B2'];
const problem = (seq: number, mask: 'none' | 'causal', heads = 8): TimingProblem => ({
  batch: 1,
  seqQ: seq,
  seqK: seq,
  headsQ: heads,
  headsKV: heads,
  headDim: 128,
  dtype: 'f16',
  mask: { kind: mask },
});

function expectConsistent(report: SimulationReport): void {
  expect(report.simulated).toBe(true);
  expect(report.totalCycles).toBeGreaterThanOrEqual(report.scheduledCycles);
  for (const kind of PIPE_KINDS) {
    const p = report.pipes[kind];
    expect(p.maxBusyCycles).toBeLessThanOrEqual(report.totalCycles);
    expect(p.busyCycles + p.stallCycles).toBeLessThanOrEqual(p.instances * report.totalCycles * (1 + 1e-9));
    expect(p.utilization).toBeGreaterThanOrEqual(0);
    expect(p.utilization).toBeLessThanOrEqual(1);
  }
}

describe('timing model', { timeout: WORK_TIMEOUT }, () => {
  it('no pipe is busy longer than the whole run, for both kernels and masks', () => {
    for (const kernel of ['fast-attention', 'standard'] as const) {
      for (const mask of ['none', 'causal'] as const) {
        const { report } = simulateAttention(device, problem(2048, mask), { kernel });
        expectConsistent(report);
        expect(report.pipes['aic.Cube'].busyCycles).toBeGreaterThan(0);
      }
    }
  });

  it('two-level tiling beats single-level tiling once sequences are long', () => {
    for (const mask of ['none', 'causal'] as const) {
      const two = simulateAttention(device, problem(8192, mask)).report;
      const one = simulateAttention(device, problem(8192, mask), { tiling: 'single-level' }).report;
      expect(two.totalCycles).toBeLessThan(one.totalCycles);
      // Fewer hand-offs is where the gain comes from.
      expect(two.handOffs).toBeLessThan(one.handOffs);
    }
  });

  it('the gap between single- and two-level tiling grows with the sync cost', () => {
    const gap = (sync: number): number => {
      const d = withOverrides(device, { syncCycles: sync });
      const opts = { blockQ: 256, blockK: 256 };
      const two = simulateAttention(d, problem(4096, 'causal'), opts).report.totalCycles;
      const one = simulateAttention(d, problem(4096, 'causal'), { tiling: 'single-level' }).report
        .totalCycles;
      return one / two;
    };
    expect(gap(4000)).toBeGreaterThan(gap(250));
  });

  it('EMPTY tiles are skipped: causal takes about half the Cube cycles of no mask', () => {
    const none = simulateAttention(device, problem(4096, 'none')).report;
    const causal = simulateAttention(device, problem(4096, 'causal')).report;
    const ratio = causal.pipes['aic.Cube'].busyCycles / none.pipes['aic.Cube'].busyCycles;
    expect(ratio).toBeGreaterThan(0.45);
    expect(ratio).toBeLessThan(0.6);
    const tiles = causal.details.tiles as { empty: number; computed: number };
    expect(tiles.empty).toBeGreaterThan(0);
    // Standard attention computes every score whatever the mask.
    const stdNone = simulateAttention(device, problem(4096, 'none'), { kernel: 'standard' }).report;
    const stdCausal = simulateAttention(device, problem(4096, 'causal'), { kernel: 'standard' }).report;
    expect(stdCausal.pipes['aic.Cube'].busyCycles).toBe(stdNone.pipes['aic.Cube'].busyCycles);
  });

  it('FastAttention beats standard attention at long sequences, and more so with a causal mask', () => {
    const speedup = (mask: 'none' | 'causal'): number =>
      simulateAttention(device, problem(16384, mask), { kernel: 'standard' }).report.totalCycles /
      simulateAttention(device, problem(16384, mask)).report.totalCycles;
    expect(speedup('none')).toBeGreaterThan(1.5);
    expect(speedup('causal')).toBeGreaterThan(speedup('none'));
  });

  it('the tiling-mask is orders of magnitude smaller than the full mask', () => {
    const { report } = simulateAttention(device, problem(8192, 'causal'));
    const mask = report.details.mask as { tilingMaskBytes: number; fullMaskBytes: number };
    expect(mask.fullMaskBytes).toBe(8192 * 8192);
    expect(mask.tilingMaskBytes * 1000).toBeLessThan(mask.fullMaskBytes);
  });

  it('exports a valid Chrome trace in which Cube and Vector work overlap', () => {
    const { report } = simulateAttention(device, problem(2048, 'causal'), { trace: { cores: 1 } });
    const trace = JSON.parse(JSON.stringify(toChromeTrace(report))) as ReturnType<typeof toChromeTrace>;
    const spans = trace.traceEvents.filter((e) => e.ph === 'X');
    expect(spans.length).toBeGreaterThan(10);
    for (const e of spans) {
      expect(Number.isFinite(e.ts)).toBe(true);
      expect(e.dur!).toBeGreaterThanOrEqual(0);
    }
    const names = trace.traceEvents.filter((e) => e.name === 'thread_name').map((e) => e.args!.name);
    expect(names).toContain('aic Cube');
    expect(names).toContain('aiv0 Vector');
    const cube = spans.filter((e) => e.cat === 'aic.Cube');
    const vector = spans.filter((e) => e.cat === 'aiv0.Vector');
    const overlaps = cube.some((c) => vector.some((v) => v.ts! < c.ts! + c.dur! && c.ts! < v.ts! + v.dur!));
    expect(overlaps).toBe(true);
    expect(() => toChromeTrace(simulateAttention(device, problem(64, 'none')).report)).toThrow(/no trace/);
  });

  it('S = 32K timing-only finishes in under 10 s', () => {
    const t0 = performance.now();
    const fast = simulateAttention(device, problem(32768, 'causal'));
    const std = simulateAttention(device, problem(32768, 'causal'), { kernel: 'standard' });
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds).toBeLessThan(10);
    expect(fast.out).toBeUndefined();
    expectConsistent(fast.report);
    expectConsistent(std.report);
    expect(std.report.totalCycles).toBeGreaterThan(fast.report.totalCycles);
  });
});
