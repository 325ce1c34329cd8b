import { invalidInput } from '../errors.js';
import { MAX_SCALE, readMask } from '../validate.js';
import type {
  AttentionOp,
  CopyOp,
  EmbeddingOp,
  GatedActivationOp,
  KvAppendOp,
  LinearOp,
  LseMergeOp,
  Op,
  OpKind,
  OpOf,
  RopeOp,
  SampleOp,
} from './ops.js';
import { ATTENTION_ALGORITHMS, OP_KINDS, ropeAppendOp } from './ops.js';
import { checkRopeSpec } from './rope.js';
import { checkAlive, type Tensor, type TensorDType } from './tensor.js';

const FLOATS: readonly TensorDType[] = ['f32', 'f16', 'bf16'];

/**
 * Checks an op before any backend runs it: every tensor alive, of the dtypes and shapes its
 * descriptor (ops.ts) names, sizes consistent across tensors. Throws INVALID_INPUT (DISPOSED for a
 * disposed tensor) naming the field as `<op>.<field>`, e.g. `linear.weight`.
 */
export function validateOp(op: Op): void {
  if (typeof op !== 'object' || op === null || !OP_KINDS.includes((op as Op).op)) {
    throw invalidInput(
      'op',
      `expected one of ${OP_KINDS.join(', ')}, got ${String((op as { op?: unknown })?.op)}`,
    );
  }
  (CHECKS[op.op] as (c: OpChecker, op: Op) => void)(new OpChecker(op.op), op);
}

const CHECKS: { readonly [K in OpKind]: (c: OpChecker, op: OpOf<K>) => void } = {
  linear: checkLinear,
  rmsNorm: (c, op) => {
    const [, d] = c.float('x', op.x, 2);
    c.like('out', op.out, op.x);
    c.shape('weight', c.float('weight', op.weight, 1), [d!]);
    if (op.add !== undefined) {
      c.like('add', op.add, op.x);
      if (op.add.sharesStorage(op.x)) throw c.error('add', 'must not share storage with x (x is written)');
    }
    if (!(Number.isFinite(op.eps) && op.eps >= 0))
      throw c.error('eps', `expected a finite number >= 0, got ${op.eps}`);
  },
  rope: checkRope,
  swiglu: checkGated,
  geglu: checkGated,
  embedding: checkEmbedding,
  add: (c, op) => {
    c.float('a', op.a);
    c.like('b', op.b, op.a);
    c.like('out', op.out, op.a);
  },
  kvAppend: checkKvAppend,
  attention: checkAttention,
  lseMerge: checkLseMerge,
  sample: checkSample,
  copy: checkCopy,
};

/** Field checks of one op, naming fields `<op>.<field>`. */
class OpChecker {
  constructor(readonly kind: string) {}

  error(field: string, message: string) {
    return invalidInput(`${this.kind}.${field}`, message);
  }

  tensor(
    field: string,
    t: Tensor | undefined,
    dtypes: readonly TensorDType[],
    rank?: number,
  ): readonly number[] {
    if (typeof t !== 'object' || t === null || !Array.isArray((t as Tensor).shape)) {
      throw this.error(field, 'expected a tensor of this executor');
    }
    checkAlive(t, `${this.kind}.${field}`);
    if (!dtypes.includes(t.dtype)) throw this.error(field, `expected ${dtypes.join(' or ')}, got ${t.dtype}`);
    if (rank !== undefined && t.shape.length !== rank) {
      throw this.error(field, `expected ${rank} dimensions, got [${t.shape.join(', ')}]`);
    }
    return t.shape;
  }

  float(field: string, t: Tensor | undefined, rank?: number): readonly number[] {
    return this.tensor(field, t, FLOATS, rank);
  }

  int(field: string, t: Tensor | undefined, rank?: number): readonly number[] {
    return this.tensor(field, t, ['i32'], rank);
  }

  f32(field: string, t: Tensor | undefined, rank?: number): readonly number[] {
    return this.tensor(field, t, ['f32'], rank);
  }

