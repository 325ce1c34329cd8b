import { freemem } from 'node:os';
import {
  type AttentionInput,
  type AttentionOutput,
  type Backend,
  type DType,
  type Fallback,
  FastAttentionError,
  type MaskKind,
} from '@fastattention/core';
import Table from 'cli-table3';
import { type BackendFlags, backendFor } from '../backends.js';
import { type Calibration, estimateSize, overBudget } from '../demo/budget.js';
import { sampledError } from '../demo/check.js';
import { type DemoProblem, randomInput } from '../demo/input.js';
import { formatBytes, formatMs, tableStyle } from '../format.js';
import { createProgress, type Progress } from '../progress.js';
import { timeMedian } from '../timing.js';

export interface DemoOptions extends BackendFlags {
  sizes: number[];
  heads: number;
  headDim: number;
  /** Default: f32 where the backend runs it, else its first dtype. */
  dtype?: DType;
  mask: MaskKind;
  repeat: number;
  force?: boolean;
  json?: boolean;
}

export interface DemoRow {
  seq: number;
  /** The times are a simulator's device times, not wall times. */
  simulated: boolean;
  backendMs: number;
  /** The same backend's standard attention (materialized scores); absent when it has none. */
  standardMs: number | undefined;
  speedup: number | undefined;
  /** Workspace the backend accounted for (outputs included), not a measurement of the process. */
  backendBytes: number | undefined;
  standardBytes: number | undefined;
  /** Against the float64 reference, on sampled rows. */
  relError: number;
  standardRelError: number | undefined;
}

/** Longest the demo runs without --force. */
const MAX_DEMO_MS = 120_000;
const CALIBRATION_SEQ = 256;
const CALIBRATION_MAX_SEQ = 2048;
const CALIBRATION_MS = 50;

type Run = (input: AttentionInput) => Promise<AttentionOutput>;

/** The device time a simulator reports with its result (ascend-sim's `report`), in ms. */
function simulatedMs(out: AttentionOutput): number | undefined {
  const report = (out as { report?: { simulated?: unknown; seconds?: unknown } }).report;
  return report?.simulated === true && typeof report.seconds === 'number' ? report.seconds * 1000 : undefined;
}

/**
 * Median wall time of `repeat` calls; for a simulator, the simulated device time instead (its
 * wall time is the speed of the simulation, which says nothing about the device).
 */
async function measure(run: Run, input: AttentionInput, repeat: number) {
  let out: AttentionOutput | undefined;
  const ms = await timeMedian(
    async () => {
      out = await run(input);
    },
    { repeat },
  );
  const simulated = simulatedMs(out!);
  return { ms: simulated ?? ms, out: out!, simulated: simulated !== undefined };
}

/** One size on the backend and on its standard baseline, both checked against the reference. */
export async function demoRow(
  flash: Run,
  standard: Run | undefined,
  p: DemoProblem,
  repeat: number,
): Promise<DemoRow> {
  const input = randomInput(p);
  const f = await measure(flash, input, repeat);
  const s = standard ? await measure(standard, input, repeat) : undefined;
  const bytes = (r: AttentionOutput) =>
    r.workspaceBytes === undefined ? undefined : r.workspaceBytes + r.out.byteLength;
  return {
    seq: p.seq,
    simulated: f.simulated,
    backendMs: f.ms,
    standardMs: s?.ms,
    speedup: s ? s.ms / f.ms : undefined,
    backendBytes: bytes(f.out),
    standardBytes: s ? bytes(s.out) : undefined,
    relError: sampledError(input, f.out.out),
    standardRelError: s ? sampledError(input, s.out.out) : undefined,
  };
}

function pickDtype(backend: Backend, wanted: DType | undefined): DType {
  const { dtypes } = backend.info.capabilities;
  if (wanted !== undefined) return wanted; // validation names the field if the backend lacks it
  return dtypes.includes('f32') ? 'f32' : dtypes[0]!;
}

/**
 * Times one call of each at growing sizes until a call takes long enough to be in the quadratic
 * regime (small sizes are dominated by fixed costs and would overstate larger ones), staying at or
 * below the largest requested size and small enough that the scores fit easily.
 */
async function calibrate(
  flash: Run,
  standard: Run | undefined,
  problem: (seq: number) => DemoProblem,
  maxSeq: number,
) {
  const time = async (run: Run | undefined, input: AttentionInput) => {
    if (!run) return 0;
    const t0 = performance.now();
    await run(input);
    return performance.now() - t0;
  };
  let seq = Math.min(CALIBRATION_SEQ, maxSeq);
  for (;;) {
    const input = randomInput(problem(seq));
    const c: Calibration = {
      seq,
      flashMs: await time(flash, input),
      standardMs: await time(standard, input),
    };
    if (c.flashMs + c.standardMs >= CALIBRATION_MS || seq * 2 > Math.min(maxSeq, CALIBRATION_MAX_SEQ))
      return c;
    seq *= 2;
  }
}

