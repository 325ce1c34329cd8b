/**
 * `fastattn bench --model PATH`: prefill and decode throughput of a model over a sweep of batch
 * sizes and contexts, through the runtime's scheduler as generate() callers see it. Prompts are
 * random token ids (fresh each run, so the prefix cache never answers) and every request decodes
 * exactly --decode-tokens tokens. A table, JSON, and a chart written to SVG or PNG.
 */
import { writeFile } from 'node:fs/promises';
import Table from 'cli-table3';
import { tableStyle } from '../format.js';
import { createProgress } from '../progress.js';
import { arrivalTimes, freshPrompts } from './arrivals.js';
import { type BenchPoint, benchChart, chartFormat } from './bench-chart.js';
import { loadForCommand, type ModelOptions } from './load.js';

export interface BenchOptions extends ModelOptions {
  readonly batches: number[];
  readonly contexts: number[];
  readonly decodeTokens: number;
  readonly chart?: string;
  readonly json?: boolean;
}

export async function benchCommand(o: BenchOptions): Promise<void> {
  const format = o.chart === undefined ? undefined : chartFormat(o.chart); // before minutes of work
  const loaded = await loadForCommand(o);
  const { model } = loaded;
  const prompt = freshPrompts(model.info.config.vocabSize);
  const run = async (batch: number, context: number) => {
    const start = performance.now();
    const arrivals = await Promise.all(
      Array.from({ length: batch }, () => arrivalTimes(model, prompt(context), o.decodeTokens, start)),
    );
    // prefill: every prompt token, until the last request's first token; decode: the tokens after
    // it, until the last one
    const allFirst = Math.max(...arrivals.map((t) => t[0]!));
    const end = Math.max(...arrivals.map((t) => t.at(-1)!));
    const decoded = arrivals.reduce((s, t) => s + t.filter((x) => x > allFirst).length, 0);
    return {
      batch,
      context,
      prefillTokensPerS: (batch * context) / (allFirst / 1e3),
      decodeTokensPerS: end > allFirst ? decoded / ((end - allFirst) / 1e3) : 0,
    };
  };
  const progress = createProgress();
  const points: BenchPoint[] = [];
  try {
    await run(1, Math.min(...o.contexts)); // warm-up: step graphs and plans
    for (const batch of o.batches) {
      for (const context of o.contexts) {
        progress.step(`batch ${batch}, context ${context}`);
        points.push(await run(batch, context));
      }
    }
  } finally {
    progress.done();
    await loaded.dispose();
  }
  const title = `${model.info.config.architecture} on ${loaded.backend.name}, ${o.decodeTokens} tokens decoded per request`;
  if (o.chart && format) {
    await writeFile(o.chart, await benchChart(points, title, format));
    console.error(`chart written to ${o.chart}`);
  }
  if (o.json) {
    console.log(JSON.stringify({ title, points }, null, 2));
    return;
  }
  console.log(title);
  const table = new Table({
    head: ['batch', 'context', 'prefill tok/s', 'decode tok/s'],
    style: tableStyle(),
  });
  for (const p of points)
    table.push([p.batch, p.context, p.prefillTokensPerS.toFixed(0), p.decodeTokensPerS.toFixed(1)]);
  console.log(table.toString());
}
