// The execution contract on the GPU, timed as a user runs it (the executor's public API, host wall
// clock): decode attention at B=1 32K awaited step by step and back to back, dense and paged (block
// 16 and 256, shuffled blocks), against a device-to-device copy of the same bytes; the linear op
// (cuBLAS) at the Llama-7B shapes; and the host time of replaying a 32-layer Llama-7B-shaped decode
// step (a CUDA graph) against its GPU time. Writes JSON to FASTATTN_BENCH_OUT (default exec.json).
//   node bench/exec.mjs [--cublas /path/libcublas.so.13] [--skip-gemm] [--skip-step]
// The PyTorch matmul anchor runs beside it: python3 tools/anchors/matmul_cuda.py OUT.json
import { writeFileSync } from 'node:fs';
import { median } from '@fastattention/bench';
import { createBackend } from '../dist/index.js';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const cublasPath = value('--cublas');
const backend = await createBackend();
const executor = backend.createExecutor(cublasPath ? { cublasPath } : {});
const result = { device: backend.info.devices[0].name, decode: [], gemm: [], step: undefined };

/** f16 bits of uniform values in +-[0.5, 1) (an LCG: JS randomness is too slow at 10^8). */
function randomF16(n, seed) {
  const a = new Uint16Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = 0x3800 | ((s >>> 16) & 0x83ff);
  }
  return a;
}

async function randomTensor(shape, seed) {
  const t = executor.empty('f16', shape);
  await executor.write(t, randomF16(t.length, seed));
  return t;
}

async function timeSteps(enqueue, steps, awaitEach, ex = executor) {
  const times = [];
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      enqueue();
      if (awaitEach) await ex.stream.synchronize();
    }
    await ex.stream.synchronize();
    times.push((performance.now() - t0) / steps);
  }
  return median(times);
}

// --- Decode, stream-ordered ----------------------------------------------------------------------
{
  const [B, S, HQ, HK, D] = [1, 32768, 32, 8, 128];
  const q = await randomTensor([B, 1, HQ, D], 1);
  const k = await randomTensor([B, S, HK, D], 2);
  const v = await randomTensor([B, S, HK, D], 3);
  const seqLensK = executor.empty('i32', [B]);
  await executor.write(seqLensK, Int32Array.of(S));
  const out = executor.empty('f16', [B, 1, HQ, D]);
  const lse = executor.empty('f32', [B, HQ, 1]);
  const bytes = 2 * B * S * HK * D * 2;
  const copyMs = median(await backend.timeCopy(bytes, { warmup: 3, iters: 20 }));
  const variants = [{ name: 'dense', op: { op: 'attention', q, k, v, seqLensK, out, lse } }];
  for (const blockSize of [16, 256]) {
    const blocksPerSeq = S / blockSize;
    const order = Int32Array.from({ length: blocksPerSeq }, (_, i) => i);
    for (let i = order.length - 1, s = 7; i > 0; i--) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const j = s % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const table = executor.empty('i32', [B, blocksPerSeq]);
    await executor.write(table, order);
    const shape = { shape: [blocksPerSeq, blockSize, HK, D] };
    const paged = { blockTable: table, blockSize, seqK: S };
    variants.push({
      name: `paged ${blockSize}`,
      op: { op: 'attention', q, k: k.view(shape), v: v.view(shape), seqLensK, paged, out, lse },
    });
  }
  for (const { name, op } of variants) {
    for (let i = 0; i < 5; i++) executor.run(op);
    await executor.stream.synchronize();
    const awaited = await timeSteps(() => executor.run(op), 100, true);
    const backToBack = await timeSteps(() => executor.run(op), 100, false);
    // The same step recorded as a graph (one launch per step), awaited each time.
    const graph = executor.record((r) => r.run(op));
    const graphAwaited = await timeSteps(() => graph.replay(), 100, true);
    graph.dispose();
    const row = {
      case: `decode B1 32K hd128 32/8 f16 ${name}`,
      copyMs,
      awaitedMs: awaited,
      backToBackMs: backToBack,
      graphAwaitedMs: graphAwaited,
      awaitedOfCopy: copyMs / awaited,
      backToBackOfCopy: copyMs / backToBack,
      graphAwaitedOfCopy: copyMs / graphAwaited,
    };
    result.decode.push(row);
    console.log(
      `${row.case}: awaited ${awaited.toFixed(4)} ms (${(row.awaitedOfCopy * 100).toFixed(1)}% of copy), ` +
        `graph awaited ${graphAwaited.toFixed(4)} ms (${(row.graphAwaitedOfCopy * 100).toFixed(1)}%), ` +
        `back to back ${backToBack.toFixed(4)} ms (${(row.backToBackOfCopy * 100).toFixed(1)}%), copy ${copyMs.toFixed(4)} ms`,
    );
  }
}

