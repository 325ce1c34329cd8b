export {
  type AscendAttentionOutput,
  type AscendBackend,
  type AscendBackendOptions,
  type AscendExecutorOptions,
  ascendProvider,
  createBackend,
} from './backend.js';
export {
  AIC_PIPES,
  AIV_PIPES,
  type AicPipe,
  type AivPipe,
  DEFAULT_PIPES,
  type Parameter,
  PIPE_KINDS,
  type PipeKind,
  type PipeTable,
  type Provenance,
} from './device/pipes.js';
export {
  ASCEND_CHIPS,
  type AscendBuffers,
  type AscendChipName,
  type AscendDevice,
  ascendSpec,
  type DeviceOverrides,
  PRESETS,
  withOverrides,
} from './device/presets.js';
export { CAPABILITIES, HEAD_DIMS, type SimulateOptions, type Tiling, type TimingProblem } from './job.js';
export type { ScoreDType } from './kernel/standard.js';
export type { KernelName, PipeStats, SimulationMode, SimulationReport } from './sim/report.js';
export type { TraceEvent } from './sim/scheduler.js';
export { type SimulationResult, simulateAttention } from './simulate.js';
export { type ChromeTrace, type ChromeTraceEvent, toChromeTrace } from './trace/chrome.js';

import type { AscendBackendOptions } from './backend.js';

// Typed options for resolveBackend({ backendOptions: { 'ascend-sim': { device: '910B3' } } }).
declare module '@fastattention/core' {
  interface BackendOptionsMap {
    'ascend-sim': AscendBackendOptions;
  }
}
