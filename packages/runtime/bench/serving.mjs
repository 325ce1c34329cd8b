// The runtime's serving speed: a model directory loaded once, then cases run through the public
// `model.generate` (every case goes through the batch scheduler). Prompts are random tokens, a
// fresh prompt per run, so no case is helped by the prefix cache unless it asks for it.
//   node packages/runtime/bench/serving.mjs DIR OUT.json CASES [--backend cuda|cpu] [--cache-tokens N]
//     [--prefill-chunk N] [--block-size N] [--attention flash|standard] [--split-append]
// CASES (comma-separated):
//   decode:B:CTX      B concurrent requests with CTX-token prompts: decode tok/s over 64 steps in
//                     which all B are decoding (median of 3 rounds; the first requests decode while
//                     the later ones are still prefilled in chunks, so they get that many more tokens)
//   prefill:N         one N-token prompt, 1 new token: prompt tok/s from time to first token (median of 3)
//   prefix:N          one N-token prompt twice: time to first token without and with the prefix cache
//   mixed:R           R requests at once, prompts 64-2048 tokens, 32-256 new: total output tok/s,
//                     time to first token and time per output token (p50/p99)
//   profile:B:CTX     where a decode step's time goes: B requests with CTX-token prompts decode a few
//                     tokens, then the last recorded step graph is replayed alone (ms per replay),
//                     in the scheduler's write/replay/read loop, and each group of its ops (kind
//                     and shape) as a graph of its own (GPU ms per step)
import { writeFileSync } from 'node:fs';
import { median } from '@fastattention/bench';
import { ropeAppendOp } from '@fastattention/core';
import { loadModel } from '../dist/index.js';

const [dir, out, casesArg] = process.argv.slice(2, 5);
const flag = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const backendName = flag('--backend', 'cuda');
const backend =
  backendName === 'cuda'
    ? await (await import('../../cuda-volta/dist/index.js')).createBackend()
    : await (await import('../../cpu/dist/index.js')).createBackend();
// Every step graph the runtime records, with its ops (for profile cases).
const recorded = [];
let profiling = false;
// --split-append (or FASTATTN_BENCH_SPLIT_APPEND=1): rope's fused KV append runs as rope, then
// kvAppend (an A/B of the fusion).
const split =
  process.argv.includes('--split-append') || process.env.FASTATTN_BENCH_SPLIT_APPEND === '1'
    ? (op) => (op.op === 'rope' && op.append ? [{ ...op, append: undefined }, ropeAppendOp(op)] : [op])
    : (op) => [op];
const createExecutor = backend.createExecutor.bind(backend);
backend.createExecutor = () => {
  const ex = createExecutor();
  const record = ex.record.bind(ex);
  const run = ex.run.bind(ex);
  ex.run = (op, stream) => {
    for (const o of split(op)) run(o, stream);
  };
  ex.record = (build) => {
    const ops = [];
    const graph = record((r) =>
      build({
        run: (op) => {
          for (const o of split(op)) {
            ops.push(o);
            r.run(o);
          }
        },
      }),
    );
    if (!profiling) recorded.push({ ex, ops, graph });
    return graph;
  };
  return ex;
};
let t0 = performance.now();
const prefillChunk = Number(flag('--prefill-chunk', 2048));
const attention = flag('--attention', 'flash');
const model = await loadModel(dir, {
  backend,
  attention,
  ...(backendName === 'cuda' && { dtype: 'f16' }),
  scheduler: {
    maxBatch: 64,
    cacheTokens: Number(flag('--cache-tokens', 150000)),
    prefillChunk,
    blockSize: Number(flag('--block-size', 64)),
  },
});
const loadS = (performance.now() - t0) / 1e3;
const vocab = model.info.config.vocabSize;
let state = 12345;
const random = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return state / 2 ** 32;
};
const prompt = (n) => Int32Array.from({ length: n }, () => Math.floor(random() * vocab));
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/** Runs the requests at once; each chunk's arrival time per request. */
async function serve(requests) {
  const start = performance.now();
  const times = await Promise.all(
    requests.map(async (options) => {
      const arrivals = [];
      for await (const _ of model.generate({ stopTokens: [], ...options })) arrivals.push(performance.now());
      return arrivals;
    }),
  );
  return { start, times };
}

