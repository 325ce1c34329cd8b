import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The arguments of one planned call, as native/src/addon.cpp reads them. */
export interface NativeCall {
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

export interface NativePool {
  readonly threads: number;
  /** The kernel in use: 'avx512', 'avx2' or 'generic'. */
  readonly isa: string;
  /** f32 lanes per vector register of that kernel. */
  readonly lanes: number;
  run(call: NativeCall): {
    /** workspaceBytes: per-thread scratch the call uses and its split-KV partials. */
    promise: Promise<{ out: Float32Array | Uint16Array; lse: Float32Array; workspaceBytes: number }>;
    id: number;
  };
  /**
   * Streams every byte of `arrays` on this pool's workers as `items` work items (item i reads
   * the i-th contiguous part of each array); resolves with the bytes read. A bandwidth anchor
   * with the same threads, pinning, scheduling and pages as a split-KV decode call.
   */
  readProbe(arrays: readonly ArrayBufferView[], items: number): Promise<number>;
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
  | { readonly ok: true; readonly addon: NativeAddon }
  | { readonly ok: false; readonly reason: string };

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Where cmake-js puts the addon, relative to the package root (dist/ and src/ both sit one level down). */
export const addonPath = join(packageRoot, 'build', 'Release', 'fastattn_cpu.node');

let cached: AddonLoad | undefined;

/** Loads the addon once; never throws. `FASTATTN_CPU_DISABLE=1` pretends it is absent (tests, debugging). */
export function loadAddon(): AddonLoad {
  if (cached) return cached;
  cached = tryLoad();
  return cached;
}

function tryLoad(): AddonLoad {
  if (process.env.FASTATTN_CPU_DISABLE === '1') {
    return { ok: false, reason: 'the native addon is disabled by FASTATTN_CPU_DISABLE=1' };
  }
  if (!existsSync(addonPath)) {
    const buildError = join(packageRoot, 'build', 'native-build-error.txt');
    const why = existsSync(buildError) ? readFileSync(buildError, 'utf8').trim() : 'it was not built';
    return { ok: false, reason: `the native addon ${addonPath} is missing: ${why}` };
  }
  try {
    const addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
    return { ok: true, addon };
  } catch (error) {
    return { ok: false, reason: `the native addon failed to load: ${(error as Error).message}` };
  }
}
