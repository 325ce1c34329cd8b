import {
  type AttentionShape,
  allowedKeys,
  bandOf,
  FastAttentionError,
  type MaskSpec,
  planTiles,
  type TilePlan,
} from '@fastattention/core';
import type { CudaDType } from './input.js';
import { moduleName } from './kernels.js';
import type { NativeConfig, NativeContext, NativeDevice } from './native.js';
import type { ResolvedTuning } from './options.js';
import type { PathName } from './paths.js';
import { cudaSpec } from './spec.js';

/** What a call will launch, and why (the planner's reasons). */
export interface LaunchPlan {
  readonly path: PathName;
  readonly role: 'prefill' | 'decode';
  readonly kernel: string;
  readonly config: NativeConfig;
  readonly splitKV: number;
  readonly grid: readonly [number, number, number];
  readonly threads: number;
  readonly tilePlan: TilePlan;
}

/** Decode kernels pack the query heads of a KV head into one tile: up to 16 query rows. */
const DECODE_MAX_SEQ_Q = 16;

/**
 * Prefill whose rows see fewer keys than this on average runs the head dim's 'prefill_short'
 * configuration where one is compiled: smaller tiles at more CTAs per SM, so that each CTA's fixed
 * cost (its first copies, its epilogue) hides behind the others' k-tiles. On the H200 at hd 64 the
 * short tile led by 4-45% up to 2K keys a row and trailed by 1-5% from 4K (BENCHMARKS.md, "Four
 * CTAs per SM for short hd 64 prefill").
 */
export const SHORT_ROW_KEYS = 3072;

/** The mean number of keys a query row sees, over up to 33 evenly spaced rows (exact for causal). */
export function meanKeysPerRow(problem: AttentionShape & { readonly mask?: MaskSpec }): number {
  const { seqQ, seqK } = problem;
  const band = bandOf(problem.mask ?? { kind: 'none' });
  const samples = Math.min(seqQ, 33);
  let sum = 0;
  for (let n = 0; n < samples; n++) {
    const i = samples === 1 ? 0 : Math.round((n * (seqQ - 1)) / (samples - 1));
    const [start, end] = allowedKeys(band, i, seqQ, seqK);
    sum += end - start;
  }
  return sum / samples;
}

interface SpecEntry {
  readonly spec: ReturnType<typeof cudaSpec>;
  readonly config: NativeConfig[];
  readonly short: NativeConfig | undefined;
}

/**
 * Chooses, for a problem, the kernel role, the compiled configuration (through core's planTiles
 * over the device's HardwareSpec for that role and head dim), the split-KV count and the grid.
 */
export class Planner {
  readonly #device: NativeDevice;
  readonly #context: Pick<NativeContext, 'functionInfo'>;
  readonly #configs: readonly NativeConfig[];
  readonly #tuning: Pick<ResolvedTuning, 'decodeConfig' | 'prefillConfig' | 'decodeSplit'>;
  readonly #specs = new Map<string, SpecEntry>();
  readonly #forcedSpecs = new Map<string, ReturnType<typeof cudaSpec>>();

  constructor(
    device: NativeDevice,
    context: Pick<NativeContext, 'functionInfo'>,
    configs: readonly NativeConfig[],
    tuning: Pick<ResolvedTuning, 'decodeConfig' | 'prefillConfig' | 'decodeSplit'>,
  ) {
    this.#device = device;
    this.#context = context;
    this.#configs = configs;
    this.#tuning = tuning;
  }

