import { markAsUntransferable } from 'node:worker_threads';
import type { DType, ResolvedAttentionInput } from '@fastattention/core';

/**
 * The arrays native code reads while a call runs, made safe to read until it settles. The worker
 * threads hold raw pointers into them, so the memory must not shrink or be freed meanwhile:
 * - a SharedArrayBuffer never shrinks and is never detached: read in place;
 * - a resizable ArrayBuffer can shrink (and its typed arrays can track its length): copied, on
 *   the JS thread, before the call starts (rare, so the copy's cost does not matter);
 * - a plain ArrayBuffer is marked untransferable (node:worker_threads). A transfer through
 *   postMessage or structuredClone would detach it and hand its memory to a receiver that may
 *   free it while the kernel still reads it; marked, the transfer copies it instead (Node 20) or
 *   throws a DataCloneError (Node 22+). Copying K and V instead would double a decode call's
 *   memory traffic (decode is memory-bound) and block the event loop for the copy. The mark is
 *   permanent: the README says so. `ArrayBuffer.prototype.transfer()` (Node 21+) ignores the mark.
 */
export function pinInputs<D extends DType>(
  x: ResolvedAttentionInput<D>,
): Pick<ResolvedAttentionInput<D>, 'q' | 'k' | 'v'> {
  return { q: pin(x.q), k: pin(x.k), v: pin(x.v) };
}

function pin<T extends Float32Array | Uint16Array>(array: T): T {
  const buffer = array.buffer;
  if (buffer instanceof ArrayBuffer) {
    if ((buffer as { resizable?: boolean }).resizable) return array.slice() as T;
    markAsUntransferable(buffer);
  }
  return array;
}
