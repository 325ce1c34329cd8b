import {
  type AttentionInput,
  type AttentionProblem,
  classifyBatch,
  type DType,
  planTiles,
  TileKind,
  type TileMap,
  TileMaskPattern,
  type TilePlan,
  tileMapBytes,
} from '@fastattention/core';
import { type AscendDevice, ascendSpec } from './device/presets.js';
import { prepareSimulation, type SimulateOptions, type SimulationJob, type TimingProblem } from './job.js';
import { fastAttentionNumbers } from './kernel/fast-attention.js';
import { scheduleFastAttention } from './kernel/fast-attention-schedule.js';
import type { CubeDType } from './kernel/numerics.js';
import { standardAttentionNumbers } from './kernel/standard.js';
import { scheduleStandard } from './kernel/standard-schedule.js';
import { CostModel } from './sim/costs.js';
import { buildReport, type SimulationMode, type SimulationReport } from './sim/report.js';
import { Machine, TraceSink } from './sim/scheduler.js';

export interface SimulationResult<D extends DType = DType> {
  /** Present in functional mode. */
  readonly out?: D extends 'f32' ? Float32Array : Uint16Array;
  readonly lse?: Float32Array;
  readonly report: SimulationReport;
  readonly plan?: TilePlan;
}

/**
 * Runs one attention call on the simulated device, synchronously (the backend runs it on a worker
 * thread; the bench and the timing tests call it directly). Validates like every backend (typed
 * errors naming the field), plans with core's planTiles on the device's HardwareSpec, classifies
 * tiles with core's tiling-mask, then computes the numbers (functional mode) and schedules the
 * kernel.
 */
export function simulateAttention<D extends DType>(
  device: AscendDevice,
  input: AttentionInput<D> | TimingProblem,
  options: SimulateOptions = {},
): SimulationResult<D> {
  return runSimulation(device, prepareSimulation(input, options)) as SimulationResult<D>;
}

/** Runs a validated job: what a worker process executes. */
export function runSimulation(device: AscendDevice, job: SimulationJob): SimulationResult<CubeDType> {
  const { problem: resolved, kernel, tensors } = job;
  const mode: SimulationMode = tensors ? 'functional' : 'timing';
  const problem: AttentionProblem = {
    batch: resolved.batch,
    seqQ: resolved.seqQ,
    seqK: resolved.seqK,
    headsQ: resolved.headsQ,
    headsKV: resolved.headsKV,
    headDim: resolved.headDim,
    dtype: resolved.dtype,
  };
  const trace = job.trace ? new TraceSink(job.trace.cores, job.trace.maxEvents) : undefined;
  const machine = new Machine(device.aicCores, trace);
  const ub = device.buffers.ub;
  const common = { device: device.name, mode, clockHz: device.clockHz.value, machine };

  if (kernel === 'standard') {
    const { scoreDType } = job;
    const cost = new CostModel(device, device.aicCores);
    const r = scheduleStandard(machine, cost, problem, scoreDType, device.launchCycles.value, ub);
    const report = buildReport({
      ...common,
      kernel,
      cost,
      flops: r.flops,
      handOffs: 0,
      details: {
        kernels: r.kernels,
        scoreDType,
        scoreBytes: r.scoreBytes,
        fullMaskBytes: r.maskBytes,
        scoreIn: r.scoreClass,
      },
    });
    if (!tensors) return { report };
    const numbers = standardAttentionNumbers({ ...resolved, ...tensors }, scoreDType);
    return { out: numbers.out, lse: numbers.lse, report };
  }

  const plan = choosePlan(device, problem, job);
  const { maps } = classifyBatch(
    resolved.mask,
    { seqQ: problem.seqQ, seqK: problem.seqK },
    plan,
    resolved.seqLensK,
  );
  const patterns = new Map<TileMap, TileMaskPattern>();
  for (const map of maps) if (!patterns.has(map)) patterns.set(map, new TileMaskPattern(map));
  const activeCores = Math.min(device.aicCores, plan.workItems);
  const cost = new CostModel(device, activeCores);
  const r = scheduleFastAttention(machine, cost, problem, plan, maps, ub);
  const report = buildReport({
    ...common,
    kernel,
    cost,
    flops: r.flops,
    handOffs: r.handOffs,
    details: {
      tiling: job.tiling,
      plan: {
        blockQ: plan.blockQ,
        blockK: plan.blockK,
        subQ: plan.subQ,
        subK: plan.subK,
        splitKV: plan.splitKV,
        workItems: plan.workItems,
        bufferUse: plan.bufferUse,
        reasons: plan.reasons,
      },
      activeCores,
      tiles: { ...tileCounts(patterns), computed: r.computedTiles },
      mask: maskMemory(patterns, problem),
      workspaceBytes:
        activeCores * 2 * (plan.blockQ * plan.blockK * (4 + 2) + plan.blockQ * problem.headDim * 4),
    },
  });
  if (!tensors) return { report, plan };
  const numbers = fastAttentionNumbers({ ...resolved, ...tensors }, plan, maps, patterns);
  return { out: numbers.out, lse: numbers.lse, report, plan };
}

function choosePlan(device: AscendDevice, problem: AttentionProblem, options: SimulationJob): TilePlan {
  const spec = ascendSpec(device);
  const forced = {
    ...(options.blockQ !== undefined ? { blockQ: options.blockQ } : {}),
    ...(options.blockK !== undefined ? { blockK: options.blockK } : {}),
    ...(options.splitKV !== undefined ? { splitKV: options.splitKV } : {}),
  };
  if (options.tiling === 'two-level') return planTiles(problem, spec, forced);
  // Single level: the block that is handed over is the block the Cube and Vector work on, so it
  // must fit the second-level buffers; take the two-level plan's second level as that block.
  const two = planTiles(problem, spec, {
    ...(options.splitKV !== undefined ? { splitKV: options.splitKV } : {}),
  });
  const blockQ = options.blockQ ?? two.subQ;
  const blockK = options.blockK ?? two.subK;
  const plan = planTiles(problem, spec, { blockQ, blockK, splitKV: options.splitKV ?? two.splitKV });
  return { ...plan, subQ: plan.blockQ, subK: plan.blockK };
}

function tileCounts(patterns: ReadonlyMap<TileMap, TileMaskPattern>): {
  full: number;
  partial: number;
  empty: number;
} {
  const out = { full: 0, partial: 0, empty: 0 };
  for (const map of patterns.keys()) {
    out.full += map.counts.full;
    out.partial += map.counts.partial;
    out.empty += map.counts.empty;
  }
  return out;
}

/**
 * Memory of the tiling-mask (tile labels + the diagonal vectors PARTIAL tiles are cut from) against
 * the full seqQ x seqK byte mask per batch row that standard attention reads.
 */
function maskMemory(
  patterns: ReadonlyMap<TileMap, TileMaskPattern>,
  problem: AttentionProblem,
): { tilingMaskBytes: number; fullMaskBytes: number } {
  let bytes = 0;
  for (const [map, pattern] of patterns) {
    for (let qt = 0; qt < map.qTiles; qt++) {
      for (let kt = map.kStart[qt]!; kt < map.kEnd[qt]!; kt++) {
        if (map.kinds[qt * map.kTiles + kt] === TileKind.PARTIAL) pattern.diagonal(qt, kt);
      }
    }
    bytes += tileMapBytes(map) + pattern.bytes;
  }
  return { tilingMaskBytes: bytes, fullMaskBytes: problem.batch * problem.seqQ * problem.seqK };
}