  shape(field: string, got: readonly number[], want: readonly number[]): void {
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
      throw this.error(field, `expected shape [${want.join(', ')}], got [${got.join(', ')}]`);
    }
  }

  /** `t` has `like`'s dtype and shape. */
  like(field: string, t: Tensor | undefined, like: Tensor): void {
    this.shape(field, this.tensor(field, t, [like.dtype]), like.shape);
  }
}

function checkLinear(c: OpChecker, op: LinearOp): void {
  const [m, k] = c.float('x', op.x, 2);
  const [n, kw] = c.float('weight', op.weight, 2);
  if (kw !== k) throw c.error('weight', `expected [n, ${k}] (x has ${k} columns), got [${n}, ${kw}]`);
  if (op.bias !== undefined) c.shape('bias', c.float('bias', op.bias, 1), [n!]);
  c.shape('out', c.tensor('out', op.out, [op.x.dtype], 2), [m!, n!]);
}

function checkRope(c: OpChecker, op: RopeOp): void {
  const [tokens, , headDim] = c.float('x', op.x, 3);
  c.shape('positions', c.int('positions', op.positions, 1), [tokens!]);
  checkRopeSpec(op.rope, headDim!, `${c.kind}.rope`);
  if (op.seqLen !== undefined && !(Number.isSafeInteger(op.seqLen) && op.seqLen >= 1)) {
    throw c.error('seqLen', `expected an integer >= 1, got ${op.seqLen}`);
  }
  c.like('out', op.out, op.x);
  if (op.append !== undefined) {
    const heads = op.out.shape[1]!;
    const [, keyHeads] = c.tensor('append.v', op.append.v, [op.x.dtype], 3);
    if (keyHeads! > heads)
      throw c.error('append.v', `expected at most ${heads} heads (out's), got ${keyHeads}`);
    checkKvAppend(new OpChecker(`${c.kind}.append`), ropeAppendOp(op)!);
  }
}

function checkGated(c: OpChecker, op: GatedActivationOp): void {
  c.float('gate', op.gate);
  c.like('up', op.up, op.gate);
  c.like('out', op.out, op.gate);
  if (op.approximate !== undefined && op.approximate !== 'tanh' && op.approximate !== 'none') {
    throw c.error('approximate', `expected 'tanh' or 'none', got ${String(op.approximate)}`);
  }
}

function checkEmbedding(c: OpChecker, op: EmbeddingOp): void {
  const [, d] = c.float('table', op.table, 2);
  const [n] = c.int('tokens', op.tokens, 1);
  c.shape('out', c.float('out', op.out, 2), [n!, d!]);
}

function checkKvAppend(c: OpChecker, op: KvAppendOp): void {
  const [tokens, heads, headDim] = c.float('k', op.k, 3);
  c.like('v', op.v, op.k);
  const [, , cacheHeads, cacheDim] = c.tensor('cacheK', op.cacheK, [op.k.dtype], 4);
  if (cacheHeads !== heads || cacheDim !== headDim) {
    throw c.error(
      'cacheK',
      `expected [numBlocks, blockSize, ${heads}, ${headDim}], got [${op.cacheK.shape.join(', ')}]`,
    );
  }
  c.like('cacheV', op.cacheV, op.cacheK);
  c.shape('slots', c.int('slots', op.slots, 1), [tokens!]);
}

