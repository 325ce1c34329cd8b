// Checks forced configurations and the default plan against the float64 reference on fresh random
// inputs, output and LSE poisoned first. Exit 1 on any error over 2e-3.
//   FASTATTN_BENCH_ALT_DECODE=hd64_16x64w4s3,... (f16 decode: GQA packed, split-KV with the fused
//   combine) and FASTATTN_BENCH_ALT_PREFILL=hd64_128x128w12s3,... (prefill: odd sizes, causal,
//   padding, a window), each at its suffix's head dim: node bench/alt-check.mjs
import { exactAttention, f16ToF32, f32ToF16, validateAttentionInput } from '@fastattention/core';
import { createBackend } from '../dist/index.js';

const backend = await createBackend();
const list = (name) => (process.env[name] ?? '').split(',').filter(Boolean);
const gen = (n) => Uint16Array.from({ length: n }, () => f32ToF16(Math.random() * 2 - 1));
const decodeCases = [
  { batch: 1, seqQ: 1, seqK: 32768, headsQ: 32, headsKV: 8 },
  { batch: 2, seqQ: 1, seqK: 1000, headsQ: 32, headsKV: 8, seqLensK: Int32Array.from([1000, 37]) },
  { batch: 3, seqQ: 2, seqK: 4099, headsQ: 32, headsKV: 8, mask: { kind: 'causal' } },
  { batch: 1, seqQ: 1, seqK: 70000, headsQ: 16, headsKV: 2 },
];
const prefillCases = [
  { batch: 2, seqQ: 333, seqK: 333, headsQ: 4, headsKV: 2, mask: { kind: 'causal' } },
  { batch: 2, seqQ: 200, seqK: 517, headsQ: 3, headsKV: 3, seqLensK: Int32Array.from([517, 90]) },
  { batch: 1, seqQ: 1000, seqK: 1000, headsQ: 2, headsKV: 1, mask: { kind: 'window', left: 77, right: 5 } },
];
const headDimOf = (config) => Number(/^hd(\d+)_/.exec(config)?.[1]);
const groups = [{ headDim: 128, cases: decodeCases, configs: [undefined] }];
for (const config of list('FASTATTN_BENCH_ALT_DECODE'))
  groups.push({ headDim: headDimOf(config), cases: decodeCases, configs: [undefined, config] });
for (const config of list('FASTATTN_BENCH_ALT_PREFILL'))
  groups.push({ headDim: headDimOf(config), cases: prefillCases, configs: [undefined, config] });
let worst = 0;
for (const { headDim, cases, configs } of groups)
  for (const c of cases) {
    const host = {
      dtype: 'f16',
      headDim,
      mask: { kind: 'none' },
      ...c,
      q: gen(c.batch * c.seqQ * c.headsQ * headDim),
      k: gen(c.batch * c.seqK * c.headsKV * headDim),
      v: gen(c.batch * c.seqK * c.headsKV * headDim),
    };
    const ref = exactAttention(validateAttentionInput(host));
    const qs = [c.batch, c.seqQ, c.headsQ, headDim];
    const ks = [c.batch, c.seqK, c.headsKV, headDim];
    const dev = {
      ...host,
      q: await backend.upload('f16', qs, host.q),
      k: await backend.upload('f16', ks, host.k),
      v: await backend.upload('f16', ks, host.v),
      seqLensK: c.seqLensK,
    };
    for (const config of configs) {
      dev.out = await backend.upload('f16', qs, new Uint16Array(host.q.length).fill(0x7e00)); // NaN poison
      dev.lse = await backend.upload(
        'f32',
        [c.batch, c.headsQ, c.seqQ],
        new Float32Array(c.batch * c.headsQ * c.seqQ).fill(Number.NaN),
      );
      await backend.timeAttention(dev, { warmup: 1, iters: 2, ...(config ? { config } : {}) });
      const out = await dev.out.download();
      const lse = await dev.lse.download();
      let num = 0;
      let den = 0;
      for (let i = 0; i < out.length; i++) {
        num += (f16ToF32(out[i]) - ref.out[i]) ** 2;
        den += ref.out[i] ** 2;
      }
      let lerr = 0;
      for (let i = 0; i < lse.length; i++)
        lerr = Math.max(lerr, Math.abs(lse[i] - ref.lse[i]) / Math.max(1, Math.abs(ref.lse[i])));
      const err = Math.max(
        Math.sqrt(num / den),
        Number.isNaN(num) ? 1 : 0,
        Number.isNaN(lerr) ? 1 : lerr > 1e-4 ? 1 : 0,
      );
      const plan = backend.plan(dev, config);
      console.log(
        `alt-check hd${headDim} B=${c.batch} sq=${c.seqQ} sk=${c.seqK} ${config ?? 'default'} split=${plan.splitKV}: rel ${Math.sqrt(num / den).toExponential(2)} lse ${lerr.toExponential(2)}`,
      );
      worst = Math.max(worst, err);
      dev.out.dispose();
      dev.lse.dispose();
    }
    for (const t of [dev.q, dev.k, dev.v]) t.dispose();
  }
console.log(`alt-check worst ${worst.toExponential(2)}`);
await backend.dispose();
if (!(worst < 2e-3)) process.exit(1);
