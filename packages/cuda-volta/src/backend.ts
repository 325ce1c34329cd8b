import {
  type AttentionInput,
  type AttentionOptions,
  type AttentionOutput,
  type AttentionShape,
  type Backend,
  type BackendInfo,
  type BackendProvider,
  type DType,
  FastAttentionError,
  hostAttention,
  Lifetime,
  throwIfAborted,
  toFastAttentionError,
} from '@fastattention/core';
import { type OpenDevice, openDevice } from './device.js';
import { CudaExecutor, type CudaExecutorOptions } from './exec/executor.js';
import { CAPABILITIES, type CudaDType, type DeviceAttentionInput, resolveDeviceInput } from './input.js';
import { Launcher, type LaunchFeatures } from './launch.js';
import { DeviceMemory } from './memory.js';
import type { NativeContext, NativeDevice } from './native.js';
import { type CudaBackendOptions, checkTunedConfigs, type ResolvedTuning, resolveTuning } from './options.js';
import type { ArchPath } from './paths.js';
import { type LaunchPlan, Planner } from './plan.js';
import type { DeviceTensor, HostOf, TensorDType } from './tensor.js';
import { type TimingOptions, timeLaunch, timeLaunchSets } from './timing.js';

/** The CUDA backend: host-array attention plus the device-tensor API. */
export class CudaBackend implements Backend {
  readonly name = 'cuda';
  readonly info: BackendInfo;
  readonly device: NativeDevice;
  readonly path: ArchPath;
  readonly #context: NativeContext;
  readonly #memory: DeviceMemory;
  readonly #planner: Planner;
  readonly #launcher: Launcher;
  readonly #features: LaunchFeatures;
  /** Calls in flight; from dispose() on, every new call rejects with DISPOSED. */
  readonly #life: Lifetime;
  /** The executor that host-array calls run on, made by the first one. */
  #host: CudaExecutor | undefined;

