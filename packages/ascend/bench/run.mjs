// Benchmarks of FastAttention on the simulated Ascend 910B. Every figure is SIMULATED (cycles of
// the model in src/device, converted with its clock), never measured on hardware.
//
//   node bench/run.mjs [--device 910B2] [--quick] [--out ../../bench/results]
//
// Writes bench/results/ascend-<date>.json and ascend-trace-<date>.json (Chrome trace, Perfetto).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PRESETS, simulateAttention, toChromeTrace, withOverrides } from '../dist/index.js';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const quick = args.includes('--quick');
const chip = arg('device', '910B2');
const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(arg('out', join(here, '../../../bench/results')));
const date = new Date().toISOString().slice(0, 10);
const device = PRESETS[chip];
if (!device) throw new Error(`unknown device ${chip}`);

// Llama-7B-like attention: 32 heads of 128, one sequence.
const HEADS = 32;
const HEAD_DIM = 128;
const SEQS = quick ? [1024, 4096] : [1024, 2048, 4096, 8192, 16384, 32768];
const problem = (seq, mask) => ({
  batch: 1,
  seqQ: seq,
  seqK: seq,
  headsQ: HEADS,
  headsKV: HEADS,
  headDim: HEAD_DIM,
  dtype: 'f16',
  mask: { kind: mask },
});

const rows = [];
const started = performance.now();
function run(label, dev, p, options = {}) {
  const t0 = performance.now();
  const { report, plan } = simulateAttention(dev, p, options);
  const row = {
    backend: 'ascend-sim',
    simulated: true,
    device: `Ascend ${dev.name} (simulated)`,
    path: label,
    dtype: p.dtype,
    batch: p.batch,
    seqQ: p.seqQ,
    seqK: p.seqK,
    headsQ: p.headsQ,
    headsKV: p.headsKV,
    headDim: p.headDim,
    mask: p.mask.kind,
    ms: report.seconds * 1e3,
    tflops: report.tflops,
    cycles: report.totalCycles,
    boundBy: report.boundBy,
    syncCycles: dev.syncCycles.value,
    cubeUtilization: report.pipes['aic.Cube'].utilization,
    vectorUtilization: report.pipes['aiv.Vector'].utilization,
    handOffs: report.handOffs,
    ...(plan ? { blocks: `${plan.blockQ}x${plan.blockK}/${plan.subQ}x${plan.subK}` } : {}),
    simulatorWallMs: performance.now() - t0,
  };
  rows.push(row);
  return { row, report };
}

const fmt = (x, digits = 2) => x.toFixed(digits);

// 1. FastAttention against standard attention.
console.log(`Ascend ${chip}, SIMULATED. B=1 H=${HEADS} D=${HEAD_DIM} f16\n`);
console.log('1. FastAttention (two-level, tiling-mask) vs standard attention (S, mask, P through GM)');
console.log('S      mask    fast ms   TFLOPS  bound     standard ms  TFLOPS  speedup');
const speedups = [];
for (const mask of ['none', 'causal']) {
  for (const seq of SEQS) {
    const fast = run('fast-attention', device, problem(seq, mask)).row;
    const std = run('standard', device, problem(seq, mask), { kernel: 'standard' }).row;
    const speedup = std.ms / fast.ms;
    speedups.push({ seq, mask, fastMs: fast.ms, standardMs: std.ms, speedup });
    console.log(
      `${String(seq).padEnd(6)} ${mask.padEnd(7)} ${fmt(fast.ms, 3).padStart(8)} ${fmt(fast.tflops, 1).padStart(8)}  ${fast.boundBy.padEnd(8)} ${fmt(std.ms, 3).padStart(11)} ${fmt(std.tflops, 1).padStart(7)} ${fmt(speedup).padStart(8)}x`,
    );
  }
}

// 2. Two-level against single-level tiling.
console.log(
  "\n2. two-level vs single-level tiling (single level = the two-level plan's sub-block as the only block)",
);
const tilings = [];
for (const mask of ['none', 'causal']) {
  for (const seq of SEQS) {
    const two = run('fast-attention two-level', device, problem(seq, mask)).row;
    const one = run('fast-attention single-level', device, problem(seq, mask), {
      tiling: 'single-level',
    }).row;
    tilings.push({
      seq,
      mask,
      twoLevelMs: two.ms,
      singleLevelMs: one.ms,
      gain: one.ms / two.ms,
      twoBlocks: two.blocks,
      oneBlocks: one.blocks,
    });
    console.log(
      `S=${String(seq).padEnd(6)} ${mask.padEnd(7)} two-level ${two.blocks.padEnd(16)} ${fmt(two.ms, 3).padStart(8)} ms  single-level ${one.blocks.padEnd(14)} ${fmt(one.ms, 3).padStart(8)} ms  gain ${fmt(one.ms / two.ms)}x`,
    );
  }
}

