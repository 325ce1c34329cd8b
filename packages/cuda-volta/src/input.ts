import {
  ALL_BLOCK_SIZES,
  type AttentionProblemInput,
  type AttentionShape,
  type BackendCapabilities,
  FastAttentionError,
  lseLength,
  MASK_KINDS,
  type MaskSpec,
  type PagedKV,
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
  pagedKV: ALL_BLOCK_SIZES,
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
  'pagedKV',
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
  // A paged cache's table is checked against the valid lengths on the host: they must be there.
  if (deviceLens && raw.pagedKV !== undefined) {
    throw new FastAttentionError(
      'UNSUPPORTED',
      'seqLensK: a paged KV cache needs seqLensK on the host (an Int32Array): its block table is checked against it',
      { field: 'seqLensK' },
    );
  }
  // Core validates the problem; the tensors are checked against its shape before core fills in
  // any default (a default seqLensK is `batch` entries: never for an absurd claimed batch). A
  // paged cache's block count follows from k's length.
  const problem = validateAttentionShape(
    { ...raw, seqLensK: deviceLens ? undefined : raw.seqLensK } as AttentionProblemInput<CudaDType>,
    CAPABILITIES,
    (shape, kvElements) => checkTensors(raw, shape, kvElements, deviceLens),
    raw.k instanceof DeviceTensor ? raw.k.length : undefined,
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

/** The device tensors of an input against its shape (k and v: kvElements, dense or paged). */
function checkTensors(
  raw: Record<string, unknown>,
  shape: AttentionShape,
  kvElements: number,
  deviceLens: DeviceTensor<'i32'> | undefined,
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
  expect('k', raw.dtype, kvElements, false);
  expect('v', raw.dtype, kvElements, false);
  expect('out', raw.dtype, qLength(shape), true);
  expect('lse', 'f32', lseLength(shape), true);
  if (deviceLens) expect('seqLensK', 'i32', shape.batch, false);
}
