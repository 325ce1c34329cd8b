import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DType } from '@fastattention/core';
import type { PathName } from './paths.js';

/** What the addon reports about one CUDA device. */
export interface NativeDevice {
  readonly index: number;
  readonly name: string;
  readonly major: number;
  readonly minor: number;
  readonly multiprocessors: number;
  readonly sharedPerBlockOptin: number;
  readonly sharedPerMultiprocessor: number;
  readonly l2Bytes: number;
  readonly clockKHz: number;
  readonly memoryClockKHz: number;
  readonly memoryBusBits: number;
  readonly memoryBytes: number;
}

/** One compiled kernel configuration (kernels/<path>/configs.h). */
export interface NativeConfig {
  /** The path whose kernels/<path>/ holds it (a path with a base mixes its own and the base's). */
  readonly path: PathName;
  /**
   * 'prefill_short': planned for prefill whose rows see few keys (plan.ts, SHORT_ROW_KEYS).
   * 'prefill_alt' / 'decode_alt': compiled for timing (TimingOptions.config), never planned.
   */
  readonly role: 'prefill' | 'decode' | 'prefill_short' | 'prefill_alt' | 'decode_alt';
  readonly headDim: number;
  readonly blockQ: number;
  readonly blockK: number;
  /** Warps of a CTA, producerWarps included. */
  readonly warps: number;
  /**
   * Warps that only copy K/V tiles (the hopper path's copy-engine mainloop,
   * kernels/hopper/mainloop.cuh); the others compute. 0: every warp computes.
   */
  readonly producerWarps: number;
  readonly stages: number;
  readonly sharedBytes: number;
  /** The planner's configuration name, e.g. 'hd128_128x64w4s2'. */
  readonly suffix: string;
  /** The kernels' entry points, named by the configuration table (kernels/common/kernel_names.h). */
  readonly kernels: Readonly<Record<'f16' | 'bf16', string>>;
  /** The same configuration's entry points for a paged KV cache. */
  readonly pagedKernels: Readonly<Record<'f16' | 'bf16', string>>;
}

/** The launch descriptor the addon turns into FaFwdParams (kernels/common/params.h). */
export interface LaunchDesc {
  /** The module (fatbin) holding the kernel: '<path>/<file>'. */
  readonly module: string;
  readonly kernel: string;
  readonly combine: string | null;
  readonly grid: readonly [number, number, number];
  readonly threads: number;
  readonly smem: number;
  /** Launch with programmatic stream serialization (the kernel has griddepcontrol.wait). */
  readonly pdl: boolean;
  readonly q: bigint;
  readonly k: bigint;
  readonly v: bigint;
  readonly out: bigint;
  readonly lse: bigint;
  readonly partO: bigint;
  readonly partLse: bigint;
  readonly seqLensK: bigint;
  readonly qBatchStride: number;
  readonly qRowStride: number;
  /** out's strides (elements): out is dense even where q is a view of wider rows. */
  readonly outBatchStride: number;
  readonly outRowStride: number;
  readonly kBatchStride: number;
  readonly kRowStride: number;
  readonly batch: number;
  readonly seqQ: number;
  readonly seqK: number;
  readonly headsQ: number;
  readonly headsKV: number;
  readonly headDim: number;
  readonly bandLeft: number;
  readonly bandRight: number;
  readonly scale: number;
  readonly packGqa: 0 | 1;
  readonly numSplits: number;
  /**
   * Fused split-KV combine (every path): an i32 per (batch, head, q-tile) of the grid, all zero
   * between launches; the last split CTA of each merges the partials. 0n or absent: the separate
   * combine kernel runs.
   */
  readonly counters?: bigint;
  /** A paged cache: the device block table (i32 [batch, blocksPerSeq]) and its geometry. */
  readonly blockTable?: bigint;
  readonly blockSize?: number;
  readonly blocksPerSeq?: number;
  /**
   * The kernel copies K/V with the copy engine: the addon encodes tensor maps of k and v as rows of
   * headsKV * headDim elements, kvRows of them per batch row (a paged cache: all its rows), copied
   * boxRows rows at a time, of 16-bit elements (bf16, else f16).
   */
  readonly tma?: {
    readonly kvRows: number;
    readonly boxRows: number;
    readonly qRows: number;
    readonly bf16: boolean;
  };
}

