// A small run of the executor for compute-sanitizer (memcheck): core's op conformance suite (every
// op, on odd sizes, outputs poisoned), one recorded step graph replayed twice, and paged attention
// (small blocks, shared blocks, NaN spares, garbage table entries) against the float64 reference.
//   compute-sanitizer --tool memcheck node bench/exec-sanity.mjs
import {
  compareToReference,
  randomPagedCase,
  rng,
  runOpConformance,
  withinTolerance,
} from '@fastattention/core/testing';
import { createBackend } from '../dist/index.js';

const backend = await createBackend();
const executor = backend.createExecutor();
const results = await runOpConformance(executor, { seed: 7 });
const failed = results.filter((r) => !r.skipped && !r.ok);
const x = executor.empty('f16', [3, 64]);
await executor.write(
  x,
  Uint16Array.from({ length: 192 }, (_, i) => 0x3800 + (i % 97)),
);
const w = executor.empty('f16', [40, 64]);
await executor.write(
  w,
  Uint16Array.from({ length: 2560 }, (_, i) => 0x3400 + (i % 89)),
);
const out = executor.empty('f16', [3, 40]);
const graph = executor.record((r) => {
  r.run({ op: 'linear', x, weight: w, out });
  r.run({ op: 'swiglu', gate: out, up: out, out });
});
graph.replay();
graph.replay();
await executor.stream.synchronize();
// Paged decode (the split-KV kernels) and a prefill chunk at hd 128, blocks smaller than a k-tile.
const rand = rng(11);
let pagedFailed = 0;
for (const [seqQ, blockSize, mask] of [
  [1, 16, 'none'],
  [1, 8, 'none'],
  [37, 16, 'causal'],
]) {
  const shape = { batch: 3, seqQ, seqK: 700, headsQ: 8, headsKV: 2, headDim: 128 };
  const c = randomPagedCase(rand, 'f16', shape, { blockSize, mask: { kind: mask }, sharedBlocks: 2 });
  const got = await backend.attention(c.paged);
  if (!withinTolerance(compareToReference(c.paged, got.out, got.lse), 'f16')) pagedFailed++;
}
console.log(
  `paged attention (block 16 and 8, decode and a causal chunk): ${pagedFailed === 0 ? 'ok' : `${pagedFailed} FAILED`}`,
);
console.log(
  `conformance: ${results.length - failed.length}/${results.length} ok (${results.filter((r) => r.skipped).length} skipped); graph replayed`,
);
for (const f of failed) console.log(`FAILED ${f.name}: ${f.message ?? f.error}`);
await backend.dispose();
process.exit(failed.length > 0 || pagedFailed > 0 ? 1 : 0);
