/**
 * The op conformance suite: every op of the execution contract (exec/ops.ts) on an executor,
 * against the float64 reference executor, on the cases of op-cases.ts, with outputs poisoned first
 * so that an op that skips an element fails. A plugin author runs `runOpConformance(executor)` and
 * gets one line per case.
 */
import type { DType } from '../dtype.js';
import type { Executor } from '../exec/executor.js';
import { allocateTensorArray, type Tensor, type TensorArray, type TensorDType } from '../exec/tensor.js';
import { bf16ToF32, f16ToF32 } from '../numeric/half.js';
import { ReferenceExecutor } from '../reference/exec/executor.js';
import { TOLERANCE } from './kit.js';
import { type OpCase, opCases } from './op-cases.js';

export interface OpConformanceResult {
  readonly name: string;
  readonly ok: boolean;
  /**
   * The executor does not support the case's op and dtype (`supportsOp`), or refused the optional
   * 'standard' attention algorithm: not run, not ok.
   */
  readonly skipped?: boolean;
  /** Relative L2 error of the float outputs, or the count of differing integers. */
  readonly error: number;
  readonly message?: string;
}

/** Output poison: NaN in the dtype's bits, or an integer no op writes. */
function poison(dtype: TensorDType, length: number): TensorArray {
  const bits = { f32: Number.NaN, f16: 0x7e00, bf16: 0x7fc0, i32: -0x7fffffff }[dtype];
  return allocateTensorArray(dtype, length).fill(bits);
}

function decode(dtype: TensorDType, data: TensorArray): Float64Array {
  const f = dtype === 'f16' ? f16ToF32 : dtype === 'bf16' ? bf16ToF32 : (x: number) => x;
  return Float64Array.from(data, f);
}

/** Runs one case on an executor: inputs written, outputs poisoned (NaN, or a sentinel integer). */
async function runCase(executor: Executor, c: OpCase): Promise<Record<string, TensorArray>> {
  const tensors: Record<string, Tensor> = {};
  const owned: Tensor[] = []; // the tensors made: views' bases included
  try {
    for (const [name, spec] of Object.entries(c.tensors)) {
      let t: Tensor;
      if (spec.view) {
        const base = executor.empty(spec.dtype, spec.view.base);
        owned.push(base);
        await executor.write(base, poison(spec.dtype, base.length) as never);
        t = base.view({ shape: spec.shape, strides: spec.view.strides, offset: spec.view.offset });
        if (spec.data) await executor.write(t, spec.data as never);
      } else {
        t = executor.empty(spec.dtype, spec.shape);
        owned.push(t);
        await executor.write(t, (spec.data ?? poison(spec.dtype, t.length)) as never);
      }
      tensors[name] = t;
    }
    executor.run(c.op(tensors));
    const results: Record<string, TensorArray> = {};
    for (const [name, spec] of Object.entries(c.tensors))
      if (spec.check) results[name] = await executor.read(tensors[name]!);
    return results;
  } finally {
    for (const t of owned) t.dispose();
  }
}

/** Compares one output against the reference's: relative L2 over finite entries; NaN/Inf must match. */
function compare(dtype: TensorDType, got: TensorArray, want: TensorArray): number {
  if (dtype === 'i32') {
    let differing = 0;
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) differing++;
    return differing;
  }
  const g = decode(dtype, got);
  const w = decode(dtype, want);
  let num = 0;
  let den = 0;
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i]!)) {
      if (!Object.is(g[i], w[i]) && !(Number.isNaN(g[i]!) && Number.isNaN(w[i]!)))
        return Number.POSITIVE_INFINITY;
      continue;
    }
    if (!Number.isFinite(g[i]!)) return Number.POSITIVE_INFINITY;
    num += (g[i]! - w[i]!) ** 2;
    den += w[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/**
 * Every case of `opCases(seed)` whose op the executor supports, against the reference executor;
 * the others are listed as `skipped` (and not ok). A case passes when each checked float tensor is
 * within the dtype's tolerance (TOLERANCE; LSE and log-probabilities in f32: 1e-4) and each
 * integer output is equal.
 */
export async function runOpConformance(
  executor: Executor,
  options: { readonly seed?: number; readonly dtypes?: readonly DType[] } = {},
): Promise<OpConformanceResult[]> {
  const reference = new ReferenceExecutor();
  const results: OpConformanceResult[] = [];
  try {
    for (const c of opCases(options.seed ?? 1, options.dtypes)) {
      if (!executor.supportsOp(c.kind, c.dtype)) {
        results.push({ name: c.name, ok: false, skipped: true, error: Number.NaN });
        continue;
      }
      try {
        const want = await runCase(reference, c);
        const got = await runCase(executor, c);
        let worst = 0;
        let ok = true;
        for (const [name, spec] of Object.entries(c.tensors)) {
          if (!spec.check) continue;
          const error = compare(spec.dtype, got[name]!, want[name]!);
          const tol =
            spec.dtype === 'i32'
              ? 0
              : (c.tolerance ?? (spec.dtype === 'f32' && c.dtype !== 'f32' ? 1e-4 : TOLERANCE[spec.dtype]));
          worst = Math.max(worst, error);
          if (!(error <= tol)) ok = false;
        }
        results.push({ name: c.name, ok, error: worst });
      } catch (error) {
        // 'standard' attention is optional: an executor may refuse it, naming the field
        const e = error as { code?: string; field?: string };
        const optional = e.code === 'UNSUPPORTED' && e.field === 'attention.algorithm';
        results.push({
          name: c.name,
          ok: false,
          ...(optional && { skipped: true }),
          error: Number.NaN,
          message: String(error),
        });
      }
    }
  } finally {
    await reference.dispose();
  }
  return results;
}
