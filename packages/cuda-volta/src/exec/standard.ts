import { type AttentionOp, attentionOpShape, bandOf, type DType, tensorBytesOf } from '@fastattention/core';
import { DTYPE_CODE } from '../native.js';
import type { AttentionOperands, OpContext } from './ops.js';

/**
 * Standard attention, the FlashAttention papers' baseline (`algorithm: 'standard'`): per batch row,
 * gather the row's keys and values per query head (kernels/common/standard.cu), S = scale · Q Kᵀ
 * for every head in one batched cuBLAS product (f32), a masked softmax into P (q's dtype), then
 * O = P V in a second batched product. S and P are materialized: heads · seqQ · seqK · 6 bytes.
 */
export function standardAttention(op: AttentionOp, operands: AttentionOperands, c: OpContext): void {
  const { batch, seqQ, seqK, headsQ, headsKV, headDim } = attentionOpShape(op);
  const { q, k, v, out, lse, lens, table, blocksPerSeq } = operands;
  // f16 or bf16: the executor refuses f32 attention before an op runs
  const dtype = DTYPE_CODE[q.dtype as DType];
  const bytes = tensorBytesOf(q.dtype);
  const context = c.executor.context;
  const band = bandOf(op.mask ?? { kind: 'none' });
  const bound = (n: number) => (Number.isFinite(n) ? n : -1);
  const keys = c.temp(q.dtype, [headsQ, seqK, headDim]);
  const values = c.temp(q.dtype, [headsQ, seqK, headDim]);
  const scores = c.temp('f32', [headsQ, seqQ, seqK]);
  const probs = c.temp(q.dtype, [headsQ, seqQ, seqK]);
  const rowElements = seqQ * headsQ * headDim;
  const gemm = {
    api: c.gemm === 'gemmEx' ? 1 : 0,
    ...(c.cublasPath !== undefined && { cublasPath: c.cublasPath }),
  } as const;
  if (seqK === 0) context.enqueueMemset(c.stream.id, out.address(), out.length * bytes);
  for (let b = 0; b < batch; b++) {
    context.enqueueOp(c.stream.id, 'standardGather', {
      k: k.address(),
      v: v.address(),
      kOut: keys.address(),
      vOut: values.address(),
      seqLens: lens.address(),
      table: table ? table.address() : 0n,
      b,
      seqK,
      headsQ,
      headsKV,
      headDim,
      blocksPerSeq,
      blockSize: op.paged ? op.paged.blockSize : 1,
    });
    const qRow = q.address() + BigInt(b * rowElements * bytes);
    const outRow = out.address() + BigInt(b * rowElements * bytes);
    if (seqK > 0 && seqQ > 0) {
      context.enqueueGemm(c.stream.id, {
        x: { ptr: qRow, rowStride: headsQ * headDim, dtype },
        w: { ptr: keys.address(), rowStride: headDim, dtype },
        out: { ptr: scores.address(), rowStride: seqK, dtype: 0 },
        m: seqQ,
        n: seqK,
        k: headDim,
        beta: 0,
        ...gemm,
        batched: {
          alpha: op.scale ?? 1 / Math.sqrt(headDim),
          wKN: false,
          batch: headsQ,
          xStride: headDim,
          wStride: seqK * headDim,
          outStride: seqQ * seqK,
        },
      });
    }
    context.enqueueOp(c.stream.id, 'standardSoftmax', {
      scores: scores.address(),
      probs: probs.address(),
      lse: lse ? lse.address() : 0n,
      seqLens: lens.address(),
      b,
      headsQ,
      seqQ,
      seqK,
      left: bound(band.left),
      right: bound(band.right),
      dtype,
    });
    if (seqK > 0 && seqQ > 0) {
      context.enqueueGemm(c.stream.id, {
        x: { ptr: probs.address(), rowStride: seqK, dtype },
        w: { ptr: values.address(), rowStride: headDim, dtype },
        out: { ptr: outRow, rowStride: headsQ * headDim, dtype },
        m: seqQ,
        n: headDim,
        k: seqK,
        beta: 0,
        ...gemm,
        batched: {
          alpha: 1,
          wKN: true,
          batch: headsQ,
          xStride: seqQ * seqK,
          wStride: seqK * headDim,
          outStride: headDim,
        },
      });
    }
  }
}
