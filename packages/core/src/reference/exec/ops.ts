import { FastAttentionError } from '../../errors.js';
import { attentionInputOf } from '../../exec/host-attention.js';
import type { HostTensor } from '../../exec/host-tensor.js';
import type {
  AttentionOp,
  EmbeddingOp,
  GatedActivationOp,
  KvAppendOp,
  LinearOp,
  LseMergeOp,
  Op,
  OpKind,
  OpOf,
  RmsNormOp,
  RopeOp,
  SampleOp,
} from '../../exec/ops.js';
import { ropeAppendOp } from '../../exec/ops.js';
import { applyRope } from '../../exec/rope.js';
import { type SamplingParams, sampleToken } from '../../exec/sampling.js';
import { mergePartials } from '../../softmax/merge.js';
import { validateAttentionInput } from '../../validate.js';
import { exactAttention } from '../exact.js';
import { standardAttention } from '../standard.js';

/**
 * Runs a validated op in float64 on reference tensors: the executable specification of the op set.
 * Every input is read in full before any output is written, so an output may alias an input.
 */
export function runReferenceOp(op: Op): void {
  (RUN[op.op] as (op: Op) => void)(op);
}

const RUN: { readonly [K in OpKind]: (op: OpOf<K>) => void } = {
  linear,
  rmsNorm,
  rope,
  swiglu: gated,
  geglu: gated,
  embedding,
  add: (op) => {
    const a = ref(op.a).values();
    const b = ref(op.b).values();
    ref(op.out).store(a.map((x, i) => x + b[i]!));
  },
  kvAppend: (op) => kvAppend(op),
  attention,
  lseMerge,
  sample,
  copy: (op) => ref(op.dst).store(ref(op.src).values()),
};

const ref = <T extends HostTensor>(t: unknown): T => t as T;

function linear(op: LinearOp): void {
  const [m, k] = op.x.shape as [number, number];
  const n = op.weight.shape[0]!;
  const x = ref(op.x).values();
  const w = ref(op.weight).values();
  const bias = op.bias ? ref(op.bias).values() : undefined;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = bias ? bias[j]! : 0;
      for (let t = 0; t < k; t++) acc += x[i * k + t]! * w[j * k + t]!;
      out[i * n + j] = acc;
    }
  }
  ref(op.out).store(out);
}

function rmsNorm(op: RmsNormOp): void {
  const [m, d] = op.x.shape as [number, number];
  if (op.add) {
    const add = ref(op.add).values();
    ref(op.x).store(
      ref(op.x)
        .values()
        .map((v, i) => v + add[i]!),
    );
  }
  // Read back: the norm sees x as stored, rounded to its dtype, as an add op and then a norm would.
  const x = ref(op.x).values();
  const w = ref(op.weight).values();
  const out = new Float64Array(m * d);
  for (let i = 0; i < m; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[i * d + j]! ** 2;
    const inv = 1 / Math.sqrt(ss / d + op.eps);
    for (let j = 0; j < d; j++) out[i * d + j] = x[i * d + j]! * inv * w[j]!;
  }
  ref(op.out).store(out);
}

function rope(op: RopeOp): void {
  const [tokens, heads, headDim] = op.x.shape as [number, number, number];
  const x = ref(op.x).values();
  const positions = Int32Array.from(ref(op.positions).values());
  const seqLen = op.seqLen ?? positions.reduce((a, p) => Math.max(a, p + 1), 1);
  applyRope(x, tokens, heads, headDim, positions, op.rope, seqLen);
  ref(op.out).store(x);
  const appended = ropeAppendOp(op);
  if (appended) kvAppend(appended, 'rope.append');
}

const silu = (x: number): number => x / (1 + Math.exp(-x));
const geluTanh = (x: number): number =>
  0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const geluErf = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** erf to float64 accuracy: series for small |x|, continued fraction of erfc beyond. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

function gated(op: GatedActivationOp): void {
  const act = op.op === 'swiglu' ? silu : op.approximate === 'none' ? geluErf : geluTanh;
  const gate = ref(op.gate).values();
  const up = ref(op.up).values();
  ref(op.out).store(gate.map((g, i) => act(g) * up[i]!));
}

