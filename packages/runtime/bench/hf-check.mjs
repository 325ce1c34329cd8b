// The runtime against transformers on the GPU machine: loads the random-weight models that
// tools/anchors/hf_models.py saved (as transformers writes them) on cuda-volta (f16, bf16) and cpu
// (f32), and compares logits with transformers' float32 logits, and 32 greedy tokens (each chosen
// by argmax over a full forward: slow, exact; and through generate, over the KV cache) with
// transformers' greedy continuation; then the same through the forced older CUDA paths and with
// attention: 'standard' (f16), and
// six requests at once through the scheduler against each one alone.
//   python3 tools/anchors/hf_models.py DIR && node packages/runtime/bench/hf-check.mjs DIR [OUT.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBackend as createCpu } from '../../cpu/dist/index.js';
import { loadModel } from '../dist/index.js';

const dir = process.argv[2];
const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
const tokens = Int32Array.from(index.tokens);
const backends = [];
try {
  const { createBackend } = await import('../../cuda-volta/dist/index.js');
  const cuda = await createBackend();
  backends.push(['cuda', cuda, ['f16', 'bf16']]);
  // the materialized baseline: the same model with attention: 'standard' (cuBLAS, scores in memory)
  backends.push(['cuda-standard', cuda, ['f16'], { quick: true, attention: 'standard' }]);
  for (const path of ['ampere', 'turing', 'volta']) {
    backends.push([`cuda-${path}`, await createBackend({ path }), ['f16'], { quick: true }]);
  }
} catch (error) {
  console.log(`cuda-volta unavailable: ${error.message}`);
}
backends.push(['cpu', await createCpu(), ['f32']]);

const argmax = (row) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);
const rows = [];
for (const [name, path] of Object.entries(index.variants)) {
  const want = JSON.parse(readFileSync(join(path, 'logits.json'), 'utf8'));
  const vocab = want.shape[1];
  for (const [backendName, backend, dtypes, { quick = false, attention = 'flash' } = {}] of backends) {
    for (const dtype of dtypes) {
      const model = await loadModel(path, { backend, dtype, attention });
      const logits = await model.logits(tokens);
      let num = 0;
      let den = 0;
      let maxAbs = 0;
      for (let i = 0; i < want.logits.length; i++) {
        const d = logits[i] - want.logits[i];
        num += d * d;
        den += want.logits[i] ** 2;
        maxAbs = Math.max(maxAbs, Math.abs(d));
      }
      // Greedy continuation, one full forward per token.
      const seq = Array.from(tokens);
      for (let step = 0; step < (quick ? 0 : want.greedy.length); step++) {
        const l = await model.logits(Int32Array.from(seq));
        seq.push(argmax(l.subarray((seq.length - 1) * vocab, seq.length * vocab)));
      }
      const greedy = seq.slice(tokens.length);
      const diverge = greedy.findIndex((t, i) => t !== want.greedy[i]);
      // The same through generate: a prefill, then decode steps over the cache (a step graph).
      const generated = [];
      for await (const chunk of model.generate({ tokens, maxTokens: want.greedy.length, stopTokens: [] })) {
        generated.push(chunk.token);
      }
      const generateDiverge = generated.findIndex((t, i) => t !== want.greedy[i]);
      // Six prompts (prefixes of the tokens) at once through the scheduler, against each alone.
      const prompts = [57, 50, 43, 36, 29, 22].map((n) => tokens.subarray(0, n));
      const run = (p) =>
        model.generate({ tokens: p, maxTokens: 16, stopTokens: [] }).result.then((r) => Array.from(r.tokens));
      const alone = [];
      for (const p of prompts) alone.push(await run(p));
      const together = await Promise.all(prompts.map(run));
      const batchDivergence = together.map((t, i) => {
        const at = t.findIndex((x, j) => x !== alone[i][j]);
        return at < 0 ? null : at;
      });
      const row = {
        variant: name,
        backend: backendName,
        dtype,
        relativeL2: Math.sqrt(num / den),
        maxAbs,
        greedyIdentical: quick ? null : diverge < 0,
        firstDivergence: quick || diverge < 0 ? null : diverge,
        generateIdentical: generateDiverge < 0 && generated.length === want.greedy.length,
        generateFirstDivergence: generateDiverge < 0 ? null : generateDiverge,
        batchedFirstDivergence: batchDivergence,
      };
      rows.push(row);
      console.log(
        `${name} on ${backendName} ${dtype}: logits rel L2 ${row.relativeL2.toExponential(2)}, max abs ${maxAbs.toExponential(2)}; ` +
          `greedy 32 ${quick ? 'skipped' : diverge < 0 ? 'identical' : `diverge at ${diverge}`}; ` +
          `generate ${row.generateIdentical ? 'identical' : `diverges at ${generateDiverge}`}; ` +
          `6 at once vs alone: ${JSON.stringify(batchDivergence)}`,
      );
      await model.dispose();
    }
  }
}
for (const backend of new Set(backends.map(([, b]) => b))) await backend.dispose();
if (process.argv[3])
  writeFileSync(process.argv[3], `${JSON.stringify({ transformers: index.transformers, rows }, null, 2)}\n`);
