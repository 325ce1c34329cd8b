// Benchmarks of the CUDA backend on device tensors, timed with CUDA events around the kernels
// alone (medians of several runs, random data generated on the device). Writes JSON rows
// (backend, path, dtype, batch, seqQ, seqK, headsQ, headsKV, headDim, mask, ms, tflops, ...) to
// FASTATTN_BENCH_OUT (default ../../bench/results/cuda-ampere.json) and prints a table.
//   node bench/run.mjs [prefill] [decode]
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '@fastattention/bench';
import { createBackend } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const outFile =
  process.env.FASTATTN_BENCH_OUT ?? join(here, '..', '..', '..', 'bench', 'results', 'cuda-ampere.json');
const which = process.argv.slice(2);
const want = (x) => which.length === 0 || which.includes(x);

const backend = await createBackend();
// Extra compiled configurations to time beside the planner's choice ({ headDim: [suffix] }).
// FASTATTN_BENCH_ALT_PREFILL=hd128_128x64w4s2,... (on the hopper path: the ampere kernel it replaces).
const ALT_PREFILL = {};
for (const suffix of (process.env.FASTATTN_BENCH_ALT_PREFILL ?? '').split(',').filter(Boolean)) {
  const hd = Number(/^hd(\d+)_/.exec(suffix)?.[1]);
  ALT_PREFILL[hd] = [...(ALT_PREFILL[hd] ?? []), suffix];
}
// Run 6: FASTATTN_BENCH_ALT_DECODE=hd128_16x64w1s3,... times hd-128 decode alternatives too.
const ALT_DECODE = process.env.FASTATTN_BENCH_ALT_DECODE
  ? { 128: process.env.FASTATTN_BENCH_ALT_DECODE.split(',') }
  : {};
// A prefill shape is timed at the clock the card's power cap settles on for it: it first runs for
// FASTATTN_BENCH_WARM_MS (default 200; 0 = the old 5 launches), so its figure does not depend on the
// shape before it (a light shape right after a heavy one inherits the heavy one's lowered clock for
// longer than 25 launches take). The first one warms ten times as long: the cap's controller
// overshoots for a second or two after the card first reaches it (SM clock down to 1485 MHz).
// tools/anchors/sdpa_cuda.py warms its prefill timings the same way.
const WARM_MS = Number(process.env.FASTATTN_BENCH_WARM_MS ?? 200);
let firstWarm = true;
async function steadyTimes(input, options = {}) {
  if (WARM_MS <= 0) return backend.timeAttention(input, { warmup: 5, iters: 20, ...options });
  const probeMs = median(await backend.timeAttention(input, { warmup: 1, iters: 3, ...options }));
  const warm = Math.min(50000, Math.ceil((firstWarm ? 10 * WARM_MS : WARM_MS) / probeMs));
  firstWarm = false;
  await backend.timeAttention(input, { warmup: 0, iters: warm, ...options });
  return backend.timeAttention(input, { warmup: 0, iters: 20, ...options });
}
const dev = backend.info.devices[0];
console.log(`device: ${dev.name} (${JSON.stringify(dev.details)})`);
const rows = [];

