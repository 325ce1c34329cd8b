import { join } from 'node:path';
import {
  type AttentionInput,
  type AttentionOptions,
  type AttentionOutput,
  type AttentionProblemInput,
  type AttentionShape,
  type Backend,
  type BackendCapabilities,
  type BackendInfo,
  type BackendOptions,
  type BackendProvider,
  bandOf,
  type DType,
  FastAttentionError,
  kvLength,
  lseLength,
  MASK_KINDS,
  type MaskSpec,
  planTiles,
  qLength,
  type ResolvedAttentionProblem,
  readInputFields,
  type TilePlan,
  throwIfAborted,
  toFastAttentionError,
  validateAttentionInput,
  validateAttentionShape,
} from '@fastattention/core';
import {
  type KernelImage,
  type KernelManifest,
  kernelsNotBuilt,
  type LaunchDesc,
  loadAddon,
  type NativeAddon,
  type NativeConfig,
  type NativeContext,
  type NativeDevice,
  packageRoot,
  readKernelImages,
  readManifest,
} from './native.js';
import { type ArchPath, candidatePaths, type PathName, pathNamed } from './paths.js';
import { cudaSpec, tileConfigOf } from './spec.js';
import { DeviceTensor, type HostOf, type TensorDType } from './tensor.js';

export interface CudaBackendOptions extends BackendOptions {
  /** CUDA device ordinal. Default 0. */
  readonly device?: number;
  /** Architecture path; default 'auto' (the newest the device supports). Forcing one validates it. */
  readonly path?: 'auto' | PathName;
  /** Where the fatbins are; default `<package>/build/kernels`. */
  readonly kernelDir?: string;
}

/** Storage dtypes the CUDA kernels run (f32 attention is the CPU backend's). */
export type CudaDType = 'f16' | 'bf16';

/** Attention on device tensors: same contract as `attention()`, without host copies. */
export interface DeviceAttentionInput extends AttentionShape {
  readonly dtype: CudaDType;
  readonly q: DeviceTensor;
  readonly k: DeviceTensor;
  readonly v: DeviceTensor;
  readonly scale?: number;
  /** Valid keys per batch row, on the host or already on the device. */
  readonly seqLensK?: Int32Array | DeviceTensor<'i32'>;
  readonly mask?: MaskSpec;
  /** Reused outputs (else allocated): out like q, lse f32 [batch, headsQ, seqQ]. */
  readonly out?: DeviceTensor;
  readonly lse?: DeviceTensor<'f32'>;
}

/** What a call will launch, and why (the planner's reasons). */
export interface LaunchPlan {
  readonly path: PathName;
  readonly role: 'prefill' | 'decode';
  readonly kernel: string;
  readonly config: NativeConfig;
  readonly splitKV: number;
  readonly grid: readonly [number, number, number];
  readonly threads: number;
  readonly tilePlan: TilePlan;
}

/**
 * A device input after validation: each field read once from the caller's object, defaults
 * filled in. `seqLensK` is a device tensor, a host copy, or undefined (every row has seqK keys).
 */
interface ResolvedDeviceInput extends Omit<ResolvedAttentionProblem, 'dtype' | 'seqLensK'> {
  readonly dtype: CudaDType;
  readonly q: DeviceTensor;
  readonly k: DeviceTensor;
  readonly v: DeviceTensor;
  readonly seqLensK: Int32Array | DeviceTensor<'i32'> | undefined;
  readonly out: DeviceTensor | undefined;
  readonly lse: DeviceTensor<'f32'> | undefined;
}

const DEVICE_FIELDS = [
  'batch',
  'seqQ',
  'seqK',
  'headsQ',
  'headsKV',
  'headDim',
  'dtype',
  'scale',
  'seqLensK',
  'mask',
  'q',
  'k',
  'v',
  'out',
  'lse',
] as const;

