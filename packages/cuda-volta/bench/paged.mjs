// Paged KV against the same call on a dense cache (same device, same process, alternating order):
// decode at B1 32K, B16 8K and B64 2K, prefill at B4 4K, f16, hd 128, 32 query / 8 KV heads (or
// FASTATTN_PAGED_HEADS=32/32: the Llama-2-7B shape). The paged cache's blocks are shuffled (a real
// cache's blocks are not in order), block sizes 16 and 256 (or FASTATTN_PAGED_BLOCKS=16,32,64).
//   FASTATTN_BENCH_OUT=paged.json [FASTATTN_PAGED_HEADS=HQ/HKV] node bench/paged.mjs
import { writeFileSync } from 'node:fs';
import { median } from '@fastattention/bench';
import { createBackend } from '../dist/index.js';

const backend = await createBackend();
const rows = [];
const shuffled = (n, seed) => {
  const a = Int32Array.from({ length: n }, (_, i) => i);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};
const cases = [
  { name: 'decode B1 32K', batch: 1, seqQ: 1, seqK: 32768 },
  // the same keys under a causal mask (bottom-right: every key allowed), as a model's decode asks
  { name: 'decode B1 32K causal', batch: 1, seqQ: 1, seqK: 32768, mask: { kind: 'causal' } },
  { name: 'decode B16 8K', batch: 16, seqQ: 1, seqK: 8192 },
  { name: 'decode B64 2K', batch: 64, seqQ: 1, seqK: 2048 },
  { name: 'prefill B4 4K causal', batch: 4, seqQ: 4096, seqK: 4096, mask: { kind: 'causal' } },
];
for (const c of cases) {
  const [HQ, HK] = (process.env.FASTATTN_PAGED_HEADS ?? '32/8').split('/').map(Number);
  const D = 128;
  const base = { dtype: 'f16', ...c, headsQ: HQ, headsKV: HK, headDim: D, mask: c.mask ?? { kind: 'none' } };
  const q = await backend.random('f16', [c.batch, c.seqQ, HQ, D], 1);
  const k = await backend.random('f16', [c.batch, c.seqK, HK, D], 2);
  const v = await backend.random('f16', [c.batch, c.seqK, HK, D], 3);
  const out = backend.empty('f16', [c.batch, c.seqQ, HQ, D]);
  const lse = backend.empty('f32', [c.batch, HQ, c.seqQ]);
  const dense = { ...base, q, k, v, out, lse };
  for (const blockSize of (process.env.FASTATTN_PAGED_BLOCKS ?? '16,256').split(',').map(Number)) {
    const blocksPerSeq = c.seqK / blockSize;
    // The same storage viewed as blocks: a shuffled table over all of it (each row its own blocks).
    const order = shuffled(c.batch * blocksPerSeq, blockSize);
    const paged = {
      ...dense,
      seqLensK: new Int32Array(c.batch).fill(c.seqK),
      pagedKV: { blockSize, blockTable: order, blocksPerSeq },
    };
    const t = [[], []];
    for (let r = 0; r < 3; r++)
      for (const [i, x] of [dense, paged].entries())
        t[i].push(median(await backend.timeAttention(x, { warmup: 3, iters: 20 })));
    const [d, p] = t.map((x) => median(x));
    const kvGB = (c.batch * c.seqK * HK * D * 2 * 2) / 1e9;
    rows.push({ case: c.name, heads: `${HQ}/${HK}`, blockSize, denseMs: d, pagedMs: p, ratio: d / p, kvGB });
    console.log(
      `paged ${c.name} ${HQ}/${HK} heads block ${blockSize}: dense ${d.toFixed(4)} ms (${((kvGB / d) * 1e3).toFixed(0)} GB/s of K+V) paged ${p.toFixed(4)} ms x ${(d / p).toFixed(3)}`,
    );
  }
  for (const t of [q, k, v, out, lse]) t.dispose();
}
if (process.env.FASTATTN_BENCH_OUT)
  writeFileSync(process.env.FASTATTN_BENCH_OUT, JSON.stringify(rows, null, 1));
await backend.dispose();
