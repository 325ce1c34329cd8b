import {
  type AttentionProblemInput,
  type AttentionShape,
  type BackendCapabilities,
  FastAttentionError,
  kvLength,
  lseLength,
  MASK_KINDS,
  MAX_BLOCK_SIZE,
  type MaskSpec,
  type PagedKV,
  pagedBlockLength,
  qLength,
  type ResolvedAttentionProblem,
  readInputFields,
  validateAttentionShape,
} from '@fastattention/core';
import { DeviceTensor } from './tensor.js';

/** Storage dtypes the CUDA kernels run (f32 attention is the CPU backend's). */
export type CudaDType = 'f16' | 'bf16';

const HEAD_DIMS = [64, 80, 96, 128, 256];

/** What the kernels run: every input is checked against this before any native code. */
export const CAPABILITIES: BackendCapabilities = {
  dtypes: ['f16', 'bf16'],
  headDims: { kind: 'list', values: HEAD_DIMS },
  masks: MASK_KINDS,
  // Every path reads each key row through the table (a tile may span cache blocks).
  pagedKV: { minBlockSize: 1, maxBlockSize: MAX_BLOCK_SIZE },
};

/** Attention on device tensors: same contract as `attention()`, without host copies. */
export interface DeviceAttentionInput extends AttentionShape {
  readonly dtype: CudaDType;
  readonly q: DeviceTensor;
  readonly k: DeviceTensor;
  readonly v: DeviceTensor;
  readonly scale?: number;
  /** Valid keys per batch row, on the host or already on the device. */
  readonly seqLensK?: Int32Array | DeviceTensor<'i32'>;
  readonly mask?: MaskSpec;
  /**
   * k and v are a paged cache, [numBlocks, blockSize, headsKV, headDim] (numBlocks from k's length),
   * read through a host block table that is checked and uploaded with the call.
   */
  readonly pagedKV?: PagedKV;
  /** Reused outputs (else allocated): out like q, lse f32 [batch, headsQ, seqQ]. */
  readonly out?: DeviceTensor;
  readonly lse?: DeviceTensor<'f32'>;
}

/**
 * A device input after validation: each field read once from the caller's object, defaults
 * filled in. `seqLensK` is a device tensor, a host copy, or undefined (every row has seqK keys).
 */
export interface ResolvedDeviceInput extends Omit<ResolvedAttentionProblem, 'dtype' | 'seqLensK'> {
  readonly dtype: CudaDType;
  readonly q: DeviceTensor;
  readonly k: DeviceTensor;
  readonly v: DeviceTensor;
  readonly seqLensK: Int32Array | DeviceTensor<'i32'> | undefined;
  readonly out: DeviceTensor | undefined;
  readonly lse: DeviceTensor<'f32'> | undefined;
}

const DEVICE_FIELDS = [
  'batch',
  'seqQ',
  'seqK',
  'headsQ',
  'headsKV',
  'headDim',
  'dtype',
  'scale',
  'seqLensK',
  'mask',
  'pagedKV', // read so that core refuses it (UNSUPPORTED) instead of the field being ignored
  'q',
  'k',
  'v',
  'out',
  'lse',
] as const;

/**
 * Reads each field of a device input once (getters run once; the caller's object is not read
 * again), checks the tensors against the shape, then the shape by core's rules. The tensor sizes
 * come first where the shape is plausible: a claimed `batch: 2**28` against small tensors is
 * refused before core fills in a default seqLensK of `batch` entries.
 */
export function resolveDeviceInput(input: DeviceAttentionInput): ResolvedDeviceInput {
  const raw = readInputFields(input, DEVICE_FIELDS);
  const deviceLens = raw.seqLensK instanceof DeviceTensor ? (raw.seqLensK as DeviceTensor<'i32'>) : undefined;
  // Core validates the problem; the tensors are checked against its shape before core fills in
  // any default (a default seqLensK is `batch` entries: never for an absurd claimed batch).
  const pagedKV = withBlockCount(raw);
  const problem = validateAttentionShape(
    { ...raw, seqLensK: deviceLens ? undefined : raw.seqLensK, pagedKV } as AttentionProblemInput<CudaDType>,
    CAPABILITIES,
    (shape) => checkTensors(raw, shape, deviceLens, pagedKV),
  );
  return {
    ...problem,
    dtype: problem.dtype as CudaDType,
    q: raw.q as DeviceTensor,
    k: raw.k as DeviceTensor,
    v: raw.v as DeviceTensor,
    out: raw.out as DeviceTensor | undefined,
    lse: raw.lse as DeviceTensor<'f32'> | undefined,
    seqLensK: deviceLens ?? (raw.seqLensK === undefined ? undefined : problem.seqLensK),
  };
}

/**
 * A device input's `pagedKV`, its fields read once, with numBlocks from k's length (core checks the
 * rest). A k whose length is not a whole number of blocks is refused here, naming k.
 */
function withBlockCount(raw: Record<string, unknown>): PagedKV | undefined {
  if (typeof raw.pagedKV !== 'object' || raw.pagedKV === null) return raw.pagedKV as PagedKV | undefined;
  const fields = readInputFields(raw.pagedKV, [
    'blockSize',
    'blockTable',
    'blocksPerSeq',
    'numBlocks',
  ] as const);
  const { headsKV, headDim, k } = raw;
  if (
    fields.numBlocks === undefined &&
    k instanceof DeviceTensor &&
    typeof fields.blockSize === 'number' &&
    typeof headsKV === 'number' &&
    typeof headDim === 'number'
  ) {
    const blockLength = fields.blockSize * headsKV * headDim;
    if (!(blockLength > 0) || k.length % blockLength !== 0) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `k: a paged cache holds whole blocks of blockSize x headsKV x headDim = ${blockLength} elements, got ${k.length}`,
        { field: 'k' },
      );
    }
    fields.numBlocks = k.length / blockLength;
  }
  return fields as unknown as PagedKV;
}

/** The device tensors of an input against its shape: DeviceTensors of the dtype and length. */
function checkTensors(
  raw: Record<string, unknown>,
  shape: AttentionShape,
  deviceLens: DeviceTensor<'i32'> | undefined,
  pagedKV: PagedKV | undefined, // checked by core by now
): void {
  const expect = (field: string, dtype: unknown, length: number, optional: boolean): void => {
    const t = raw[field];
    if (t === undefined && optional) return;
    if (!(t instanceof DeviceTensor)) {
      throw new FastAttentionError('INVALID_INPUT', `${field}: expected a DeviceTensor`, { field });
    }
    if (t.dtype !== dtype || t.length !== length) {
      throw new FastAttentionError(
        'INVALID_INPUT',
        `${field}: expected a ${String(dtype)} tensor of ${length} elements, got ${t.dtype} x ${t.length}`,
        { field },
      );
    }
  };
  expect('q', raw.dtype, qLength(shape), false);
  const kvElements = pagedKV
    ? (pagedKV.numBlocks ?? 0) * pagedBlockLength(shape, pagedKV.blockSize)
    : kvLength(shape);
  expect('k', raw.dtype, kvElements, false);
  expect('v', raw.dtype, kvElements, false);
  expect('out', raw.dtype, qLength(shape), true);
  expect('lse', 'f32', lseLength(shape), true);
  if (deviceLens) expect('seqLensK', 'i32', shape.batch, false);
}
