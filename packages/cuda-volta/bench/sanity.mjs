// A small run for compute-sanitizer (memcheck, racecheck): prefill with odd sizes, every mask
// kind, padding, and a split-KV decode, each checked against the float64 reference.
import { exactAttention, f16ToF32, f32ToF16, validateAttentionInput } from '@fastattention/core';
import { createBackend } from '../dist/index.js';

const backend = await createBackend();
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
console.log(`sanity: ${cases.length} cases, worst relative error ${worst.toExponential(2)}`);
await backend.dispose();
if (!(worst < 2e-3)) process.exit(1);
