// The cpu executor's linear op (GEMM) at the Llama-7B layer shapes, against the machine's f32 FMA
// peak measured by the addon in the same run, written to <repo>/bench/results/cpu-gemm-<date>.json.
//
//   node bench/gemm.mjs            M = 1, 16, 64, 4096; weights f32, f16, bf16 (about 2 minutes)
//   node bench/gemm.mjs --quick    M = 1 and 4096, one shape
//
// x and out are f32 (the cpu backend's model dtype); the weight dtype varies, accumulation is f32.
// Each case is timed through the public API as a user runs it: executor.run, then awaiting the
// stream (median of the repetitions after one warm-up). Inputs are uniform in [-1, 1), never zero.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '@fastattention/bench';
import { createBackend, loadAddon } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const threads = availableParallelism();

/** Uniform [-1, 1) values of a dtype, from a fast LCG (JS Math.random is too slow at 10^8). */
function fill(dtype, n, seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i++) f32[i] = next();
  if (dtype === 'f32') return f32;
  const bits = new Uint32Array(f32.buffer);
  const out = new Uint16Array(n);
  if (dtype === 'bf16') {
    for (let i = 0; i < n; i++) out[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
  } else {
    // |x| < 1: normal f16 or a tiny value rounded toward zero (never Inf/NaN here).
    for (let i = 0; i < n; i++) {
      const b = bits[i];
      const e = ((b >>> 23) & 0xff) - 127 + 15;
      out[i] = e <= 0 ? (b >>> 16) & 0x8000 : ((b >>> 16) & 0x8000) | (e << 10) | ((b >>> 13) & 0x3ff);
    }
  }
  return out;
}

const addon = loadAddon();
if (!addon.ok) throw new Error(addon.reason);
const backend = await createBackend({ threads });
const isa = backend.info.devices[0].details.isa;
const peak = await addon.addon.measureFmaPeak(isa, threads, 0.5);
console.log(`${threads} threads, ${isa}: f32 FMA peak ${(peak / 1e9).toFixed(1)} GFLOP/s (same run)`);

const executor = backend.createExecutor();
const shapes = quick
  ? [{ name: 'q/k/v/o', n: 4096, k: 4096 }]
  : [
      { name: 'q/k/v/o', n: 4096, k: 4096 },
      { name: 'gate/up', n: 11008, k: 4096 },
      { name: 'down', n: 4096, k: 11008 },
    ];
const rowsList = quick ? [1, 4096] : [1, 16, 64, 4096];
const weightDtypes = quick ? ['bf16'] : ['f32', 'f16', 'bf16'];
const rows = [];
for (const { name, n, k } of shapes) {
  for (const wd of weightDtypes) {
    const weight = executor.empty(wd, [n, k]);
    await executor.write(weight, fill(wd, n * k, n + k));
    for (const m of rowsList) {
      const x = executor.empty('f32', [m, k]);
      await executor.write(x, fill('f32', m * k, m));
      const out = executor.empty('f32', [m, n]);
      const flops = 2 * m * n * k;
      const reps = flops > 1e11 ? 3 : flops > 1e9 ? 10 : 50;
      const times = [];
      for (let r = 0; r <= reps; r++) {
        const t0 = performance.now();
        executor.run({ op: 'linear', x, weight, out });
        await executor.stream.synchronize();
        if (r > 0) times.push(performance.now() - t0);
      }
      const ms = median(times);
      const gflops = flops / (ms / 1e3) / 1e9;
      const weightGBs = (n * k * (wd === 'f32' ? 4 : 2)) / (ms / 1e3) / 1e9;
      const row = {
        shape: name,
        m,
        n,
        k,
        weight: wd,
        medianMs: Number(ms.toFixed(3)),
        gflops: Number(gflops.toFixed(1)),
        fractionOfPeak: Number((gflops / (peak / 1e9)).toFixed(3)),
        weightGBs: Number(weightGBs.toFixed(1)),
        reps,
      };
      rows.push(row);
      console.log(
        `${name.padEnd(8)} M=${String(m).padStart(4)} N=${n} K=${k} ${wd.padEnd(4)}: ${ms.toFixed(2).padStart(8)} ms  ` +
          `${gflops.toFixed(1).padStart(6)} GFLOP/s  ${(row.fractionOfPeak * 100).toFixed(0).padStart(3)}% of peak  ` +
          `weights ${weightGBs.toFixed(1)} GB/s`,
      );
      x.dispose();
      out.dispose();
    }
    weight.dispose();
  }
}
await backend.dispose();

const dir = join(here, '..', '..', '..', 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `cpu-gemm-${new Date().toISOString().slice(0, 10)}${quick ? '-quick' : ''}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ machine: { threads, isa, loadavg: loadavg(), fmaPeakFlops: peak }, rows }, null, 2)}\n`,
);
console.log(`wrote ${file}`);
