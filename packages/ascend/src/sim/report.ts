import { PIPE_KINDS, type PipeKind } from '../device/pipes.js';
import type { CostModel } from './costs.js';
import type { Machine, TraceEvent } from './scheduler.js';

export type SimulationMode = 'functional' | 'timing';
export type KernelName = 'fast-attention' | 'standard';

/** Cycles of one pipe kind, over all its instances (one per AIC, or two per core group for AIVs). */
export interface PipeStats {
  readonly instances: number;
  /** Summed over instances. */
  readonly busyCycles: number;
  /** Summed over instances: cycles the queue's next instruction waited on a flag or data. */
  readonly stallCycles: number;
  /** The busiest instance: never more than `totalCycles`. */
  readonly maxBusyCycles: number;
  /** busyCycles / (instances x totalCycles). */
  readonly utilization: number;
  readonly instructions: number;
}

/** What one simulated call did. Every figure is simulated, never measured on hardware. */
export interface SimulationReport {
  readonly simulated: true;
  readonly device: string;
  readonly kernel: KernelName;
  readonly mode: SimulationMode;
  readonly clockHz: number;
  /** The pipeline schedule's length. */
  readonly scheduledCycles: number;
  /** Lower bounds from chip bandwidth: bytes moved / (HBM or L2 bytes per cycle). */
  readonly bandwidthFloorCycles: { readonly hbm: number; readonly l2: number };
  /** max(scheduled, floors): the simulated time. */
  readonly totalCycles: number;
  readonly seconds: number;
  /** What sets `totalCycles`. */
  readonly boundBy: 'pipeline' | 'hbm' | 'l2';
  readonly pipes: Readonly<Record<PipeKind, PipeStats>>;
  /** FLOPs of the two matmuls actually executed (non-empty tiles only for FastAttention). */
  readonly flops: number;
  readonly tflops: number;
  readonly bytes: { readonly hbm: number; readonly l2: number };
  /** Cross-core hand-offs (each pays `syncCycles`). */
  readonly handOffs: number;
  /** Kernel-specific detail: the plan, tile counts, mask memory. */
  readonly details: Readonly<Record<string, unknown>>;
  /** Present when a trace was requested: see `toChromeTrace`. */
  readonly trace?: { readonly events: readonly TraceEvent[]; readonly dropped: number };
}

export interface ReportInput {
  readonly device: string;
  readonly kernel: KernelName;
  readonly mode: SimulationMode;
  readonly clockHz: number;
  readonly machine: Machine;
  readonly cost: CostModel;
  readonly flops: number;
  readonly handOffs: number;
  readonly details: Record<string, unknown>;
}

export function buildReport(x: ReportInput): SimulationReport {
  const scheduled = x.machine.finish;
  const floor = x.cost.bandwidthFloor();
  const totalCycles = Math.max(scheduled, floor.hbm, floor.l2, 1);
  const boundBy = totalCycles === scheduled ? 'pipeline' : floor.hbm >= floor.l2 ? 'hbm' : 'l2';
  const acc = new Map<PipeKind, { instances: number; busy: number; stall: number; max: number; n: number }>();
  for (const kind of PIPE_KINDS) acc.set(kind, { instances: 0, busy: 0, stall: 0, max: 0, n: 0 });
  for (const core of x.machine.cores) {
    for (const pipe of core.pipes) {
      const a = acc.get(pipe.kind)!;
      a.instances++;
      a.busy += pipe.busy;
      a.stall += pipe.stall;
      a.max = Math.max(a.max, pipe.busy);
      a.n += pipe.instructions;
    }
  }
  const pipes = {} as Record<PipeKind, PipeStats>;
  for (const [kind, a] of acc) {
    pipes[kind] = {
      instances: a.instances,
      busyCycles: a.busy,
      stallCycles: a.stall,
      maxBusyCycles: a.max,
      utilization: a.instances ? a.busy / (a.instances * totalCycles) : 0,
      instructions: a.n,
    };
  }
  const seconds = totalCycles / x.clockHz;
  const trace = x.machine.trace;
  return {
    simulated: true,
    device: x.device,
    kernel: x.kernel,
    mode: x.mode,
    clockHz: x.clockHz,
    scheduledCycles: scheduled,
    bandwidthFloorCycles: floor,
    totalCycles,
    seconds,
    boundBy,
    pipes,
    flops: x.flops,
    tflops: x.flops / seconds / 1e12,
    bytes: { ...x.cost.bytes },
    handOffs: x.handOffs,
    details: x.details,
    ...(trace ? { trace: { events: trace.events, dropped: trace.dropped } } : {}),
  };
}
