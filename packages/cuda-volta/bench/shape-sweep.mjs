// Prefill time against k-tiles per CTA: the rows (batch x seq) stay fixed while seq grows, so each
// configuration's CTA count stays the same and a line through (k-tiles, time) splits a CTA's fixed
// cost from its per-tile cost. Medians of 15 back-to-back launches, each configuration in turn on the
// same inputs.
//   FASTATTN_SWEEP_CONFIGS=,hd64_128x128w12s3 FASTATTN_SWEEP_HD=64 node bench/shape-sweep.mjs [out.json]
//   (an empty name: the planned configuration)
import { writeFileSync } from 'node:fs';
import { median } from '@fastattention/bench';
import { createBackend } from '../dist/index.js';

const D = Number(process.env.FASTATTN_SWEEP_HD ?? 64);
const configs = (process.env.FASTATTN_SWEEP_CONFIGS ?? '').split(',').map((c) => c || undefined);
const rows = Number(process.env.FASTATTN_SWEEP_ROWS ?? 16384);
const be = await createBackend({ path: 'hopper' });
const out = [];
for (const mask of ['none', 'causal']) {
  for (const S of [256, 512, 1024, 2048, 4096, 8192]) {
    const B = Math.max(1, rows / S);
    const x = {
      dtype: 'f16',
      batch: B,
      seqQ: S,
      seqK: S,
      headsQ: 32,
      headsKV: 32,
      headDim: D,
      q: await be.random('f16', [B, S, 32, D], 1),
      k: await be.random('f16', [B, S, 32, D], 2),
      v: await be.random('f16', [B, S, 32, D], 3),
      out: be.empty('f16', [B, S, 32, D]),
      lse: be.empty('f32', [B, 32, S]),
      mask: { kind: mask },
    };
    const flops = 4 * B * 32 * S * S * D * (mask === 'causal' ? 0.5 : 1);
    const line = [`${mask} B${B} S${S}`];
    for (const config of configs) {
      const ms = median(await be.timeAttention(x, { warmup: 3, iters: 15, config }));
      out.push({ mask, batch: B, seq: S, headDim: D, config: config ?? 'default', ms });
      line.push(`${config ?? 'default'} ${ms.toFixed(4)} ms ${(flops / ms / 1e9).toFixed(1)} TF`);
    }
    console.log(line.join(' | '));
    for (const t of [x.q, x.k, x.v, x.out, x.lse]) t.dispose();
  }
}
if (process.argv[2]) writeFileSync(process.argv[2], JSON.stringify(out, null, 1));
await be.dispose();