// --- linear (cuBLAS): cuBLASLt with a cached algorithm (the default) and cublasGemmEx ----------------
async function timeGemm(ex, api, rows) {
  for (const [N, K] of [
    [4096, 4096],
    [11008, 4096],
    [4096, 11008],
  ]) {
    const w = ex.empty('f16', [N, K]);
    await ex.write(w, randomF16(w.length, N + K));
    for (const M of rows) {
      const x = ex.empty('f16', [M, K]);
      await ex.write(x, randomF16(x.length, M));
      const out = ex.empty('f16', [M, N]);
      const op = { op: 'linear', x, weight: w, out };
      const reps = M === 4096 ? 20 : 200;
      for (let i = 0; i < 5; i++) ex.run(op);
      await ex.stream.synchronize();
      const ms = await timeSteps(() => ex.run(op), reps, false, ex);
      // The same products recorded as one graph (as a step graph runs them): GPU time per product.
      const perGraph = M === 4096 ? 5 : 20;
      const graph = ex.record((r) => {
        for (let i = 0; i < perGraph; i++) r.run(op);
      });
      graph.replay();
      await ex.stream.synchronize();
      const graphMs = (await timeSteps(() => graph.replay(), reps / perGraph, false, ex)) / perGraph;
      graph.dispose();
      const tflops = (2 * M * N * K) / (ms / 1e3) / 1e12;
      result.gemm.push({ api, m: M, n: N, k: K, dtype: 'f16', ms, tflops, graphMs });
      console.log(
        `linear (${api}) f16 M=${M} N=${N} K=${K}: ${ms.toFixed(4)} ms, ${tflops.toFixed(1)} TFLOP/s; in a graph ${graphMs.toFixed(4)} ms`,
      );
      x.dispose();
      out.dispose();
    }
    w.dispose();
  }
}
if (!flag('--skip-gemm')) {
  const withBlas = cublasPath ? { cublasPath } : {};
  for (const [api, options, rows] of [
    ['cublasLt', {}, [1, 2, 4, 8, 16, 64, 4096]],
    ['gemmEx', { gemm: 'gemmEx' }, [1, 16, 64, 4096]],
  ]) {
    const ex = backend.createExecutor({ ...options, ...withBlas });
    await timeGemm(ex, api, rows);
    await ex.dispose();
  }
}