export interface TimingOptions {
  readonly warmup?: number;
  readonly iters?: number;
  /** Time this compiled configuration (its suffix) instead of the planner's choice. */
  readonly config?: string;
}

const HEAD_DIMS = [64, 80, 96, 128, 256];
/** Decode kernels pack the query heads of a KV head into one tile: up to 16 query rows. */
const DECODE_MAX_SEQ_Q = 16;
const BAND_INF = 2 ** 30;

const CAPABILITIES: BackendCapabilities = {
  dtypes: ['f16', 'bf16'],
  headDims: { kind: 'list', values: HEAD_DIMS },
  masks: MASK_KINDS,
};

const unavailable = (message: string, cause?: unknown): FastAttentionError =>
  new FastAttentionError('UNAVAILABLE', message, cause === undefined ? {} : { cause });

/** The CUDA backend: host-array attention plus the device-tensor API. */
export class CudaBackend implements Backend {
  readonly name = 'cuda';
  readonly info: BackendInfo;
  readonly device: NativeDevice;
  readonly path: ArchPath;
  readonly #context: NativeContext;
  readonly #configs: readonly NativeConfig[];
  readonly #specs = new Map<string, { spec: ReturnType<typeof cudaSpec>; config: NativeConfig[] }>();
  readonly #pending = new Set<Promise<unknown>>();
  /** Set when dispose() is called: from then on every call rejects with DISPOSED. */
  #closing = false;
  /** Set once the calls pending at dispose() settled and the context is released. */
  #disposed = false;
  #disposal: Promise<void> | undefined;
  /**
   * Fused split-KV combine (ampere path, run 6): per-(batch, head, q-tile) arrival counters, zero
   * between launches (the last split CTA resets its counter). Grown on demand; outgrown buffers are
   * kept until dispose() since launches already enqueued may still use them.
   */
  #counters: DeviceTensor<'i32'> | undefined;
  readonly #oldCounters: DeviceTensor[] = [];
  /** FASTATTN_CUDA_FUSED_COMBINE=0 keeps the separate combine launch on the ampere path (for A/B timing). */
  readonly #fusedCombine = process.env.FASTATTN_CUDA_FUSED_COMBINE !== '0';
  /**
   * Programmatic dependent launch (sm_90+, run 7): an attention kernel may be dispatched while the
   * previous kernel of the stream finishes, and waits (griddepcontrol.wait) before touching memory.
   * The ampere and hopper kernels have that wait in their sm_90+ code. FASTATTN_CUDA_PDL=0 turns it off.
   */
  readonly #pdl: boolean;