  /** How a problem is launched: role, compiled configuration, split-KV count, grid. */
  plan(
    problem: AttentionShape & {
      readonly dtype: CudaDType;
      readonly mask?: MaskSpec;
      readonly pagedKV?: unknown;
    },
    configName?: string,
  ): LaunchPlan {
    const group = problem.headsQ / problem.headsKV;
    const role = problem.seqQ <= DECODE_MAX_SEQ_Q ? 'decode' : 'prefill';
    const { spec, config: candidates, short } = this.#spec(role, problem.headDim);
    // tuning.decodeConfig / prefillConfig plan the role with that compiled configuration where it
    // exists for this head dim (to validate a fallback or an alternative through the whole suite).
    const tuned = role === 'decode' ? this.#tuning.decodeConfig : this.#tuning.prefillConfig;
    if (
      configName === undefined &&
      tuned &&
      this.#configs.some(
        (c) => c.role.startsWith(role) && c.headDim === problem.headDim && c.suffix === tuned,
      )
    ) {
      configName = tuned;
    }
    // Decode packs the query heads of one KV head into a tile's rows: to the planner that is a
    // problem of seqQ * group rows and headsKV heads.
    const planned =
      role === 'decode'
        ? { ...problem, seqQ: problem.seqQ * group, headsQ: problem.headsKV }
        : { ...problem };
    // Rows that see few keys run the short-row configuration, planned as a forced one is. A forced
    // configuration may also be one compiled only for timing (role '<role>_alt').
    if (configName === undefined && short && meanKeysPerRow(problem) < SHORT_ROW_KEYS)
      configName = short.suffix;
    const forced =
      configName === undefined
        ? undefined
        : (candidates.find((c) => c.suffix === configName) ??
          this.#configs.find(
            (c) => c.role.startsWith(`${role}_`) && c.headDim === problem.headDim && c.suffix === configName,
          ));
    if (configName !== undefined && !forced) {
      throw new FastAttentionError(
        'UNSUPPORTED',
        `config: no ${role} configuration '${configName}' for this problem`,
        {
          field: 'config',
        },
      );
    }
    // A forced configuration is planned with a spec of its own: its occupancy (CTAs per SM, so its
    // split-KV count fills its own CTA slots) and its ring depth.
    const tilePlan = planTiles(planned, forced ? this.#forcedSpec(role, forced) : spec);
    const config = forced ?? candidates.find((c) => c.suffix === tilePlan.config) ?? candidates[0]!;
    const rows = planned.seqQ;
    // tuning.decodeSplit overrides the decode split count (run 7: a sweep for timing; the kernels
    // take any count, each split keeping at least one k-tile).
    const decodeSplit = role === 'decode' ? this.#tuning.decodeSplit : undefined;
    const qTiles = Math.ceil(rows / config.blockQ);
    const splitKV =
      decodeSplit !== undefined
        ? Math.min(decodeSplit, Math.ceil(problem.seqK / config.blockK))
        : role === 'decode'
          ? Math.min(tilePlan.splitKV, this.#splitCap(qTiles * planned.headsQ * problem.batch))
          : tilePlan.splitKV;
    return {
      path: config.path,
      role,
      kernel: (problem.pagedKV ? config.pagedKernels : config.kernels)[problem.dtype],
      config,
      splitKV,
      grid: [qTiles, planned.headsQ, problem.batch * splitKV],
      threads: config.warps * 32,
      tilePlan: splitKV === tilePlan.splitKV ? tilePlan : { ...tilePlan, splitKV },
    };
  }

  /**
   * The most splits worth launching for `items` CTAs of work: two CTAs per SM. Filling every CTA
   * slot of a small tile (the hd-64 KSPLIT decode tile has three per SM) ran B1 decode 11-24%
   * slower on the H200 than two per SM: the splits' fixed costs and the merge grow with their
   * number while the bandwidth is already used (BENCHMARKS.md, "Decode split counts").
   */
  #splitCap(items: number): number {
    return Math.max(1, Math.floor((2 * this.#device.multiprocessors) / items));
  }

  /** The HardwareSpec of one forced configuration (cached): its own occupancy and ring depth. */
  #forcedSpec(role: 'prefill' | 'decode', config: NativeConfig): ReturnType<typeof cudaSpec> {
    const key = `${role}/${config.path}/${config.suffix}`;
    let spec = this.#forcedSpecs.get(key);
    if (!spec) {
      spec = cudaSpec(this.#device, role, [config], this.#blocksPerSM(config));
      this.#forcedSpecs.set(key, spec);
    }
    return spec;
  }

  /** CTAs of a configuration that fit on one SM (the occupancy calculator, on its f16 kernel). */
  #blocksPerSM(config: NativeConfig): number {
    return this.#context.functionInfo(
      moduleName(config),
      config.kernels.f16,
      config.warps * 32,
      config.sharedBytes,
    ).blocksPerSM;
  }

  /**
   * The HardwareSpec of a role and head dim (cached), with the configurations compiled for them and
   * the role's short-row configuration, if one is compiled.
   */
  #spec(role: 'prefill' | 'decode', headDim: number): SpecEntry {
    const key = `${role}/${headDim}`;
    let entry = this.#specs.get(key);
    if (!entry) {
      const config = this.#configs.filter((c) => c.role === role && c.headDim === headDim);
      const first = config[0];
      if (!first) {
        throw new FastAttentionError(
          'UNSUPPORTED',
          `headDim: no ${role} kernel for head dim ${headDim} in this build`,
          {
            field: 'headDim',
          },
        );
      }
      const short = this.#configs.find((c) => c.role === `${role}_short` && c.headDim === headDim);
      entry = { spec: cudaSpec(this.#device, role, config, this.#blocksPerSM(first)), config, short };
      this.#specs.set(key, entry);
    }
    return entry;
  }
}