if (want('prefill')) {
  const shapes = [
    [16, 32, 1024, 128],
    [4, 32, 4096, 128],
    [1, 32, 16384, 128],
    [16, 32, 1024, 64],
    [4, 32, 4096, 64],
    [1, 32, 16384, 64],
    [4, 32, 4096, 80],
    [4, 32, 4096, 96],
    [4, 16, 4096, 256],
  ];
  for (const [B, H, S, D] of shapes) {
    for (const dtype of ['f16', 'bf16']) {
      const shape = [B, S, H, D];
      const q = await backend.random(dtype, shape, 1);
      const k = await backend.random(dtype, shape, 2);
      const v = await backend.random(dtype, shape, 3);
      const out = backend.empty(dtype, shape);
      const lse = backend.empty('f32', [B, H, S]);
      for (const mask of ['none', 'causal']) {
        const input = {
          dtype,
          batch: B,
          seqQ: S,
          seqK: S,
          headsQ: H,
          headsKV: H,
          headDim: D,
          q,
          k,
          v,
          out,
          lse,
          mask: { kind: mask },
        };
        const ms = median(await steadyTimes(input));
        // FLOPs as FlashAttention counts them: 4 B H S S D, halved under a causal mask.
        const flops = (4 * B * H * S * S * D) / (mask === 'causal' ? 2 : 1);
        const plan = backend.plan(input);
        const row = {
          backend: 'cuda',
          path: plan.path,
          kind: 'prefill',
          dtype,
          batch: B,
          seqQ: S,
          seqK: S,
          headsQ: H,
          headsKV: H,
          headDim: D,
          mask,
          ms,
          tflops: flops / ms / 1e9,
          config: plan.config.suffix,
          splitKV: plan.splitKV,
        };
        rows.push(row);
        console.log(
          `prefill ${dtype} ${B},${H},${S},${D} ${mask}: ${ms.toFixed(3)} ms ${row.tflops.toFixed(1)} TFLOP/s [${plan.config.suffix}]`,
        );
        // Alternative compiled configurations, timed in the same run for comparison.
        for (const config of ALT_PREFILL[D] ?? []) {
          const alt = median(await steadyTimes(input, { config }));
          rows.push({
            ...row,
            path: backend.plan(input, config).path,
            kind: 'prefill-alt',
            ms: alt,
            tflops: flops / alt / 1e9,
            config,
          });
          console.log(`  alt ${config}: ${alt.toFixed(3)} ms ${(flops / alt / 1e9).toFixed(1)} TFLOP/s`);
        }
      }
      for (const t of [q, k, v, out, lse]) t.dispose();
    }
  }
}