/** `fastattn demo`: the best available backend against standard attention on the same device. */
export async function demoCommand(o: DemoOptions): Promise<void> {
  const fallbacks: Fallback[] = [];
  const backend = await backendFor(o, (f) => fallbacks.push(f));
  const progress: Progress = createProgress();
  try {
    const dtype = pickDtype(backend, o.dtype);
    const flash: Run = (input) => backend.attention(input);
    const standard: Run | undefined = backend.standardAttention
      ? (input) => backend.standardAttention!(input)
      : undefined;
    const problem = (seq: number): DemoProblem => ({
      seq,
      heads: o.heads,
      headDim: o.headDim,
      dtype,
      mask: o.mask,
    });
    const log = o.json ? () => {} : console.log;
    const device = backend.info.devices[0];
    for (const f of fallbacks) log(`note: backend '${f.skipped}' is unusable: ${f.reason}`);
    log(
      `backend: ${backend.name}${device ? ` on ${device.name}` : ''}\n` +
        `problem: batch 1, ${o.heads} heads, head dim ${o.headDim}, ${dtype}, ${o.mask} mask; median of ${o.repeat} runs\n` +
        (standard
          ? `baseline: ${backend.name}'s standard attention (scores materialized, on the same ${device?.kind === 'simulator' ? 'simulated device' : 'device and threads'})\n`
          : `baseline: none (${backend.name} has no standard attention; speedup not shown)\n`),
    );

    progress.step('estimating memory and time ...');
    const calibration = await calibrate(flash, standard, problem, Math.max(...o.sizes));
    const estimates = o.sizes.map((seq) => estimateSize(problem(seq), standard !== undefined));
    const refusal = overBudget(estimates, calibration, o.repeat + 1, {
      freeBytes: freemem(),
      maxMs: MAX_DEMO_MS,
    });
    if (refusal && !o.force) {
      progress.done();
      throw new FastAttentionError(
        'INVALID_INPUT',
        `refusing to start:\n${refusal}\nUse smaller --sizes (or fewer --heads), or --force to run anyway.`,
        { field: 'sizes' },
      );
    }

    const rows: DemoRow[] = [];
    for (const [i, seq] of o.sizes.entries()) {
      progress.step(`[${i + 1}/${o.sizes.length}] seq ${seq}: running ...`);
      const row = await demoRow(flash, standard, problem(seq), o.repeat);
      rows.push(row);
      const vs = row.standardMs === undefined ? '' : `, standard ${formatMs(row.standardMs)} ms`;
      progress.step(
        `[${i + 1}/${o.sizes.length}] seq ${seq}: ${backend.name} ${formatMs(row.backendMs)} ms${vs}`,
      );
    }
    progress.done();
    const simulated = rows.some((r) => r.simulated);
    if (o.json) {
      const options = { ...o, dtype };
      console.log(JSON.stringify({ backend: backend.name, device: device?.name, options, rows }, null, 2));
      return;
    }
    console.log(renderTable(backend.name, rows));
    console.log(
      (simulated ? `ms: the simulated device time that ${backend.name} reports, not wall time.\n` : '') +
        'workspace: bytes each call accounted for besides its inputs (outputs included), not measured.\n' +
        'rel. error: against the float64 reference on the first 4 and last 16 query positions.',
    );
    if (refusal) console.log(`ran with --force despite: ${refusal.replaceAll('\n', '; ')}`);
  } finally {
    progress.done();
    await backend.dispose();
  }
}

function renderTable(name: string, rows: readonly DemoRow[]): string {
  const table = new Table({
    head: [
      'seq',
      `${name} ms`,
      'standard ms',
      'speedup',
      `${name} workspace`,
      'standard workspace',
      'rel. error',
    ],
    colAligns: ['right', 'right', 'right', 'right', 'right', 'right', 'right'],
    style: tableStyle(),
  });
  for (const r of rows) {
    table.push([
      r.seq,
      formatMs(r.backendMs),
      r.standardMs === undefined ? 'n/a' : formatMs(r.standardMs),
      r.speedup === undefined ? 'n/a' : `${r.speedup.toFixed(1)}x`,
      formatBytes(r.backendBytes),
      formatBytes(r.standardBytes),
      r.relError.toExponential(1),
    ]);
  }
  return table.toString();
}