  private constructor(
    device: NativeDevice,
    path: ArchPath,
    context: NativeContext,
    configs: NativeConfig[],
    driverVersion: number,
    pdl: boolean,
  ) {
    this.device = device;
    this.path = path;
    this.#context = context;
    this.#configs = configs;
    this.#pdl = pdl && process.env.FASTATTN_CUDA_PDL !== '0';
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
    const loaded = loadAddon();
    if ('reason' in loaded) throw unavailable(loaded.reason);
    const addon: NativeAddon = loaded.addon;
    let probe: ReturnType<NativeAddon['probe']>;
    try {
      probe = addon.probe();
    } catch (error) {
      throw toFastAttentionError(error, 'UNAVAILABLE');
    }
    if (probe.devices.length === 0) throw unavailable('no device (the CUDA driver sees no GPU)');
    const ordinal = options.device ?? 0;
    const device = probe.devices[ordinal];
    if (!Number.isInteger(ordinal) || !device) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `device: ${ordinal} is not one of the ${probe.devices.length} devices`,
        {
          field: 'device',
        },
      );
    }
    const sm = device.major * 10 + device.minor;
    const kernelDir = options.kernelDir ?? join(packageRoot, 'build', 'kernels');
    const manifest = readManifest(kernelDir);
    // The best path whose kernels (and its base's) this build holds for this device.
    const reasons: string[] = [];
    let chosen: { path: ArchPath; images: KernelImage[] } | undefined;
    for (const path of candidatePaths(sm, options.path)) {
      const found = findKernels(kernelDir, manifest, path, sm);
      if ('reason' in found) reasons.push(found.reason);
      else {
        chosen = { path, images: found.images };
        break;
      }
    }
    if (!chosen) throw unavailable([...new Set(reasons)].join('; '));
    const { path, images } = chosen;
    let context: NativeContext;
    try {
      context = new addon.Context(ordinal);
    } catch (error) {
      throw toFastAttentionError(error, 'UNAVAILABLE');
    }
    try {
      await context.loadModules(images);
    } catch (error) {
      context.dispose();
      throw toFastAttentionError(error, 'UNAVAILABLE');
    }
    const configs = pathConfigs(addon, path, (c) => context.hasFunction(moduleName(c), c.kernels.f16));
    if (configs.length === 0) {
      context.dispose();
      throw unavailable(`kernels not built (the ${path.name} fatbins hold none of the configured kernels)`);
    }
    // PDL needs sm_90+ and the sm_90+ code of the kernels (which has the wait): machine code for
    // this device, or PTX of compute_90 or newer (an older PTX JIT-compiled here has no wait).
    const ampere = manifest?.paths.ampere;
    const pdl = sm >= 90 && !!ampere && (ampere.sm.includes(sm) || ampere.ptx >= 90);
    return new CudaBackend(device, path, context, configs, probe.driverVersion, pdl);
  }

  async attention<D extends DType>(
    input: AttentionInput<D>,
    options?: AttentionOptions,
  ): Promise<AttentionOutput<D>> {
    this.#alive();
    const resolved = validateAttentionInput(input, CAPABILITIES);
    throwIfAborted(options?.signal);
    const dtype = resolved.dtype as CudaDType;
    return this.#track(async () => {
      const shape = [resolved.batch, resolved.seqQ, resolved.headsQ, resolved.headDim];
      const kvShape = [resolved.batch, resolved.seqK, resolved.headsKV, resolved.headDim];
      const tensors: DeviceTensor[] = [];
      try {
        // Internal steps use #empty and #withLaunch, which a dispose() awaiting this call does not
        // refuse (it refuses new calls only).
        const q = this.#keep(tensors, this.#empty(dtype, shape));
        const k = this.#keep(tensors, this.#empty(dtype, kvShape));
        const v = this.#keep(tensors, this.#empty(dtype, kvShape));
        await Promise.all([
          q.write(resolved.q as Uint16Array),
          k.write(resolved.k as Uint16Array),
          v.write(resolved.v as Uint16Array),
        ]);
        const { out, lse } = await this.#withLaunch(
          {
            ...resolved,
            dtype,
            q,
            k,
            v,
            // Every row has seqK keys: no seqLensK upload at all.
            seqLensK: resolved.seqLensK.every((n) => n === resolved.seqK) ? undefined : resolved.seqLensK,
            out: undefined,
            lse: undefined,
          },
          undefined,
          (desc) => this.#context.attention(desc),
        );
        tensors.push(out, lse);
        const [o, l] = await Promise.all([out.download(), lse.download()]);
        return { out: o as AttentionOutput<D>['out'], lse: l as Float32Array };
      } finally {
        for (const t of tensors) t.dispose();
      }
    });
  }

  /** Allocates an uninitialized device tensor. */
  empty<T extends TensorDType>(dtype: T, shape: readonly number[]): DeviceTensor<T> {
    this.#alive();
    return this.#empty(dtype, shape);
  }

  #empty<T extends TensorDType>(dtype: T, shape: readonly number[]): DeviceTensor<T> {
    if (this.#disposed) throw new FastAttentionError('DISPOSED', 'the cuda backend was disposed');
    try {
      return new DeviceTensor(this.#owner, dtype, shape);
    } catch (error) {
      throw toFastAttentionError(error, 'DEVICE');
    }
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
    const group = problem.headsQ / problem.headsKV;
    const role = problem.seqQ <= DECODE_MAX_SEQ_Q ? 'decode' : 'prefill';
    const { spec, config: candidates } = this.#spec(role, problem.headDim);
    // FASTATTN_CUDA_DECODE_CONFIG=<suffix> plans decode with that compiled configuration where it exists
    // for this head dim (run 6: to validate a fallback or an alternative through the whole suite).
    const envDecode = role === 'decode' ? process.env.FASTATTN_CUDA_DECODE_CONFIG : undefined;
    if (
      configName === undefined &&
      envDecode &&
      this.#configs.some(
        (c) => c.role.startsWith('decode') && c.headDim === problem.headDim && c.suffix === envDecode,
      )
    ) {
      configName = envDecode;
    }
    // Decode packs the query heads of one KV head into a tile's rows: to the planner that is a
    // problem of seqQ * group rows and headsKV heads.
    const planned =
      role === 'decode'
        ? { ...problem, seqQ: problem.seqQ * group, headsQ: problem.headsKV }
        : { ...problem };
    // A forced configuration may also be one compiled only for timing (role '<role>_alt').
    const forced =
      configName === undefined
        ? undefined
        : (candidates.find((c) => c.suffix === configName) ??
          this.#configs.find(
            (c) => c.role === `${role}_alt` && c.headDim === problem.headDim && c.suffix === configName,
          ));
    if (configName !== undefined && !forced) {
      throw new FastAttentionError(
        'UNSUPPORTED',
        `config: no ${role} configuration '${configName}' for this problem`,
        {
          field: 'config',
        },
      );
    }
    // A forced configuration is planned with its own occupancy (CTAs per SM), so its split-KV
    // count fills its own CTA slots.
    const forcedUnits = forced
      ? this.device.multiprocessors *
        Math.max(
          1,
          this.#context.functionInfo(
            moduleName(forced),
            forced.kernels.f16,
            forced.warps * 32,
            forced.sharedBytes,
          ).blocksPerSM,
        )
      : spec.parallelUnits;
    const tilePlan = planTiles(
      planned,
      forced
        ? {
            ...spec,
            parallelUnits: forcedUnits,
            configs: [tileConfigOf(forced)],
          }
        : spec,
    );
    const config = forced ?? candidates.find((c) => c.suffix === tilePlan.config) ?? candidates[0]!;
    const rows = planned.seqQ;
    // FASTATTN_CUDA_DECODE_SPLIT=<n> overrides the decode split count (run 7: a sweep for timing; the
    // kernels take any count, each split keeping at least one k-tile).
    const envSplit = role === 'decode' ? Number(process.env.FASTATTN_CUDA_DECODE_SPLIT) : Number.NaN;
    const splitKV =
      Number.isInteger(envSplit) && envSplit >= 1
        ? Math.min(envSplit, Math.ceil(problem.seqK / config.blockK))
        : tilePlan.splitKV;
    return {
      path: config.path,
      role,
      kernel: config.kernels[problem.dtype],
      config,
      splitKV,
      grid: [Math.ceil(rows / config.blockQ), planned.headsQ, problem.batch * splitKV],
      threads: config.warps * 32,
      tilePlan: splitKV === tilePlan.splitKV ? tilePlan : { ...tilePlan, splitKV },
    };
  }

  /** Attention on device tensors; returns the output tensors (the given ones, or new ones). */
  async attentionDevice(
    input: DeviceAttentionInput,
    options?: AttentionOptions,
  ): Promise<{ out: DeviceTensor; lse: DeviceTensor<'f32'> }> {
    this.#alive();
    const resolved = this.#resolveDevice(input);
    throwIfAborted(options?.signal);
    return this.#track(() => this.#withLaunch(resolved, undefined, (desc) => this.#context.attention(desc)));
  }

  /** Times the attention kernel(s) alone with CUDA events: one figure per iteration, in ms. */
  async timeAttention(input: DeviceAttentionInput, timing: TimingOptions = {}): Promise<Float64Array> {
    this.#alive();
    const resolved = this.#resolveDevice(input);
    const { warmup = 3, iters = 10 } = timing;
    let ms: Float64Array = new Float64Array(0);
    await this.#track(() =>
      this.#withLaunch(resolved, timing.config, async (desc) => {
        ms = await this.#context.timeAttention(desc, warmup, iters);
      }),
    );
    return ms;
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
    const resolved = inputs.map((input) => this.#resolveDevice(input));
    const { warmup = 1, rounds = 5, perFigure = 1 } = timing;
    let ms: Float64Array = new Float64Array(0);
    const descs: LaunchDesc[] = [];
    const nest = async (i: number): Promise<void> => {
      if (i === resolved.length) {
        ms = await this.#context.timeAttentionSets(descs, warmup, rounds, perFigure);
        return;
      }
      await this.#withLaunch(resolved[i]!, timing.config, async (desc) => {
        descs.push(desc);
        await nest(i + 1);
      });
    };
    await this.#track(() => nest(0));
    return ms;
  }

  /** Free and total device memory, in bytes. */
  memInfo(): { free: number; total: number } {
    this.#alive();
    return this.#context.memInfo();
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
    this.#closing = true;
    this.#disposal ??= (async () => {
      // Calls in flight may still add work of their own (a split-KV workspace, a download).
      while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
      this.#disposed = true;
      for (const t of [...this.#oldCounters, ...(this.#counters ? [this.#counters] : [])]) t.dispose();
      this.#context.dispose();
    })();
    return this.#disposal;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  get #owner(): { context: NativeContext; disposed: boolean } {
    const self = this;
    return {
      context: this.#context,
      get disposed() {
        return self.#disposed;
      },
    };
  }

  #alive(): void {
    if (this.#closing) throw new FastAttentionError('DISPOSED', 'the cuda backend was disposed');
  }

  #keep<T extends DeviceTensor>(list: DeviceTensor[], t: T): T {
    list.push(t);
    return t;
  }

  async #track<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    this.#pending.add(p);
    try {
      return await p;
    } catch (error) {
      throw toFastAttentionError(error, 'DEVICE');
    } finally {
      this.#pending.delete(p);
    }
  }

  #spec(
    role: 'prefill' | 'decode',
    headDim: number,
  ): { spec: ReturnType<typeof cudaSpec>; config: NativeConfig[] } {
    const key = `${role}/${headDim}`;
    let entry = this.#specs.get(key);
    if (!entry) {
      const config = this.#configs.filter((c) => c.role === role && c.headDim === headDim);
      const first = config[0];
      if (!first) {
        throw new FastAttentionError(
          'UNSUPPORTED',
          `headDim: no ${role} kernel for head dim ${headDim} in this build`,
          {
            field: 'headDim',
          },
        );
      }
      const occ = this.#context.functionInfo(
        moduleName(first),
        first.kernels.f16,
        first.warps * 32,
        first.sharedBytes,
      );
      entry = { spec: cudaSpec(this.device, role, config, occ.blocksPerSM), config };
      this.#specs.set(key, entry);
    }
    return entry;
  }

  /**
   * Reads each field of a device input once (getters run once; the caller's object is not read
   * again), checks the tensors against the shape, then the shape by core's rules. The tensor sizes
   * come first where the shape is plausible: a claimed `batch: 2**28` against small tensors is
   * refused before core fills in a default seqLensK of `batch` entries.
   */
  #resolveDevice(input: DeviceAttentionInput): ResolvedDeviceInput {
    const raw = readInputFields(input, DEVICE_FIELDS);
    const deviceLens =
      raw.seqLensK instanceof DeviceTensor ? (raw.seqLensK as DeviceTensor<'i32'>) : undefined;
    // Core validates the problem; the tensors are checked against its shape before core fills in
    // any default (a default seqLensK is `batch` entries: never for an absurd claimed batch).
    const problem = validateAttentionShape(
      { ...raw, seqLensK: deviceLens ? undefined : raw.seqLensK } as AttentionProblemInput<CudaDType>,
      CAPABILITIES,
      (shape) => checkTensors(raw, shape, deviceLens),
    );
    return {
      ...problem,
      dtype: problem.dtype as CudaDType,
      q: raw.q as DeviceTensor,
      k: raw.k as DeviceTensor,
      v: raw.v as DeviceTensor,
      out: raw.out as DeviceTensor | undefined,
      lse: raw.lse as DeviceTensor<'f32'> | undefined,
      seqLensK: deviceLens ?? (raw.seqLensK === undefined ? undefined : problem.seqLensK),
    };
  }

  /** A zeroed counter buffer of at least n entries (see #counters). */
  async #countersFor(n: number): Promise<bigint> {
    if (!this.#counters || this.#counters.length < n) {
      const t = this.#empty('i32', [Math.max(n, 4096)]);
      await t.write(new Int32Array(t.length));
      if (this.#counters) this.#oldCounters.push(this.#counters);
      this.#counters = t;
    }
    return this.#counters.ptr;
  }

  /** Builds the launch (allocating outputs, seqLensK and split-KV workspace as needed), runs fn. */
  async #withLaunch(
    input: ResolvedDeviceInput,
    configName: string | undefined,
    fn: (desc: LaunchDesc) => Promise<void>,
  ): Promise<{ out: DeviceTensor; lse: DeviceTensor<'f32'> }> {
    const plan = this.plan(input, configName);
    const temps: DeviceTensor[] = [];
    const out = input.out ?? this.#empty(input.dtype, [input.batch, input.seqQ, input.headsQ, input.headDim]);
    const lse = input.lse ?? this.#empty('f32', [input.batch, input.headsQ, input.seqQ]);
    try {
      let seqLensK = 0n;
      if (input.seqLensK instanceof DeviceTensor) seqLensK = input.seqLensK.ptr;
      else if (input.seqLensK) {
        const t = this.#keep(temps, this.#empty('i32', [input.batch]));
        await t.write(input.seqLensK);
        seqLensK = t.ptr;
      }
      let partO = 0n;
      let partLse = 0n;
      if (plan.splitKV > 1) {
        const rows = lseLength(input);
        partO = this.#keep(temps, this.#empty('f32', [plan.splitKV, rows, input.headDim])).ptr;
        partLse = this.#keep(temps, this.#empty('f32', [plan.splitKV, rows])).ptr;
      }
      let counters = 0n;
      const kernels = pathNamed(plan.config.path).kernels;
      if (plan.splitKV > 1 && kernels.fusedCombine && this.#fusedCombine) {
        counters = await this.#countersFor(plan.grid[0] * plan.grid[1] * input.batch);
      }
      const band = bandOf(input.mask);
      const clamp = (x: number): number => (x >= BAND_INF ? BAND_INF : x);
      await fn({
        module: moduleName(plan.config),
        kernel: plan.kernel,
        combine: plan.splitKV > 1 && counters === 0n ? `fa_combine_${input.dtype}` : null,
        counters,
        grid: plan.grid,
        threads: plan.threads,
        smem: plan.config.sharedBytes,
        pdl: this.#pdl && kernels.pdl,
        q: input.q.ptr,
        k: input.k.ptr,
        v: input.v.ptr,
        out: out.ptr,
        lse: lse.ptr,
        partO,
        partLse,
        seqLensK,
        qBatchStride: input.seqQ * input.headsQ * input.headDim,
        qRowStride: input.headsQ * input.headDim,
        kBatchStride: input.seqK * input.headsKV * input.headDim,
        kRowStride: input.headsKV * input.headDim,
        batch: input.batch,
        seqQ: input.seqQ,
        seqK: input.seqK,
        headsQ: input.headsQ,
        headsKV: input.headsKV,
        headDim: input.headDim,
        bandLeft: clamp(band.left),
        bandRight: clamp(band.right),
        scale: input.scale,
        packGqa: plan.role === 'decode' ? 1 : 0,
        numSplits: plan.splitKV,
      });
      return { out, lse };
    } catch (error) {
      if (!input.out) out.dispose();
      if (!input.lse) lse.dispose();
      throw error;
    } finally {
      for (const t of temps) t.dispose();
    }
  }
}

