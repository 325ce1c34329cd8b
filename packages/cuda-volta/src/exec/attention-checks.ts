/**
 * One device check of seqLensK and the block table for the attention ops of a recorded step that
 * share them. Every layer's attention in a decode step names the same views, and nothing between
 * the layers writes them, so the first layer's checked copies serve the rest: one check kernel per
 * step instead of one per layer.
 */
import {
  type AttentionOp,
  attentionOpShape,
  forEachOpOutput,
  type Op,
  type Tensor,
} from '@fastattention/core';
import type { CudaTensor } from './device-tensor.js';

/** The checked copies an attention op's kernels read. */
export interface CheckedInputs {
  readonly lens: CudaTensor<'i32'>;
  readonly table?: CudaTensor<'i32'>;
}

/** A recorded step's shared checks: which earlier op's check each attention op reuses, and the results. */
export interface AttentionChecks {
  readonly reuse: ReadonlyMap<AttentionOp, AttentionOp>;
  readonly done: Map<AttentionOp, CheckedInputs>;
}

export function attentionChecks(ops: readonly Op[]): AttentionChecks {
  const reuse = new Map<AttentionOp, AttentionOp>();
  let open: AttentionOp[] = [];
  for (const op of ops) {
    if (op.op === 'attention') {
      const first = open.find((o) => sameCheck(o, op));
      if (first) reuse.set(op, first);
      else open.push(op);
    }
    forEachOpOutput(op, (t) => {
      open = open.filter((o) => !writes(t, o));
    });
  }
  return { reuse, done: new Map() };
}

const storageOf = (t: Tensor) => (t as CudaTensor).storage;

function sameView(a: Tensor, b: Tensor): boolean {
  const x = a as CudaTensor;
  const y = b as CudaTensor;
  return (
    x.storage === y.storage &&
    x.offset === y.offset &&
    x.shape.join() === y.shape.join() &&
    x.strides.join() === y.strides.join()
  );
}

/** Whether two ops' checks take the same inputs and bounds. */
function sameCheck(a: AttentionOp, b: AttentionOp): boolean {
  if (!sameView(a.seqLensK, b.seqLensK) || attentionOpShape(a).seqK !== attentionOpShape(b).seqK)
    return false;
  if (!a.paged || !b.paged) return !a.paged && !b.paged;
  return (
    sameView(a.paged.blockTable, b.paged.blockTable) &&
    a.paged.blockSize === b.paged.blockSize &&
    a.k.shape[0] === b.k.shape[0]
  );
}

/** Whether writing `t` may change what op's check read. */
function writes(t: Tensor, op: AttentionOp): boolean {
  const s = storageOf(t);
  return s === storageOf(op.seqLensK) || (op.paged !== undefined && s === storageOf(op.paged.blockTable));
}
