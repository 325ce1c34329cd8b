import { type ErrorCode, FastAttentionError, toFastAttentionError } from '@fastattention/core';
import type { AscendDevice } from '../device/presets.js';
import type { SimulationJob } from '../job.js';
import type { SimulationResult } from '../simulate.js';

/** What a simulation worker is started with: the device model every job of its backend uses. */
export interface WorkerData {
  readonly device: AscendDevice;
}

/** Main thread -> worker: one job at a time. */
export interface JobMessage {
  readonly id: number;
  readonly job: SimulationJob;
}

/** A FastAttentionError as plain data: thrown objects lose their class crossing threads. */
export interface ErrorData {
  readonly code: ErrorCode;
  readonly message: string;
  readonly field?: string;
  readonly stack?: string;
}

/** Worker -> main thread: the job's result (outputs transferred) or its error. */
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
 * The buffers to move with a job. The caller's arrays are never transferred (that would detach
 * them under the caller): a tensor on an ArrayBuffer is copied once here and the copy moves; one
 * on a SharedArrayBuffer is shared as it is, so the worker reads the caller's memory without a copy.
 * seqLensK and a paged cache's block table are copied: small, and later edits by the caller cannot
 * reach a running job.
 */
export function detachFromCaller(job: SimulationJob): { job: SimulationJob; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const own = <T extends Uint16Array | Int32Array>(a: T): T => {
    if (a.buffer instanceof SharedArrayBuffer) return a;
    const copy = a.slice() as T;
    transfer.push(copy.buffer as ArrayBuffer);
    return copy;
  };
  const seqLensK = job.problem.seqLensK.slice();
  transfer.push(seqLensK.buffer);
  const paged = job.problem.pagedKV;
  const blockTable = paged?.blockTable.slice();
  if (blockTable) transfer.push(blockTable.buffer);
  const problem = {
    ...job.problem,
    seqLensK,
    ...(paged && blockTable ? { pagedKV: { ...paged, blockTable } } : {}),
  };
  const tensors = job.tensors && {
    q: own(job.tensors.q),
    k: own(job.tensors.k),
    v: own(job.tensors.v),
  };
  return { job: { ...job, problem, ...(tensors ? { tensors } : {}) }, transfer };
}

/** The result's own buffers go back to the caller without a copy. */
export function resultTransfer(result: SimulationResult): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  if (result.out) out.push(result.out.buffer as ArrayBuffer);
  if (result.lse) out.push(result.lse.buffer as ArrayBuffer);
  return out;
}
