import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The problem of one call, as native/src/call_args.cpp reads it (readProblem). */
export interface NativeProblem {
  readonly dtype: 0 | 1 | 2;
  readonly q: Float32Array | Uint16Array;
  readonly k: Float32Array | Uint16Array;
  readonly v: Float32Array | Uint16Array;
  readonly batch: number;
  readonly seqQ: number;
  readonly seqK: number;
  readonly headsQ: number;
  readonly headsKV: number;
  readonly headDim: number;
  readonly scale: number;
  readonly seqLensK: Int32Array;
  /** Window sides; Infinity = unbounded. */
  readonly left: number;
  readonly right: number;
  /** A paged cache: k and v are [numBlocks, blockSize, headsKV, headDim] (all four or none). */
  readonly blockSize?: number;
  readonly blockTable?: Int32Array;
  readonly blocksPerSeq?: number;
  readonly numBlocks?: number;
}

/**
 * An attention op's problem and plan as a native op chain reads them (ops/attention_op.cpp): a
 * call's, without the arrays (given per op) and the tile tables (classified when it runs).
 */
export type NativeChainPlan = Omit<
  NativeCall,
  'q' | 'k' | 'v' | 'seqLensK' | 'blockTable' | 'kinds' | 'kStart' | 'kEnd'
>;

/** The arguments of one planned FlashAttention call (call_args.cpp: readProblem, readPlan). */
export interface NativeCall extends NativeProblem {
  /** Query positions per q-tile. */
  readonly blockQ: number;
  readonly blockK: number;
  /** Query heads per work item: 1, or headsQ / headsKV (GQA heads share each K/V block). */
  readonly stack: number;
  readonly splitKV: number;
  /** One work item per key split covering every head (decode), instead of one per head group. */
  readonly allHeads: boolean;
  /** Decode micro-kernel (keys in vector lanes); needs allHeads and stack = headsQ / headsKV. */
  readonly decode: boolean;
  /** Core's packed tile kinds [batch][qTiles][kTiles] and per-q-tile k-tile ranges [batch][qTiles]. */
  readonly kinds: Uint8Array;
  readonly kStart: Int32Array;
  readonly kEnd: Int32Array;
}

/** What a call resolves with. `workspaceBytes`: per-thread scratch, split-KV partials, score matrix. */
export interface NativeResult {
  readonly out: Float32Array | Uint16Array;
  readonly lse: Float32Array;
  readonly workspaceBytes: number;
}

/** A [rows, cols] matrix inside a float tensor's storage (native/src/ops/op_args.cpp, matArg). */
export interface NativeMatrix {
  readonly data: Float32Array | Uint16Array;
  readonly dtype: 0 | 1 | 2;
  /** Elements before row 0. */
  readonly offset: number;
  readonly rows: number;
  readonly cols: number;
  readonly rowStride: number;
}

export interface NativePool {
  readonly threads: number;
  /** The kernel in use: 'avx512', 'avx2' or 'generic'. */
  readonly isa: string;
  /** f32 lanes per vector register of that kernel. */
  readonly lanes: number;
  /** A FlashAttention call; `id` is for cancel(). */
  run(call: NativeCall): { promise: Promise<NativeResult>; id: number };
  /** Standard attention (materialized scores) on the same threads and kernels. */
  runStandard(call: NativeProblem): { promise: Promise<NativeResult>; id: number };
  /**
   * Streams every byte of `arrays` on this pool's workers as `items` work items (item i reads
   * the i-th contiguous part of each array); resolves with the bytes read. A bandwidth anchor
   * with the same threads, pinning, scheduling and pages as a split-KV decode call.
   */
  readProbe(arrays: readonly ArrayBufferView[], items: number): Promise<number>;
  /**
   * A model op (linear, rmsNorm, add, swiglu, gegluTanh, gegluErf, copy, embedding, rope,
   * kvAppend, lseMerge, sample) on this pool's workers; resolves once its outputs are written. The
   * arguments of each are read by native/src/ops/op_args.cpp.
   */
  runOp(kind: string, args: object): Promise<void>;
  /**
   * Model ops, [kind, args] each, run in order on the workers with no return to JavaScript between
   * them; rejects with the first failing op's error (the ops after it do not run).
   */
  runOps(ops: ReadonlyArray<readonly [string, object]>): Promise<void>;
  /** runOps' list read and checked once (a recorded step): run it with runPrepared, any number of times. */
  prepareOps(ops: ReadonlyArray<readonly [string, object]>): NativePreparedOps;
  runPrepared(prepared: NativePreparedOps): Promise<void>;
  /** Skips the call's items that have not started; its promise rejects with code ABORTED. */
  cancel(id: number): boolean;
  /** Joins the worker threads (no call may be in flight). */
  close(): void;
}

