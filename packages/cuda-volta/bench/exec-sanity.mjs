// A small run of the executor for compute-sanitizer (memcheck): core's op conformance suite (every
// op, on odd sizes, outputs poisoned) and one recorded step graph replayed twice.
//   compute-sanitizer --tool memcheck node bench/exec-sanity.mjs
import { runOpConformance } from '@fastattention/core/testing';
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
console.log(
  `conformance: ${results.length - failed.length}/${results.length} ok (${results.filter((r) => r.skipped).length} skipped); graph replayed`,
);
for (const f of failed) console.log(`FAILED ${f.name}: ${f.message ?? f.error}`);
await backend.dispose();
process.exit(failed.length > 0 ? 1 : 0);
