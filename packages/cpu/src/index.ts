export {
  CPU_CAPABILITIES,
  type CpuBackend,
  type CpuBackendOptions,
  type CpuCallPlan,
  type CpuIsa,
  cpuProvider,
  createBackend,
} from './backend.js';
export { type AddonLoad, addonPath, loadAddon, type NativeAddon } from './native.js';
export {
  type CpuCaches,
  type CpuSpecOptions,
  cpuFlags,
  cpuHardwareSpec,
  cpuModelName,
  DEFAULT_CACHES,
  parseCacheSize,
  readCpuCaches,
} from './spec.js';

import type { CpuBackendOptions } from './backend.js';

// Typed options for resolveBackend({ backendOptions: { cpu: { threads: 4 } } }).
declare module '@fastattention/core' {
  interface BackendOptionsMap {
    cpu: CpuBackendOptions;
  }
}
