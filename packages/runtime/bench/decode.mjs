// The runtime's load and single-sequence generation speed on the GPU machine: a Hugging Face
// directory (tools/anchors/llama_7b.py writes a Llama-2-7B-shaped one with random fp16 weights)
// loaded on cuda-volta in f16, then a greedy generation from random prompt tokens: time to the
// first token (prefill) and decode tokens per second (each decode step a replayed step graph).
//   node packages/runtime/bench/decode.mjs DIR PROMPT_LEN NEW_TOKENS [OUT.json]
import { writeFileSync } from 'node:fs';
import { createBackend } from '../../cuda-volta/dist/index.js';
import { loadModel } from '../dist/index.js';

const [dir, promptLen, newTokens, out] = [
  process.argv[2],
  Number(process.argv[3]),
  Number(process.argv[4]),
  process.argv[5],
];
const backend = await createBackend();
let t0 = performance.now();
let loaded = 0;
const model = await loadModel(dir, {
  backend,
  dtype: 'f16',
  onProgress: (p) => {
    loaded = p.totalBytes;
  },
});
const loadS = (performance.now() - t0) / 1e3;
console.log(
  `loaded ${(loaded / 1e9).toFixed(2)} GB in ${loadS.toFixed(1)} s (${(loaded / 1e9 / loadS).toFixed(2)} GB/s)`,
);
const vocab = model.info.config.vocabSize;
const prompt = Int32Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % vocab);
const result = { loadS, loadGBs: loaded / 1e9 / loadS, promptTokens: promptLen, runs: [] };
for (let round = 0; round < 3; round++) {
  t0 = performance.now();
  let first = 0;
  let count = 0;
  const generation = model.generate({ tokens: prompt, maxTokens: newTokens, stopTokens: [] });
  for await (const _ of generation) {
    if (count++ === 0) first = performance.now();
  }
  const end = performance.now();
  const run = {
    firstTokenMs: first - t0,
    decodeTokensPerS: (count - 1) / ((end - first) / 1e3),
    tokens: count,
  };
  result.runs.push(run);
  console.log(
    `round ${round}: first token ${run.firstTokenMs.toFixed(1)} ms, decode ${run.decodeTokensPerS.toFixed(1)} tok/s over ${count} tokens`,
  );
}
await model.dispose();
await backend.dispose();
if (out) writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
