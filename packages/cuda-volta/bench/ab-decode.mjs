// A/B timing of decode (seqQ 1, 32/8 heads, hd 128, f16) across kernel builds, as bench/ab.mjs
// does for prefill: each argument is a kernel directory; the order rotates per shape. Full caches
// (every k-tile FULL) and ragged ones (seqLensK off the tile grid: the last tile masked).
//   FASTATTN_AB_OUT=ab-decode.json node bench/ab-decode.mjs dirA dirB ...
import { writeFileSync } from 'node:fs';
import { median } from '@fastattention/bench';
import { createBackend } from '../dist/index.js';

const dirs = process.argv.slice(2);
const backends = [];
for (const kernelDir of dirs) backends.push(await createBackend({ kernelDir }));
const HQ = 32;
const HK = 8;
const D = 128;
const rows = [];
let rot = 0;
for (const [B, S] of [
  [1, 32768],
  [16, 32768],
  [64, 4096],
]) {
  for (const ragged of [false, true]) {
    const res = new Array(dirs.length);
    const order = dirs.map((_, i) => (i + rot) % dirs.length);
    rot++;
    for (const i of order) {
      const be = backends[i];
      const kv = [B, S, HK, D];
      const x = {
        dtype: 'f16',
        batch: B,
        seqQ: 1,
        seqK: S,
        headsQ: HQ,
        headsKV: HK,
        headDim: D,
        q: await be.random('f16', [B, 1, HQ, D], 1),
        k: await be.random('f16', kv, 2),
        v: await be.random('f16', kv, 3),
        out: be.empty('f16', [B, 1, HQ, D]),
        lse: be.empty('f32', [B, HQ, 1]),
        ...(ragged ? { seqLensK: Int32Array.from({ length: B }, (_, b) => S - 77 - 13 * b) } : {}),
      };
      res[i] = median(await be.timeAttention(x, { warmup: 5, iters: 40 }));
      for (const t of [x.q, x.k, x.v, x.out, x.lse]) t.dispose();
    }
    const gbs = res.map((ms) => (2 * B * S * HK * D * 2) / ms / 1e6);
    for (let i = 0; i < dirs.length; i++)
      rows.push({ build: dirs[i], batch: B, seqK: S, ragged, ms: res[i], gbs: gbs[i] });
    console.log(
      `ab decode B=${B} S=${S}${ragged ? ' ragged' : ''}: ` +
        res.map((ms, i) => `${dirs[i].split('/').pop()} ${(ms * 1000).toFixed(1)} us`).join('  ') +
        `  | x0: ${res.map((ms) => (res[0] / ms).toFixed(3)).join(' ')}`,
    );
  }
}
if (process.env.FASTATTN_AB_OUT) writeFileSync(process.env.FASTATTN_AB_OUT, JSON.stringify(rows, null, 1));
for (const be of backends) await be.dispose();
