import type { BackendOptions } from '@fastattention/core';
import type { PathName } from './paths.js';

export interface CudaBackendOptions extends BackendOptions {
  /** CUDA device ordinal. Default 0. */
  readonly device?: number;
  /** Architecture path; default 'auto' (the newest the device supports). Forcing one validates it. */
  readonly path?: 'auto' | PathName;
  /** Where the fatbins are; default `<package>/build/kernels`. */
  readonly kernelDir?: string;
}
