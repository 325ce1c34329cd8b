import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { type AttentionShape, allowedKeys, bandOf, type MaskSpec } from '@fastattention/core';
import Table from 'cli-table3';

/** One measured configuration: the columns every bench reports, plus whatever a bench adds. */
export interface BenchRow {
  backend: string;
  path: string;
  dtype: string;
  batch: number;
  seqQ: number;
  seqK: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
  mask: string;
  ms: number;
  tflops: number;
  [extra: string]: string | number | boolean | null;
}

/**
 * FLOPs of exact attention counting only allowed (row, key) pairs: 4 * headDim per pair (QKᵀ and
 * PV). Causal self-attention counts about half of dense, as FlashAttention's benchmarks do.
 */
export function attentionFlops(shape: AttentionShape, mask: MaskSpec, seqLensK?: ArrayLike<number>): number {
  const band = bandOf(mask);
  let pairs = 0;
  for (let b = 0; b < shape.batch; b++) {
    const lk = seqLensK?.[b] ?? shape.seqK;
    for (let i = 0; i < shape.seqQ; i++) {
      const [start, end] = allowedKeys(band, i, shape.seqQ, lk);
      pairs += end - start;
    }
  }
  return 4 * shape.headDim * shape.headsQ * pairs;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median wall time of `run` in ms after `warmup` untimed runs. */
export async function timeMedian(run: () => unknown, { warmup = 1, repeat = 5 } = {}): Promise<number> {
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Prints rows as a table with the given columns (default: the fixed ones). */
export function printTable(rows: readonly Record<string, unknown>[], columns?: readonly string[]): void {
  const head = columns ?? [
    'backend',
    'path',
    'dtype',
    'batch',
    'seqQ',
    'seqK',
    'headsQ',
    'headsKV',
    'headDim',
    'mask',
    'ms',
    'tflops',
  ];
  const table = new Table({ head: [...head], style: { head: [], border: [] } });
  for (const row of rows) {
    table.push(head.map((c) => format(row[c])));
  }
  console.log(table.toString());
}

function format(value: unknown): string {
  if (typeof value !== 'number') return value === undefined || value === null ? '' : String(value);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100
    ? value.toFixed(1)
    : Math.abs(value) >= 1
      ? value.toFixed(2)
      : value.toPrecision(3);
}

export interface BenchReport {
  /** e.g. 'cpu', 'ascend', 'cuda' */
  readonly name: string;
  /** The command that reproduces the run, in the project's own terms. */
  readonly command: string;
  readonly device: string;
  readonly rows: readonly Record<string, unknown>[];
  readonly notes?: readonly string[];
  readonly [extra: string]: unknown;
}

/** Writes `bench/results/<name>-<yyyy-mm-dd>.json` at the repository root; returns its path. */
export function writeResults(repoRoot: string, report: BenchReport): string {
  const date = new Date().toISOString().slice(0, 10);
  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${report.name}-${date}.json`);
  const host = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), host, ...report }, null, 2)}\n`);
  return file;
}