/** The fatbin (module) holding a configuration's kernels: one per head dim (kernels/<path>/fwd_hd<D>.cu). */
export function moduleName(config: NativeConfig): string {
  return `${config.path}/fwd_hd${config.headDim}`;
}

/**
 * A path's configurations whose kernels were built: its own, then its base's. A base configuration of
 * a role and head dim the path has its own kernel for becomes '<role>_alt': never planned, still
 * timeable by name.
 */
function pathConfigs(
  addon: NativeAddon,
  path: ArchPath,
  built: (c: NativeConfig) => boolean,
): NativeConfig[] {
  const own = addon.configs(path.name).filter(built);
  if (!path.base) return own;
  const base = addon
    .configs(path.base)
    .filter(built)
    .map((c): NativeConfig => {
      if (c.role !== 'prefill' && c.role !== 'decode') return c;
      const overridden = own.some((o) => o.role === c.role && o.headDim === c.headDim);
      return overridden ? { ...c, role: `${c.role}_alt` } : c;
    });
  return [...own, ...base];
}

/** The fatbins of a path and its base in kernelDir, or why they cannot run on sm. */
function findKernels(
  kernelDir: string,
  manifest: KernelManifest | undefined,
  path: ArchPath,
  sm: number,
): { images: KernelImage[] } | { reason: string } {
  const images: KernelImage[] = [];
  for (const name of [path.name, ...(path.base ? [path.base] : []), 'common']) {
    const found = readKernelImages(kernelDir, name);
    if (!found) {
      return {
        reason: kernelsNotBuilt(kernelDir, name, sm),
      };
    }
    const built = manifest?.paths[name];
    if (built && !built.sm.includes(sm) && sm < built.ptx) {
      return {
        reason: kernelsNotBuilt(kernelDir, name, sm, built),
      };
    }
    images.push(...found);
  }
  return { images };
}

