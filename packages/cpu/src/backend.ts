import { availableParallelism, totalmem } from 'node:os';
import {
  ALL_BLOCK_SIZES,
  type AttentionInput,
  type AttentionOp,
  type AttentionOptions,
  type AttentionOutput,
  type AttentionShape,
  attentionOpShape,
  type Backend,
  type BackendCapabilities,
  type BackendInfo,
  type BackendOptions,
  type BackendProvider,
  bandOf,
  bytesOf,
  classifyBatch,
  DTYPES,
  type DType,
  FastAttentionError,
  type HardwareSpec,
  type HostExecutor,
  invalidInput,
  Lifetime,
  levelBytes,
  MASK_KINDS,
  type MaskSpec,
  type PlanOptions,
  planTiles,
  type ResolvedAttentionInput,
  type StandardAttentionResult,
  type TilePlan,
  throwIfAborted,
  toFastAttentionError,
  validateAttentionInput,
} from '@fastattention/core';
import { pinInputs } from './input_memory.js';
import {
  loadAddon,
  type NativeCall,
  type NativeChainPlan,
  type NativePool,
  type NativeProblem,
  type NativeResult,
} from './native.js';
import { createCpuExecutor } from './ops.js';
import { type CpuCaches, cpuFlags, cpuHardwareSpec, cpuModelName, readCpuCaches } from './spec.js';

export type CpuIsa = 'auto' | 'avx512' | 'avx2' | 'generic';

export interface CpuBackendOptions extends BackendOptions {
  /** Worker threads of this backend's own pool. Default: all cores (`os.availableParallelism()`). */
  readonly threads?: number;
  /** Kernel to run. Default `'auto'`: the best one this CPU supports (avx512 > avx2 > generic). */
  readonly isa?: CpuIsa;
  /**
   * Force the planner's choices (block sizes, split-KV count). `blockQ` counts the rows of a work
   * item: query positions times the query heads that share a KV head.
   */
  readonly tiling?: PlanOptions;
  /** Override the caches read from sysfs (planning experiments). */
  readonly caches?: CpuCaches;
}

/** What the backend does with one input: core's plan, and how the native kernel runs it. */
export interface CpuCallPlan {
  readonly plan: TilePlan;
  /** Query heads per work item (GQA heads sharing one KV block), 1 or headsQ / headsKV. */
  readonly stack: number;
  /** Query positions per q-tile (plan.blockQ / stack). */
  readonly blockQ: number;
  readonly blockK: number;
  readonly splitKV: number;
  /** Decode layout: one work item covers every head for its keys (contiguous K/V reads). */
  readonly allHeads: boolean;
  /** Decode micro-kernel: keys in the vector lanes, for at most DECODE_KERNEL_ROWS rows per KV head. */
  readonly decode: boolean;
  /** Why the native layout differs from core's plan, when it does. */
  readonly notes: readonly string[];
}

export interface CpuBackend extends Backend {
  readonly spec: HardwareSpec;
  /** The plan attention() would use for this input (validates it first). */
  explain(input: AttentionInput): CpuCallPlan;
  /**
   * The execution contract's executor: tensors in host memory (this backend's device memory), and
   * every op of the contract on the backend's thread pool, in stream order; a recorded step hands
   * its ops to the pool as one native chain. Disposed with the backend.
   */
  createExecutor(): HostExecutor;
  /**
   * Standard attention, the baseline of the FlashAttention papers, on the same threads and vector
   * kernels as attention(): the scores S = scale·QKᵀ of every (batch row, query head) are
   * materialized in memory over all valid keys (masked ones included), softmaxed there, then
   * multiplied by V. Same input, masks, dtypes, GQA, seqLensK and paged caches (gathered into a
   * dense buffer per key block) as attention(), same output;
   * `workspaceBytes` is what it allocated: the score matrix (batch x headsQ x seqQ x seqK floats,
   * seqQ rounded up to the kernel's row block) plus per-thread scratch. Rejects with OOM when the
   * score matrix would exceed half of physical memory.
   */
  standardAttention<D extends DType>(
    input: AttentionInput<D>,
    options?: AttentionOptions,
  ): Promise<StandardAttentionResult<D>>;
}

