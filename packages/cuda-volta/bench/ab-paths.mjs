// A/B of two kernel builds on every architecture path: prefill and split-KV decode at every head
// dim, each build's output checked against the other's on the same random inputs first (never on
// zeros), then warmed and timed in eight interleaved blocks (alternating which build starts, per
// shape). Run on one GPU, in one process, so both builds see the same clocks.
//   FASTATTN_AB_OUT=ab.json node bench/ab-paths.mjs <base kernel dir> <new kernel dir>
//   FASTATTN_AB_PATHS=hopper,ampere (default: every path the GPU runs), FASTATTN_AB_HDS=64,128
//   FASTATTN_AB_BASE_CONFIG=ampere/decode/64=hd64_64x128w4s3,...: the base build's configuration for a
//   path, role and head dim whose default the new table changed (the base runs it by name);
//   FASTATTN_AB_NEW_CONFIG the same for the new build
//   FASTATTN_AB_BASE_TUNING / FASTATTN_AB_NEW_TUNING: a JSON `tuning` option for that side's backend,
//   e.g. both dirs build/kernels and FASTATTN_AB_BASE_TUNING='{"persistent":false}' to A/B a launch
//   choice within one build
import { writeFileSync } from 'node:fs';
import { median } from '@fastattention/bench';
import { bf16ToF32, f16ToF32 } from '@fastattention/core';
import { createBackend } from '../dist/index.js';

const [baseDir, newDir] = process.argv.slice(2);
const paths = (process.env.FASTATTN_AB_PATHS ?? 'hopper,ampere,turing,volta').split(',');
const HDS = (process.env.FASTATTN_AB_HDS ?? '64,80,96,128,256').split(',').map(Number);
const configMap = (name) =>
  new Map(
    (process.env[name] ?? '')
      .split(',')
      .filter(Boolean)
      .map((e) => e.split('=')),
  );
const baseConfig = configMap('FASTATTN_AB_BASE_CONFIG');
const tuningOf = (name) => (process.env[name] ? { tuning: JSON.parse(process.env[name]) } : {});
const newConfig = configMap('FASTATTN_AB_NEW_CONFIG');
const rows = [];
let bad = 0;
let rot = 0;

const make = async (be, dtype, B, S, HQ, HK, D, lk, mask) => ({
  dtype,
  batch: B,
  seqQ: lk ? 1 : S,
  seqK: S,
  headsQ: HQ,
  headsKV: HK,
  headDim: D,
  q: await be.random(dtype, [B, lk ? 1 : S, HQ, D], 1),
  k: await be.random(dtype, [B, S, HK, D], 2),
  v: await be.random(dtype, [B, S, HK, D], 3),
  out: be.empty(dtype, [B, lk ? 1 : S, HQ, D]),
  lse: be.empty('f32', [B, HQ, lk ? 1 : S]),
  mask: { kind: mask },
});
const free = (x) => {
  for (const t of [x.q, x.k, x.v, x.out, x.lse]) t.dispose();
};

async function outputOf(be, args, config) {
  const x = await make(be, ...args);
  await x.out.fillBytes(0xff);
  await be.timeAttention(x, { warmup: 0, iters: 1, config });
  const raw = await x.out.download();
  free(x);
  return Array.from(raw, args[0] === 'f16' ? f16ToF32 : bf16ToF32);
}

