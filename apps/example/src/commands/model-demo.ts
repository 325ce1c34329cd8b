/**
 * `fastattn model-demo`: the runtime on a synthetic Llama (random weights written to a temporary
 * directory by the runtime's own test writer, removed afterwards; nothing is downloaded), run with
 * 'flash' and with 'standard' attention at growing contexts: prefill and decode throughput, and how
 * much faster flash is as the context grows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttentionAlgorithm } from '@fastattention/core';
import { randomSeed, rng } from '@fastattention/core/testing';
import { loadModel, type Model } from '@fastattention/runtime';
import { writeTinyCheckpoint } from '@fastattention/runtime/testing';
import Table from 'cli-table3';
import { type BackendFlags, backendFor } from '../backends.js';
import { tableStyle } from '../format.js';
import { createProgress } from '../progress.js';
import { median } from '../timing.js';
import { arrivalTimes, freshPrompts } from './arrivals.js';

export interface ModelDemoOptions extends BackendFlags {
  readonly contexts: number[];
  /** Runs per context and algorithm; the median is shown. */
  readonly repeat: number;
  readonly json?: boolean;
}

/** Two layers of 8 heads of 64: small enough for any machine, attention-heavy at long contexts. */
const SPEC = {
  architecture: 'llama',
  vocab: 512,
  hidden: 512,
  intermediate: 1024,
  layers: 2,
  heads: 8,
  kvHeads: 8,
  dtype: 'f32',
} as const;
const DECODE_TOKENS = 16;

interface Row {
  readonly context: number;
  readonly prefill: Record<AttentionAlgorithm, number>;
  readonly decode: Record<AttentionAlgorithm, number>;
}

export async function modelDemoCommand(o: ModelDemoOptions): Promise<void> {
  const backend = await backendFor(o);
  const longest = Math.max(...o.contexts);
  const dir = await mkdtemp(join(tmpdir(), 'fastattn-model-demo-'));
  const progress = createProgress();
  try {
    await writeTinyCheckpoint(dir, { ...SPEC, maxPositions: longest + DECODE_TOKENS + 1 }, rng(randomSeed()));
    const models = {} as Record<AttentionAlgorithm, Model>;
    for (const attention of ['flash', 'standard'] as const) {
      models[attention] = await loadModel(dir, {
        backend,
        attention,
        dtype: 'f32',
        scheduler: { maxBatch: 1, cacheTokens: longest + DECODE_TOKENS + 64 },
      });
    }
    const rows: Row[] = [];
    try {
      // warm-up: the first steps record their graphs and plans
      for (const model of Object.values(models))
        await arrivalTimes(model, Int32Array.of(1, 2, 3), DECODE_TOKENS);
      // a fresh prompt per run: a repeated one would be served from the prefix cache
      const prompt = freshPrompts(SPEC.vocab);
      for (const context of o.contexts) {
        const prefill = {} as Record<AttentionAlgorithm, number>;
        const decode = {} as Record<AttentionAlgorithm, number>;
        for (const attention of ['flash', 'standard'] as const) {
          progress.step(`context ${context}: ${attention} attention`);
          const timed = [];
          for (let r = 0; r < o.repeat; r++)
            timed.push(await arrivalTimes(models[attention], prompt(context), DECODE_TOKENS));
          prefill[attention] = median(timed.map((t) => context / (t[0]! / 1e3)));
          decode[attention] = median(timed.map((t) => (t.length - 1) / ((t.at(-1)! - t[0]!) / 1e3)));
        }
        rows.push({ context, prefill, decode });
      }
    } finally {
      progress.done();
      await Promise.all(Object.values(models).map((m) => m.dispose()));
    }
    report(rows, backend.name, o.json === true);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await backend.dispose();
  }
}

function report(rows: Row[], backend: string, json: boolean): void {
  if (json) {
    console.log(JSON.stringify({ backend, model: SPEC, rows }, null, 2));
    return;
  }
  console.log(
    `backend: ${backend}; model: ${SPEC.layers} layers, ${SPEC.heads} heads of ${SPEC.hidden / SPEC.heads}, f32`,
  );
  const table = new Table({
    head: [
      'context',
      'prefill flash',
      'prefill standard',
      'speedup',
      'decode flash',
      'decode standard',
      'speedup',
    ],
    style: tableStyle(),
  });
  const rate = (x: number) => `${x.toFixed(0)} tok/s`;
  for (const { context, prefill, decode } of rows) {
    table.push([
      context,
      rate(prefill.flash),
      rate(prefill.standard),
      `${(prefill.flash / prefill.standard).toFixed(2)}x`,
      rate(decode.flash),
      rate(decode.standard),
      `${(decode.flash / decode.standard).toFixed(2)}x`,
    ]);
  }
  console.log(table.toString());
  console.log(
    "'standard' materializes every attention op's scores (the FlashAttention papers' baseline); the same runtime, weights and backend otherwise.",
  );
}