export interface NativeAddon {
  Pool: new (threads: number, isa: string) => NativePool;
  /** Kernels this CPU runs, best first. */
  kernels(): string[];
  /** f32 FLOP/s of `threads` threads running independent FMA chains (about `seconds` each). */
  measureFmaPeak(isa: string, threads: number, seconds?: number): Promise<number>;
  /** Bytes/s of `threads` threads streaming through a `bytes` buffer (best of `reps`). */
  measureReadBandwidth(isa: string, threads: number, bytes?: number, reps?: number): Promise<number>;
}

export type AddonLoad =
  | { readonly ok: true; readonly addon: NativeAddon /** The file loaded. */; readonly path: string }
  | { readonly ok: false; readonly reason: string };

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Where a build from source puts the addon (the workspace's `pnpm build`, or the install script
 * where no prebuild fits), relative to the package root (dist/ and src/ both sit one level down).
 * A build there takes precedence over the prebuilt `prebuilds/<platform>-<arch>/` one.
 */
export const addonPath = join(packageRoot, 'build', 'Release', 'fastattn_cpu.node');
/** Why the last build from source did not produce the addon (scripts/build-native.mjs). */
const buildErrorFile = join(packageRoot, 'build', 'native-build-error.txt');

let cached: AddonLoad | undefined;

/** Loads the addon once; never throws. `FASTATTN_CPU_DISABLE=1` pretends it is absent (tests, debugging). */
export function loadAddon(): AddonLoad {
  if (cached) return cached;
  cached = tryLoad();
  return cached;
}

/** node-gyp-build's resolver: build/Release first, then the prebuild matching platform, arch and libc. */
interface NodeGypBuild {
  resolve(dir: string): string;
}

function tryLoad(): AddonLoad {
  if (process.env.FASTATTN_CPU_DISABLE === '1') {
    return { ok: false, reason: 'the native addon is disabled by FASTATTN_CPU_DISABLE=1' };
  }
  const require = createRequire(import.meta.url);
  let file: string;
  try {
    file = (require('node-gyp-build') as NodeGypBuild).resolve(packageRoot);
  } catch (error) {
    const message = (error as Error).message
      .split('\n')[0]!
      .replace(/^No native build was found/, 'no prebuilt addon');
    return { ok: false, reason: `the native addon is missing (${message}): ${buildFailure()}` };
  }
  try {
    return { ok: true, addon: require(file) as NativeAddon, path: file };
  } catch (error) {
    const built = existsSync(buildErrorFile) ? `; the build from source: ${buildFailure()}` : '';
    return {
      ok: false,
      reason: `the native addon ${file} failed to load: ${(error as Error).message}${built}`,
    };
  }
}

function buildFailure(): string {
  return existsSync(buildErrorFile)
    ? readFileSync(buildErrorFile, 'utf8').trim()
    : 'it was not built (install CMake >= 3.15 and a C++17 compiler, then run `npm rebuild @fastattention/cpu`)';
}

/** An opaque native handle: a list of model ops read and checked once (`prepareOps`). */
export type NativePreparedOps = { readonly __brand: 'NativePreparedOps' };