function embedding(op: EmbeddingOp): void {
  const [vocab, d] = op.table.shape as [number, number];
  const table = ref(op.table).values();
  const tokens = ref(op.tokens).values();
  const out = new Float64Array(tokens.length * d);
  tokens.forEach((t, i) => {
    if (!(t >= 0 && t < vocab)) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `embedding.tokens[${i}]: token ${t} is outside the vocabulary of ${vocab}`,
        {
          field: `embedding.tokens[${i}]`,
        },
      );
    }
    out.set(table.subarray(t * d, (t + 1) * d), i * d);
  });
  ref(op.out).store(out);
}

function kvAppend(op: KvAppendOp, field = 'kvAppend'): void {
  const [tokens, heads, headDim] = op.k.shape as [number, number, number];
  const [numBlocks, blockSize] = op.cacheK.shape as [number, number];
  const row = heads * headDim;
  const slots = ref(op.slots).values();
  const k = ref(op.k).raw();
  const v = ref(op.v).raw();
  const cacheK = ref(op.cacheK).raw();
  const cacheV = ref(op.cacheV).raw();
  for (let t = 0; t < tokens; t++) {
    const slot = slots[t]!;
    if (slot < 0) continue;
    if (slot >= numBlocks * blockSize) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `${field}.slots[${t}]: slot ${slot} is past the cache's ${numBlocks * blockSize}`,
        {
          field: `${field}.slots[${t}]`,
        },
      );
    }
    cacheK.set(k.subarray(t * row, (t + 1) * row), slot * row);
    cacheV.set(v.subarray(t * row, (t + 1) * row), slot * row);
  }
  ref(op.cacheK).writeRaw(cacheK);
  ref(op.cacheV).writeRaw(cacheV);
}

function attention(op: AttentionOp): void {
  const input = attentionInputOf(op, (t) => ref(t).raw());
  if (op.algorithm === 'standard') {
    // the materialized baseline in float32 (what the backends' standard attention computes)
    const { out, lse } = standardAttention(input);
    ref(op.out).writeRaw(out);
    if (op.lse) ref(op.lse).writeRaw(lse);
    return;
  }
  const { out, lse } = exactAttention(validateAttentionInput(input));
  ref(op.out).store(out);
  if (op.lse) ref(op.lse).store(lse);
}

function lseMerge(op: LseMergeOp): void {
  const [parts, rows, d] = op.outs.shape as [number, number, number];
  const outs = ref(op.outs).values();
  const lses = ref(op.lses).values();
  const partials = Array.from({ length: parts }, (_, p) => ({
    out: outs.subarray(p * rows * d, (p + 1) * rows * d),
    lse: lses.subarray(p * rows, (p + 1) * rows),
  }));
  const merged = mergePartials(partials, rows, d);
  ref(op.out).store(merged.out);
  if (op.lse) ref(op.lse).store(merged.lse);
}

function sample(op: SampleOp): void {
  const [rows, vocab] = op.logits.shape as [number, number];
  const logits = ref(op.logits).values();
  const p = Object.fromEntries(Object.entries(op.params).map(([name, t]) => [name, ref(t).values()]));
  const counters = ref(op.counters).values();
  const counts = op.counts ? ref(op.counts).values() : undefined;
  const tokens = new Float64Array(rows);
  const logprobs = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const params: SamplingParams = {
      temperature: p.temperature![r]!,
      topK: p.topK![r]!,
      topP: p.topP![r]!,
      minP: p.minP![r]!,
      repetitionPenalty: p.repetitionPenalty![r]!,
      presencePenalty: p.presencePenalty![r]!,
      frequencyPenalty: p.frequencyPenalty![r]!,
      seed: p.seed![r]! >>> 0,
    };
    const seen = counts
      ? Int32Array.from(counts.subarray(r * vocab, (r + 1) * vocab))
      : new Map<number, number>();
    const picked = sampleToken(logits.subarray(r * vocab, (r + 1) * vocab), params, seen, counters[r]!);
    tokens[r] = picked.token;
    logprobs[r] = picked.logprob;
  }
  ref(op.tokens).store(tokens);
  if (op.logprobs) ref(op.logprobs).store(logprobs);
}
