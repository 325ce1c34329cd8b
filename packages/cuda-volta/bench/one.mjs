// One problem, launched a few times (for ncu):
//   node bench/one.mjs [B H S D dtype mask [seqQ headsKV]]
// seqQ defaults to S (prefill); e.g. `1 32 32768 128 f16 none 1 8` is a 32/8-head decode step.
// FASTATTN_ONE_KERNEL_DIR and FASTATTN_ONE_PATH pick the kernel directory and the path;
// FASTATTN_ONE_CONFIG a compiled configuration (e.g. a timing-only hd64_64x64w8s3);
// FASTATTN_ONE_ITERS the launches timed (default 2; more keep the GPU busy for clock readings).
import { median } from '@fastattention/bench';
import { createBackend } from '../dist/index.js';

const args = process.argv.slice(2);
const [B, H, S, D] = (args.length >= 4 ? args.slice(0, 4) : [4, 32, 4096, 128]).map(Number);
const dtype = args[4] ?? 'f16';
const mask = args[5] ?? 'none';
const seqQ = Number(args[6] ?? S);
const HKV = Number(args[7] ?? H);
const backend = await createBackend({
  ...(process.env.FASTATTN_ONE_KERNEL_DIR ? { kernelDir: process.env.FASTATTN_ONE_KERNEL_DIR } : {}),
  ...(process.env.FASTATTN_ONE_PATH ? { path: process.env.FASTATTN_ONE_PATH } : {}),
});
const [q, k, v] = await Promise.all([
  backend.random(dtype, [B, seqQ, H, D], 1),
  backend.random(dtype, [B, S, HKV, D], 2),
  backend.random(dtype, [B, S, HKV, D], 3),
]);
const input = {
  dtype,
  batch: B,
  seqQ,
  seqK: S,
  headsQ: H,
  headsKV: HKV,
  headDim: D,
  q,
  k,
  v,
  out: backend.empty(dtype, [B, seqQ, H, D]),
  lse: backend.empty('f32', [B, H, seqQ]),
  mask: { kind: mask },
};
const config = process.env.FASTATTN_ONE_CONFIG;
const plan = backend.plan(input, config);
const iters = Number(process.env.FASTATTN_ONE_ITERS ?? 2);
const t = await backend.timeAttention(input, { warmup: 1, iters, ...(config ? { config } : {}) });
const shown =
  t.length <= 8 ? t.map((x) => x.toFixed(3)).join(' ') : `median ${median(t).toFixed(3)} of ${t.length}`;
console.log(
  `one ${dtype} ${B},${H}/${HKV},${seqQ}x${S},${D} ${mask} [${plan.kernel}, split ${plan.splitKV}]: ${shown} ms`,
);
await backend.dispose();
