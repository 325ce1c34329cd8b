import {
  type AttentionInput,
  type AttentionOptions,
  type AttentionOutput,
  attentionHandler,
  type Backend,
  type BackendInfo,
  type BackendOptions,
  type BackendProvider,
  type DType,
  HostExecutor,
  invalidInput,
  Lifetime,
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
import { CAPABILITIES, prepareSimulation, type SimulateOptions, type TimingProblem } from './job.js';
import type { KernelName, SimulationReport } from './sim/report.js';
import type { SimulationResult } from './simulate.js';
import { SimulationPool } from './worker/pool.js';

export interface AscendBackendOptions extends BackendOptions {
  /** Which 910B variant to simulate. Default '910B2'. */
  readonly device?: AscendChipName;
  /** Replace figures of the device model (sync cost, bandwidths, pipe throughputs). */
  readonly overrides?: DeviceOverrides;
  /** Options every attention() call uses (tiling, forced block sizes). */
  readonly simulate?: Omit<SimulateOptions, 'mode' | 'trace'>;
  /**
   * Worker processes that run the simulator, started on first use; calls beyond this many wait in
   * order. Default: all cores.
   */
  readonly threads?: number;
}

export interface AscendExecutorOptions {
  /** Called with each attention op's simulated timing report, in stream order. */
  readonly onReport?: (report: SimulationReport) => void;
}

/** core's attention output plus the simulated timing report of this very call. */
export interface AscendAttentionOutput<D extends DType = DType> extends AttentionOutput<D> {
  readonly report: SimulationReport;
}

/** The Ascend backend: core's Backend plus the simulator's own entry points. */
export interface AscendBackend extends Backend {
  readonly device: AscendDevice;
  /** core's attention() call; the result also carries this call's simulated timing report. */
  attention<D extends DType>(
    input: AttentionInput<D>,
    options?: AttentionOptions,
  ): Promise<AscendAttentionOutput<D>>;
  /**
   * core's optional baseline: standard attention on the simulated device (S and P through GM, the
   * full mask read by the softmax), S kept in f32 unless `createBackend({ simulate: { scoreDType }
   * })` says otherwise; `workspaceBytes` is the simulated GM bytes of S (attention()'s is its
   * Cube-Vector hand-off buffers).
   */
  standardAttention<D extends DType>(
    input: AttentionInput<D>,
    options?: AttentionOptions,
  ): Promise<AscendAttentionOutput<D>>;
  /**
   * The execution contract's executor on this device: tensors in host memory (the simulator's GM)
   * and the one op the simulator models, `attention`, run on its worker processes in stream order,
   * each op's report through `onReport`. Every other op is UNSUPPORTED. Disposed with the backend.
   */
  createExecutor(options?: AscendExecutorOptions): HostExecutor;
  /** Runs one call on the simulator and returns outputs (functional mode) and the timing report. */
  simulate<D extends DType>(
    input: AttentionInput<D> | TimingProblem,
    options?: SimulateOptions & AttentionOptions,
  ): Promise<SimulationResult<D>>;
}

/**
 * Creates the simulated Ascend 910B backend. attention() validates its input on the caller's
 * thread, then runs FastAttention on the simulator in functional mode in a worker process: real
 * outputs plus the call's timing report. Everything the report says is simulated.
 */
export async function createBackend(options: AscendBackendOptions = {}): Promise<AscendBackend> {
  const chip = options.device ?? '910B2';
  if (!ASCEND_CHIPS.includes(chip)) {
    throw invalidInput('device', `expected one of ${ASCEND_CHIPS.join(', ')}, got '${String(chip)}'`);
  }
  const { threads } = options;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw invalidInput('threads', `expected a positive integer, got ${String(threads)}`);
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
  const pool = new SimulationPool(device, threads);
  // dispose() stops the worker pool at once: calls still running or waiting reject with DISPOSED
  // (a simulation can run for minutes); new calls reject too.
  const life = new Lifetime('the ascend-sim backend', undefined, { cancel: () => pool.dispose() });
  const dispose = (): Promise<void> => life.dispose();
  const simulate = <D extends DType>(
    input: AttentionInput<D> | TimingProblem,
    callOptions: SimulateOptions & AttentionOptions = {},
  ): Promise<SimulationResult<D>> =>
    life.run(async () => {
      const { signal, ...rest } = callOptions;
      throwIfAborted(signal);
      const job = prepareSimulation(input, { ...options.simulate, ...rest });
      return (await pool.run(job, signal)) as SimulationResult<D>;
    });
  const functional = async <D extends DType>(
    input: AttentionInput<D>,
    kernel: KernelName,
    callOptions?: AttentionOptions,
  ): Promise<AscendAttentionOutput<D>> => {
    const { out, lse, report } = await simulate(input, {
      mode: 'functional',
      kernel,
      // The baseline keeps its scores in f32 unless told otherwise: the same result as attention().
      ...(kernel === 'standard' ? { scoreDType: options.simulate?.scoreDType ?? 'f32' } : {}),
      ...(callOptions?.signal ? { signal: callOptions.signal } : {}),
    });
    // Simulated GM bytes besides inputs and outputs: S for the baseline, the hand-off buffers for
    // FastAttention; what a memory report compares.
    const workspace = kernel === 'standard' ? report.details.scoreBytes : report.details.workspaceBytes;
    return {
      out: out as AttentionOutput<D>['out'],
      lse: lse!,
      report,
      ...(typeof workspace === 'number' ? { workspaceBytes: workspace } : {}),
    };
  };
  const backend: AscendBackend = {
    name: info.name,
    info,
    device,
    createExecutor: (executorOptions = {}) => {
      life.check();
      const attention = attentionHandler(
        { flash: backend.attention, standard: backend.standardAttention },
        (r: AscendAttentionOutput) => executorOptions.onReport?.(r.report),
      );
      return life.adopt(new HostExecutor('ascend-sim', { attention }, { dtypes: CAPABILITIES.dtypes }));
    },
    attention: <D extends DType>(input: AttentionInput<D>, callOptions?: AttentionOptions) =>
      functional(input, 'fast-attention', callOptions),
    standardAttention: <D extends DType>(input: AttentionInput<D>, callOptions?: AttentionOptions) =>
      functional(input, 'standard', callOptions),
    simulate,
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
  return backend;
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
