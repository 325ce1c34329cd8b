// Decode speed of a ~110M-parameter Llama in f32 on the cpu backend, against the weight-read limit
// of the same run: the machine's read bandwidth (the cpu addon's native stream over 1 GiB, every
// thread, best of 3, just before each round) over the bytes one decode step reads (every weight
// but the embedding table, plus the keys and values it attends to); median of five rounds after a
// warm-up. The checkpoint is written here with random weights (no download) and removed afterwards.
//   node packages/runtime/bench/cpu-decode.mjs [OUT.json]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from '@fastattention/bench';
import { createBackend, loadAddon } from '../../cpu/dist/index.js';
import { loadModel } from '../dist/index.js';
import { writeRandomLlama } from './random-llama.mjs';

const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 16384,
  hidden_size: 768,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_key_value_heads: 12,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  torch_dtype: 'float32',
};
const PROMPT = 128;
const NEW = 64;

const loaded = loadAddon();
if (!loaded.ok) throw new Error(`cpu backend unavailable: ${loaded.reason}`);
const { addon } = loaded;
const dir = await mkdtemp(join(tmpdir(), 'fa-cpu-decode-'));
try {
  const { params, stepWeightBytes } = await writeRandomLlama(dir, CONFIG);
  const backend = await createBackend();
  const isa = String(backend.info.devices[0].details.isa);
  const threads = availableParallelism();
  const model = await loadModel(dir, { backend, dtype: 'f32', scheduler: { maxBatch: 1 } });
  const prompt = Int32Array.from({ length: PROMPT }, (_, i) => (i * 7919 + 13) % CONFIG.vocab_size);
  // the keys and values of the mean context of the decode steps, both read once per step
  const kvBytes = 2 * CONFIG.num_hidden_layers * CONFIG.hidden_size * 4 * (PROMPT + NEW / 2);
  const stepBytes = stepWeightBytes + kvBytes;
  // This VM's read bandwidth moves by up to 2x from minute to minute, so each round is measured
  // against a probe taken just before it: its share is the round's rate over that probe's limit.
  const rounds = [];
  for (let round = 0; round < 6; round++) {
    const bandwidth = await addon.measureReadBandwidth(isa, threads, 2 ** 30, 3);
    let first = 0;
    let count = 0;
    for await (const _ of model.generate({ tokens: prompt, maxTokens: NEW, stopTokens: [] })) {
      if (count++ === 0) first = performance.now();
    }
    const tokensPerS = (count - 1) / ((performance.now() - first) / 1e3);
    if (round > 0)
      rounds.push({ tokensPerS, readGBs: bandwidth / 1e9, share: tokensPerS / (bandwidth / stepBytes) });
  }
  await model.dispose();
  await backend.dispose();
  const tokensPerS = median(rounds.map((r) => r.tokensPerS));
  const share = median(rounds.map((r) => r.share));
  const readGBs = median(rounds.map((r) => r.readGBs));
  const limit = (readGBs * 1e9) / stepBytes;
  const result = {
    params,
    threads,
    isa,
    stepBytes,
    tokensPerS,
    medianReadGBs: readGBs,
    medianShareOfReadLimit: share,
    rounds,
  };
  console.log(
    `${(params / 1e6).toFixed(0)}M params f32 on ${threads} threads (${isa}): decode ${tokensPerS.toFixed(1)} tok/s, ` +
      `read limit ${limit.toFixed(1)} tok/s (${readGBs.toFixed(1)} GB/s over ${(stepBytes / 1e6).toFixed(0)} MB a step): ` +
      `${(share * 100).toFixed(0)}% (median of rounds: ${rounds.map((r) => `${(r.share * 100).toFixed(0)}%`).join(' ')})`,
  );
  if (process.argv[2]) await writeFile(process.argv[2], `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
