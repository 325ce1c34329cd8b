// Decode split-KV sweep (run 7): for each (batch, seqK) and split count, the three decode figures of
// bench/run.mjs (one launch per call, back to back, loop of 20) against a same-run copy. Each split
// count runs on its own backend (createBackend({ tuning: { decodeSplit } })) over its own inputs.
//   node bench/split-sweep.mjs [splits...]   (default 16 24 32 48 64)
import { median } from '@fastattention/bench';
import { createBackend } from '../dist/index.js';

const splits = process.argv.slice(2).map(Number);
const base = await createBackend();
const copyMs = median(await base.timeCopy(2 ** 30, { warmup: 5, iters: 20 }));
await base.dispose();
const copyGBs = (2 * 2 ** 30) / copyMs / 1e6;
console.log(`copy ${copyGBs.toFixed(0)} GB/s`);
for (const [B, S] of [
  [1, 4096],
  [1, 32768],
  [1, 131072],
  [16, 4096],
]) {
  const kvBytes = 2 * B * S * 8 * 128 * 2;
  const sets = Math.min(8, Math.max(1, Math.ceil((256 * 2 ** 20) / kvBytes)));
  for (const split of splits.length ? splits : [16, 24, 32, 48, 64]) {
    const backend = await createBackend({ tuning: { decodeSplit: split } });
    const inputs = [];
    for (let s = 0; s < sets; s++) {
      inputs.push({
        dtype: 'f16',
        batch: B,
        seqQ: 1,
        seqK: S,
        headsQ: 32,
        headsKV: 8,
        headDim: 128,
        q: await backend.random('f16', [B, 1, 32, 128], 10 * s + 1),
        k: await backend.random('f16', [B, S, 8, 128], 10 * s + 2),
        v: await backend.random('f16', [B, S, 8, 128], 10 * s + 3),
        out: backend.empty('f16', [B, 1, 32, 128]),
        lse: backend.empty('f32', [B, 32, 1]),
      });
    }
    const one = [];
    for (const input of inputs) await backend.timeAttention(input, { warmup: 1, iters: 1 });
    for (let r = 0; r < Math.ceil(12 / sets); r++)
      for (const input of inputs) one.push(...(await backend.timeAttention(input, { warmup: 0, iters: 1 })));
    const b2b = median(await backend.timeAttentionSets(inputs, { warmup: 1, rounds: Math.ceil(24 / sets) }));
    const loop = median(
      await backend.timeAttentionSets(inputs, { warmup: 1, rounds: Math.ceil(120 / sets), perFigure: 20 }),
    );
    const pct = (ms) => ((100 * kvBytes) / ms / 1e6 / copyGBs).toFixed(0).padStart(3);
    console.log(
      `B=${B} S=${S} split ${String(backend.plan(inputs[0]).splitKV).padStart(2)}: one ${pct(median(one))}%  b2b ${pct(b2b)}% (${(b2b * 1e3).toFixed(1)} us)  loop ${pct(loop)}% (${(loop * 1e3).toFixed(1)} us)`,
    );
    for (const x of inputs) for (const t of [x.q, x.k, x.v, x.out, x.lse]) t.dispose();
    await backend.dispose();
  }
}