/**
 * Creates the CUDA backend on a device. Rejects with UNAVAILABLE and the reason when it cannot
 * run here: no addon, 'no CUDA driver', 'no device', 'kernels not built'; with UNSUPPORTED for a
 * forced path that does not exist or does not fit the device.
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

/** The device tensors of an input against its shape: DeviceTensors of the dtype and length. */
function checkTensors(
  raw: Record<string, unknown>,
  shape: AttentionShape,
  deviceLens: DeviceTensor<'i32'> | undefined,
): void {
  const expect = (field: string, dtype: unknown, length: number, optional: boolean): void => {
    const t = raw[field];
    if (t === undefined && optional) return;
    if (!(t instanceof DeviceTensor)) {
      throw new FastAttentionError('INVALID_INPUT', `${field}: expected a DeviceTensor`, { field });
    }
    if (t.dtype !== dtype || t.length !== length) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `${field}: expected a ${String(dtype)} tensor of ${length} elements, got ${t.dtype} x ${t.length}`,
        { field },
      );
    }
  };
  expect('q', raw.dtype, qLength(shape), false);
  expect('k', raw.dtype, kvLength(shape), false);
  expect('v', raw.dtype, kvLength(shape), false);
  expect('out', raw.dtype, qLength(shape), true);
  expect('lse', 'f32', lseLength(shape), true);
  if (deviceLens) expect('seqLensK', 'i32', shape.batch, false);
}
