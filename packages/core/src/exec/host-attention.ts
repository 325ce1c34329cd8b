import type { AttentionInput, AttentionOptions, AttentionOutput } from '../attention.js';
import type { BackendCapabilities } from '../backend.js';
import type { ArrayOf, DType } from '../dtype.js';
import { throwIfAborted } from '../errors.js';
import type { AttentionShape } from '../shape.js';
import { validateAttentionInput } from '../validate.js';
import type { Executor } from './executor.js';
import type { AttentionOp } from './ops.js';
import type { Tensor, TensorArray, TensorArrayOf, TensorDType } from './tensor.js';

/**
 * `backend.attention()` on host arrays, written once over any executor that runs the `attention`
 * op: validate (with the backend's capabilities), copy the inputs to device tensors, enqueue the
 * op, read out and LSE back, free the tensors. A backend with an executor implements its host call
 * as `hostAttention(this.executor, input, options, capabilities)`.
 */
export async function hostAttention<D extends DType>(
  executor: Executor,
  input: AttentionInput<D>,
  options: AttentionOptions = {},
  capabilities?: BackendCapabilities,
): Promise<AttentionOutput<D>> {
  const r = validateAttentionInput(input, capabilities);
  throwIfAborted(options.signal);
  const { batch, seqQ, headsQ, headsKV, headDim } = r;
  const tensors: Tensor[] = [];
  const upload = async <T extends TensorDType>(
    dtype: T,
    shape: number[],
    data: TensorArrayOf<T>,
  ): Promise<Tensor<T>> => {
    const t = executor.empty(dtype, shape);
    tensors.push(t);
    await executor.write(t, data);
    return t;
  };
  try {
    const kvShape = r.pagedKV
      ? [r.pagedKV.numBlocks, r.pagedKV.blockSize, headsKV, headDim]
      : [batch, r.seqK, headsKV, headDim];
    const dtype = r.dtype as DType;
    const q = await upload(dtype, [batch, seqQ, headsQ, headDim], r.q as never);
    const k = await upload(dtype, kvShape, r.k as never);
    const v = await upload(dtype, kvShape, r.v as never);
    const seqLensK = await upload('i32', [batch], r.seqLensK);
    const paged = r.pagedKV && {
      blockTable: await upload('i32', [batch, r.pagedKV.blocksPerSeq], r.pagedKV.blockTable),
      blockSize: r.pagedKV.blockSize,
      seqK: r.seqK,
    };
    const out = executor.empty(dtype, [batch, seqQ, headsQ, headDim]);
    const lse = executor.empty('f32', [batch, headsQ, seqQ]);
    tensors.push(out, lse);
    throwIfAborted(options.signal);
    executor.run({
      op: 'attention',
      q,
      k,
      v,
      seqLensK,
      ...(paged && { paged }),
      mask: r.mask,
      scale: r.scale,
      out,
      lse,
    });
    return { out: (await executor.read(out)) as ArrayOf<D>, lse: await executor.read(lse) };
  } finally {
    for (const t of tensors) t.dispose();
  }
}

/** The shape and dtype of a (validated) attention op: what a backend plans its launch from. */
export function attentionOpShape(op: AttentionOp): AttentionShape & { readonly dtype: DType } {
  const [batch, seqQ, headsQ, headDim] = op.q.shape as [number, number, number, number];
  return {
    dtype: op.q.dtype as DType,
    batch,
    seqQ,
    seqK: op.paged ? op.paged.seqK : op.k.shape[1]!,
    headsQ,
    headsKV: op.k.shape[2]!,
    headDim,
  };
}

/**
 * The host-array input of a (validated) attention op, its tensors read by `raw` (each tensor's
 * elements in row-major order): how executors whose device memory is host memory run the op
 * through a host-array attention call.
 */
export function attentionInputOf(op: AttentionOp, raw: (t: Tensor) => TensorArray): AttentionInput {
  const array = (t: Tensor) => raw(t) as Float32Array | Uint16Array;
  return {
    ...attentionOpShape(op),
    q: array(op.q),
    k: array(op.k),
    v: array(op.v),
    seqLensK: raw(op.seqLensK) as Int32Array,
    ...(op.mask && { mask: op.mask }),
    ...(op.scale !== undefined && { scale: op.scale }),
    ...(op.paged && {
      pagedKV: {
        blockSize: op.paged.blockSize,
        blockTable: raw(op.paged.blockTable) as Int32Array,
        blocksPerSeq: op.paged.blockTable.shape[1]!,
      },
    }),
  };
}
