export {
  CudaBackend,
  type CudaBackendOptions,
  type CudaDType,
  createBackend,
  cudaProvider,
  type DeviceAttentionInput,
  type LaunchPlan,
  type TimingOptions,
} from './backend.js';
export type { NativeConfig, NativeDevice } from './native.js';
export { loadAddon } from './native.js';
export { type ArchPath, candidatePaths, PATHS, type PathName, runsOn, selectPath } from './paths.js';
export { cudaSpec } from './spec.js';
export { DeviceTensor, type HostOf, type TensorDType } from './tensor.js';

import type { CudaBackendOptions } from './backend.js';

// Typed options for resolveBackend({ backendOptions: { cuda: { path: 'volta' } } }).
declare module '@fastattention/core' {
  interface BackendOptionsMap {
    cuda: CudaBackendOptions;
  }
}