for (const path of paths) {
  let pair;
  try {
    pair = [
      await createBackend({ kernelDir: baseDir, path, ...tuningOf('FASTATTN_AB_BASE_TUNING') }),
      await createBackend({ kernelDir: newDir, path, ...tuningOf('FASTATTN_AB_NEW_TUNING') }),
    ];
  } catch (error) {
    console.log(`path ${path}: skipped (${error.message})`);
    continue;
  }
  // Volta and turing run on this GPU only as a check of their code: smaller shapes.
  const slow = path === 'volta' || path === 'turing';
  for (const D of HDS) {
    const cases = [
      ['prefill', 'f16', slow ? 2 : 4, 4096, slow ? 16 : 32, slow ? 16 : 32, D, 0, 'none'],
      ['prefill', 'f16', slow ? 2 : 4, 4096, slow ? 16 : 32, slow ? 16 : 32, D, 0, 'causal'],
      ['prefill', 'bf16', slow ? 2 : 4, 4096, slow ? 16 : 32, slow ? 16 : 32, D, 0, 'causal'],
      // Short prefill: many CTAs of few k-tiles each.
      ...(slow
        ? []
        : [
            ['prefill', 'f16', 16, 1024, 32, 32, D, 0, 'none'],
            ['prefill', 'f16', 16, 1024, 32, 32, D, 0, 'causal'],
          ]),
      ['decode', 'f16', 1, 32768, 32, 8, D, 1, 'none'],
      ['decode', 'f16', 16, 8192, 32, 8, D, 1, 'none'],
    ];
    for (const [kind, ...args] of cases) {
      // Check on a smaller, odd-sized version of the case.
      const small = [args[0], 2, kind === 'decode' ? 3001 : 777, args[3], args[4], D, args[6], args[7]];
      const key = `${path}/${kind}/${D}`;
      const configs = [baseConfig.get(key), newConfig.get(key)];
      const [a, b] = [await outputOf(pair[0], small, configs[0]), await outputOf(pair[1], small, configs[1])];
      let num = 0;
      let den = 0;
      for (let j = 0; j < a.length; j++) {
        num += (a[j] - b[j]) ** 2;
        den += a[j] ** 2;
      }
      const rel = Math.sqrt(num / den);
      const ok = Number.isFinite(rel) && den > 0 && rel < (args[0] === 'f16' ? 2e-3 : 1e-2);
      if (!ok) bad++;
      // Both builds first run the shape for about 150 ms each, so that the card has reached the
      // clock its power cap holds for this shape; then eight blocks of about 30 ms, A B B A B A A B
      // (or the mirror), so that a drift in clock within the shape falls on both builds alike.
      const xs = [await make(pair[0], ...args), await make(pair[1], ...args)];
      const launchMs = median(
        await pair[0].timeAttention(xs[0], { warmup: 1, iters: 3, config: configs[0] }),
      );
      const itersFor = (ms) => Math.max(4, Math.min(400, Math.ceil(ms / launchMs)));
      for (const i of [0, 1])
        await pair[i].timeAttention(xs[i], { warmup: 0, iters: itersFor(150), config: configs[i] });
      const times = [[], []];
      const first = rot++ % 2;
      for (const i of [0, 1, 1, 0, 1, 0, 0, 1].map((k) => (k + first) % 2)) {
        times[i].push(
          ...(await pair[i].timeAttention(xs[i], { warmup: 1, iters: itersFor(30), config: configs[i] })),
        );
      }
      for (const x of xs) free(x);
      const res = times.map(median);
      const [dtype, B, S, HQ, HK] = args;
      rows.push({
        path,
        kind,
        dtype,
        batch: B,
        seqK: S,
        headsQ: HQ,
        headsKV: HK,
        headDim: D,
        mask: args[7],
        baseMs: res[0],
        newMs: res[1],
        rel,
      });
      console.log(
        `ab ${path} ${kind} ${dtype} B${B} S${S} H${HQ}/${HK} hd${D} ${args[7]}: base ${res[0].toFixed(3)} ms new ${res[1].toFixed(3)} ms x ${(res[0] / res[1]).toFixed(3)} check ${rel.toExponential(1)} ${ok ? 'ok' : 'BAD'}`,
      );
    }
  }
  for (const be of pair) await be.dispose();
}
if (process.env.FASTATTN_AB_OUT) writeFileSync(process.env.FASTATTN_AB_OUT, JSON.stringify(rows, null, 1));
if (bad) {
  console.log(`${bad} check(s) failed`);
  process.exit(1);
}
