import {
  type AttentionInput,
  type AttentionProblem,
  type AttentionShape,
  type BackendCapabilities,
  classifyBatch,
  type DType,
  invalidInput,
  MASK_KINDS,
  type MaskSpec,
  planTiles,
  type ResolvedAttentionInput,
  TileKind,
  type TileMap,
  TileMaskPattern,
  type TilePlan,
  tileMapBytes,
  validateAttentionInput,
  validateAttentionShape,
} from '@fastattention/core';
import { type AscendDevice, ascendSpec } from './device/presets.js';
import { fastAttentionNumbers } from './kernel/fast-attention.js';
import { scheduleFastAttention } from './kernel/fast-attention-schedule.js';
import type { CubeDType } from './kernel/numerics.js';
import { type ScoreDType, standardAttentionNumbers } from './kernel/standard.js';
import { scheduleStandard } from './kernel/standard-schedule.js';
import { CostModel } from './sim/costs.js';
import { buildReport, type KernelName, type SimulationMode, type SimulationReport } from './sim/report.js';
import { Machine, TraceSink } from './sim/scheduler.js';

/** Head dims the kernels honour: multiples of the Cube's 16, up to 256 (L0A/L0C still fit at 256). */
export const HEAD_DIMS: readonly number[] = Array.from({ length: 16 }, (_, i) => 16 * (i + 1));

/**
 * f16 and bf16 only: the modelled Cube multiplies 16-bit operands into f32. f32 input is rejected
 * (UNSUPPORTED, field 'dtype') rather than silently rounded to 16 bits, which would break the f32
 * error bound (1e-5) the contract promises for f32 callers.
 */
export const CAPABILITIES: BackendCapabilities = {
  dtypes: ['f16', 'bf16'],
  headDims: { kind: 'list', values: HEAD_DIMS },
  masks: MASK_KINDS,
};

/** A timing-only problem: the shape and mask of a call without its tensors. */
export interface TimingProblem extends AttentionShape {
  readonly dtype: DType;
  readonly mask?: MaskSpec;
  readonly seqLensK?: Int32Array;
}

export type Tiling = 'two-level' | 'single-level';

export interface SimulateOptions {
  /** 'functional' computes outputs and cycles (needs q/k/v); 'timing' only cycles. Default: functional when tensors are given. */
  readonly mode?: SimulationMode;
  /** Default 'fast-attention'. */
  readonly kernel?: KernelName;
  /**
   * 'two-level' (default): the planner's first-level blocks split into second-level sub-blocks.
   * 'single-level': the first-level block is the second-level block, so every small tile is a
   * hand-off between Cube and Vector (the baseline the two-level tiling improves on).
   */
  readonly tiling?: Tiling;
  /** Force the first-level block (passed to core's planTiles). */
  readonly blockQ?: number;
  readonly blockK?: number;
  readonly splitKV?: number;
  /** Standard attention's S/P storage in GM. Default 'f16', as a framework keeps the input dtype. */
  readonly scoreDType?: ScoreDType;
  /** Record instructions for a Chrome trace (first `cores` core groups, default 2). */
  readonly trace?: boolean | { readonly cores?: number; readonly maxEvents?: number };
}

export interface SimulationResult<D extends DType = DType> {
  /** Present in functional mode. */
  readonly out?: D extends 'f32' ? Float32Array : Uint16Array;
  readonly lse?: Float32Array;
  readonly report: SimulationReport;
  readonly plan?: TilePlan;
}

const hasTensors = (x: AttentionInput | TimingProblem): x is AttentionInput =>
  (x as AttentionInput).q !== undefined ||
  (x as AttentionInput).k !== undefined ||
  (x as AttentionInput).v !== undefined;

/**
 * Runs one attention call on the simulated device. Validates like every backend (typed errors
 * naming the field), plans with core's planTiles on the device's HardwareSpec, classifies tiles
 * with core's tiling-mask, then computes the numbers (functional mode) and schedules the kernel.
 */
export function simulateAttention<D extends DType>(
  device: AscendDevice,
  input: AttentionInput<D> | TimingProblem,
  options: SimulateOptions = {},
): SimulationResult<D> {
  const withTensors = hasTensors(input);
  const mode = options.mode ?? (withTensors ? 'functional' : 'timing');
  if (mode !== 'functional' && mode !== 'timing')
    throw invalidInput('mode', `expected 'functional' or 'timing'`);
  if (mode === 'functional' && !withTensors) throw invalidInput('q', 'functional mode needs q, k and v');
  const resolved = withTensors
    ? validateAttentionInput(input as AttentionInput<D>, CAPABILITIES)
    : validateProblem(input as TimingProblem);
  const kernel = options.kernel ?? 'fast-attention';
  if (kernel !== 'fast-attention' && kernel !== 'standard') {
    throw invalidInput('kernel', `expected 'fast-attention' or 'standard'`);
  }
  const problem: AttentionProblem = {
    batch: resolved.batch,
    seqQ: resolved.seqQ,
    seqK: resolved.seqK,
    headsQ: resolved.headsQ,
    headsKV: resolved.headsKV,
    headDim: resolved.headDim,
    dtype: resolved.dtype,
  };
  const trace = options.trace
    ? new TraceSink(
        typeof options.trace === 'object' ? options.trace.cores : undefined,
        typeof options.trace === 'object' ? options.trace.maxEvents : undefined,
      )
    : undefined;
  const machine = new Machine(device.aicCores, trace);
  const ub = device.buffers.ub;
  const common = { device: device.name, mode, clockHz: device.clockHz.value, machine };

  if (kernel === 'standard') {
    const scoreDType = options.scoreDType ?? 'f16';
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
    if (mode === 'timing') return { report };
    const numbers = standardAttentionNumbers(resolved as ResolvedAttentionInput<CubeDType>, scoreDType);
    return { out: numbers.out as SimulationResult<D>['out'], lse: numbers.lse, report };
  }

  const plan = choosePlan(device, problem, options);
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
      tiling: options.tiling ?? 'two-level',
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
  if (mode === 'timing') return { report, plan };
  const numbers = fastAttentionNumbers(resolved as ResolvedAttentionInput<CubeDType>, plan, maps, patterns);
  return { out: numbers.out as SimulationResult<D>['out'], lse: numbers.lse, report, plan };
}

function choosePlan(device: AscendDevice, problem: AttentionProblem, options: SimulateOptions): TilePlan {
  const spec = ascendSpec(device);
  const forced = {
    ...(options.blockQ !== undefined ? { blockQ: options.blockQ } : {}),
    ...(options.blockK !== undefined ? { blockK: options.blockK } : {}),
    ...(options.splitKV !== undefined ? { splitKV: options.splitKV } : {}),
  };
  const tiling = options.tiling ?? 'two-level';
  if (tiling === 'two-level') return planTiles(problem, spec, forced);
  if (tiling !== 'single-level') throw invalidInput('tiling', `expected 'two-level' or 'single-level'`);
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

/** A tensor-less timing problem, validated by core's rules; empty tensors keep one resolved type. */
function validateProblem(x: TimingProblem): ResolvedAttentionInput {
  const empty = new Uint16Array(0);
  return { ...validateAttentionShape(x, CAPABILITIES), q: empty, k: empty, v: empty };
}
