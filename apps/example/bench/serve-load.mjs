// `fastattn serve` under load: time to first token and output tok/s with C concurrent streaming
// clients over HTTP, against the same requests given to the runtime directly (model.generate), on
// one model in one process. Prompts are random token ids (no tokenizer needed); every request
// generates exactly --max-tokens tokens (ignore_eos), greedy.
//   node apps/example/bench/serve-load.mjs MODEL_DIR OUT.json [--backend cuda|cpu] [--clients 1,16,64]
//     [--requests 2] [--prompt-tokens 512] [--max-tokens 128] [--dtype f16]
// --requests: requests per client, one after another. The HTTP clients run in a child process.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { resolveBackend } from '@fastattention/core';
import { loadModel } from '@fastattention/runtime';
import { discoverBackends } from '../dist/backends.js';
import { arrivalTimes } from '../dist/commands/arrivals.js';
import { createServer } from '../dist/server/app.js';
import { promptSource, runLoad } from './load-loop.mjs';

const run = promisify(execFile);
const [dir, out] = process.argv.slice(2, 4);
const flag = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const clients = flag('--clients', '1,16,64').split(',').map(Number);
const perClient = Number(flag('--requests', 2));
const promptTokens = Number(flag('--prompt-tokens', 512));
const maxTokens = Number(flag('--max-tokens', 128));
await discoverBackends();
const backend = await resolveBackend({ prefer: [flag('--backend', 'cuda')], only: true });
const model = await loadModel(dir, {
  backend,
  ...(flag('--dtype') && { dtype: flag('--dtype') }),
  scheduler: { maxBatch: Math.max(...clients) },
});
const vocab = model.info.config.vocabSize;
let seed = 12345;
const prompt = promptSource(promptTokens, vocab, seed);
const load = (c, one) => runLoad(c, perClient, prompt, one);

/** One request given to the runtime directly: [time to first token, tokens]. */
async function direct(ids) {
  const times = await arrivalTimes(model, Int32Array.from(ids), maxTokens);
  return [times[0], times.length];
}

const server = createServer({ model, modelName: 'bench', maxRequests: 4096 });
const base = await server.app.listen({ host: '127.0.0.1', port: 0 });

/**
 * The HTTP clients in a child process (bench/serve-load-client.mjs), as real clients would be:
 * in this process they would share the event loop with the server and the scheduler.
 */
async function httpLoad(c) {
  seed = (seed * 7919 + 1) >>> 0; // each client process draws other prompts
  const args = [base, c, perClient, promptTokens, maxTokens, vocab, seed].map(String);
  const client = fileURLToPath(new URL('serve-load-client.mjs', import.meta.url));
  const { stdout } = await run(process.execPath, [client, ...args]);
  return JSON.parse(stdout);
}

const results = { model: dir, backend: backend.name, promptTokens, maxTokens, perClient, cases: [] };
await load(1, direct); // warm-up: graphs recorded, kernels loaded
for (const c of clients) {
  const d = await load(c, direct);
  const h = await httpLoad(c);
  const overheadMsPerToken = (c / h.outputTokensPerS - c / d.outputTokensPerS) * 1e3;
  const row = { clients: c, direct: d, http: h, httpOverheadMsPerToken: overheadMsPerToken };
  results.cases.push(row);
  console.log(
    `${c} clients: direct ${d.outputTokensPerS.toFixed(1)} tok/s (TTFT p50 ${d.ttftMsP50.toFixed(1)} ms), ` +
      `HTTP ${h.outputTokensPerS.toFixed(1)} tok/s (TTFT p50 ${h.ttftMsP50.toFixed(1)} ms, p99 ${h.ttftMsP99.toFixed(1)}); ` +
      `HTTP costs ${overheadMsPerToken.toFixed(3)} ms per token per stream`,
  );
}
await server.shutdown(0);
await model.dispose();
await backend.dispose();
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
