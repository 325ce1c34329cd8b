// The same model with 'flash' and with 'standard' attention (the score matrix materialized: the
// FlashAttention papers' baseline) as the context grows: time to first token of an N-token prompt
// (prefilled in chunks of 2048) and decode tok/s after it, on one backend. The checkpoint is a
// small random-weight Llama written here (no download): its attention is a large share of the
// work, as in a long-context model. Median of three rounds after a warm-up.
//   node packages/runtime/bench/attention-ratio.mjs [OUT.json] [--contexts 1024,2048,4096,8192]
//     [--backend cpu|cuda]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from '@fastattention/bench';
import { loadModel } from '../dist/index.js';
import { writeRandomLlama } from './random-llama.mjs';

const flag = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const out = process.argv[2]?.startsWith('--') ? undefined : process.argv[2];
const contexts = flag('--contexts', '1024,2048,4096,8192').split(',').map(Number);
const backendName = flag('--backend', 'cpu');
const NEW = 16;
const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 4096,
  hidden_size: 256,
  intermediate_size: 512,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  max_position_embeddings: Math.max(...contexts) + NEW + 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  torch_dtype: 'float32',
};

const backend =
  backendName === 'cuda'
    ? await (await import('../../cuda-volta/dist/index.js')).createBackend()
    : await (await import('../../cpu/dist/index.js')).createBackend();
const dir = await mkdtemp(join(tmpdir(), 'fa-attention-ratio-'));
const rows = [];
try {
  const { params } = await writeRandomLlama(dir, CONFIG);
  console.log(`${(params / 1e6).toFixed(1)}M params, ${CONFIG.num_hidden_layers} layers, ${backend.name}`);
  for (const context of contexts) {
    const row = { context };
    for (const attention of ['flash', 'standard']) {
      const model = await loadModel(dir, {
        backend,
        ...(backendName === 'cuda' && { dtype: 'f16' }),
        attention,
        scheduler: { maxBatch: 1, cacheTokens: context + NEW + 64 },
      });
      const rounds = [];
      for (let round = 0; round < 4; round++) {
        const tokens = Int32Array.from({ length: context }, (_, i) => (i * 7919 + round) % CONFIG.vocab_size);
        const start = performance.now();
        const times = [];
        for await (const _ of model.generate({ tokens, maxTokens: NEW, stopTokens: [] }))
          times.push(performance.now());
        if (round > 0)
          rounds.push({
            prefillTokensPerS: context / ((times[0] - start) / 1e3),
            decodeTokensPerS: (times.length - 1) / ((times.at(-1) - times[0]) / 1e3),
          });
      }
      await model.dispose();
      row[attention] = {
        prefillTokensPerS: median(rounds.map((r) => r.prefillTokensPerS)),
        decodeTokensPerS: median(rounds.map((r) => r.decodeTokensPerS)),
      };
    }
    row.prefillRatio = row.flash.prefillTokensPerS / row.standard.prefillTokensPerS;
    row.decodeRatio = row.flash.decodeTokensPerS / row.standard.decodeTokensPerS;
    rows.push(row);
    const f = (x) => x.toFixed(0);
    console.log(
      `context ${context}: prefill ${f(row.flash.prefillTokensPerS)} vs ${f(row.standard.prefillTokensPerS)} tok/s (${row.prefillRatio.toFixed(2)}x), ` +
        `decode ${f(row.flash.decodeTokensPerS)} vs ${f(row.standard.decodeTokensPerS)} tok/s (${row.decodeRatio.toFixed(2)}x)`,
    );
  }
  if (out)
    await writeFile(out, `${JSON.stringify({ backend: backend.name, config: CONFIG, rows }, null, 2)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
  await backend.dispose();
}
