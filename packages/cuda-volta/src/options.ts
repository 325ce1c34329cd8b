import {
  type BackendOptions,
  describeValue,
  FastAttentionError,
  invalidInput,
  unsupported,
} from '@fastattention/core';
import type { NativeConfig } from './native.js';
import type { PathName } from './paths.js';

export interface CudaBackendOptions extends BackendOptions {
  /** CUDA device ordinal. Default 0. */
  readonly device?: number;
  /** Architecture path; default 'auto' (the newest the device supports). Forcing one validates it. */
  readonly path?: 'auto' | PathName;
  /** Where the fatbins are; default `<package>/build/kernels`. */
  readonly kernelDir?: string;
  /**
   * How launches are made, for benchmarks and A/B runs (the defaults are the fast choices). Each
   * field left out takes its `FASTATTN_CUDA_*` environment variable, read once by createBackend().
   */
  readonly tuning?: CudaTuning;
}

/** Launch tuning of a CUDA backend (`CudaBackendOptions.tuning`). */
export interface CudaTuning {
  /**
   * The last split-KV CTA merges the partials (every path); false: the separate combine kernel
   * runs after the attention kernel. Default true;
   * `FASTATTN_CUDA_FUSED_COMBINE=0` makes it false.
   */
  readonly fusedCombine?: boolean;
  /**
   * Programmatic dependent launch on sm_90+ where the kernels have the wait for it (the ampere and
   * hopper kernels' sm_90+ code): a kernel may be dispatched while the previous one of the stream
   * finishes. Default true; `FASTATTN_CUDA_PDL=0` makes it false.
   */
  readonly pdl?: boolean;
  /**
   * Plans decode with this compiled configuration (its suffix, e.g. `'hd128_16x64w1s3'`, also a
   * timing-only `decode_alt` one) for the head dim it was compiled for; other head dims keep the
   * planner's choice. A name no decode configuration of the backend's path has is UNSUPPORTED.
   * Default: the planner's choice; `FASTATTN_CUDA_DECODE_CONFIG=<suffix>` (ignored where no
   * configuration has that name).
   */
  readonly decodeConfig?: string;
  /**
   * The same for prefill (also a timing-only `prefill_alt` configuration):
   * `FASTATTN_CUDA_PREFILL_CONFIG=<suffix>`.
   */
  readonly prefillConfig?: string;
  /**
   * The decode split-KV count (an integer >= 1; at most one split per k-tile of the keys) instead
   * of the planner's. Default: the planner's; `FASTATTN_CUDA_DECODE_SPLIT=<n>`.
   */
  readonly decodeSplit?: number;
}

/** Tuning with every field decided: the option, else its environment variable, else the default. */
export interface ResolvedTuning {
  readonly fusedCombine: boolean;
  readonly pdl: boolean;
  readonly decodeConfig: string | undefined;
  readonly prefillConfig: string | undefined;
  readonly decodeSplit: number | undefined;
  /** Whether decodeConfig came from the option (then it must name a configuration). */
  readonly decodeConfigGiven: boolean;
  /** Whether prefillConfig came from the option. */
  readonly prefillConfigGiven: boolean;
}

const TUNING_FIELDS = ['fusedCombine', 'pdl', 'decodeConfig', 'prefillConfig', 'decodeSplit'] as const;
const ROLES = ['decode', 'prefill'] as const;

/**
 * Validates `options.tuning` (INVALID_INPUT naming the field, e.g. `tuning.decodeSplit`) and fills
 * what it leaves out from the environment, which is read here and nowhere else. Environment
 * values keep their meaning from before the options existed: only `0` turns a feature off, and a
 * split count that is not an integer >= 1 is ignored.
 */
export function resolveTuning(tuning: unknown, env: NodeJS.ProcessEnv = process.env): ResolvedTuning {
  const given: Partial<Record<(typeof TUNING_FIELDS)[number], unknown>> = {};
  if (tuning !== undefined) {
    if (typeof tuning !== 'object' || tuning === null || Array.isArray(tuning)) {
      throw invalidInput('tuning', `expected an object, got ${describeValue(tuning)}`);
    }
    for (const field of TUNING_FIELDS) {
      try {
        given[field] = (tuning as Record<string, unknown>)[field];
      } catch (error) {
        throw new FastAttentionError('INVALID_INPUT', `tuning.${field}: reading it threw: ${String(error)}`, {
          field: `tuning.${field}`,
          cause: error,
        });
      }
    }
  }
  for (const field of ['fusedCombine', 'pdl'] as const) {
    const value = given[field];
    if (value !== undefined && typeof value !== 'boolean') {
      throw invalidInput(`tuning.${field}`, `expected a boolean, got ${describeValue(value)}`);
    }
  }
  const { decodeConfig, prefillConfig, decodeSplit } = given;
  for (const role of ROLES) {
    const name = given[`${role}Config`];
    if (name !== undefined && (typeof name !== 'string' || name === '')) {
      throw invalidInput(
        `tuning.${role}Config`,
        `expected a configuration name (e.g. 'hd128_16x64w1s3'), got ${describeValue(name)}`,
      );
    }
  }
  if (decodeSplit !== undefined && !(Number.isSafeInteger(decodeSplit) && (decodeSplit as number) >= 1)) {
    throw invalidInput('tuning.decodeSplit', `expected an integer >= 1, got ${describeValue(decodeSplit)}`);
  }
  const envSplit = Number(env.FASTATTN_CUDA_DECODE_SPLIT);
  return {
    fusedCombine: (given.fusedCombine as boolean | undefined) ?? env.FASTATTN_CUDA_FUSED_COMBINE !== '0',
    pdl: (given.pdl as boolean | undefined) ?? env.FASTATTN_CUDA_PDL !== '0',
    decodeConfig: (decodeConfig as string | undefined) ?? (env.FASTATTN_CUDA_DECODE_CONFIG || undefined),
    prefillConfig: (prefillConfig as string | undefined) ?? (env.FASTATTN_CUDA_PREFILL_CONFIG || undefined),
    decodeSplit:
      (decodeSplit as number | undefined) ??
      (Number.isInteger(envSplit) && envSplit >= 1 ? envSplit : undefined),
    decodeConfigGiven: decodeConfig !== undefined,
    prefillConfigGiven: prefillConfig !== undefined,
  };
}

/**
 * Refuses a `tuning.decodeConfig` or `tuning.prefillConfig` option that names no configuration of
 * that role in the backend's path (UNSUPPORTED): a misspelt name would otherwise be ignored. The
 * environment's are not checked, so that one value can be set for a whole test suite whose
 * backends run different paths.
 */
export function checkTunedConfigs(
  tuning: ResolvedTuning,
  path: PathName,
  configs: readonly NativeConfig[],
): void {
  for (const role of ROLES) {
    const name = tuning[`${role}Config`];
    if (!tuning[`${role}ConfigGiven`] || name === undefined) continue;
    const names = [...new Set(configs.filter((c) => c.role.startsWith(role)).map((c) => c.suffix))];
    if (!names.includes(name)) {
      throw unsupported(
        `tuning.${role}Config`,
        `no ${role} configuration '${name}' in the ${path} path's kernels (have: ${names.join(', ')})`,
      );
    }
  }
}
