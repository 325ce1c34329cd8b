import {
  type AttentionInput,
  type DType,
  fromNumbers,
  type MaskKind,
  type MaskSpec,
} from '@fastattention/core';

export interface DemoProblem {
  readonly seq: number;
  readonly heads: number;
  readonly headDim: number;
  readonly dtype: DType;
  readonly mask: MaskKind;
}

export function maskOf(kind: MaskKind): MaskSpec {
  return kind === 'window' ? { kind: 'window', left: 128, right: 0 } : { kind };
}

/** Batch 1, self-attention, values uniform in [-1, 1): never all zero, so every row has real work. */
export function randomInput(p: DemoProblem): AttentionInput {
  const n = p.seq * p.heads * p.headDim;
  const values = (): AttentionInput['q'] => {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = Math.random() * 2 - 1;
    return fromNumbers(x, p.dtype);
  };
  return {
    dtype: p.dtype,
    batch: 1,
    seqQ: p.seq,
    seqK: p.seq,
    headsQ: p.heads,
    headsKV: p.heads,
    headDim: p.headDim,
    q: values(),
    k: values(),
    v: values(),
    mask: maskOf(p.mask),
  } as AttentionInput;
}
