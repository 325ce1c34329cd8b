import { describeValue as describe, invalidInput, unsupported } from './errors.js';
import { kvIndex } from './layout.js';
import type { AttentionShape } from './shape.js';

/**
 * A paged KV cache (vLLM's layout): `k`/`v` are `[numBlocks, blockSize, headsKV, headDim]`, and key
 * `j` of batch row `b` lives in block `blockTable[b * blocksPerSeq + floor(j / blockSize)]` at slot
 * `j % blockSize`. Rows may share blocks (a common prompt prefix); table entries past a row's
 * length are ignored, and so is whatever the unused slots and blocks hold.
 */
export interface PagedKV {
  /** Keys per block: a power of two. */
  readonly blockSize: number;
  /** [batch, blocksPerSeq] indices into the first dimension of k and v. */
  readonly blockTable: Int32Array;
  /** Table entries per batch row. */
  readonly blocksPerSeq: number;
  /**
   * Blocks in k and v. Host-array inputs may leave it out (it follows from k's length); a
   * validation without tensors needs it to check the table.
   */
  readonly numBlocks?: number;
}

/** A paged cache after validation: a private copy of the table, every field known. */
export interface ResolvedPagedKV extends PagedKV {
  readonly numBlocks: number;
}

/** Which paged caches a backend reads: block sizes are powers of two in this range. */
export interface PagedKVSupport {
  readonly minBlockSize: number;
  readonly maxBlockSize: number;
}

/** The fields of `pagedKV`, as the validator reads them (each once). */
export const PAGED_FIELDS = ['blockSize', 'blockTable', 'blocksPerSeq', 'numBlocks'] as const;

/** Largest block size the contract describes. */
export const MAX_BLOCK_SIZE = 2 ** 16;

/** Every block size the contract describes: what a backend reading any paged cache declares. */
export const ALL_BLOCK_SIZES: PagedKVSupport = { minBlockSize: 1, maxBlockSize: MAX_BLOCK_SIZE };

/** Elements of one block of k (or v). */
export const pagedBlockLength = (s: AttentionShape, blockSize: number): number =>
  blockSize * s.headsKV * s.headDim;

/**
 * The fields of `pagedKV` (read once by the validator) checked against the shape, before the table entries (which need the
 * valid lengths): blockSize, blocksPerSeq, the table's type and length, seqK within the table's
 * reach, and numBlocks (given, or from `kLength`, the element count of k when the caller has it).
 */
export function readPagedKV(
  raw: Readonly<Record<(typeof PAGED_FIELDS)[number], unknown>>,
  shape: AttentionShape,
  support: PagedKVSupport | undefined,
  kLength: number | undefined,
): ResolvedPagedKV {
  if (support === undefined) {
    throw unsupported('pagedKV', 'this backend does not read paged KV caches');
  }
  const blockSize = raw.blockSize;
  if (!isPowerOfTwo(blockSize)) {
    throw invalidInput(
      'pagedKV.blockSize',
      `expected a power of two up to ${MAX_BLOCK_SIZE}, got ${describe(blockSize)}`,
    );
  }
  if (blockSize < support.minBlockSize || blockSize > support.maxBlockSize) {
    throw unsupported(
      'pagedKV.blockSize',
      `${blockSize} is not supported (powers of two from ${support.minBlockSize} to ${support.maxBlockSize})`,
    );
  }
  const blocksPerSeq = raw.blocksPerSeq;
  if (typeof blocksPerSeq !== 'number' || !Number.isInteger(blocksPerSeq) || blocksPerSeq < 1) {
    throw invalidInput('pagedKV.blocksPerSeq', `expected a positive integer, got ${describe(blocksPerSeq)}`);
  }
  if (shape.seqK > blocksPerSeq * blockSize) {
    throw invalidInput(
      'seqK',
      `${shape.seqK} keys do not fit in blocksPerSeq x blockSize = ${blocksPerSeq} x ${blockSize}`,
    );
  }
  const table = raw.blockTable;
  if (!(table instanceof Int32Array)) {
    throw invalidInput('pagedKV.blockTable', `expected an Int32Array, got ${describe(table)}`);
  }
  if (table.length !== shape.batch * blocksPerSeq) {
    throw invalidInput(
      'pagedKV.blockTable',
      `expected batch x blocksPerSeq = ${shape.batch * blocksPerSeq} entries, got ${table.length}`,
    );
  }
  const blockLength = pagedBlockLength(shape, blockSize);
  let numBlocks = raw.numBlocks;
  if (numBlocks === undefined && kLength !== undefined) {
    if (kLength % blockLength !== 0) {
      throw invalidInput(
        'k',
        `a paged cache holds whole blocks of blockSize x headsKV x headDim = ${blockLength} elements, got ${kLength}`,
      );
    }
    numBlocks = kLength / blockLength;
  }
  if (typeof numBlocks !== 'number' || !Number.isInteger(numBlocks) || numBlocks < 1) {
    throw invalidInput('pagedKV.numBlocks', `expected a positive integer, got ${describe(numBlocks)}`);
  }
  if (kLength !== undefined && kLength !== numBlocks * blockLength) {
    throw invalidInput(
      'k',
      `expected numBlocks x ${blockLength} = ${numBlocks * blockLength} elements, got ${kLength}`,
    );
  }
  // A copy: the caller's table may change while the call runs.
  return { blockSize, blocksPerSeq, blockTable: table.slice(), numBlocks };
}

/** Every table entry a row reads (the blocks holding its first `seqLensK[b]` keys) names a block. */
export function checkBlockTable(paged: ResolvedPagedKV, seqLensK: Int32Array): void {
  const { blockSize, blocksPerSeq, blockTable, numBlocks } = paged;
  for (let b = 0; b < seqLensK.length; b++) {
    const used = Math.ceil(seqLensK[b]! / blockSize);
    for (let i = 0; i < used; i++) {
      const block = blockTable[b * blocksPerSeq + i]!;
      if (block < 0 || block >= numBlocks) {
        throw invalidInput(
          `pagedKV.blockTable[${b * blocksPerSeq + i}]`,
          `block ${block} of batch row ${b} is outside [0, numBlocks = ${numBlocks})`,
        );
      }
    }
  }
}

/**
 * Element offset of key `j` of batch row `b` at KV head `hk` in k or v: dense
 * `[batch, seqK, headsKV, headDim]`, or through the block table of a paged cache.
 */
export function keyOffsets(
  input: AttentionShape & { readonly pagedKV?: ResolvedPagedKV | undefined },
): (b: number, j: number, hk: number) => number {
  const { headsKV, headDim, pagedKV } = input;
  if (!pagedKV) return (b, j, hk) => kvIndex(input, b, j, hk);
  const { blockSize, blocksPerSeq, blockTable } = pagedKV;
  return (b, j, hk) => {
    const block = blockTable[b * blocksPerSeq + Math.floor(j / blockSize)]!;
    return ((block * blockSize + (j % blockSize)) * headsKV + hk) * headDim;
  };
}

function isPowerOfTwo(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= 1 &&
    value <= MAX_BLOCK_SIZE &&
    (value & (value - 1)) === 0
  );
}
