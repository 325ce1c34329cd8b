import { bandOf, lseLength } from '@fastattention/core';
import type { ResolvedDeviceInput } from './input.js';
import { moduleName } from './kernels.js';
import type { DeviceMemory } from './memory.js';
import type { LaunchDesc } from './native.js';
import { pathNamed } from './paths.js';
import type { LaunchPlan, Planner } from './plan.js';
import { DeviceTensor } from './tensor.js';

/** Band sides at or past this are unbounded to the kernels (int32 arithmetic stays in range). */
const BAND_INF = 2 ** 30;

/** How launches use the kernels' optional features, where the path's kernels have them. */
export interface LaunchFeatures {
  /** The last split CTA merges the split-KV partials (else the separate combine kernel runs). */
  readonly fusedCombine: boolean;
  /** Programmatic dependent launch (sm_90+). */
  readonly pdl: boolean;
}

/** The device buffers of one launch beside q, k, v and the outputs (0n: none). */
export interface LaunchBuffers {
  readonly out: bigint;
  readonly lse: bigint;
  readonly seqLensK: bigint;
  readonly partO: bigint;
  readonly partLse: bigint;
  readonly counters: bigint;
  /** A paged cache's block table on the device (0n: dense). */
  readonly blockTable: bigint;
}

/**
 * Turns a resolved input into a launch: plans it, allocates what the launch needs (outputs where
 * the caller gave none, a device copy of a host seqLensK, the split-KV workspace, the fused
 * combine's counters), builds the LaunchDesc, and frees the temporaries when the launch is done.
 */
export class Launcher {
  readonly #planner: Planner;
  readonly #memory: DeviceMemory;
  readonly #features: LaunchFeatures;

  constructor(planner: Planner, memory: DeviceMemory, features: LaunchFeatures) {
    this.#planner = planner;
    this.#memory = memory;
    this.#features = features;
  }

  /** Builds the launch (allocating outputs, seqLensK and split-KV workspace as needed), runs fn. */
  async run(
    input: ResolvedDeviceInput,
    configName: string | undefined,
    fn: (desc: LaunchDesc) => Promise<void>,
  ): Promise<{ out: DeviceTensor; lse: DeviceTensor<'f32'> }> {
    const plan = this.#planner.plan(input, configName);
    const memory = this.#memory;
    const temps: DeviceTensor[] = [];
    const temp = <T extends DeviceTensor>(t: T): T => {
      temps.push(t);
      return t;
    };
    const out =
      input.out ?? memory.empty(input.dtype, [input.batch, input.seqQ, input.headsQ, input.headDim]);
    const lse = input.lse ?? memory.empty('f32', [input.batch, input.headsQ, input.seqQ]);
    try {
      let seqLensK = 0n;
      if (input.seqLensK instanceof DeviceTensor) seqLensK = input.seqLensK.ptr;
      else if (input.seqLensK) {
        const t = temp(memory.empty('i32', [input.batch]));
        await t.write(input.seqLensK);
        seqLensK = t.ptr;
      }
      let partO = 0n;
      let partLse = 0n;
      if (plan.splitKV > 1) {
        const rows = lseLength(input);
        partO = temp(memory.empty('f32', [plan.splitKV, rows, input.headDim])).ptr;
        partLse = temp(memory.empty('f32', [plan.splitKV, rows])).ptr;
      }
      let counters = 0n;
      const fused = this.#features.fusedCombine;
      if (plan.splitKV > 1 && fused) {
        counters = await memory.counters(plan.grid[0] * plan.grid[1] * input.batch);
      }
      let blockTable = 0n;
      if (input.pagedKV) {
        const t = temp(memory.empty('i32', [input.pagedKV.blockTable.length]));
        await t.write(input.pagedKV.blockTable);
        blockTable = t.ptr;
      }
      const buffers = { out: out.ptr, lse: lse.ptr, seqLensK, partO, partLse, counters, blockTable };
      await fn(launchDesc(input, plan, buffers, this.#features));
      return { out, lse };
    } catch (error) {
      if (!input.out) out.dispose();
      if (!input.lse) lse.dispose();
      throw error;
    } finally {
      for (const t of temps) t.dispose();
    }
  }
}

/** The descriptor the addon turns into the kernels' FaFwdParams (kernels/common/params.h). */
export function launchDesc(
  input: ResolvedDeviceInput,
  plan: LaunchPlan,
  buffers: LaunchBuffers,
  features: LaunchFeatures,
  qStrides?: { readonly batch: number; readonly row: number },
): LaunchDesc {
  const band = bandOf(input.mask);
  const clamp = (x: number): number => Math.min(x, BAND_INF);
  return {
    module: moduleName(plan.config),
    kernel: plan.kernel,
    combine: plan.splitKV > 1 && buffers.counters === 0n ? `fa_combine_${input.dtype}` : null,
    counters: buffers.counters,
    grid: plan.grid,
    threads: plan.threads,
    smem: plan.config.sharedBytes,
    pdl: features.pdl && pathNamed(plan.config.path).kernels.pdl,
    q: input.q.ptr,
    k: input.k.ptr,
    v: input.v.ptr,
    out: buffers.out,
    lse: buffers.lse,
    partO: buffers.partO,
    partLse: buffers.partLse,
    seqLensK: buffers.seqLensK,
    // q may be a view of wider rows (qStrides); out is dense.
    qBatchStride: qStrides?.batch ?? input.seqQ * input.headsQ * input.headDim,
    qRowStride: qStrides?.row ?? input.headsQ * input.headDim,
    outBatchStride: input.seqQ * input.headsQ * input.headDim,
    outRowStride: input.headsQ * input.headDim,
    // A paged cache's rows come from its block table: k and v start at its row 0.
    kBatchStride: input.pagedKV ? 0 : input.seqK * input.headsKV * input.headDim,
    kRowStride: input.headsKV * input.headDim,
    batch: input.batch,
    seqQ: input.seqQ,
    seqK: input.seqK,
    headsQ: input.headsQ,
    headsKV: input.headsKV,
    headDim: input.headDim,
    bandLeft: clamp(band.left),
    bandRight: clamp(band.right),
    scale: input.scale,
    packGqa: plan.role === 'decode' ? 1 : 0,
    numSplits: plan.splitKV,
    ...(input.pagedKV && {
      blockTable: buffers.blockTable,
      blockSize: input.pagedKV.blockSize,
      blocksPerSeq: input.pagedKV.blocksPerSeq,
    }),
    ...(plan.config.producerWarps > 0 && { tma: tmaGeometry(input, plan) }),
  };
}

/**
 * The copy engine's view of k and v: rows per batch row (a paged cache: all), rows per box; and of
 * q: the CTA's rows per box.
 */
function tmaGeometry(input: ResolvedDeviceInput, plan: LaunchPlan): NonNullable<LaunchDesc['tma']> {
  const bf16 = input.dtype === 'bf16';
  const qRows = plan.config.blockQ;
  if (!input.pagedKV) return { kvRows: input.seqK, boxRows: plan.config.blockK, qRows, bf16 };
  return {
    kvRows: input.k.length / (input.headsKV * input.headDim),
    boxRows: Math.min(plan.config.blockK, input.pagedKV.blockSize),
    qRows,
    bf16,
  };
}