export interface NativeContext {
  loadModules(images: readonly KernelImage[]): Promise<void>;
  hasFunction(module: string, name: string): boolean;
  functionInfo(
    module: string,
    name: string,
    threads: number,
    smem: number,
  ): { registers: number; localBytes: number; blocksPerSM: number };
  alloc(bytes: number): bigint;
  free(ptr: bigint): void;
  memInfo(): { free: number; total: number };
  upload(ptr: bigint, src: ArrayBufferView): Promise<void>;
  download(ptr: bigint, dst: ArrayBufferView): Promise<void>;
  memset(ptr: bigint, value: number, bytes: number): Promise<void>;
  fill(ptr: bigint, count: number, dtype: string, seed: number): Promise<void>;
  copy(dst: bigint, src: bigint, bytes: number): Promise<void>;
  attention(desc: LaunchDesc): Promise<void>;
  timeAttention(desc: LaunchDesc, warmup: number, iters: number): Promise<Float64Array>;
  timeAttentionSets(
    descs: readonly LaunchDesc[],
    warmup: number,
    rounds: number,
    perFigure: number,
  ): Promise<Float64Array>;
  timeCopy(dst: bigint, src: bigint, bytes: number, warmup: number, iters: number): Promise<Float64Array>;
  // The execution contract (native/src/context_exec.cpp, context_ops.cpp): handles for streams
  // and events, work enqueued without waiting; reads and synchronizations settle once the stream
  // gets there.
  allocAsync(stream: number, bytes: number): bigint;
  freeAsync(stream: number, ptr: bigint): void;
  /** Page-locked host memory reached by kernels through unified addressing, and a buffer over it. */
  allocPinned(bytes: number): { ptr: bigint; buffer: ArrayBuffer };
  /** Detaches the buffer now; frees the memory once the stream's work so far is done. */
  freePinned(stream: number, ptr: bigint, buffer: ArrayBuffer): Promise<void>;
  streamCreate(): number;
  streamDestroy(stream: number): void;
  streamSynchronize(stream: number): Promise<void>;
  streamWait(stream: number, event: number): void;
  eventRecord(stream: number): number;
  eventSynchronize(event: number): Promise<void>;
  eventDestroy(event: number): void;
  enqueueWrite(stream: number, ptr: bigint, data: ArrayBufferView): void;
  enqueueRead(stream: number, ptr: bigint, out: ArrayBufferView): Promise<void>;
  enqueueCopy(stream: number, dst: bigint, src: bigint, bytes: number): void;
  enqueueAttention(stream: number, desc: LaunchDesc): void;
  /** One kernel of kernels/common/ops.cu; `args` mirrors its parameter struct (op_params.h). */
  enqueueOp(stream: number, kind: OpKernelKind, args: object): void;
  /** Launches the op kernels as programmatic dependents (their sm_90+ code waits for the previous kernel). */
  setOpPdl(enabled: boolean): void;
  enqueueGemm(stream: number, args: GemmArgs): void;
  enqueueMemset(stream: number, ptr: bigint, bytes: number): void;
  /** Loads cuBLAS and makes its handle and workspace now (a capture cannot allocate them). */
  prepareBlas(cublasPath?: string): void;
  /** The stream's work from here on is recorded, not run (cuStreamBeginCapture, thread-local). */
  captureBegin(stream: number): void;
  /** Ends the capture and instantiates it: the graph's handle. */
  captureEnd(stream: number): number;
  graphLaunch(stream: number, graph: number): void;
  graphDestroy(graph: number): void;
  dispose(): void;
}

export type OpKernelKind =
  | 'rows'
  | 'rope'
  | 'kvAppend'
  | 'lseMerge'
  | 'copy'
  | 'checkAttention'
  | 'sample'
  | 'standardGather'
  | 'standardSoftmax';

/** The element types as the op kernels number them (kernels/common/op_params.h, FaOpDType). */
export const DTYPE_CODE: Record<DType, 0 | 1 | 2> = { f32: 0, f16: 1, bf16: 2 };

/** A matrix in device memory: row r at ptr + r * rowStride elements; dtype as DTYPE_CODE numbers it. */
export interface DeviceMatrix {
  readonly ptr: bigint;
  readonly rowStride: number;
  readonly dtype: 0 | 1 | 2;
}

/** out[m, n] = x[m, k] · w[n, k]ᵀ + beta · out, through cuBLAS. */
export interface GemmArgs {
  readonly x: DeviceMatrix;
  readonly w: DeviceMatrix;
  readonly out: DeviceMatrix;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly beta: 0 | 1;
  /** 0: cuBLASLt with a cached algorithm per problem; 1: cublasGemmEx. */
  readonly api: 0 | 1;
  readonly cublasPath?: string;
  /** A batch of products (standard attention: one per head); all or none of these. */
  readonly batched?: GemmBatch;
}

/**
 * `batch` products `xStride`, `wStride` and `outStride` elements apart, each out = alpha · x · op(w):
 * op(w) = wᵀ for w [n, k], or w itself when `wKN` (w [k, n]).
 */
export interface GemmBatch {
  readonly alpha: number;
  readonly wKN: boolean;
  readonly batch: number;
  readonly xStride: number;
  readonly wStride: number;
  readonly outStride: number;
}

export interface NativeAddon {
  probe(): { driverVersion: number; devices: NativeDevice[] };
  tileKind(
    left: number,
    right: number,
    lk: number,
    dMin: number,
    dMax: number,
    k0: number,
    k1: number,
  ): number;
  kRange(
    left: number,
    right: number,
    lk: number,
    dMin: number,
    dMax: number,
    blockK: number,
  ): [number, number];
  /** The compiled configurations of an architecture path (its kernels/<path>/configs.h table). */
  configs(path: string): NativeConfig[];
  Context: new (ordinal: number) => NativeContext;
}

/** The package root (dist/ and src/ both sit one level below it). */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

