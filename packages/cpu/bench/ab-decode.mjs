// A/B of addon builds on the f16 decode shape (1 x 32768 keys, 32/8 heads, hd 128): each build's
// backend and the same-run stream anchor (Pool.readProbe on the call's K and V) are interleaved
// (anchor, A, anchor, B, ...) so that every variant sees the same machine state.
//   cp build/Release/fastattn_cpu.node /tmp/a.node   (one copy per build variant)
//   VARIANTS=/tmp/a.node,/tmp/b.node REPS=30 [TILING='{"splitKV":16}'] node bench/ab-decode.mjs
import { createRequire } from 'node:module';
import { f32ToF16 } from '@fastattention/core';
import { createBackend, loadAddon } from '../dist/index.js';

const req = createRequire(import.meta.url);
const l = loadAddon();
const orig = l.addon.Pool;
const tiling = process.env.TILING ? JSON.parse(process.env.TILING) : undefined;
const names = process.env.VARIANTS.split(',');
const backs = [];
for (const f of names) {
  l.addon.Pool = req(f).Pool;
  backs.push(await createBackend(tiling ? { tiling } : {}));
}
l.addon.Pool = orig;
const probe = new orig(2, 'avx512');
const seqK = 32768,
  hkv = 8,
  hd = 128;
const gen = (n) => {
  const a = new Uint16Array(n);
  for (let i = 0; i < n; i++) a[i] = f32ToF16(Math.random() * 2 - 1);
  return a;
};
const input = {
  dtype: 'f16',
  batch: 1,
  seqQ: 1,
  seqK,
  headsQ: 32,
  headsKV: hkv,
  headDim: hd,
  q: gen(32 * hd),
  k: gen(seqK * hkv * hd),
  v: gen(seqK * hkv * hd),
};
const items = backs[0].explain(input).splitKV;
const med = (x) => [...x].sort((a, c) => a - c)[x.length >> 1];
const A = [],
  K = names.map(() => []);
const R = Number(process.env.REPS ?? 45);
for (let i = 0; i < R + 3; i++) {
  for (let v = 0; v < backs.length; v++) {
    let t = performance.now();
    await probe.readProbe([input.k, input.v], items);
    const a = performance.now() - t;
    t = performance.now();
    await backs[v].attention(input);
    const k = performance.now() - t;
    if (i >= 3) {
      A.push(a);
      K[v].push(k);
    }
  }
}
console.log(`items ${items} reps ${R} anchor med ${med(A).toFixed(2)} best ${Math.min(...A).toFixed(2)}`);
for (const [v, n] of names.entries())
  console.log(
    `${n}: kernel med ${med(K[v]).toFixed(2)} best ${Math.min(...K[v]).toFixed(2)} q1 ${[...K[v]].sort((a, b) => a - b)[R >> 2].toFixed(2)} | med/med ${((100 * med(A)) / med(K[v])).toFixed(0)}% best/best ${((100 * Math.min(...A)) / Math.min(...K[v])).toFixed(0)}%`,
  );
probe.close();
for (const b of backs) await b.dispose();