// 3. First-level block size sweep (second level from the planner).
const sweepSeq = quick ? 4096 : 8192;
console.log(`\n3. first-level block sweep, S=${sweepSeq} causal`);
const blocks = [];
for (const blockQ of [64, 128, 256, 512]) {
  for (const blockK of [64, 128, 256]) {
    const { row } = run(`fast-attention block ${blockQ}x${blockK}`, device, problem(sweepSeq, 'causal'), {
      blockQ,
      blockK,
    });
    blocks.push({ blockQ, blockK, blocks: row.blocks, ms: row.ms, handOffs: row.handOffs });
    console.log(`  ${row.blocks.padEnd(16)} ${fmt(row.ms, 3).padStart(8)} ms  hand-offs ${row.handOffs}`);
  }
}

// 4. Memory of the tiling-mask against the full mask.
console.log('\n4. mask memory: tiling-mask (tile labels + diagonal patterns) vs full S x S byte mask');
const masks = [];
for (const seq of SEQS) {
  for (const mask of [{ kind: 'causal' }, { kind: 'window', left: 1024, right: 0 }]) {
    const p = { ...problem(seq, 'none'), mask };
    const { report } = simulateAttention(device, p);
    const m = report.details.mask;
    masks.push({ seq, mask: JSON.stringify(mask), ...m, ratio: m.fullMaskBytes / m.tilingMaskBytes });
    console.log(
      `  S=${String(seq).padEnd(6)} ${JSON.stringify(mask).padEnd(38)} tiling-mask ${String(m.tilingMaskBytes).padStart(8)} B   full ${String(m.fullMaskBytes).padStart(11)} B   ${fmt(m.fullMaskBytes / m.tilingMaskBytes, 0)}x smaller`,
    );
  }
}

// 5. Sensitivity to the cross-core synchronization cost.
console.log(`\n5. sync-cost sweep, S=${sweepSeq} causal (ms)`);
console.log(
  '  sync cycles  two-level(planner)  two-level 512x256  single-level  standard   speedup  two/single gain',
);
const syncs = [];
for (const sync of [0, 250, 500, 1000, 2000, 4000, 8000]) {
  const dev = withOverrides(device, { syncCycles: sync });
  const p = problem(sweepSeq, 'causal');
  const planned = run('fast-attention two-level', dev, p).row;
  const fixed = run('fast-attention two-level 512x256', dev, p, { blockQ: 512, blockK: 256 }).row;
  const single = run('fast-attention single-level', dev, p, { tiling: 'single-level' }).row;
  const std = run('standard', dev, p, { kernel: 'standard' }).row;
  syncs.push({
    syncCycles: sync,
    twoLevelMs: planned.ms,
    twoLevelBlocks: planned.blocks,
    fixed512x256Ms: fixed.ms,
    singleLevelMs: single.ms,
    standardMs: std.ms,
  });
  console.log(
    `  ${String(sync).padStart(11)}  ${fmt(planned.ms, 3).padStart(9)} ${planned.blocks.padEnd(9)} ${fmt(fixed.ms, 3).padStart(17)} ${fmt(single.ms, 3).padStart(13)} ${fmt(std.ms, 3).padStart(9)} ${fmt(std.ms / planned.ms).padStart(8)}x ${fmt(single.ms / planned.ms).padStart(8)}x`,
  );
}

// A trace of two core groups (Perfetto: ui.perfetto.dev, open the JSON).
const traced = simulateAttention(
  device,
  { ...problem(4096, 'causal'), headsQ: 4, headsKV: 4 },
  {
    trace: { cores: 2, maxEvents: 50_000 },
  },
);
mkdirSync(outDir, { recursive: true });
const tracePath = join(outDir, `ascend-trace-${date}.json`);
writeFileSync(tracePath, JSON.stringify(toChromeTrace(traced.report)));

const wallSeconds = (performance.now() - started) / 1000;
const result = {
  note: 'All timings SIMULATED on the cycle-approximate Ascend model of @fastattention/ascend; not hardware measurements.',
  device: `Ascend ${chip} (simulated)`,
  date,
  command: `node packages/ascend/bench/run.mjs --device ${chip}${quick ? ' --quick' : ''}`,
  parameters: {
    aicCores: device.aicCores,
    clockHz: device.clockHz.value,
    hbmBandwidth: device.hbmBandwidth.value,
    l2Bandwidth: device.l2Bandwidth.value,
    l2Bytes: device.l2Bytes.value,
    syncCycles: device.syncCycles.value,
    launchCycles: device.launchCycles.value,
    pipes: Object.fromEntries(Object.entries(device.pipes).map(([k, v]) => [k, v.value])),
  },
  summary: { speedups, tilings, blocks, masks, syncs },
  trace: tracePath,
  simulatorWallSeconds: wallSeconds,
  rows,
};
const outPath = join(outDir, `ascend-${date}.json`);
writeFileSync(outPath, `${JSON.stringify(result, null, 2)}\n`);
console.log(`\nwrote ${outPath} and ${tracePath} (simulator wall time ${fmt(wallSeconds, 1)} s)`);