if (want('decode')) {
  const copyBytes = 2 ** 30;
  const copyMs = median(await backend.timeCopy(copyBytes, { warmup: 5, iters: 20 }));
  const copyGBs = (2 * copyBytes) / copyMs / 1e6; // bytes read + bytes written
  rows.push({ backend: 'cuda', kind: 'copy', bytes: copyBytes, ms: copyMs, gbps: copyGBs });
  console.log(`device-to-device copy: ${copyGBs.toFixed(0)} GB/s (read + write)`);
  const HQ = 32;
  const HKV = 8;
  const D = 128;
  const dtype = 'f16';
  for (const B of [1, 16, 64]) {
    for (const S of [4096, 32768, 131072]) {
      const kvBytes = 2 * B * S * HKV * D * 2;
      // Sets of inputs to rotate through, so small problems are not served from the 50 MB L2.
      const sets = Math.min(8, Math.max(1, Math.ceil((256 * 2 ** 20) / kvBytes)));
      const inputs = [];
      for (let s = 0; s < sets; s++) {
        const q = await backend.random(dtype, [B, 1, HQ, D], 10 * s + 1);
        const k = await backend.random(dtype, [B, S, HKV, D], 10 * s + 2);
        const v = await backend.random(dtype, [B, S, HKV, D], 10 * s + 3);
        const out = backend.empty(dtype, [B, 1, HQ, D]);
        const lse = backend.empty('f32', [B, HQ, 1]);
        inputs.push({
          dtype,
          batch: B,
          seqQ: 1,
          seqK: S,
          headsQ: HQ,
          headsKV: HKV,
          headDim: D,
          q,
          k,
          v,
          out,
          lse,
        });
      }
      const times = [];
      try {
        await backend.timeAttention(inputs[0], { warmup: 0, iters: 1 });
      } catch (e) {
        // A shape this device cannot run (out of memory, say): skip it and say why.
        console.log(`decode B=${B} seqK=${S}: skipped (${e.code ?? ''} ${e.message})`);
        for (const t of [...inputs.flatMap((x) => [x.q, x.k, x.v, x.out, x.lse])]) t?.dispose?.();
        continue;
      }
      if (sets === 1) times.push(...(await backend.timeAttention(inputs[0], { warmup: 5, iters: 20 })));
      else {
        for (const input of inputs) await backend.timeAttention(input, { warmup: 1, iters: 1 });
        for (let r = 0; r < 5; r++)
          for (const input of inputs)
            times.push(...(await backend.timeAttention(input, { warmup: 0, iters: 1 })));
      }
      const ms = median(times);
      const gbps = kvBytes / ms / 1e6;
      // The same launches enqueued back to back (host ahead of the device, as in a decode loop):
      // without the host's per-launch latency that the one-launch-per-call figure above contains
      // (the PyTorch anchors are timed one launch per call, like `ms`).
      const piped = median(
        await backend.timeAttentionSets(inputs, { warmup: 1, rounds: Math.max(3, Math.ceil(20 / sets)) }),
      );
      // A decode loop: 20 launches between two events (figure = time / 20), so no event sits between
      // most launches and programmatic dependent launch (sm_90+) can overlap consecutive steps.
      const loop = median(
        await backend.timeAttentionSets(inputs, { warmup: 1, rounds: Math.ceil(120 / sets), perFigure: 20 }),
      );
      const plan = backend.plan(inputs[0]);
      rows.push({
        backend: 'cuda',
        path: plan.path,
        kind: 'decode',
        dtype,
        batch: B,
        seqQ: 1,
        seqK: S,
        headsQ: HQ,
        headsKV: HKV,
        headDim: D,
        mask: 'none',
        ms,
        tflops: (4 * B * HQ * S * D) / ms / 1e9,
        gbps,
        ofCopy: gbps / copyGBs,
        config: plan.config.suffix,
        splitKV: plan.splitKV,
        rotatedSets: sets,
        msPipelined: piped,
        gbpsPipelined: kvBytes / piped / 1e6,
        ofCopyPipelined: kvBytes / piped / 1e6 / copyGBs,
        msLoop: loop,
        gbpsLoop: kvBytes / loop / 1e6,
        ofCopyLoop: kvBytes / loop / 1e6 / copyGBs,
      });
      console.log(
        `decode B=${B} seqK=${S}: ${ms.toFixed(3)} ms ${gbps.toFixed(0)} GB/s (${((100 * gbps) / copyGBs).toFixed(0)}% of copy) split=${plan.splitKV} [${plan.config.suffix}]; back to back ${piped.toFixed(3)} ms ${(kvBytes / piped / 1e6).toFixed(0)} GB/s (${((100 * kvBytes) / piped / 1e6 / copyGBs).toFixed(0)}%); loop ${loop.toFixed(3)} ms (${((100 * kvBytes) / loop / 1e6 / copyGBs).toFixed(0)}%)`,
      );
      for (const config of ALT_DECODE[D] ?? []) {
        const t = [];
        for (let r = 0; r < (sets === 1 ? 1 : 5); r++)
          for (const input of inputs)
            t.push(
              ...(await backend.timeAttention(input, {
                warmup: sets === 1 ? 5 : 0,
                iters: sets === 1 ? 20 : 1,
                config,
              })),
            );
        const alt = median(t);
        const altPlan = backend.plan(inputs[0], config);
        rows.push({
          ...rows.at(-1),
          kind: 'decode-alt',
          ms: alt,
          gbps: kvBytes / alt / 1e6,
          ofCopy: kvBytes / alt / 1e6 / copyGBs,
          config,
          splitKV: altPlan.splitKV,
        });
        console.log(
          `  alt ${config}: ${alt.toFixed(3)} ms ${(kvBytes / alt / 1e6).toFixed(0)} GB/s split=${altPlan.splitKV}`,
        );
      }
      for (const input of inputs)
        for (const t of [input.q, input.k, input.v, input.out, input.lse]) t.dispose();
    }
  }
}

const result = {
  device: dev.name,
  details: dev.details,
  date: new Date().toISOString(),
  command: `node bench/run.mjs ${which.join(' ')}`.trim(),
  rows,
};
writeFileSync(outFile, `${JSON.stringify(result, null, 1)}\n`);
console.log(`wrote ${outFile}`);
await backend.dispose();
