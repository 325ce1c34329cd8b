// Decode split-KV sweep (run 7): for each (batch, seqK) and split count, the three decode figures of
// bench/run.mjs (one launch per call, back to back, loop of 20) against a same-run copy. Each split
// count runs on its own backend (createBackend({ tuning: { decodeSplit } })) over its own inputs;
// split 0 is the planner's count.
//   node bench/split-sweep.mjs [splits...]   (default 16 24 32 48 64)
//   FASTATTN_SWEEP_HD=64 (head dim, default 128), FASTATTN_SWEEP_SHAPES=1x32768,16x8192 (batch x seqK),
//   FASTATTN_SWEEP_CONFIGS=hd64_16x64w4s3,hd64_64x128w4s3 (decode configurations; default the planner's),
//   FASTATTN_SWEEP_HEADS=32x8 (query heads x KV heads)
import { median } from '@fastattention/bench';
import { createBackend } from '../dist/index.js';

const splits = process.argv.slice(2).map(Number);
const base = await createBackend();
const copyMs = median(await base.timeCopy(2 ** 30, { warmup: 5, iters: 20 }));
await base.dispose();
const copyGBs = (2 * 2 ** 30) / copyMs / 1e6;
console.log(`copy ${copyGBs.toFixed(0)} GB/s`);
const D = Number(process.env.FASTATTN_SWEEP_HD ?? 128);
const shapes = (process.env.FASTATTN_SWEEP_SHAPES ?? '1x4096,1x32768,1x131072,16x4096')
  .split(',')
  .map((x) => x.split('x').map(Number));
const configs = (process.env.FASTATTN_SWEEP_CONFIGS ?? '').split(',');
const [HQ, HKV] = (process.env.FASTATTN_SWEEP_HEADS ?? '32x8').split('x').map(Number);
for (const [B, S] of shapes) {
  const kvBytes = 2 * B * S * HKV * D * 2;
  const sets = Math.min(8, Math.max(1, Math.ceil((256 * 2 ** 20) / kvBytes)));
  for (const config of configs)
    for (const split of splits.length ? splits : [16, 24, 32, 48, 64]) {
      const tuning = { ...(split > 0 && { decodeSplit: split }), ...(config && { decodeConfig: config }) };
      const backend = await createBackend({ tuning });
      const inputs = [];
      for (let s = 0; s < sets; s++) {
        inputs.push({
          dtype: 'f16',
          batch: B,
          seqQ: 1,
          seqK: S,
          headsQ: HQ,
          headsKV: HKV,
          headDim: D,
          q: await backend.random('f16', [B, 1, HQ, D], 10 * s + 1),
          k: await backend.random('f16', [B, S, HKV, D], 10 * s + 2),
          v: await backend.random('f16', [B, S, HKV, D], 10 * s + 3),
          out: backend.empty('f16', [B, 1, HQ, D]),
          lse: backend.empty('f32', [B, HQ, 1]),
        });
      }
      const one = [];
      for (const input of inputs) await backend.timeAttention(input, { warmup: 1, iters: 1 });
      for (let r = 0; r < Math.ceil(12 / sets); r++)
        for (const input of inputs)
          one.push(...(await backend.timeAttention(input, { warmup: 0, iters: 1 })));
      const b2b = median(
        await backend.timeAttentionSets(inputs, { warmup: 1, rounds: Math.ceil(24 / sets) }),
      );
      const loop = median(
        await backend.timeAttentionSets(inputs, { warmup: 1, rounds: Math.ceil(120 / sets), perFigure: 20 }),
      );
      const pct = (ms) => ((100 * kvBytes) / ms / 1e6 / copyGBs).toFixed(0).padStart(3);
      console.log(
        `hd${D} ${HQ}/${HKV} B=${B} S=${S} ${backend.plan(inputs[0]).config.suffix} split ${String(backend.plan(inputs[0]).splitKV).padStart(2)}: one ${pct(median(one))}%  b2b ${pct(b2b)}% (${(b2b * 1e3).toFixed(1)} us)  loop ${pct(loop)}% (${(loop * 1e3).toFixed(1)} us)`,
      );
      for (const x of inputs) for (const t of [x.q, x.k, x.v, x.out, x.lse]) t.dispose();
      await backend.dispose();
    }
}
