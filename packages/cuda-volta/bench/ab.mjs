// A/B timing of alternative builds of the same kernels (run 5): each argument is a kernel
// directory (a copy of build/kernels with another fwd_hd<D>.fatbin). Times the prefill shapes of
// bench/run.mjs at one head dim with every build, rotating the order per shape, after checking
// each build's output against the first build's on the same random inputs (never on zeros).
//   FASTATTN_AB_OUT=ab.json FASTATTN_AB_HD=128 node bench/ab.mjs dirA dirB ...
import { writeFileSync } from 'node:fs';
import { median } from '@fastattention/bench';
import { createBackend } from '../dist/index.js';

const dirs = process.argv.slice(2);
const D = Number(process.env.FASTATTN_AB_HD ?? 128);
const backends = [];
for (const kernelDir of dirs) backends.push(await createBackend({ kernelDir }));

const f16 = (h) => {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
};
const bf16 = (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];

const make = async (be, dtype, B, H, S, mask) => {
  const shape = [B, S, H, D];
  return {
    dtype,
    batch: B,
    seqQ: S,
    seqK: S,
    headsQ: H,
    headsKV: H,
    headDim: D,
    q: await be.random(dtype, shape, 1),
    k: await be.random(dtype, shape, 2),
    v: await be.random(dtype, shape, 3),
    out: be.empty(dtype, shape),
    lse: be.empty('f32', [B, H, S]),
    mask: { kind: mask },
  };
};
const free = (x) => {
  for (const t of [x.q, x.k, x.v, x.out, x.lse]) t.dispose();
};

// Correctness: every build against the first, f16 and bf16, both masks, an odd length.
let bad = 0;
for (const dtype of ['f16', 'bf16']) {
  for (const mask of ['none', 'causal']) {
    const outs = [];
    for (const be of backends) {
      const x = await make(be, dtype, 2, 4, 1000, mask);
      await x.out.fillBytes(0xff);
      await be.timeAttention(x, { warmup: 0, iters: 1 });
      const o = await x.out.download();
      outs.push(Array.from(o, dtype === 'f16' ? f16 : bf16));
      free(x);
    }
    for (let i = 1; i < outs.length; i++) {
      let num = 0;
      let den = 0;
      for (let j = 0; j < outs[0].length; j++) {
        num += (outs[i][j] - outs[0][j]) ** 2;
        den += outs[0][j] ** 2;
      }
      const rel = Math.sqrt(num / den);
      const ok = Number.isFinite(rel) && rel < (dtype === 'f16' ? 2e-3 : 1e-2) && den > 0;
      if (!ok) bad++;
      console.log(
        `check ${dirs[i]} vs ${dirs[0]} ${dtype} ${mask}: rel ${rel.toExponential(2)} ${ok ? 'ok' : 'BAD'}`,
      );
    }
  }
}

const shapes = [
  [16, 32, 1024],
  [4, 32, 4096],
  [1, 32, 16384],
];
const rows = [];
let rot = 0;
for (const [B, H, S] of shapes) {
  for (const dtype of ['f16', 'bf16']) {
    for (const mask of ['none', 'causal']) {
      const flops = (4 * B * H * S * S * D) / (mask === 'causal' ? 2 : 1);
      const res = new Array(dirs.length);
      const order = dirs.map((_, i) => (i + rot) % dirs.length);
      rot++;
      for (const i of order) {
        const x = await make(backends[i], dtype, B, H, S, mask);
        res[i] = median(await backends[i].timeAttention(x, { warmup: 5, iters: 20 }));
        free(x);
      }
      const tf = res.map((ms) => flops / ms / 1e9);
      for (let i = 0; i < dirs.length; i++)
        rows.push({
          build: dirs[i],
          dtype,
          batch: B,
          heads: H,
          seq: S,
          headDim: D,
          mask,
          ms: res[i],
          tflops: tf[i],
        });
      console.log(
        `ab ${dtype} ${B},${H},${S},${D} ${mask}: ` +
          tf.map((t, i) => `${dirs[i].split('/').pop()} ${t.toFixed(1)}`).join('  ') +
          `  | x0: ${tf.map((t) => (t / tf[0]).toFixed(3)).join(' ')}`,
      );
    }
  }
}
if (process.env.FASTATTN_AB_OUT) writeFileSync(process.env.FASTATTN_AB_OUT, JSON.stringify(rows, null, 1));
for (const be of backends) await be.dispose();
if (bad) {
  console.log(`${bad} check(s) failed`);
  process.exit(1);
}