export const CPU_CAPABILITIES: BackendCapabilities = {
  dtypes: DTYPES,
  // Any head dim: multiples of the vector width run fully vectorized, others finish with a scalar
  // tail. 1024 is the decode kernel's limit (its zero row); past the caches' reach the kernels
  // stream from the next level (see #levelsFor).
  headDims: { kind: 'any', max: 1024 },
  masks: MASK_KINDS,
  pagedKV: ALL_BLOCK_SIZES,
};

/** Rows per head group up to which a call counts as decode (memory-bound): two vector panels. */
const DECODE_ROWS = 32;
/**
 * Rows per KV head (seqQ x group) up to which the decode micro-kernel runs: there, query rows in
 * the vector lanes would leave most lanes idle, so that kernel puts keys in the lanes instead.
 */
const DECODE_KERNEL_ROWS = 8;

const DTYPE_CODE: Record<DType, 0 | 1 | 2> = { f32: 0, f16: 1, bf16: 2 };

/** Problem shapes whose plans a backend remembers (least recently used dropped first). */
const PLAN_CACHE_SIZE = 64;

/**
 * Creates the native CPU backend: FlashAttention-2 forward on its own thread pool. Rejects with
 * code UNAVAILABLE (and the reason) when the addon was not built or cannot load here.
 */
export async function createBackend(options: CpuBackendOptions = {}): Promise<CpuBackend> {
  const loaded = loadAddon();
  if (!loaded.ok) throw new FastAttentionError('UNAVAILABLE', `cpu backend unavailable: ${loaded.reason}`);
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
    throw invalidInput('threads', `expected an integer in [1, 1024], got ${String(threads)}`);
  }
  const isa = options.isa ?? 'auto';
  let pool: NativePool;
  try {
    pool = new loaded.addon.Pool(threads, isa);
  } catch (error) {
    throw toFastAttentionError(error, 'UNAVAILABLE');
  }
  const caches = options.caches ?? readCpuCaches();
  const spec = cpuHardwareSpec({ threads, lanes: pool.lanes, caches });
  const flags = cpuFlags();
  const info: BackendInfo = {
    name: 'cpu',
    devices: [
      {
        name: cpuModelName(),
        kind: 'cpu',
        computeUnits: availableParallelism(),
        memoryBytes: totalmem(),
        details: {
          isa: pool.isa,
          lanes: pool.lanes,
          threads,
          kernels: loaded.addon.kernels().join(','),
          l1d: caches.l1d,
          l2: caches.l2,
          l3: caches.l3,
          caches: caches.source,
          f16c: flags.has('f16c'),
          avx512bf16: flags.has('avx512_bf16'),
        },
      },
    ],
    capabilities: CPU_CAPABILITIES,
  };
  return new NativeCpuBackend(pool, spec, info, options.tiling ?? {});
}

class NativeCpuBackend implements CpuBackend {
  readonly name = 'cpu';
  readonly #pool: NativePool;
  readonly #tiling: PlanOptions;
  readonly #plans = new Map<string, CpuCallPlan>();
  readonly #life: Lifetime;

  constructor(
    pool: NativePool,
    readonly spec: HardwareSpec,
    readonly info: BackendInfo,
    tiling: PlanOptions,
  ) {
    this.#pool = pool;
    this.#tiling = tiling;
    this.#life = new Lifetime('the cpu backend', () => pool.close());
  }

  explain(input: AttentionInput): CpuCallPlan {
    return this.#plan(validateAttentionInput(input, CPU_CAPABILITIES));
  }

