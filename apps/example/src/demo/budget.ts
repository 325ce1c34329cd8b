import { bytesOf } from '@fastattention/core';
import { formatBytes } from '../format.js';
import type { DemoProblem } from './input.js';

/** What one size of the demo needs, accounted from the shapes before anything is allocated. */
export interface SizeEstimate {
  readonly seq: number;
  /** q, k, v and out in the storage type. */
  readonly tensorBytes: number;
  /** The standard baseline's materialized score matrix: seq x seq x heads f32. */
  readonly scoreBytes: number;
  /** The largest tensor's element count (typed arrays cap it). */
  readonly elements: number;
}

/** Longest typed array this runtime allocates (V8 on 64-bit: 2^32 - 1 elements). */
const MAX_ARRAY_ELEMENTS = 2 ** 32 - 1;

export function estimateSize(p: DemoProblem, withStandard: boolean): SizeEstimate {
  const elements = p.seq * p.heads * p.headDim;
  return {
    seq: p.seq,
    tensorBytes: 4 * elements * bytesOf(p.dtype),
    scoreBytes: withStandard ? p.seq * p.seq * p.heads * 4 : 0,
    elements,
  };
}

/** A calibration: one size's measured milliseconds, from which larger sizes are extrapolated (work ~ S^2). */
export interface Calibration {
  readonly seq: number;
  readonly flashMs: number;
  readonly standardMs: number;
}

export function estimateMs(c: Calibration, seq: number, runs: number): number {
  return runs * (c.flashMs + c.standardMs) * (seq / c.seq) ** 2;
}

export interface BudgetLimits {
  readonly freeBytes: number;
  /** Longest the whole demo may take without --force. */
  readonly maxMs: number;
}

/**
 * Why the demo should not start, or undefined when it fits: every size must be allocatable, fit in
 * free memory, and the whole run must finish within the time limit.
 */
export function overBudget(
  sizes: readonly SizeEstimate[],
  calibration: Calibration,
  runs: number,
  limits: BudgetLimits,
): string | undefined {
  const reasons: string[] = [];
  let totalMs = 0;
  for (const s of sizes) {
    totalMs += estimateMs(calibration, s.seq, runs);
    if (s.elements > MAX_ARRAY_ELEMENTS) {
      reasons.push(`seq ${s.seq}: a tensor of ${s.elements} elements is longer than a typed array can be`);
    }
    const need = s.tensorBytes + s.scoreBytes;
    if (need > limits.freeBytes) {
      const scores =
        s.scoreBytes > 0 ? ` (${formatBytes(s.scoreBytes)} of it the standard baseline's scores)` : '';
      reasons.push(
        `seq ${s.seq}: needs about ${formatBytes(need)}${scores}, ${formatBytes(limits.freeBytes)} is free`,
      );
    }
  }
  if (totalMs > limits.maxMs) {
    reasons.push(
      `the run would take about ${formatDuration(totalMs)} (limit ${formatDuration(limits.maxMs)})`,
    );
  }
  return reasons.length > 0 ? reasons.join('\n') : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(0)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
