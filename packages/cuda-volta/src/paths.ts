import { FastAttentionError } from '@fastattention/core';

/**
 * Architecture paths: each is a set of kernels written for one generation's matrix instruction.
 * `volta` (sm_70, mma.m8n8k4, shared-memory layouts for its quad-pairs), `turing` (sm_75,
 * m16n8k8, no cp.async) and `ampere` (sm_80+, m16n8k16 + ldmatrix + cp.async). A later path is
 * added by a row here, its kernels under kernels/<path>/, and its configuration table in the addon.
 * Volta and Turing tensor cores have no bf16: those paths convert bf16 input to f16 in shared
 * memory (exact within f16's range, see docs/volta-turing.md) and round the output back.
 */
export type PathName = 'volta' | 'turing' | 'ampere';

export interface ArchPath {
  readonly name: PathName;
  /** Lowest compute capability (major * 10 + minor) the path's instructions need. */
  readonly minSm: number;
  readonly implemented: boolean;
  readonly instruction: string;
}

export const PATHS: readonly ArchPath[] = [
  { name: 'ampere', minSm: 80, implemented: true, instruction: 'mma.sync.m16n8k16 + ldmatrix + cp.async' },
  { name: 'turing', minSm: 75, implemented: true, instruction: 'mma.sync.m16n8k8' },
  { name: 'volta', minSm: 70, implemented: true, instruction: 'mma.sync.m8n8k4' },
];

/**
 * The path to run on a device of compute capability `sm`: the forced one (validated), or the
 * newest implemented path the device supports. Throws UNSUPPORTED for an unknown or unimplemented
 * forced path or one the device cannot run, UNAVAILABLE when no implemented path fits the device.
 */
export function selectPath(sm: number, forced?: string): ArchPath {
  const implemented = PATHS.filter((p) => p.implemented);
  const list = implemented.map((p) => `${p.name} (sm_${p.minSm}+)`).join(', ');
  if (forced !== undefined && forced !== 'auto') {
    const path = PATHS.find((p) => p.name === forced);
    if (!path || !path.implemented) {
      throw new FastAttentionError(
        'UNSUPPORTED',
        `path: '${forced}' is ${path ? 'not implemented yet' : 'not a known path'} (implemented: ${list})`,
        { field: 'path' },
      );
    }
    if (sm < path.minSm) {
      throw new FastAttentionError(
        'UNSUPPORTED',
        `path: '${forced}' needs sm_${path.minSm} or newer; this device is sm_${sm}`,
        { field: 'path' },
      );
    }
    return path;
  }
  const path = implemented.find((p) => sm >= p.minSm);
  if (!path)
    throw new FastAttentionError('UNAVAILABLE', `no kernel path for sm_${sm} (implemented: ${list})`);
  return path;
}