  createExecutor(): HostExecutor {
    this.#life.check();
    return this.#life.adopt(
      createCpuExecutor(
        this.#pool,
        CPU_CAPABILITIES.dtypes,
        {
          flash: (input) => this.attention(input),
          standard: (input) => this.standardAttention(input),
        },
        (op) => this.#chainPlan(op),
      ),
    );
  }

  attention<D extends DType>(
    input: AttentionInput<D>,
    options: AttentionOptions = {},
  ): Promise<AttentionOutput<D>> {
    return this.#life.run(() =>
      this.#run(input, options, (x) => {
        const call = this.#call(x, this.#plan(x));
        // The tile plan this call built in JS counts with the native scratch and partials.
        const planBytes = call.kinds.byteLength + call.kStart.byteLength + call.kEnd.byteLength;
        return { handle: this.#pool.run(call), extraBytes: planBytes };
      }),
    );
  }

  standardAttention<D extends DType>(
    input: AttentionInput<D>,
    options: AttentionOptions = {},
  ): Promise<StandardAttentionResult<D>> {
    return this.#life.run(() =>
      this.#run(input, options, (x) => {
        return { handle: this.#pool.runStandard(this.#problem(x)), extraBytes: 0 };
      }),
    );
  }

  /** Validates, submits (`submit` builds the native call) and settles one call. */
  async #run<D extends DType>(
    input: AttentionInput<D>,
    { signal }: AttentionOptions,
    submit: (x: ResolvedAttentionInput<D>) => { handle: ReturnType<NativePool['run']>; extraBytes: number },
  ): Promise<StandardAttentionResult<D>> {
    const x = validateAttentionInput(input, CPU_CAPABILITIES);
    throwIfAborted(signal);
    let handle: ReturnType<NativePool['run']>;
    let extraBytes: number;
    try {
      ({ handle, extraBytes } = submit(x));
    } catch (error) {
      throw toFastAttentionError(error);
    }
    const onAbort = (): void => {
      this.#pool.cancel(handle.id);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const { out, lse, workspaceBytes }: NativeResult = await handle.promise;
      return { out, lse, workspaceBytes: workspaceBytes + extraBytes } as StandardAttentionResult<D>;
    } catch (error) {
      const e = toFastAttentionError(error);
      if (e.code === 'ABORTED') {
        throw new FastAttentionError('ABORTED', 'attention was aborted before it finished', {
          cause: signal?.reason,
        });
      }
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * GQA: the query heads of one KV head become the rows of one work item, so each K/V block is
   * read (and converted) once for all of them. The planner sizes blocks for those rows; if its
   * q-block does not hold a whole number of positions, heads are planned one by one instead.
   */
  /**
   * The call plan for x's problem, memoized: a model calls the same shapes over and over. Core
   * memoizes its own planTiles by spec identity, but head dims whose tiles overflow a cache level
   * are planned on a reduced spec built per call (#levelsFor), and the layout decisions on top are
   * this backend's: keeping the whole call plan covers both.
   */
  #plan(x: PlanShape): CpuCallPlan {
    const key = `${x.dtype} ${x.batch} ${x.seqQ} ${x.seqK} ${x.headsQ} ${x.headsKV} ${x.headDim}`;
    const cached = this.#plans.get(key);
    if (cached) {
      this.#plans.delete(key); // most recently used last
      this.#plans.set(key, cached);
      return cached;
    }
    const plan = this.#planUncached(x);
    this.#plans.set(key, plan);
    if (this.#plans.size > PLAN_CACHE_SIZE) this.#plans.delete(this.#plans.keys().next().value!);
    return plan;
  }

  #planUncached(x: PlanShape): CpuCallPlan {
    const { spec, dropped } = this.#levelsFor(x);
    const levelNotes = dropped.map(
      (level) =>
        `head dim ${x.headDim}: even the smallest tile overflows ${level}, so the kernel streams it from the next level (planned without ${level})`,
    );
    const planned = this.#layout(x, spec);
    return levelNotes.length === 0 ? planned : { ...planned, notes: [...levelNotes, ...planned.notes] };
  }

  /**
   * The spec the planner sees for this call: without the cache levels that even the smallest
   * tile (one native tile of rows and keys at this head dim) overflows. The kernels run at any
   * head dim, from whichever level holds the data; planning against a level nothing fits in
   * would reject calls they run (head dims 513-1024 on a 32 KiB L1d). Forced tilings are still
   * checked against every level that can hold something.
   */
  #levelsFor(x: PlanShape): { spec: HardwareSpec; dropped: string[] } {
    const { m, n } = this.spec.nativeTile;
    const fits = this.spec.memory.filter(
      (level) => levelBytes(level, m, n, x.headDim, bytesOf(x.dtype)) <= level.bytes,
    );
    if (fits.length === this.spec.memory.length) return { spec: this.spec, dropped: [] };
    const dropped = this.spec.memory.filter((level) => !fits.includes(level)).map((level) => level.name);
    return { spec: { ...this.spec, memory: fits }, dropped };
  }

  #layout(x: PlanShape, spec: HardwareSpec): CpuCallPlan {
    const group = x.headsQ / x.headsKV;
    const problem = {
      dtype: x.dtype,
      batch: x.batch,
      seqQ: x.seqQ,
      seqK: x.seqK,
      headsQ: x.headsQ,
      headsKV: x.headsKV,
      headDim: x.headDim,
    };
    let planned: { plan: TilePlan; stack: number } | undefined;
    if (group > 1) {
      const plan = planTiles({ ...problem, seqQ: x.seqQ * group, headsQ: x.headsKV }, spec, this.#tiling);
      if (plan.blockQ % group === 0) planned = { plan, stack: group };
    }
    planned ??= { plan: planTiles(problem, spec, this.#tiling), stack: 1 };
    const { plan, stack } = planned;
    const blockQ = plan.blockQ / stack;
    const headGroups = x.headsQ / stack;
    const base = {
      plan,
      stack,
      blockQ,
      blockK: plan.blockK,
      splitKV: plan.splitKV,
      allHeads: false,
      decode: false,
      notes: [],
    };
    const l2 = this.spec.memory.find((m) => m.name === 'L2')?.bytes ?? 512 * 1024;
    if (x.seqQ * group <= DECODE_KERNEL_ROWS && this.#tiling.blockQ === undefined) {
      // Decode micro-kernel: one q-tile of every position, K/V read once in their own dtype. A key
      // block of every KV head (K and V) takes at most an eighth of L2: the block being computed
      // and the next one being prefetched fit with room to spare (measured on the 2-core Zen 4
      // VM, f16 32K keys: blockK 32 (1/8 of L2) 7.0-7.4 ms, 64 (1/4) 8.3-9.1 ms).
      const elem = x.dtype === 'f32' ? 4 : 2;
      const kvRowBytes = 2 * x.headsKV * x.headDim * elem;
      let blockK = this.#tiling.blockK ?? 256;
      if (this.#tiling.blockK === undefined) {
        while (blockK > 16 && blockK * kvRowBytes > l2 / 8) blockK /= 2;
      }
      const kTiles = Math.ceil(x.seqK / blockK);
      // Four items per thread: dynamic scheduling evens out threads slowed by other load.
      const splitKV =
        this.#tiling.splitKV ??
        Math.min(kTiles, Math.max(1, Math.ceil((4 * this.spec.parallelUnits) / x.batch)));
      return {
        plan,
        stack: group,
        blockQ: x.seqQ,
        blockK,
        splitKV,
        allHeads: true,
        decode: true,
        notes: [
          `decode kernel: ${x.seqQ * group} rows per KV head (keys in vector lanes), blockK ${blockK} (K and V of every head within an eighth of L2), split-KV ${splitKV} over ${kTiles} key blocks`,
        ],
      };
    }
    // Decode is memory-bound (a handful of rows per K/V byte). An item per head group would read
    // one head's short rows at a stride of headsKV x headDim, which the hardware prefetchers
    // follow poorly; an item that covers every head streams K/V contiguously, and split-KV over
    // the keys gives the threads their work instead.
    if (x.seqQ * stack > DECODE_ROWS || headGroups === 1 || plan.kBlocks < 2) return base;
    const kvRowBytes = 2 * x.headsKV * x.headDim * 4; // K and V, converted to f32
    let blockK = plan.blockK;
    while (blockK > 16 && blockK * kvRowBytes > l2 / 2) blockK /= 2;
    const kTiles = Math.ceil(x.seqK / blockK);
    const qTiles = Math.ceil(x.seqQ / blockQ);
    const splitKV =
      this.#tiling.splitKV ??
      Math.min(kTiles, Math.max(1, Math.ceil((2 * this.spec.parallelUnits) / (x.batch * qTiles))));
    return {
      ...base,
      blockK,
      splitKV,
      allHeads: true,
      notes: [
        `decode layout: each item covers all ${headGroups} head groups (contiguous K/V), blockK ${blockK} keeps K and V of every head within half of L2, split-KV ${splitKV} over ${kTiles} key blocks`,
      ],
    };
  }

  /** The problem as native code reads it, with inputs it may read until the call settles. */
  #problem(x: ResolvedAttentionInput): NativeProblem {
    return {
      ...problemScalars(x, x.mask, x.scale, x.pagedKV),
      ...pinInputs(x),
      seqLensK: x.seqLensK,
      // The validator's copy of the table: the caller cannot change it while native code reads it.
      ...(x.pagedKV && { blockTable: x.pagedKV.blockTable }),
    };
  }

  /** An attention op's plan for a native op chain: the plan depends on its shapes only. */
  #chainPlan(op: AttentionOp): NativeChainPlan {
    const shape = attentionOpShape(op);
    const paged = op.paged && {
      blockSize: op.paged.blockSize,
      blocksPerSeq: op.paged.blockTable.shape[1]!,
      numBlocks: op.k.shape[0]!,
    };
    const mask = op.mask ?? ({ kind: 'none' } as const);
    const scale = op.scale ?? 1 / Math.sqrt(shape.headDim);
    return { ...problemScalars(shape, mask, scale, paged), ...planFields(this.#plan(shape)) };
  }

  #call(x: ResolvedAttentionInput, plan: CpuCallPlan): NativeCall {
    const { packed, kStart, kEnd } = classifyBatch(
      x.mask,
      { seqQ: x.seqQ, seqK: x.seqK },
      { blockQ: plan.blockQ, blockK: plan.blockK },
      x.seqLensK,
    );
    return {
      ...this.#problem(x),
      ...planFields(plan),
      kinds: packed,
      kStart,
      kEnd,
    };
  }

  /** Waits for the calls already made, then stops the thread pool; later calls reject with DISPOSED. */
  dispose(): Promise<void> {
    return this.#life.dispose();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** What a call plan depends on: the shapes and dtype (not the values, mask or scale). */
type PlanShape = Pick<
  ResolvedAttentionInput,
  'dtype' | 'batch' | 'seqQ' | 'seqK' | 'headsQ' | 'headsKV' | 'headDim'
>;

/** A call plan's fields as the native side reads them (call_args.cpp: readPlanShape). */
function planFields({ blockQ, blockK, stack, splitKV, allHeads, decode }: CpuCallPlan) {
  return { blockQ, blockK, stack, splitKV, allHeads, decode };
}

/**
 * What a call and a chained op tell native code alike: the shape, dtype code, scale, the mask's
 * band and the paged cache's geometry.
 */
function problemScalars(
  shape: AttentionShape & { readonly dtype: DType },
  mask: MaskSpec,
  scale: number,
  paged:
    | { readonly blockSize: number; readonly blocksPerSeq: number; readonly numBlocks: number }
    | undefined,
) {
  const band = bandOf(mask);
  return {
    dtype: DTYPE_CODE[shape.dtype],
    batch: shape.batch,
    seqQ: shape.seqQ,
    seqK: shape.seqK,
    headsQ: shape.headsQ,
    headsKV: shape.headsKV,
    headDim: shape.headDim,
    scale,
    left: band.left,
    right: band.right,
    ...(paged && {
      blockSize: paged.blockSize,
      blocksPerSeq: paged.blocksPerSeq,
      numBlocks: paged.numBlocks,
    }),
  };
}

/** Registry entry: `registerBackend(cpuProvider)`; resolveBackend() falls back to 'reference' when it is unusable. */
export const cpuProvider: BackendProvider = {
  name: 'cpu',
  priority: 10,
  description: 'native FlashAttention-2 forward on the CPU (AVX-512 / AVX2 / portable), own thread pool',
  create: (options) => createBackend(options as CpuBackendOptions | undefined),
};
