export { CudaBackend, createBackend, cudaProvider } from './backend.js';
export type { CudaDType, DeviceAttentionInput } from './input.js';
export type { NativeConfig, NativeDevice } from './native.js';
export { loadAddon } from './native.js';
export type { CudaBackendOptions, CudaTuning } from './options.js';
export { type ArchPath, candidatePaths, PATHS, type PathName, runsOn, selectPath } from './paths.js';
export type { LaunchPlan } from './plan.js';
export { cudaSpec } from './spec.js';
export { DeviceTensor, type HostOf, type TensorDType } from './tensor.js';
export type { TimingOptions } from './timing.js';

import type { CudaBackendOptions } from './options.js';

// Typed options for resolveBackend({ backendOptions: { cuda: { path: 'volta' } } }).
declare module '@fastattention/core' {
  interface BackendOptionsMap {
    cuda: CudaBackendOptions;
  }
}

export { CudaTensor } from './exec/device-tensor.js';
export { CudaExecutor, type CudaExecutorOptions, CudaStream } from './exec/executor.js';
