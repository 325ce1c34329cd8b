import {
  type AttentionInput,
  type AttentionOptions,
  type AttentionOutput,
  type Backend,
  type BackendInfo,
  type BackendOptions,
  type BackendProvider,
  type DType,
  FastAttentionError,
  invalidInput,
  throwIfAborted,
} from '@fastattention/core';
import {
  ASCEND_CHIPS,
  type AscendChipName,
  type AscendDevice,
  type DeviceOverrides,
  PRESETS,
  withOverrides,
} from './device/presets.js';
import type { SimulationReport } from './sim/report.js';
import {
  CAPABILITIES,
  type SimulateOptions,
  type SimulationResult,
  simulateAttention,
  type TimingProblem,
} from './simulate.js';

export interface AscendBackendOptions extends BackendOptions {
  /** Which 910B variant to simulate. Default '910B2'. */
  readonly device?: AscendChipName;
  /** Replace figures of the device model (sync cost, bandwidths, pipe throughputs). */
  readonly overrides?: DeviceOverrides;
  /** Options every attention() call uses (tiling, forced block sizes). */
  readonly simulate?: Omit<SimulateOptions, 'mode' | 'trace'>;
}

/** The Ascend backend: core's Backend plus the simulator's own entry points. */
export interface AscendBackend extends Backend {
  readonly device: AscendDevice;
  /** Runs one call on the simulator and returns outputs (functional mode) and the timing report. */
  simulate<D extends DType>(
    input: AttentionInput<D> | TimingProblem,
    options?: SimulateOptions & AttentionOptions,
  ): Promise<SimulationResult<D>>;
  /** The simulated timing report of the last attention() or simulate() call. */
  lastReport(): SimulationReport | undefined;
}

/**
 * Creates the simulated Ascend 910B backend. attention() validates its input, then runs
 * FastAttention on the simulator in functional mode: real outputs, plus a timing report kept for
 * `lastReport()`. Everything the report says is simulated.
 */
export async function createBackend(options: AscendBackendOptions = {}): Promise<AscendBackend> {
  const chip = options.device ?? '910B2';
  if (!ASCEND_CHIPS.includes(chip)) {
    throw invalidInput('device', `expected one of ${ASCEND_CHIPS.join(', ')}, got '${String(chip)}'`);
  }
  const device = withOverrides(PRESETS[chip], options.overrides);
  const info: BackendInfo = {
    name: 'ascend-sim',
    devices: [
      {
        name: `Ascend ${chip} (cycle-approximate simulator)`,
        kind: 'simulator',
        computeUnits: device.aicCores,
        memoryBytes: device.hbmBytes.value,
        details: {
          simulated: true,
          aic: device.aicCores,
          aiv: device.aicCores * device.aivPerAic,
          clockHz: device.clockHz.value,
          syncCycles: device.syncCycles.value,
        },
      },
    ],
    capabilities: CAPABILITIES,
  };
  let disposed = false;
  let last: SimulationReport | undefined;
  const alive = (): void => {
    if (disposed) throw new FastAttentionError('DISPOSED', 'the ascend-sim backend was disposed');
  };
  const dispose = async (): Promise<void> => {
    disposed = true;
    last = undefined;
  };
  const simulate = async <D extends DType>(
    input: AttentionInput<D> | TimingProblem,
    callOptions: SimulateOptions & AttentionOptions = {},
  ): Promise<SimulationResult<D>> => {
    alive();
    const { signal, ...rest } = callOptions;
    throwIfAborted(signal);
    const result = simulateAttention(device, input, { ...options.simulate, ...rest });
    last = result.report;
    return result;
  };
  return {
    name: info.name,
    info,
    device,
    async attention<D extends DType>(
      input: AttentionInput<D>,
      callOptions?: AttentionOptions,
    ): Promise<AttentionOutput<D>> {
      const { out, lse } = await simulate(input, {
        mode: 'functional',
        ...(callOptions?.signal ? { signal: callOptions.signal } : {}),
      });
      return { out: out as AttentionOutput<D>['out'], lse: lse! };
    },
    simulate,
    lastReport: () => last,
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

/**
 * Registry entry. A simulator runs the numbers in JavaScript and models a device it does not run
 * on, so it is marked `simulated`: resolveBackend() takes it only when asked for by name.
 */
export const ascendProvider: BackendProvider = {
  name: 'ascend-sim',
  priority: 1,
  simulated: true,
  description: 'Ascend 910B FastAttention on a cycle-approximate simulator (timings simulated)',
  create: (options?: Record<string, unknown>) => createBackend(options as AscendBackendOptions | undefined),
};
