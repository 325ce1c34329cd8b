import { FastAttentionError } from '@fastattention/core';

/**
 * Architecture paths: each is a set of kernels written for one generation's matrix instruction.
 * `volta` (sm_70, mma.m8n8k4, shared-memory layouts for its quad-pairs), `turing` (sm_75,
 * m16n8k8, no cp.async), `ampere` (sm_80+, m16n8k16 + ldmatrix + cp.async) and `hopper` (sm_90
 * only: wgmma, whose sm_90a code runs on no other generation). A path with a `base` holds only the
 * kernels where it beats the base (hopper: prefill, and decode below hd 256) and runs the base's kernels for the rest. A later path is added by a row here, its kernels under kernels/<path>/, and its
 * configuration table in the addon.
 * Volta and Turing tensor cores have no bf16: those paths convert bf16 input to f16 in shared
 * memory (exact within f16's range, see docs/volta-turing.md) and round the output back.
 */
export type PathName = 'volta' | 'turing' | 'ampere' | 'hopper';

export interface ArchPath {
  readonly name: PathName;
  /** Lowest compute capability (major * 10 + minor) the path's instructions need. */
  readonly minSm: number;
  /** Highest compute capability that runs them, where a later generation dropped them. */
  readonly maxSm?: number;
  /** The path whose kernels run the roles and head dims this one has no kernel for. */
  readonly base?: PathName;
  readonly implemented: boolean;
  readonly instruction: string;
  /**
   * What the path's kernels support beyond the one kernel body, which gives every path split-KV and
   * the fused combine (its base's kernels say for themselves).
   */
  readonly kernels: {
    /** griddepcontrol.wait in their sm_90+ code: they may be launched with programmatic dependent launch. */
    readonly pdl: boolean;
  };
}

export const PATHS: readonly ArchPath[] = [
  {
    name: 'hopper',
    minSm: 90,
    maxSm: 90,
    base: 'ampere',
    implemented: true,
    instruction: 'wgmma.m64nNk16 + the copy engine (hd 256 decode: the ampere kernel)',
    kernels: { pdl: true },
  },
  {
    name: 'ampere',
    minSm: 80,
    implemented: true,
    instruction: 'mma.sync.m16n8k16 + ldmatrix + cp.async',
    kernels: { pdl: true },
  },
  {
    name: 'turing',
    minSm: 75,
    implemented: true,
    instruction: 'mma.sync.m16n8k8',
    kernels: { pdl: false },
  },
  {
    name: 'volta',
    minSm: 70,
    implemented: true,
    instruction: 'mma.sync.m8n8k4',
    kernels: { pdl: false },
  },
];

/** Whether a device of compute capability `sm` can run the path's kernels. */
export function runsOn(path: ArchPath, sm: number): boolean {
  return sm >= path.minSm && (path.maxSm === undefined || sm <= path.maxSm);
}

/**
 * The paths to try on a device of compute capability `sm`, best first: the forced one alone
 * (validated), or every implemented path the device runs, newest first (the caller takes the first
 * whose kernels were built: a build without sm_90a falls back from hopper to ampere). Throws
 * UNSUPPORTED for an unknown or unimplemented forced path or one the device cannot run, UNAVAILABLE
 * when no implemented path fits the device.
 */
export function candidatePaths(sm: number, forced?: string): ArchPath[] {
  const implemented = PATHS.filter((p) => p.implemented);
  const list = implemented
    .map((p) => `${p.name} (sm_${p.minSm}${p.maxSm === p.minSm ? '' : '+'})`)
    .join(', ');
  if (forced !== undefined && forced !== 'auto') {
    const path = PATHS.find((p) => p.name === forced);
    if (!path?.implemented) {
      throw new FastAttentionError(
        'UNSUPPORTED',
        `path: '${forced}' is ${path ? 'not implemented yet' : 'not a known path'} (implemented: ${list})`,
        { field: 'path' },
      );
    }
    if (!runsOn(path, sm)) {
      const needs = path.maxSm === path.minSm ? `sm_${path.minSm}` : `sm_${path.minSm} or newer`;
      throw new FastAttentionError(
        'UNSUPPORTED',
        `path: '${forced}' needs ${needs}; this device is sm_${sm}`,
        {
          field: 'path',
        },
      );
    }
    return [path];
  }
  const paths = implemented.filter((p) => runsOn(p, sm));
  if (paths.length === 0)
    throw new FastAttentionError('UNAVAILABLE', `no kernel path for sm_${sm} (implemented: ${list})`);
  return paths;
}

/** The path to run on a device of compute capability `sm` when every path's kernels are built. */
export function selectPath(sm: number, forced?: string): ArchPath {
  return candidatePaths(sm, forced)[0]!;
}

/** The path of that name (every PathName has a row in PATHS). */
export function pathNamed(name: PathName): ArchPath {
  return PATHS.find((p) => p.name === name)!;
}