let cached: { addon: NativeAddon } | { reason: string } | undefined;

/** node-gyp-build's resolver: build/Release first, then the prebuild matching platform, arch and libc. */
interface NodeGypBuild {
  resolve(dir: string): string;
}

/**
 * Loads the addon once (never throws): a build from source (build/Release/fa_cuda.node) if there is
 * one, else the prebuilt prebuilds/<platform>-<arch>/fa_cuda.napi.<libc>.node; on failure, the reason.
 */
export function loadAddon(): { addon: NativeAddon } | { reason: string } {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const buildError = join(packageRoot, 'build', 'native-build-error.txt');
  const built = existsSync(buildError)
    ? `; the build from source: ${readFileSync(buildError, 'utf8').trim()}`
    : '';
  let file: string;
  try {
    file = (require('node-gyp-build') as NodeGypBuild).resolve(packageRoot);
  } catch (error) {
    const message = (error as Error).message
      .split('\n')[0]!
      .replace(/^No native build was found/, 'no prebuilt addon');
    cached = {
      reason:
        `native addon not built (${message})` +
        (built ||
          '; install CMake >= 3.18 and a C++17 compiler, then run `npm rebuild @fastattention/cuda-volta` (in this repository: pnpm build)'),
    };
    return cached;
  }
  try {
    cached = { addon: require(file) as NativeAddon };
  } catch (error) {
    cached = { reason: `native addon ${file} failed to load: ${(error as Error).message}${built}` };
  }
  return cached;
}

/** What scripts/build-native.mjs recorded about the last build (build/native-build.json). */
interface BuildStatus {
  readonly nvcc?: string | null;
  readonly detected?: readonly number[];
  readonly requested?: readonly number[];
  readonly archs?: Readonly<Record<string, readonly number[]>>;
  readonly notes?: readonly string[];
}

/**
 * Why `path`'s kernels cannot run on a GPU of compute capability `sm`, and how to get them:
 * "kernels not built for this GPU (sm_90): <what the build did>; set FASTATTN_CUDA_ARCHS=90 and
 * rebuild (...)". `built` is the manifest's entry for the path, where the build has one.
 */
export function kernelsNotBuilt(
  kernelDir: string,
  path: string,
  sm: number,
  built?: { readonly sm: readonly number[]; readonly ptx: number },
): string {
  const defaultDir = resolve(kernelDir) === resolve(packageRoot, 'build', 'kernels');
  const status = defaultDir ? readBuildStatus() : undefined;
  let why: string;
  if (built) {
    why = `this build has the ${path} kernels for sm_${built.sm.join(', sm_')}${built.ptx ? ` and compute_${built.ptx} PTX` : ''}`;
  } else if (!status) {
    why = `no ${path} fatbins in ${kernelDir}`;
  } else {
    const compiled = Object.entries(status.archs ?? {}).filter(([, list]) => list.length > 0);
    why =
      compiled.length === 0
        ? (status.notes ?? []).join('; ') || 'the build compiled no kernels'
        : `this build has ${compiled.map(([p, list]) => `${p} sm_${list.join('/')}`).join(', ')}, no ${path} kernels`;
    if (status.nvcc === null)
      why += '; nvcc was not found at build time (install the CUDA toolkit 12.x or 13.x)';
  }
  const how =
    sm < 75
      ? `sm_${sm} needs CUDA <= 12: build with it (FASTATTN_CUDA_ARCHS=${sm}) or use scripts/cuda118/build.sh and createBackend({ kernelDir })`
      : `set FASTATTN_CUDA_ARCHS=${sm} and rebuild (npm rebuild @fastattention/cuda-volta; in this repository: pnpm build)`;
  return `kernels not built for this GPU (sm_${sm}): ${why}; ${how}`;
}

function readBuildStatus(): BuildStatus | undefined {
  const file = join(packageRoot, 'build', 'native-build.json');
  try {
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as BuildStatus) : undefined;
  } catch {
    return undefined;
  }
}

/** The architectures a build compiled: machine code (sm) and the PTX (0: none) per kernel set. */
export interface KernelManifest {
  readonly nvcc: string;
  readonly paths: Record<string, KernelArchs>;
  /** The op kernels (kernels/common). */
  readonly common?: KernelArchs;
}

export interface KernelArchs {
  readonly sm: readonly number[];
  readonly ptx: number;
}

/** One fatbin: a module named '<path>/<file>'. */
export interface KernelImage {
  readonly name: string;
  readonly data: Buffer;
}

/** The fatbins of a path directory (build/kernels/<path>), or undefined when not built. */
export function readKernelImages(kernelDir: string, path: string): KernelImage[] | undefined {
  const dir = join(kernelDir, path);
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.fatbin'))
    .sort();
  return files.length === 0
    ? undefined
    : files.map((f) => ({ name: `${path}/${f.replace(/\.fatbin$/, '')}`, data: readFileSync(join(dir, f)) }));
}

export function readManifest(kernelDir: string): KernelManifest | undefined {
  const file = join(kernelDir, 'manifest.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as KernelManifest;
  } catch {
    return undefined;
  }
}
