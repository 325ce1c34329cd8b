// One prefill problem, launched a few times (for ncu): node bench/one.mjs [B H S D dtype mask]
import { createBackend } from '../dist/index.js';

const [B, H, S, D] = (
  process.argv.slice(2, 6).length === 4 ? process.argv.slice(2, 6) : [4, 32, 4096, 128]
).map(Number);
const dtype = process.argv[6] ?? 'f16';
const mask = process.argv[7] ?? 'none';
const backend = await createBackend();
const shape = [B, S, H, D];
const [q, k, v] = await Promise.all([1, 2, 3].map((s) => backend.random(dtype, shape, s)));
const input = {
  dtype,
  batch: B,
  seqQ: S,
  seqK: S,
  headsQ: H,
  headsKV: H,
  headDim: D,
  q,
  k,
  v,
  out: backend.empty(dtype, shape),
  lse: backend.empty('f32', [B, H, S]),
  mask: { kind: mask },
};
const t = await backend.timeAttention(input, { warmup: 1, iters: 2 });
console.log(`one ${dtype} ${B},${H},${S},${D} ${mask}: ${t.map((x) => x.toFixed(3)).join(' ')} ms`);
await backend.dispose();
