// Joins our benchmark JSON with the PyTorch anchors of the same run and prints ratio tables.
//   node bench/summary.mjs <cuda.json> <anchors.json>
import { readFileSync } from 'node:fs';

const [ours, anchors] = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, 'utf8')));
const key = (r) => `${r.dtype}|${r.batch}|${r.headsQ}|${r.seqQ}|${r.seqK}|${r.headDim}|${r.mask}`;
const anc = new Map();
for (const r of anchors.rows) anc.set(`${r.impl}|${r.kind}|${key(r)}`, r);
const f = (x, d = 1) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
console.log('\nprefill: TFLOP/s (ratio = ours / anchor)');
// The anchors' calls run back to back; "synced" ratios use their figures with a wait after each
// call, which also times PyTorch's dispatch (the anchors' method before 2026-12-02).
console.log(
  'dtype | B,H,S,D | mask | ours | FLASH | EFFICIENT | CUDNN | naive | x FLASH | x EFF | x CUDNN | x naive | x FLASH, x EFF synced',
);
for (const r of ours.rows.filter((x) => x.kind === 'prefill')) {
  const row = (impl) => anc.get(`${impl}|prefill|${key(r)}`);
  const a = (impl) => row(impl)?.tflops;
  const synced = (impl) => row(impl)?.msSynced && row(impl).msSynced / r.ms;
  const [fl, ef, cu, nv] = ['FLASH', 'EFFICIENT', 'CUDNN', 'naive'].map(a);
  console.log(
    `${r.dtype} | ${r.batch},${r.headsQ},${r.seqQ},${r.headDim} | ${r.mask} | ${f(r.tflops)} | ${f(fl)} | ${f(ef)} | ${f(cu)} | ${f(nv)} | ${f(fl && r.tflops / fl, 2)} | ${f(ef && r.tflops / ef, 2)} | ${f(cu && r.tflops / cu, 2)} | ${f(nv && r.tflops / nv, 2)} | ${f(synced('FLASH'), 2)}, ${f(synced('EFFICIENT'), 2)}`,
  );
}
const alts = ours.rows.filter((x) => x.kind === 'prefill-alt');
if (alts.length) {
  console.log('\nprefill alternatives (TFLOP/s; x default = alt / planned config, same run)');
  for (const r of alts) {
    const base = ours.rows.find((x) => x.kind === 'prefill' && key(x) === key(r));
    console.log(
      `${r.dtype} | ${r.batch},${r.headsQ},${r.seqQ},${r.headDim} | ${r.mask} | ${r.config} | ${f(r.tflops)} | x ${f(base && r.tflops / base.tflops, 2)}`,
    );
  }
}
const copy = ours.rows.find((x) => x.kind === 'copy');
console.log(
  `\ndecode (f16, 32 q heads, 8 kv heads, hd 128): GB/s of K+V; copy ${f(copy?.gbps, 0)} GB/s (torch copy ${f(anchors.copyGBs, 0)})`,
);
console.log(
  'B | seqK | ours | % copy | ours back-to-back | % copy | ours loop of 20 | % copy | split | FLASH | CUDNN | EFFICIENT',
);
for (const r of ours.rows.filter((x) => x.kind === 'decode')) {
  const a = (impl) => anc.get(`${impl}|decode|${key(r)}`)?.gbps;
  console.log(
    `${r.batch} | ${r.seqK} | ${f(r.gbps, 0)} | ${f(100 * r.ofCopy, 0)} | ${f(r.gbpsPipelined, 0)} | ${f(100 * r.ofCopyPipelined, 0)} | ${f(r.gbpsLoop, 0)} | ${f(100 * r.ofCopyLoop, 0)} | ${r.splitKV} | ${f(a('FLASH'), 0)} | ${f(a('CUDNN'), 0)} | ${f(a('EFFICIENT'), 0)}`,
  );
}