  private constructor(opened: OpenDevice, tuning: ResolvedTuning) {
    const { device, path, context, configs, driverVersion } = opened;
    this.device = device;
    this.path = path;
    this.#context = context;
    this.#memory = new DeviceMemory(context);
    this.#life = new Lifetime('the cuda backend', () => {
      this.#memory.release();
      context.dispose();
    });
    this.#planner = new Planner(device, context, configs, tuning);
    this.#features = {
      // Fused split-KV combine (every path); off: the separate combine launch (A/B timing).
      fusedCombine: tuning.fusedCombine,
      // Programmatic dependent launch (sm_90+, run 7): an attention kernel may be dispatched while
      // the previous kernel of the stream finishes, and waits (griddepcontrol.wait) before touching
      // memory. The ampere and hopper kernels have that wait in their sm_90+ code.
      pdl: opened.pdl && tuning.pdl,
    };
    // The op kernels (norms, RoPE, the KV append, sampling...) as programmatic dependents too:
    // a decode step is a chain of short kernels, each of which would otherwise wait for its launch.
    context.setOpPdl(opened.opPdl && tuning.pdl);
    this.#launcher = new Launcher(this.#planner, this.#memory, this.#features);
    this.info = {
      name: 'cuda',
      devices: [
        {
          name: device.name,
          kind: 'gpu',
          computeUnits: device.multiprocessors,
          memoryBytes: device.memoryBytes,
          details: {
            computeCapability: `${device.major}.${device.minor}`,
            path: path.name,
            instruction: path.instruction,
            driverVersion: `${Math.floor(driverVersion / 1000)}.${(driverVersion % 1000) / 10}`,
          },
        },
      ],
      capabilities: CAPABILITIES,
    };
  }

  /** @internal Use createBackend(). */
  static async create(options: CudaBackendOptions = {}): Promise<CudaBackend> {
    // Options are checked before any native code runs; the environment is read here, once.
    const tuning = resolveTuning(options.tuning);
    const opened = await openDevice(options);
    try {
      checkTunedConfigs(tuning, opened.path.name, opened.configs);
    } catch (error) {
      opened.context.dispose();
      throw error;
    }
    return new CudaBackend(opened, tuning);
  }

  /**
   * Attention on host arrays: core's hostAttention over this backend's own executor (validate, copy
   * in, run the attention op, copy out), so the host call and the executor run one code path.
   */
  async attention<D extends DType>(
    input: AttentionInput<D>,
    options?: AttentionOptions,
  ): Promise<AttentionOutput<D>> {
    this.#alive();
    return this.#track(() => hostAttention(this.#hostExecutor(), input, options, CAPABILITIES));
  }

  /** Allocates an uninitialized device tensor. */
  empty<T extends TensorDType>(dtype: T, shape: readonly number[]): DeviceTensor<T> {
    this.#alive();
    return this.#memory.empty(dtype, shape);
  }

  /**
   * An executor of the execution contract on this device (tensors, streams, model ops, step
   * graphs): work is enqueued without waiting; see CudaExecutor. Disposed with the backend.
   */
  createExecutor(options: CudaExecutorOptions = {}): CudaExecutor {
    this.#alive();
    if (options.cublasPath !== undefined && typeof options.cublasPath !== 'string') {
      throw new FastAttentionError('INVALID_INPUT', 'cublasPath: expected a file path', {
        field: 'cublasPath',
      });
    }
    if (options.gemm !== undefined && options.gemm !== 'cublasLt' && options.gemm !== 'gemmEx') {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `gemm: expected 'cublasLt' or 'gemmEx', got ${String(options.gemm)}`,
        {
          field: 'gemm',
        },
      );
    }
    return this.#life.adopt(
      new CudaExecutor(this.#context, {
        planner: this.#planner,
        plans: new Map(),
        features: this.#features,
        gemm: options.gemm ?? 'cublasLt',
        ...(options.cublasPath !== undefined && { cublasPath: options.cublasPath }),
      }),
    );
  }

  /** Copies a host array to a new device tensor. */
  async upload<T extends TensorDType>(
    dtype: T,
    shape: readonly number[],
    data: HostOf<T>,
  ): Promise<DeviceTensor<T>> {
    const t = this.empty(dtype, shape);
    try {
      await this.#track(() => t.write(data));
      return t;
    } catch (error) {
      t.dispose();
      throw error;
    }
  }

  /** A device tensor of uniform pseudo-random values in [-1, 1), generated on the device. */
  async random<T extends CudaDType>(
    dtype: T,
    shape: readonly number[],
    seed: number,
  ): Promise<DeviceTensor<T>> {
    const t = this.empty(dtype, shape);
    try {
      await this.#track(() => this.#context.fill(t.ptr, t.length, dtype, seed));
      return t;
    } catch (error) {
      t.dispose();
      throw toFastAttentionError(error, 'DEVICE');
    }
  }

  /** How a problem is launched: role, compiled configuration, split-KV count, grid. */
  plan(problem: AttentionShape & { readonly dtype: CudaDType }, configName?: string): LaunchPlan {
    return this.#planner.plan(problem, configName);
  }

  /** Attention on device tensors; returns the output tensors (the given ones, or new ones). */
  async attentionDevice(
    input: DeviceAttentionInput,
    options?: AttentionOptions,
  ): Promise<{ out: DeviceTensor; lse: DeviceTensor<'f32'> }> {
    this.#alive();
    const resolved = resolveDeviceInput(input);
    throwIfAborted(options?.signal);
    return this.#track(() =>
      this.#launcher.run(resolved, undefined, (desc) => this.#context.attention(desc)),
    );
  }

  /** Times the attention kernel(s) alone with CUDA events: one figure per iteration, in ms. */
  async timeAttention(input: DeviceAttentionInput, timing: TimingOptions = {}): Promise<Float64Array> {
    this.#alive();
    const resolved = resolveDeviceInput(input);
    const { warmup = 3, iters = 10 } = timing;
    return this.#track(() =>
      timeLaunch(this.#context, this.#launcher, resolved, timing.config, warmup, iters),
    );
  }

  /**
   * Times several inputs (e.g. rotated input sets of one shape) launched back to back, `rounds`
   * times over the list after `warmup` untimed rounds: one figure per launch, in ms. Unlike
   * `timeAttention` with one iteration per call, the host enqueues ahead of the device, so host
   * launch latency stays out of the figures (as in a decode loop that never waits per step).
   */
  async timeAttentionSets(
    inputs: readonly DeviceAttentionInput[],
    timing: TimingOptions & { readonly rounds?: number; readonly perFigure?: number } = {},
  ): Promise<Float64Array> {
    this.#alive();
    const resolved = inputs.map((input) => resolveDeviceInput(input));
    const { warmup = 1, rounds = 5, perFigure = 1 } = timing;
    return this.#track(() =>
      timeLaunchSets(this.#context, this.#launcher, resolved, timing.config, warmup, rounds, perFigure),
    );
  }

  /** Free and total device memory, in bytes. */
  memInfo(): { free: number; total: number } {
    this.#alive();
    return this.#memory.info();
  }

  /** Times a device-to-device copy of `bytes` (the bandwidth yardstick for decode), in ms. */
  async timeCopy(bytes: number, timing: TimingOptions = {}): Promise<Float64Array> {
    this.#alive();
    const { warmup = 3, iters = 10 } = timing;
    const src = await this.random('f16', [Math.ceil(bytes / 2)], 7);
    const dst = this.empty('f16', [Math.ceil(bytes / 2)]);
    try {
      return await this.#track(() => this.#context.timeCopy(dst.ptr, src.ptr, bytes, warmup, iters));
    } finally {
      src.dispose();
      dst.dispose();
    }
  }

  /**
   * Waits for the calls already made, then releases the device context. Calls made from the
   * moment dispose() is called (also while it waits) reject with DISPOSED. Idempotent.
   */
  dispose(): Promise<void> {
    return this.#life.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  #alive(): void {
    this.#life.check();
  }

  #hostExecutor(): CudaExecutor {
    this.#host ??= this.createExecutor();
    return this.#host;
  }

  /** Tracks device work (calls in flight may still add steps of their own while disposal waits). */
  #track<T>(fn: () => Promise<T>): Promise<T> {
    return this.#life.track(async () => {
      try {
        return await fn();
      } catch (error) {
        throw toFastAttentionError(error, 'DEVICE');
      }
    });
  }
}

/**
 * Creates the CUDA backend on a device. Rejects with UNAVAILABLE and the reason when it cannot
 * run here: no addon, 'no CUDA driver', 'no device', 'kernels not built'; with UNSUPPORTED for a
 * forced path that does not exist or does not fit the device; with INVALID_INPUT naming the field
 * for a bad `tuning` option (checked first, before any native code).
 */
export function createBackend(options: CudaBackendOptions = {}): Promise<CudaBackend> {
  return CudaBackend.create(options);
}

/** Registry entry: tried before the CPU backend; explains itself when unusable. */
export const cudaProvider: BackendProvider = {
  name: 'cuda',
  priority: 100,
  description: 'NVIDIA GPUs through the CUDA driver API: FlashAttention-2 kernels (ampere path, sm_80+)',
  create: (options?: Record<string, unknown>) => createBackend(options as CudaBackendOptions | undefined),
};
