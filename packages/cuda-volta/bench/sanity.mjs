// A small run for compute-sanitizer (memcheck, racecheck): prefill with odd sizes, every mask
// kind, padding, every head dim, and split-KV decodes, each checked against the float64 reference.
//   node bench/sanity.mjs [path]   (default: the path createBackend() picks)
import { exactAttention, f16ToF32, f32ToF16, validateAttentionInput } from '@fastattention/core';
import { createBackend } from '../dist/index.js';

const path = process.argv[2];
const backend = await createBackend(path ? { path } : {});
const gen = (n) => Uint16Array.from({ length: n }, () => f32ToF16(Math.random() * 2 - 1));
const cases = [
  {
    batch: 2,
    seqQ: 37,
    seqK: 70,
    headsQ: 4,
    headsKV: 2,
    headDim: 64,
    mask: { kind: 'causal' },
    seqLensK: Int32Array.from([70, 0]),
  },
  {
    batch: 1,
    seqQ: 130,
    seqK: 130,
    headsQ: 2,
    headsKV: 1,
    headDim: 128,
    mask: { kind: 'window', left: 20, right: 3 },
  },
  { batch: 1, seqQ: 1, seqK: 700, headsQ: 8, headsKV: 2, headDim: 128, mask: { kind: 'none' } },
  { batch: 1, seqQ: 20, seqK: 50, headsQ: 1, headsKV: 1, headDim: 256, mask: { kind: 'causal' } },
  { batch: 1, seqQ: 140, seqK: 140, headsQ: 2, headsKV: 2, headDim: 80, mask: { kind: 'none' } },
  {
    batch: 2,
    seqQ: 1,
    seqK: 900,
    headsQ: 4,
    headsKV: 1,
    headDim: 96,
    mask: { kind: 'window', left: 300, right: 0 },
  },
  // Several k-tiles through the hopper ring (three stages at hd 64-96) and the KSPLIT decode tiles.
  { batch: 1, seqQ: 200, seqK: 600, headsQ: 2, headsKV: 1, headDim: 64, mask: { kind: 'causal' } },
  { batch: 1, seqQ: 1, seqK: 1000, headsQ: 8, headsKV: 2, headDim: 64, mask: { kind: 'none' } },
  { batch: 1, seqQ: 2, seqK: 300, headsQ: 4, headsKV: 1, headDim: 256, mask: { kind: 'causal' } },
];
let worst = 0;
for (const c of cases) {
  const input = {
    dtype: 'f16',
    ...c,
    q: gen(c.batch * c.seqQ * c.headsQ * c.headDim),
    k: gen(c.batch * c.seqK * c.headsKV * c.headDim),
    v: gen(c.batch * c.seqK * c.headsKV * c.headDim),
  };
  const { out } = await backend.attention(input);
  const ref = exactAttention(validateAttentionInput(input));
  let num = 0;
  let den = 0;
  for (let i = 0; i < out.length; i++) {
    num += (f16ToF32(out[i]) - ref.out[i]) ** 2;
    den += ref.out[i] ** 2;
  }
  worst = Math.max(worst, Math.sqrt(num / den));
}
console.log(
  `sanity (${backend.path.name}): ${cases.length} cases, worst relative error ${worst.toExponential(2)}`,
);
await backend.dispose();
if (!(worst < 2e-3)) process.exit(1);
