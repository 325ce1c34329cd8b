// A/B of two builds of the whole package (TypeScript and addon) on prefill and decode shapes,
// calls interleaved in one process (alternating order) so both see the same machine state.
// Fresh random inputs (never zeros); medians of 11 calls each, after one warm call.
//   git worktree add /tmp/base <rev> && (cd /tmp/base && pnpm install && pnpm build --filter @fastattention/cpu)
//   node bench/ab-builds.mjs /tmp/base/packages/cpu/dist/index.js ./dist/index.js
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { f32ToBf16, f32ToF16 } from '@fastattention/core';

const [baseEntry, newEntry] = process.argv.slice(2).map((p) => pathToFileURL(resolve(p)).href);
if (!baseEntry || !newEntry)
  throw new Error('usage: node bench/ab-builds.mjs <base dist/index.js> <new dist/index.js>');
const base = await (await import(baseEntry)).createBackend();
const next = await (await import(newEntry)).createBackend();

const random = (n, dtype) => {
  const f = Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  return dtype === 'f32' ? f : Uint16Array.from(f, dtype === 'f16' ? f32ToF16 : f32ToBf16);
};
const prefill = { batch: 1, seqQ: 2048, seqK: 2048, headsQ: 8, headsKV: 8 };
const decode = { seqQ: 1, headsQ: 32, headsKV: 8, headDim: 128 };
const SHAPES = [
  ['f32 causal S2048 hd128', { ...prefill, dtype: 'f32', headDim: 128, mask: { kind: 'causal' } }],
  ['f16 causal S2048 hd128', { ...prefill, dtype: 'f16', headDim: 128, mask: { kind: 'causal' } }],
  ['f32 none S2048 hd128', { ...prefill, dtype: 'f32', headDim: 128 }],
  ['f32 none S2048 hd64', { ...prefill, dtype: 'f32', headDim: 64 }],
  ['f16 decode B1 32K', { ...decode, dtype: 'f16', batch: 1, seqK: 32768 }],
  ['f16 decode B4 8K', { ...decode, dtype: 'f16', batch: 4, seqK: 8192 }],
];
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const rows = [];
for (const [shape, s] of SHAPES) {
  const kv = s.batch * s.seqK * s.headsKV * s.headDim;
  const x = {
    ...s,
    q: random(s.batch * s.seqQ * s.headsQ * s.headDim, s.dtype),
    k: random(kv, s.dtype),
    v: random(kv, s.dtype),
  };
  await base.attention(x);
  await next.attention(x);
  const times = { base: [], next: [] };
  for (let i = 0; i < 11; i++) {
    const order =
      i % 2
        ? [
            ['base', base],
            ['next', next],
          ]
        : [
            ['next', next],
            ['base', base],
          ];
    for (const [name, backend] of order) {
      const t0 = performance.now();
      await backend.attention(x);
      times[name].push(performance.now() - t0);
    }
  }
  const row = { shape, baseMs: median(times.base), newMs: median(times.next) };
  row.ratio = row.baseMs / row.newMs;
  rows.push(row);
  console.log(
    `${shape.padEnd(24)} base ${row.baseMs.toFixed(2)} ms  new ${row.newMs.toFixed(2)} ms  base/new ${row.ratio.toFixed(3)}`,
  );
}
await base.dispose();
await next.dispose();
if (process.env.FASTATTN_AB_OUT)
  writeFileSync(process.env.FASTATTN_AB_OUT, JSON.stringify({ loadavg: loadavg(), rows }, null, 1));
