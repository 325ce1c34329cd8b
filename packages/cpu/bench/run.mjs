// The cpu backend's benchmark: everything in one run on one machine, printed as a table and
// written as JSON to <repo>/bench/results/cpu-<date>.json (the harness's columns, tools/bench).
//
//   node bench/run.mjs            full run (about a minute on 2 cores)
//   node bench/run.mjs --quick    fewer repetitions, no standard-attention anchor
//
// Anchors measured in the same run: standard attention (materialized S x S scores) twice: the cpu
// backend's own standardAttention (same threads and SIMD: the like-with-like baseline, what
// tiling buys) and core's TypeScript one (scalar, one thread: kept for history only), the
// machine's f32 FMA peak (native microbenchmark: every thread runs 12 independent FMA chains on
// the widest vectors the addon uses) and its read bandwidth (native: every thread streams a
// disjoint slice of a 1 GiB buffer with vector loads, best of 5, kept for comparison with earlier
// runs).
//
// The decode rows' bandwidth anchor is measured with the same statistic and machine state as the
// kernel (timeDecodeInterleaved): a second pool of the same thread count and pinning (worker i on
// CPU i) streams the very K and V arrays of the call (same bytes, same pages: 134 MB for the f16
// 32K shape, 4x L3), split in the same number of contiguous work items as the call's split-KV,
// timed from JS around the promise like the kernel; after three discarded pairs, anchor and
// kernel calls alternate (anchor, kernel, anchor, kernel, ...), 15 of each; the row reports the median of each, the ratio of the
// medians and the ratio of the bests.
//
//   node bench/run.mjs --decode   only the decode rows (interleaved anchor), for tuning
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attentionFlops, median } from '@fastattention/bench';
import { f32ToBf16, f32ToF16, standardAttention } from '@fastattention/core';
import { createBackend, loadAddon } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);

function makeInput(shape) {
  const { dtype, batch, seqQ, seqK, headsQ, headsKV, headDim, mask } = shape;
  const gen = (n) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
    if (dtype === 'f32') return a;
    return Uint16Array.from(a, dtype === 'f16' ? f32ToF16 : f32ToBf16);
  };
  return {
    dtype,
    batch,
    seqQ,
    seqK,
    headsQ,
    headsKV,
    headDim,
    mask: mask === 'causal' ? { kind: 'causal' } : { kind: 'none' },
    q: gen(batch * seqQ * headsQ * headDim),
    k: gen(batch * seqK * headsKV * headDim),
    v: gen(batch * seqK * headsKV * headDim),
  };
}

const PREFILL = { dtype: 'f32', batch: 1, seqQ: 2048, seqK: 2048, headsQ: 8, headsKV: 8, headDim: 128 };

// Child mode: run one implementation once and report time and peak RSS (its own process, so
// the figure is that implementation's alone).
if (args[0] === '--child') {
  const input = makeInput({ ...PREFILL, mask: 'causal' });
  const baseline = process.memoryUsage().rss;
  const t0 = performance.now();
  if (args[1] === 'standard') {
    standardAttention(input);
  } else if (args[1] === 'native-standard') {
    const backend = await createBackend();
    await backend.standardAttention(input);
    await backend.dispose();
  } else {
    const backend = await createBackend();
    await backend.attention(input);
    await backend.dispose();
  }
  const ms = performance.now() - t0;
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ ms, peakRss: peak, inputsRss: baseline }));
  process.exit(0);
}

const quick = args.includes('--quick');
const decodeOnly = args.includes('--decode');
const loaded = loadAddon();
if (!loaded.ok) {
  console.error(`cpu backend unavailable: ${loaded.reason}`);
  process.exit(1);
}
const { addon } = loaded;
const threads = availableParallelism();
const backend = await createBackend();
const device = backend.info.devices[0];
const isa = String(device.details.isa);

const flopsOf = (s) => attentionFlops(s, { kind: s.mask });
const kvBytes = (s) => 2 * s.batch * s.seqK * s.headsKV * s.headDim * (s.dtype === 'f32' ? 4 : 2);