function checkAttention(c: OpChecker, op: AttentionOp): void {
  const [batch, seqQ, headsQ, headDim] = c.float('q', op.q, 4);
  const [kb, kRows, headsKV, kDim] = c.tensor('k', op.k, [op.q.dtype], 4);
  if (kDim !== headDim) throw c.error('k', `expected head dim ${headDim}, got ${kDim}`);
  if (headsKV === 0 || headsQ! % headsKV! !== 0)
    throw c.error('k', `${headsKV} KV heads do not divide ${headsQ} query heads`);
  c.like('v', op.v, op.k);
  c.shape('seqLensK', c.int('seqLensK', op.seqLensK, 1), [batch!]);
  if (op.paged) {
    const { blockTable, blockSize, seqK } = op.paged;
    if (
      !(
        Number.isSafeInteger(blockSize) &&
        blockSize > 0 &&
        (blockSize & (blockSize - 1)) === 0 &&
        blockSize === kRows
      )
    ) {
      throw c.error(
        'paged.blockSize',
        `expected the cache's block size ${kRows} (a power of two), got ${blockSize}`,
      );
    }
    const [tb, blocksPerSeq] = c.int('paged.blockTable', blockTable, 2);
    if (tb !== batch) throw c.error('paged.blockTable', `expected ${batch} rows, got ${tb}`);
    if (!(Number.isSafeInteger(seqK) && seqK >= 0 && seqK <= blocksPerSeq! * blockSize)) {
      throw c.error('paged.seqK', `expected an integer in [0, ${blocksPerSeq! * blockSize}], got ${seqK}`);
    }
    void kb;
  } else if (kb !== batch) {
    throw c.error('k', `expected ${batch} batch rows, got ${kb}`);
  }
  // the rules of a call's mask and scale, so a replayed op is refused where a call would be
  if (op.mask !== undefined) readMask(op.mask, `${c.kind}.mask`);
  if (op.scale !== undefined && !Number.isFinite(op.scale))
    throw c.error('scale', `expected a finite number, got ${op.scale}`);
  if (op.scale !== undefined && Math.abs(op.scale) > MAX_SCALE)
    throw c.error(
      'scale',
      `|${op.scale}| is larger than ${MAX_SCALE.toPrecision(4)}: scale * log2(e) overflows f32`,
    );
  if (op.algorithm !== undefined && !ATTENTION_ALGORITHMS.includes(op.algorithm)) {
    throw c.error(
      'algorithm',
      `expected one of ${ATTENTION_ALGORITHMS.join(', ')}, got ${String(op.algorithm)}`,
    );
  }
  c.like('out', op.out, op.q);
  if (op.lse !== undefined) c.shape('lse', c.f32('lse', op.lse), [batch!, headsQ!, seqQ!]);
  // Kernels write out while other CTAs still read q, k and v.
  for (const [field, t] of [
    ['out', op.out],
    ['lse', op.lse],
  ] as const) {
    if (t && [op.q, op.k, op.v].some((input) => t.sharesStorage(input)))
      throw c.error(field, 'must not share storage with q, k or v');
  }
}

function checkLseMerge(c: OpChecker, op: LseMergeOp): void {
  const [parts, rows, d] = c.f32('outs', op.outs, 3);
  if (parts === 0) throw c.error('outs', 'expected at least one part');
  c.shape('lses', c.f32('lses', op.lses, 2), [parts!, rows!]);
  c.shape('out', c.float('out', op.out, 2), [rows!, d!]);
  if (op.lse !== undefined) c.shape('lse', c.f32('lse', op.lse, 1), [rows!]);
}

function checkSample(c: OpChecker, op: SampleOp): void {
  const [rows, vocab] = c.f32('logits', op.logits, 2);
  if (vocab === 0) throw c.error('logits', 'expected a vocabulary of at least one token');
  const p = op.params;
  if (typeof p !== 'object' || p === null) throw c.error('params', 'expected the sampling tensors');
  for (const name of [
    'temperature',
    'topP',
    'minP',
    'repetitionPenalty',
    'presencePenalty',
    'frequencyPenalty',
  ] as const) {
    c.shape(`params.${name}`, c.f32(`params.${name}`, p[name], 1), [rows!]);
  }
  for (const name of ['topK', 'seed'] as const)
    c.shape(`params.${name}`, c.int(`params.${name}`, p[name], 1), [rows!]);
  c.shape('counters', c.int('counters', op.counters, 1), [rows!]);
  if (op.counts !== undefined) c.shape('counts', c.int('counts', op.counts, 2), [rows!, vocab!]);
  c.shape('tokens', c.int('tokens', op.tokens, 1), [rows!]);
  if (op.logprobs !== undefined) c.shape('logprobs', c.f32('logprobs', op.logprobs, 1), [rows!]);
}

function checkCopy(c: OpChecker, op: CopyOp): void {
  const src = c.tensor('src', op.src, ['f32', 'f16', 'bf16', 'i32']);
  const dst = c.tensor('dst', op.dst, op.src.dtype === 'i32' ? ['i32'] : FLOATS);
  c.shape('dst', dst, src);
}
