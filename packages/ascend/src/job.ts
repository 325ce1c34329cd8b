import {
  ALL_BLOCK_SIZES,
  type AttentionInput,
  type AttentionShape,
  type BackendCapabilities,
  type DType,
  invalidInput,
  MASK_KINDS,
  type MaskSpec,
  type ResolvedPagedKV,
  validateAttentionInput,
  validateAttentionShape,
} from '@fastattention/core';
import type { CubeDType } from './kernel/numerics.js';
import type { ScoreDType } from './kernel/standard.js';
import type { KernelName, SimulationMode } from './sim/report.js';

/** Head dims the kernels honour: multiples of the Cube's 16, up to 256 (L0A/L0C still fit at 256). */
export const HEAD_DIMS: readonly number[] = Array.from({ length: 16 }, (_, i) => 16 * (i + 1));

/**
 * f16 and bf16 only: the modelled Cube multiplies 16-bit operands into f32. f32 input is rejected
 * (UNSUPPORTED, field 'dtype') rather than silently rounded to 16 bits, which would break the f32
 * error bound (1e-5) the contract promises for f32 callers. f16 comes first: it is the dtype a
 * caller that picks the first supported one (the fastattn CLI) should use.
 */
export const CAPABILITIES: BackendCapabilities = {
  dtypes: ['f16', 'bf16'] satisfies CubeDType[],
  headDims: { kind: 'list', values: HEAD_DIMS },
  masks: MASK_KINDS,
  // The functional model reads keys through the block table; the timing model prices K/V tiles as
  // if they were contiguous (a block of at least a k-tile is).
  pagedKV: ALL_BLOCK_SIZES,
};

/** A timing-only problem: the shape and mask of a call without its tensors. */
export interface TimingProblem extends AttentionShape {
  readonly dtype: DType;
  readonly mask?: MaskSpec;
  readonly seqLensK?: Int32Array;
  readonly scale?: number;
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

/** The validated problem of a call: shape, dtype and every default filled in. */
export interface SimulationProblem extends AttentionShape {
  readonly dtype: CubeDType;
  readonly scale: number;
  readonly seqLensK: Int32Array;
  readonly mask: MaskSpec;
  /** k and v are a paged cache (the validator's copy of the table). */
  readonly pagedKV?: ResolvedPagedKV;
}

/** The 16-bit tensors of a functional call. */
export interface SimulationTensors {
  readonly q: Uint16Array;
  readonly k: Uint16Array;
  readonly v: Uint16Array;
}

/**
 * One validated call, in a form that is plain data (structured-cloneable), so a worker process can
 * run it: nothing in it refers back to the caller's objects except the tensors themselves.
 * `tensors` is present exactly in functional mode.
 */
export interface SimulationJob {
  readonly problem: SimulationProblem;
  readonly tensors?: SimulationTensors;
  readonly kernel: KernelName;
  readonly tiling: Tiling;
  readonly scoreDType: ScoreDType;
  readonly blockQ?: number;
  readonly blockK?: number;
  readonly splitKV?: number;
  readonly trace?: { readonly cores?: number; readonly maxEvents?: number };
}

/**
 * Validates a call and turns it into a job. Core's validator sees the input before anything else
 * does (a non-object, getters, prototype-inherited fields all get its typed errors and its
 * snapshot); after that only the validator's returned object is read, never the caller's input.
 * Throws a FastAttentionError naming the field.
 */
export function prepareSimulation(
  input: AttentionInput | TimingProblem,
  options: SimulateOptions = {},
): SimulationJob {
  // `in` reads no getter, and sees fields inherited through the prototype (Object.create(input)).
  const withTensors =
    typeof input === 'object' && input !== null && ('q' in input || 'k' in input || 'v' in input);
  const withArrays = withTensors ? validateAttentionInput(input as AttentionInput, CAPABILITIES) : undefined;
  const resolved = withArrays ?? validateAttentionShape(input as TimingProblem, CAPABILITIES);
  const { mode: modeOption, kernel = 'fast-attention', tiling = 'two-level', scoreDType = 'f16' } = options;
  const { blockQ, blockK, splitKV, trace } = options;
  const mode = modeOption ?? (withTensors ? 'functional' : 'timing');
  if (mode !== 'functional' && mode !== 'timing') {
    throw invalidInput('mode', `expected 'functional' or 'timing'`);
  }
  if (mode === 'functional' && !withTensors) throw invalidInput('q', 'functional mode needs q, k and v');
  if (kernel !== 'fast-attention' && kernel !== 'standard') {
    throw invalidInput('kernel', `expected 'fast-attention' or 'standard'`);
  }
  if (tiling !== 'two-level' && tiling !== 'single-level') {
    throw invalidInput('tiling', `expected 'two-level' or 'single-level'`);
  }
  if (scoreDType !== 'f16' && scoreDType !== 'f32') {
    throw invalidInput('scoreDType', `expected 'f16' or 'f32'`);
  }
  // The planner takes forced sizes as given: a bad one would fail deep inside a worker.
  for (const [field, value] of [
    ['blockQ', blockQ],
    ['blockK', blockK],
    ['splitKV', splitKV],
    ...(typeof trace === 'object'
      ? [['trace.cores', trace.cores] as const, ['trace.maxEvents', trace.maxEvents] as const]
      : []),
  ] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) {
      throw invalidInput(field, `expected a positive integer, got ${String(value)}`);
    }
  }
  const problem: SimulationProblem = {
    batch: resolved.batch,
    seqQ: resolved.seqQ,
    seqK: resolved.seqK,
    headsQ: resolved.headsQ,
    headsKV: resolved.headsKV,
    headDim: resolved.headDim,
    // CAPABILITIES admit only the 16-bit dtypes, so the validator has narrowed this.
    dtype: resolved.dtype as CubeDType,
    scale: resolved.scale,
    seqLensK: resolved.seqLensK,
    mask: resolved.mask, // a fresh plain object: core's validator copies the mask
    ...(resolved.pagedKV ? { pagedKV: resolved.pagedKV } : {}),
  };
  // The validator has checked that 16-bit dtypes come as Uint16Arrays.
  const tensors =
    mode === 'functional' && withArrays
      ? { q: withArrays.q as Uint16Array, k: withArrays.k as Uint16Array, v: withArrays.v as Uint16Array }
      : undefined;
  return {
    problem,
    ...(tensors ? { tensors } : {}),
    kernel,
    tiling,
    scoreDType,
    ...(blockQ !== undefined ? { blockQ } : {}),
    ...(blockK !== undefined ? { blockK } : {}),
    ...(splitKV !== undefined ? { splitKV } : {}),
    ...(trace
      ? { trace: typeof trace === 'object' ? { cores: trace.cores, maxEvents: trace.maxEvents } : {} }
      : {}),
  };
}