// Anchor and kernel alternate on the same input; see the header. Returns medians and bests of both.
async function timeDecodeInterleaved(b, probe, shape, reps) {
  const input = makeInput(shape);
  const plan = b.explain(input);
  const items = plan.splitKV * shape.batch; // one q-tile per batch row in decode
  const arrays = [input.k, input.v];
  // Warm-up: three discarded pairs (the first calls after makeInput ran 2-4x slower: V8's
  // concurrent GC of the generator's garbage shares the two CPUs).
  let workspaceBytes = 0;
  for (let i = 0; i < 3; i++) {
    await probe.readProbe(arrays, items);
    ({ workspaceBytes } = await b.attention(input));
  }
  const kernel = [];
  const anchor = [];
  let bytes = 0;
  for (let i = 0; i < reps; i++) {
    let t0 = performance.now();
    bytes = await probe.readProbe(arrays, items);
    anchor.push(performance.now() - t0);
    t0 = performance.now();
    await b.attention(input);
    kernel.push(performance.now() - t0);
  }
  const paired = kernel.map((k, i) => anchor[i] / k);
  return {
    ms: median(kernel),
    min: Math.min(...kernel),
    plan,
    workspaceBytes,
    anchor: {
      bytes,
      items,
      medianMs: median(anchor),
      minMs: Math.min(...anchor),
      medianGBps: bytes / median(anchor) / 1e6,
      bestGBps: bytes / Math.min(...anchor) / 1e6,
      ratioOfMedians: median(anchor) / median(kernel),
      ratioOfBests: Math.min(...anchor) / Math.min(...kernel),
      medianPairedRatio: median(paired),
      kernelMs: kernel.map((x) => Number(x.toFixed(3))),
      anchorMs: anchor.map((x) => Number(x.toFixed(3))),
    },
  };
}

async function timeBackend(b, shape, reps) {
  const input = makeInput(shape);
  const { workspaceBytes } = await b.attention(input); // warm-up: scratch buffers, page faults
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await b.attention(input);
    times.push(performance.now() - t0);
  }
  return { ms: median(times), min: Math.min(...times), plan: b.explain(input), workspaceBytes };
}

const loadAtStart = loadavg();
console.log(
  `machine: ${device.name}, ${threads} threads, isa ${isa}, L1d ${device.details.l1d} L2 ${device.details.l2} L3 ${device.details.l3}`,
);
console.log(`load average at start: ${loadAtStart.map((x) => x.toFixed(2)).join(', ')}`);
const fmaPeak = decodeOnly ? Number.NaN : await addon.measureFmaPeak(isa, threads, 0.5);
const fmaPeak1 = decodeOnly ? Number.NaN : await addon.measureFmaPeak(isa, 1, 0.3);
const bandwidth = await addon.measureReadBandwidth(isa, threads, 2 ** 30, 5);
// The decode rows' interleaved anchor: a pool like the backend's (same threads, same pinning).
const probe = new addon.Pool(threads, isa);
console.log(
  `f32 FMA peak: ${(fmaPeak / 1e9).toFixed(1)} GFLOP/s (${(fmaPeak1 / 1e9).toFixed(1)} on one thread)`,
);
console.log(`read bandwidth: ${(bandwidth / 1e9).toFixed(1)} GB/s`);

