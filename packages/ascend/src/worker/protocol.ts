import { type ErrorCode, FastAttentionError, toFastAttentionError } from '@fastattention/core';
import type { AscendDevice } from '../device/presets.js';
import type { SimulationJob } from '../job.js';
import type { SimulationResult } from '../simulate.js';

/** Caller -> worker process: one job at a time, with the device model it runs on. */
export interface JobMessage {
  readonly id: number;
  readonly device: AscendDevice;
  readonly job: SimulationJob;
}

/** A FastAttentionError as plain data: thrown objects lose their class crossing processes. */
export interface ErrorData {
  readonly code: ErrorCode;
  readonly message: string;
  readonly field?: string;
  readonly stack?: string;
}

/** Worker process -> caller: the job's result or its error. */
export type ResultMessage =
  | { readonly id: number; readonly ok: true; readonly result: SimulationResult }
  | { readonly id: number; readonly ok: false; readonly error: ErrorData };

export function errorToData(value: unknown): ErrorData {
  const e = toFastAttentionError(value);
  return {
    code: e.code,
    message: e.message,
    ...(e.field !== undefined ? { field: e.field } : {}),
    ...(e.stack !== undefined ? { stack: e.stack } : {}),
  };
}

export function errorFromData(data: ErrorData): FastAttentionError {
  const e = new FastAttentionError(
    data.code,
    data.message,
    data.field !== undefined ? { field: data.field } : {},
  );
  if (data.stack !== undefined) e.stack = data.stack;
  return e;
}

/**
 * The job as it is when the call is made: a queued job is sent later, and later edits by the
 * caller to its arrays (tensors, seqLensK, a paged cache's block table) must not reach it.
 */
export function snapshotJob(job: SimulationJob): SimulationJob {
  const paged = job.problem.pagedKV;
  const problem = {
    ...job.problem,
    seqLensK: job.problem.seqLensK.slice(),
    ...(paged ? { pagedKV: { ...paged, blockTable: paged.blockTable.slice() } } : {}),
  };
  const tensors = job.tensors && {
    q: job.tensors.q.slice(),
    k: job.tensors.k.slice(),
    v: job.tensors.v.slice(),
  };
  return { ...job, problem, ...(tensors ? { tensors } : {}) };
}