async function decodeCase(batch, ctx) {
  const rates = [];
  const prefillSteps = Math.ceil((batch * ctx) / prefillChunk);
  for (let round = 0; round < 3; round++) {
    const { times } = await serve(
      Array.from({ length: batch }, () => ({ tokens: prompt(ctx), maxTokens: 64 + prefillSteps + 4 })),
    );
    // the window in which every request is decoding: from the last first token to the first last one
    const from = Math.max(...times.map((t) => t[0]));
    const to = Math.min(...times.map((t) => t.at(-1)));
    const tokens = times.reduce((a, t) => a + t.filter((x) => x > from && x <= to).length, 0);
    rates.push(tokens / ((to - from) / 1e3));
  }
  return { tokensPerS: median(rates), rounds: rates };
}

async function prefillCase(n) {
  const rates = [];
  for (let round = 0; round < 3; round++) {
    const { start, times } = await serve([{ tokens: prompt(n), maxTokens: 1 }]);
    rates.push(n / ((times[0][0] - start) / 1e3));
  }
  return { tokensPerS: median(rates), rounds: rates };
}

async function prefixCase(n) {
  const p = prompt(n);
  const before = model.stats()?.prefixHitTokens ?? 0;
  const first = await serve([{ tokens: p, maxTokens: 1 }]);
  const second = await serve([{ tokens: p, maxTokens: 1 }]);
  const ttft = (r) => r.times[0][0] - r.start;
  return {
    firstMs: ttft(first),
    repeatMs: ttft(second),
    saving: 1 - ttft(second) / ttft(first),
    hitTokens: model.stats().prefixHitTokens - before,
  };
}

async function mixedCase(count) {
  const requests = Array.from({ length: count }, () => ({
    tokens: prompt(64 + Math.floor(random() * 1985)),
    maxTokens: 32 + Math.floor(random() * 225),
  }));
  const { start, times } = await serve(requests);
  const end = Math.max(...times.map((t) => t.at(-1)));
  const outputTokens = times.reduce((a, t) => a + t.length, 0);
  const ttft = times.map((t) => t[0] - start);
  const tpot = times.filter((t) => t.length > 1).map((t) => (t.at(-1) - t[0]) / (t.length - 1));
  return {
    outputTokensPerS: outputTokens / ((end - start) / 1e3),
    outputTokens,
    promptTokens: requests.reduce((a, r) => a + r.tokens.length, 0),
    ttftMs: { p50: quantile(ttft, 0.5), p99: quantile(ttft, 0.99) },
    tpotMs: { p50: quantile(tpot, 0.5), p99: quantile(tpot, 0.99) },
  };
}

