/**
 * Paged KV test inputs (`@fastattention/core/testing`): a random paged cache and the dense input
 * that holds the same keys, so any backend's paged result can be checked against the reference and
 * against its own dense path. The cache is hostile on purpose: block ids shuffled, a prefix of
 * blocks shared between batch rows, NaN in every unused slot and spare block, and garbage table
 * entries past each row's length.
 */
import type { AttentionInput } from '../attention.js';
import type { DType } from '../dtype.js';
import { kvIndex } from '../layout.js';
import type { MaskSpec } from '../mask/spec.js';
import { fromNumbers } from '../numeric/convert.js';
import { keyOffsets, pagedBlockLength } from '../paged.js';
import type { AttentionShape } from '../shape.js';
import { kvLength, qLength } from '../shape.js';
import { randomValues } from './kit.js';

export interface PagedCase<D extends DType> {
  /** k and v as `[numBlocks, blockSize, headsKV, headDim]` through `pagedKV`. */
  readonly paged: AttentionInput<D>;
  /** The same call on dense `[batch, seqK, headsKV, headDim]` k and v (NaN past each row's length). */
  readonly dense: AttentionInput<D>;
}

export interface PagedCaseOptions {
  readonly blockSize: number;
  readonly mask?: MaskSpec;
  /** Valid keys per batch row; default: seqK for row 0, random lengths for the others. */
  readonly seqLensK?: readonly number[];
  /**
   * Leading blocks every other row shares with row 0; default 1. A row shorter than that shares
   * as many blocks as its keys touch, so the last shared block may hold row 0's keys past the
   * row's own length (which it must not read).
   */
  readonly sharedBlocks?: number;
  /** Unused blocks, full of NaN, mixed into the pool; default 2. */
  readonly spareBlocks?: number;
}

export function randomPagedCase<D extends DType>(
  rand: () => number,
  dtype: D,
  shape: AttentionShape,
  options: PagedCaseOptions,
): PagedCase<D> {
  const { batch, seqK, headsKV, headDim } = shape;
  const { blockSize, sharedBlocks = 1, spareBlocks = 2 } = options;
  const lens =
    options.seqLensK ??
    Array.from({ length: batch }, (_, b) => (b === 0 ? seqK : Math.floor(rand() * (seqK + 1))));
  const blocksPerSeq = Math.ceil(seqK / blockSize) + 1; // one entry more than any row needs
  // Block ids: row 0 owns its blocks; every other row reuses row 0's first `sharedBlocks` (as far
  // as both rows reach) and owns the rest.
  const blocksOf = (b: number) => Math.ceil(lens[b]! / blockSize);
  const owned: number[][] = [];
  let next = 0;
  for (let b = 0; b < batch; b++) {
    const shared = b === 0 ? 0 : Math.min(sharedBlocks, blocksOf(0));
    owned.push(Array.from({ length: blocksOf(b) }, (_, i) => (i < shared ? -1 : next++)));
  }
  const numBlocks = next + spareBlocks;
  const ids = shuffle(
    rand,
    Array.from({ length: numBlocks }, (_, i) => i),
  );
  const blockTable = new Int32Array(batch * blocksPerSeq);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < blocksPerSeq; i++) {
      const logical = owned[b]![i];
      const entry =
        logical === undefined
          ? garbageEntry(rand, numBlocks)
          : ids[logical === -1 ? owned[0]![i]! : logical]!;
      blockTable[b * blocksPerSeq + i] = entry;
    }
  }
  // Every element starts as NaN; each row's keys are written through the table (shared blocks by
  // row 0 first, the same values for every row that shares them).
  const pagedKV = { blockSize, blockTable, blocksPerSeq, numBlocks };
  const pagedK = new Float64Array(numBlocks * pagedBlockLength(shape, blockSize)).fill(Number.NaN);
  const pagedV = new Float64Array(pagedK.length).fill(Number.NaN);
  const denseK = new Float64Array(kvLength(shape)).fill(Number.NaN);
  const denseV = new Float64Array(denseK.length).fill(Number.NaN);
  const pagedAt = keyOffsets({ ...shape, pagedKV });
  const row = headsKV * headDim; // every KV head of a key: one contiguous row in both layouts
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < lens[b]!; j++) {
      const at = pagedAt(b, j, 0);
      if (Number.isNaN(pagedK[at]!)) {
        pagedK.set(randomValues(rand, row), at);
        pagedV.set(randomValues(rand, row), at);
      }
      denseK.set(pagedK.subarray(at, at + row), kvIndex(shape, b, j, 0));
      denseV.set(pagedV.subarray(at, at + row), kvIndex(shape, b, j, 0));
    }
  }
  const q = fromNumbers(randomValues(rand, qLength(shape)), dtype);
  const seqLensK = Int32Array.from(lens);
  const common = { ...shape, dtype, q, seqLensK, ...(options.mask ? { mask: options.mask } : {}) };
  return {
    paged: {
      ...common,
      k: fromNumbers(pagedK, dtype),
      v: fromNumbers(pagedV, dtype),
      pagedKV: { blockSize, blockTable, blocksPerSeq },
    },
    dense: { ...common, k: fromNumbers(denseK, dtype), v: fromNumbers(denseV, dtype) },
  };
}

/** A table entry nobody may read: out of range, negative, or a real block (whose data is another row's). */
function garbageEntry(rand: () => number, numBlocks: number): number {
  const pick = Math.floor(rand() * 3);
  return pick === 0 ? -1 : pick === 1 ? numBlocks + 7 : Math.floor(rand() * numBlocks);
}

function shuffle<T>(rand: () => number, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