// --- A 32-layer Llama-7B-shaped decode step: host enqueue time against GPU time ------------------
if (!flag('--skip-step')) {
  const [L, H, F, HQ, HK, D, ctx, block] = [32, 4096, 11008, 32, 32, 128, 1024, 16];
  const blocks = ctx / block + 1;
  const first = {
    qkv: await randomTensor([3 * H, H], 11),
    o: await randomTensor([H, H], 12),
    gateUp: await randomTensor([2 * F, H], 13),
    down: await randomTensor([H, F], 14),
    norm: await randomTensor([H], 15),
  };
  const layers = [];
  for (let l = 0; l < L; l++) {
    const layer = {};
    for (const [name, t] of Object.entries(first)) {
      const copy = l === 0 ? t : executor.empty('f16', t.shape);
      if (l > 0) executor.run({ op: 'copy', src: t, dst: copy });
      layer[name] = copy;
    }
    // The caches hold random keys (a view of the first qkv weight as blocks).
    const keys = first.qkv.view({
      shape: [blocks, block, HK, D],
      strides: [block * HK * D, HK * D, D, 1],
      offset: 0,
    });
    for (const name of ['cacheK', 'cacheV']) {
      layer[name] = executor.empty('f16', [blocks, block, HK, D]);
      executor.run({ op: 'copy', src: keys, dst: layer[name] });
    }
    layers.push(layer);
  }
  const x = await randomTensor([1, H], 21);
  const hidden = executor.empty('f16', [1, H]);
  const qkv = executor.empty('f16', [1, 3 * H]);
  const attnOut = executor.empty('f16', [1, 1, HQ, D]);
  const gateUp = executor.empty('f16', [1, 2 * F]);
  const act = executor.empty('f16', [1, F]);
  const mlp = await randomTensor([1, H], 22);
  const positions = executor.empty('i32', [1]);
  await executor.write(positions, Int32Array.of(ctx - 1));
  const slots = executor.empty('i32', [1]);
  await executor.write(slots, Int32Array.of(ctx - 1));
  const lens = executor.empty('i32', [1]);
  await executor.write(lens, Int32Array.of(ctx));
  const table = executor.empty('i32', [1, blocks]);
  await executor.write(
    table,
    Int32Array.from({ length: blocks }, (_, i) => i),
  );
  const rope = { theta: 10000, rotaryDim: D, scaling: { kind: 'default' } };
  const q = qkv.view({ shape: [1, HQ, D], strides: [3 * H, D, 1], offset: 0 });
  const kNew = qkv.view({ shape: [1, HK, D], strides: [3 * H, D, 1], offset: H });
  const vNew = qkv.view({ shape: [1, HK, D], strides: [3 * H, D, 1], offset: 2 * H });
  // q and k heads sit side by side in a qkv row: one rope op rotates both.
  const qk = qkv.view({ shape: [1, HQ + HK, D], strides: [3 * H, D, 1], offset: 0 });
  /** One layer's ops, named, in order: each residual add is fused into the norm after it. */
  const layerOps = (layer) => [
    ['rmsNorm + add', { op: 'rmsNorm', x, add: mlp, weight: layer.norm, eps: 1e-5, out: hidden }],
    ['linear qkv', { op: 'linear', x: hidden, weight: layer.qkv, out: qkv }],
    ['rope q, k', { op: 'rope', x: qk, positions, rope, out: qk }],
    ['kvAppend', { op: 'kvAppend', k: kNew, v: vNew, cacheK: layer.cacheK, cacheV: layer.cacheV, slots }],
    [
      'attention',
      {
        op: 'attention',
        q: q.view({ shape: [1, 1, HQ, D], strides: [3 * H, 3 * H, D, 1], offset: 0 }),
        k: layer.cacheK,
        v: layer.cacheV,
        seqLensK: lens,
        paged: { blockTable: table, blockSize: block, seqK: blocks * block },
        out: attnOut,
      },
    ],
    ['linear o', { op: 'linear', x: attnOut.view({ shape: [1, H] }), weight: layer.o, out: hidden }],
    ['rmsNorm + add', { op: 'rmsNorm', x, add: hidden, weight: layer.norm, eps: 1e-5, out: hidden }],
    ['linear gate/up', { op: 'linear', x: hidden, weight: layer.gateUp, out: gateUp }],
    [
      'swiglu',
      {
        op: 'swiglu',
        gate: gateUp.view({ shape: [1, F], strides: [2 * F, 1], offset: 0 }),
        up: gateUp.view({ shape: [1, F], strides: [2 * F, 1], offset: F }),
        out: act,
      },
    ],
    ['linear down', { op: 'linear', x: act, weight: layer.down, out: mlp }],
  ];
  const graph = executor.record((r) => {
    for (const layer of layers) for (const [, op] of layerOps(layer)) r.run(op);
  });
  for (let i = 0; i < 3; i++) graph.replay();
  await executor.stream.synchronize();
  const host = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    graph.replay();
    host.push(performance.now() - t0);
    await executor.stream.synchronize();
  }
  const gpu = await timeSteps(() => graph.replay(), 10, false);
  const weightBytes = L * (3 * H * H + H * H + 3 * F * H) * 2;
  result.step = {
    ops: graph.ops,
    hostMs: median(host),
    stepMs: gpu,
    hostOfGpu: median(host) / gpu,
    weightBytes,
    weightGBs: weightBytes / (gpu / 1e3) / 1e9,
  };
  console.log(
    `32-layer decode step (${graph.ops} ops, one graph): host replay ${median(host).toFixed(3)} ms, step ${gpu.toFixed(3)} ms ` +
      `(host ${(result.step.hostOfGpu * 100).toFixed(0)}% of it), weights read at ${result.step.weightGBs.toFixed(0)} GB/s`,
  );
  // Where the step's GPU time goes: each op of a layer, 32 copies in one graph, time per copy.
  result.step.ops_us = {};
  for (const [i, [name, op]] of layerOps(layers[0]).entries()) {
    const g = executor.record((r) => {
      for (let j = 0; j < L; j++) r.run(op);
    });
    g.replay();
    await executor.stream.synchronize();
    const us = ((await timeSteps(() => g.replay(), 5, false)) / L) * 1e3;
    g.dispose();
    result.step.ops_us[`${i} ${name}`] = us;
    console.log(`  op ${i} ${name}: ${us.toFixed(2)} us`);
  }
}

await executor.dispose();
await backend.dispose();
writeFileSync(process.env.FASTATTN_BENCH_OUT ?? 'exec.json', `${JSON.stringify(result, null, 2)}\n`);