async function profileCase(batch, ctx) {
  await serve(Array.from({ length: batch }, () => ({ tokens: prompt(ctx), maxTokens: 8 })));
  // the last step graph recorded for a batch of `batch` rows
  const rowsOf = (r) => r.ops.find((op) => op.op === 'attention').q.shape[0];
  const { ex, ops, graph } = recorded.filter((r) => rowsOf(r) >= batch).at(-1);
  profiling = true;
  const attention0 = ops.find((op) => op.op === 'attention');
  // every row attends to CTX keys (the rows' block tables are still those of the requests served)
  const lens = new Int32Array(attention0.seqLensK.length).fill(ctx);
  await ex.write(attention0.seqLensK, lens);
  const timed = async (n, enqueue) => {
    await ex.stream.synchronize();
    const t = performance.now();
    for (let i = 0; i < n; i++) enqueue();
    await ex.stream.synchronize();
    return (performance.now() - t) / n;
  };
  await timed(3, () => graph.replay());
  const rounds = [];
  for (let r = 0; r < 3; r++) rounds.push(await timed(30, () => graph.replay()));
  const replayMs = median(rounds);
  // The scheduler's loop around the same replay: the step's scalars written before it, its tokens
  // and log-probabilities read after it; pipelined (await the previous step's reads) or not.
  const sample = ops.find((op) => op.op === 'sample');
  const loop = async (n, { write, read, pipelined }) => {
    await ex.stream.synchronize();
    const t = performance.now();
    let previous;
    for (let i = 0; i < n; i++) {
      if (write) ex.write(attention0.seqLensK, lens);
      graph.replay();
      const reads = read ? Promise.all([ex.read(sample.tokens), ex.read(sample.logprobs)]) : undefined;
      if (pipelined) await previous;
      else await reads;
      previous = reads;
    }
    await previous;
    await ex.stream.synchronize();
    return (performance.now() - t) / n;
  };
  const loops = {
    write: await loop(30, { write: true }),
    writeRead: await loop(30, { write: true, read: true, pipelined: true }),
    writeReadWait: await loop(30, { write: true, read: true, pipelined: false }),
  };
  // GPU time per op group (kind and shape): a graph of the group's instances in step order (each
  // layer's own weights, so no instance finds the previous one's in L2), replayed back to back.
  const groups = new Map();
  for (const op of ops) {
    const main = op.x ?? op.q ?? op.gate ?? op.a ?? op.k ?? op.logits ?? op.src ?? op.table;
    const key = `${op.op} ${(op.weight ?? main).shape.join('x')}${op.add ? ' +add' : ''}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(op);
  }
  const opsMs = {};
  for (const [key, list] of groups) {
    const g = ex.record((r) => {
      for (const op of list) r.run(op);
    });
    await timed(2, () => g.replay());
    opsMs[key] = { count: list.length, ms: await timed(10, () => g.replay()) };
    g.dispose();
  }
  const sumOpsMs = Object.values(opsMs).reduce((a, b) => a + b.ms, 0);
  profiling = false;
  const attention = ops.find((op) => op.op === 'attention');
  return {
    attention: {
      mask: attention.mask?.kind ?? 'none',
      q: attention.q.shape,
      k: attention.k.shape,
      blockTable: attention.paged?.blockTable.shape,
    },
    ops: ops.length,
    replayMs,
    loops,
    opsMs,
    sumOpsMs,
  };
}

const results = { dir, backend: backend.name, dtype: model.info.dtype, attention, loadS, cases: [] };
console.log(`loaded in ${loadS.toFixed(1)} s on ${backend.name}, attention '${attention}'`);
// one short request first: records the decode graph and warms the kernels
await serve([{ tokens: prompt(16), maxTokens: 4 }]);
// Memory per token of context, and how many tokens of KV the device holds: the cache (made with
// the first request) plus what is still free, against the model's own position limit.
{
  const { layers, kvHeads, headDim, maxPositions } = model.info.config;
  const perTokenBytes = layers * 2 * kvHeads * headDim * (model.info.dtype === 'f32' ? 4 : 2);
  const { numBlocks, blockSize } = model.stats();
  const cacheBytes = numBlocks * blockSize * perTokenBytes;
  const device = backend.memInfo?.();
  results.memory = {
    perTokenBytes,
    cacheTokens: numBlocks * blockSize,
    cacheBytes,
    ...(device && {
      freeBytes: device.free,
      totalBytes: device.total,
      kvCapacityTokens: Math.floor((device.free + cacheBytes) / perTokenBytes),
    }),
    maxPositions,
  };
  console.log(`memory: ${JSON.stringify(results.memory)}`);
}
for (const c of casesArg.split(',')) {
  const [kind, ...args] = c.split(':').map((x, i) => (i === 0 ? x : Number(x)));
  t0 = performance.now();
  const row =
    kind === 'decode'
      ? await decodeCase(args[0], args[1])
      : kind === 'prefill'
        ? await prefillCase(args[0])
        : kind === 'prefix'
          ? await prefixCase(args[0])
          : kind === 'profile'
            ? await profileCase(args[0], args[1])
            : await mixedCase(args[0]);
  results.cases.push({ case: c, ...row, stats: model.stats() });
  console.log(`${c}: ${JSON.stringify(row)} (${((performance.now() - t0) / 1e3).toFixed(1)} s)`);
}
await model.dispose();
await backend.dispose();
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