const rows = [];
const reps = quick ? 3 : 7;
const cases = [
  { ...PREFILL, mask: 'none', target: 'peak' },
  { ...PREFILL, mask: 'causal' },
  { ...PREFILL, dtype: 'f16', mask: 'causal' },
  { ...PREFILL, dtype: 'bf16', mask: 'causal' },
  {
    dtype: 'f16',
    batch: 1,
    seqQ: 1,
    seqK: 32768,
    headsQ: 32,
    headsKV: 8,
    headDim: 128,
    mask: 'none',
    target: 'bandwidth',
    decode: true,
  },
  {
    dtype: 'f32',
    batch: 1,
    seqQ: 1,
    seqK: 32768,
    headsQ: 32,
    headsKV: 8,
    headDim: 128,
    mask: 'none',
    decode: true,
  },
  {
    dtype: 'f16',
    batch: 4,
    seqQ: 1,
    seqK: 8192,
    headsQ: 32,
    headsKV: 8,
    headDim: 128,
    mask: 'none',
    decode: true,
  },
  { ...PREFILL, headDim: 64, mask: 'none' },
  { ...PREFILL, headDim: 100, mask: 'none' },
];
// Decode calls are short (a few ms): more of them for a stable median.
const decodeReps = quick ? 5 : 15;
for (const c of cases) {
  if (decodeOnly && !c.decode) continue;
  const timed = c.decode
    ? await timeDecodeInterleaved(backend, probe, c, decodeReps)
    : await timeBackend(backend, c, reps);
  const { ms, min, plan, workspaceBytes } = timed;
  const row = {
    backend: 'cpu',
    path: isa,
    dtype: c.dtype,
    batch: c.batch,
    seqQ: c.seqQ,
    seqK: c.seqK,
    headsQ: c.headsQ,
    headsKV: c.headsKV,
    headDim: c.headDim,
    mask: c.mask,
    ms: Number(ms.toFixed(3)),
    minMs: Number(min.toFixed(3)),
    reps: c.decode ? decodeReps : reps,
    tflops: Number((flopsOf(c) / ms / 1e9).toFixed(4)),
    gbps: Number((kvBytes(c) / ms / 1e6).toFixed(2)),
    workspaceBytes,
    plan: `${plan.plan.blockQ}x${plan.blockK} stack ${plan.stack} split ${plan.splitKV}${plan.allHeads ? ' all-heads' : ''}${plan.decode ? ' decode-kernel' : ''}`,
  };
  if (c.target === 'peak') row.fractionOfPeak = Number((flopsOf(c) / (ms / 1e3) / fmaPeak).toFixed(3));
  if (c.target === 'bandwidth')
    row.fractionOfBandwidth = Number((kvBytes(c) / (ms / 1e3) / bandwidth).toFixed(3));
  if (timed.anchor) {
    const a = timed.anchor;
    row.anchor = {
      ...a,
      medianMs: Number(a.medianMs.toFixed(3)),
      minMs: Number(a.minMs.toFixed(3)),
      medianGBps: Number(a.medianGBps.toFixed(2)),
      bestGBps: Number(a.bestGBps.toFixed(2)),
      ratioOfMedians: Number(a.ratioOfMedians.toFixed(3)),
      ratioOfBests: Number(a.ratioOfBests.toFixed(3)),
      medianPairedRatio: Number(a.medianPairedRatio.toFixed(3)),
    };
  }
  rows.push(row);
}
probe.close();
// The other kernels on the headline shape, for comparison (same machine, same run).
for (const other of decodeOnly ? [] : addon.kernels().filter((k) => k !== isa)) {
  const b = await createBackend({ isa: other });
  const c = { ...PREFILL, mask: 'none' };
  const { ms } = await timeBackend(b, c, quick ? 1 : 3);
  rows.push({
    backend: 'cpu',
    path: other,
    dtype: c.dtype,
    batch: c.batch,
    seqQ: c.seqQ,
    seqK: c.seqK,
    headsQ: c.headsQ,
    headsKV: c.headsKV,
    headDim: c.headDim,
    mask: c.mask,
    ms: Number(ms.toFixed(3)),
    tflops: Number((flopsOf(c) / ms / 1e9).toFixed(4)),
  });
  await b.dispose();
}
await backend.dispose();

let standard;
if (!quick && !decodeOnly) {
  const child = (which) =>
    JSON.parse(
      execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', which], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      }),
    );
  const std = child('standard');
  const nativeStd = child('native-standard');
  const cpu = child('cpu');
  const c = { ...PREFILL, mask: 'causal' };
  // The native baseline warm, timed like the flash rows (median of warm calls).
  const b = await createBackend();
  const input = makeInput(c);
  await b.standardAttention(input);
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await b.standardAttention(input);
    times.push(performance.now() - t0);
  }
  await b.dispose();
  const nativeMs = median(times);
  standard = {
    standard: std,
    nativeStandard: { ...nativeStd, warmMedianMs: nativeMs },
    cpu,
    speedup: nativeMs / rows[1].ms,
    speedupVsTypeScript: std.ms / rows[1].ms,
  };
  rows.push({
    backend: 'cpu-standard',
    path: `${isa} standardAttention (native, materialized S, same threads and SIMD; warm median of 5)`,
    dtype: c.dtype,
    batch: c.batch,
    seqQ: c.seqQ,
    seqK: c.seqK,
    headsQ: c.headsQ,
    headsKV: c.headsKV,
    headDim: c.headDim,
    mask: c.mask,
    ms: Number(nativeMs.toFixed(2)),
    tflops: Number((flopsOf(c) / nativeMs / 1e9).toFixed(4)),
    peakRssMB: Math.round(nativeStd.peakRss / 2 ** 20),
    inputsRssMB: Math.round(nativeStd.inputsRss / 2 ** 20),
  });
  rows.push({
    backend: 'standard',
    path: 'core standardAttention (TypeScript, f32, materialized S)',
    dtype: c.dtype,
    batch: c.batch,
    seqQ: c.seqQ,
    seqK: c.seqK,
    headsQ: c.headsQ,
    headsKV: c.headsKV,
    headDim: c.headDim,
    mask: c.mask,
    ms: Number(std.ms.toFixed(1)),
    tflops: Number((flopsOf(c) / std.ms / 1e9).toFixed(5)),
    peakRssMB: Math.round(std.peakRss / 2 ** 20),
    inputsRssMB: Math.round(std.inputsRss / 2 ** 20),
  });
  rows.push({
    backend: 'cpu',
    path: `${isa} (one cold call in its own process)`,
    dtype: c.dtype,
    batch: c.batch,
    seqQ: c.seqQ,
    seqK: c.seqK,
    headsQ: c.headsQ,
    headsKV: c.headsKV,
    headDim: c.headDim,
    mask: c.mask,
    ms: Number(cpu.ms.toFixed(1)),
    tflops: Number((flopsOf(c) / cpu.ms / 1e9).toFixed(4)),
    peakRssMB: Math.round(cpu.peakRss / 2 ** 20),
    inputsRssMB: Math.round(cpu.inputsRss / 2 ** 20),
  });
}

