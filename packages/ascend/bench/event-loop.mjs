// How long the caller's event loop waits during one attention() call on the simulator: the largest
// gap between 2 ms timer ticks. Before the simulator moved off the event loop the whole call was one
// gap (687 ms at the default size on an idle 2-core machine); now only scheduling noise remains.
//
//   node bench/event-loop.mjs [--seq 512] [--heads 8]
import { randomInput, rng } from '@fastattention/core/testing';
import { createBackend } from '../dist/index.js';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const seq = arg('seq', 512);
const heads = arg('heads', 8);
const shape = { batch: 1, seqQ: seq, seqK: seq, headsQ: heads, headsKV: heads, headDim: 64 };

const backend = await createBackend({ threads: 1 });
// Start the worker first: its start-up is not what this measures.
await backend.attention(randomInput(rng(2), 'f16', { ...shape, seqQ: 16, seqK: 16, headsQ: 1, headsKV: 1 }));
const input = randomInput(rng(1), 'f16', shape, { mask: { kind: 'causal' } });
const ticks = [];
const timer = setInterval(() => ticks.push(performance.now()), 2);
const start = performance.now();
const { report } = await backend.attention(input);
const end = performance.now();
clearInterval(timer);
const times = [start, ...ticks, end];
const gap = Math.max(...times.slice(1).map((t, i) => t - times[i]));
console.log(
  `S = ${seq}, ${heads} heads of 64, causal, f16: call ${(end - start).toFixed(0)} ms, ` +
    `largest event-loop gap ${gap.toFixed(1)} ms (${ticks.length} ticks); ` +
    `simulated ${(report.seconds * 1e6).toFixed(1)} us`,
);
await backend.dispose();