const pad = (s, n) => String(s).padEnd(n);
console.log();
console.log(
  [
    pad('backend', 9),
    pad('path', 10),
    pad('dtype', 5),
    pad('B,Sq,Sk', 16),
    pad('Hq/Hkv,D', 10),
    pad('mask', 7),
    pad('ms', 10),
    pad('TFLOPS', 8),
    pad('GB/s', 7),
    'notes',
  ].join(' '),
);
for (const r of rows) {
  const notes = [
    r.fractionOfPeak !== undefined ? `${(r.fractionOfPeak * 100).toFixed(0)}% of FMA peak` : '',
    r.fractionOfBandwidth !== undefined
      ? `${(r.fractionOfBandwidth * 100).toFixed(0)}% of read bandwidth`
      : '',
    r.anchor
      ? `same-run stream ${r.anchor.medianGBps} GB/s median (${r.anchor.bestGBps} best): ${(r.anchor.ratioOfMedians * 100).toFixed(0)}% median/median, ${(r.anchor.ratioOfBests * 100).toFixed(0)}% best/best`
      : '',
    r.peakRssMB !== undefined ? `peak RSS ${r.peakRssMB} MB (inputs ${r.inputsRssMB} MB)` : '',
    r.plan ?? '',
  ]
    .filter(Boolean)
    .join('; ');
  console.log(
    [
      pad(r.backend, 9),
      pad(r.path.split(' ')[0], 10),
      pad(r.dtype, 5),
      pad(`${r.batch},${r.seqQ},${r.seqK}`, 16),
      pad(`${r.headsQ}/${r.headsKV},${r.headDim}`, 10),
      pad(r.mask, 7),
      pad(r.ms, 10),
      pad(r.tflops, 8),
      pad(r.gbps ?? '', 7),
      notes,
    ].join(' '),
  );
}
if (standard)
  console.log(
    `\ncpu vs standard attention (causal, S 2048, 8 heads, hd 128, f32): ${standard.speedup.toFixed(1)}x faster than the native standard attention (same threads and SIMD, warm medians); ${standard.speedupVsTypeScript.toFixed(0)}x faster than core's single-threaded TypeScript one (not like with like)`,
  );

const loadAtEnd = loadavg();
console.log(`load average at end: ${loadAtEnd.map((x) => x.toFixed(2)).join(', ')}`);

const date = new Date().toISOString().slice(0, 10);
const out = join(
  here,
  '..',
  '..',
  '..',
  'bench',
  'results',
  `cpu-${date}${decodeOnly ? '-decode' : ''}${process.env.FASTATTN_BENCH_TAG ? `-${process.env.FASTATTN_BENCH_TAG}` : ''}.json`,
);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      device: { name: device.name, threads, isa, details: device.details },
      date: new Date().toISOString(),
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      command: `pnpm --filter @fastattention/cpu bench${quick ? ' -- --quick' : ''}${decodeOnly ? ' -- --decode' : ''} (node packages/cpu/bench/run.mjs)`,
      anchors: {
        fmaPeakFlops: fmaPeak,
        fmaPeakFlopsOneThread: fmaPeak1,
        fmaMethod:
          'native: every thread runs 12 independent FMA chains on the widest vector registers, best of 3',
        readBandwidth: bandwidth,
        bandwidthMethod:
          'native: every thread streams a disjoint slice of a 1 GiB buffer with vector loads, best of 5 (history; the decode rows carry their own interleaved anchor)',
        decodeAnchorMethod:
          "per decode row: a second pool with the backend's thread count and pinning XOR-streams the call's own K and V arrays, split in the call's split-KV item count, timed from JS like the kernel; anchor and kernel calls alternate, 15 each (5 with --quick); medians and bests of both, ratio of medians and of bests",
        ...(standard ? { standardVsCpu: standard } : {}),
      },
      rows,
    },
    null,
    2,
  )}\n`,
);
console.log(`\nwrote ${out}`);
