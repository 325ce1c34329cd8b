import type { AttentionInput, ResolvedAttentionInput } from './attention.js';
import type { BackendCapabilities } from './backend.js';
import { type DType, isDType } from './dtype.js';
import { describeValue as describe, FastAttentionError, invalidInput, unsupported } from './errors.js';
import type { MaskSpec } from './mask/spec.js';
import {
  ALL_BLOCK_SIZES,
  checkBlockTable,
  PAGED_FIELDS,
  type PagedKV,
  pagedBlockLength,
  type ResolvedPagedKV,
  readPagedKV,
} from './paged.js';
import { type AttentionProblem, type AttentionShape, kvLength, qLength } from './shape.js';

const SHAPE_FIELDS = ['batch', 'seqQ', 'seqK', 'headsQ', 'headsKV', 'headDim'] as const;

/**
 * Largest size of one dimension: lengths travel as int32 to native code (and `seqLensK` is an
 * Int32Array), so `seqK = 2^31` could not even be described.
 */
export const MAX_DIMENSION = 2 ** 31 - 1;

/**
 * Largest element count of a tensor: keeps index math exact in doubles. Host arrays are smaller
 * anyway (their lengths are checked against the shape); device tensors can be far larger than 2^32
 * (K of 64 x 128K tokens x 8 heads x 128 is 2^33 elements), so no lower limit belongs here.
 */
const MAX_ELEMENTS = Number.MAX_SAFE_INTEGER;

/**
 * Largest |scale|: every backend computes `scale * log2(e) * q.k` in f32, so the folded factor
 * must itself be a finite f32 (about 2.36e38). Larger scales would turn every score infinite.
 */
export const MAX_SCALE = 3.4028234663852886e38 / Math.LOG2E;

/** The tensor-free part of an attention call: what timing models and planners need. */
export interface AttentionProblemInput<D extends DType = DType> extends AttentionShape {
  readonly dtype: D;
  readonly scale?: number;
  readonly seqLensK?: Int32Array;
  readonly mask?: MaskSpec;
  readonly pagedKV?: PagedKV;
}

/** A problem after validation: every default filled in. */
export interface ResolvedAttentionProblem<D extends DType = DType> extends AttentionProblemInput<D> {
  readonly scale: number;
  readonly seqLensK: Int32Array;
  readonly mask: MaskSpec;
  readonly pagedKV?: ResolvedPagedKV;
}

/**
 * Checks the shape, dtype, scale, valid lengths and mask of a call (everything but the tensors)
 * against the contract and, if given, a backend's capabilities, and fills in the defaults.
 * Each field is read exactly once (getters, proxies and prototype chains included) into a plain
 * object, which is what the caller must use from then on: nothing can change under it.
 * Throws a FastAttentionError naming the field: INVALID_INPUT for what the contract forbids,
 * UNSUPPORTED for valid input the backend cannot run. Allocates nothing proportional to the
 * claimed sizes before they are checked. `checkTensors`, if given, runs once the dtype and shape
 * are valid and before any default is filled in: where a backend checks its own tensors, k and v
 * against `kvElements` (a paged cache's size). `kLength`, k's element count where the caller holds
 * k, gives a paged cache its block count when `pagedKV.numBlocks` is left out.
 */
export function validateAttentionShape<D extends DType>(
  input: AttentionProblemInput<D>,
  capabilities?: BackendCapabilities,
  checkTensors?: (problem: AttentionProblem, kvElements: number) => void,
  kLength?: number,
): ResolvedAttentionProblem<D> {
  const raw = readProblem<D>(input);
  return resolveProblem<D>(raw, capabilities, kLength, checkTensors && ((kv) => checkTensors(raw, kv)));
}

/**
 * Checks an attention input against the contract (and, if given, a backend's capabilities) and
 * fills in the defaults: `validateAttentionShape` plus the tensors' array types and lengths,
 * which are checked before any default is allocated. Returns a plain snapshot of the input.
 */
export function validateAttentionInput<D extends DType>(
  input: AttentionInput<D>,
  capabilities?: BackendCapabilities,
): ResolvedAttentionInput<D> {
  const raw = readProblem<D>(input);
  const tensors = readInputFields(input, TENSOR_FIELDS) as Pick<AttentionInput<D>, 'q' | 'k' | 'v'>;
  // A paged cache's block count follows from k: an unusable k is refused before it is counted.
  if (raw.pagedKV !== undefined && !ArrayBuffer.isView(tensors.k) && isDType(raw.dtype)) {
    checkArray('k', tensors.k, raw.dtype, 0);
  }
  const kLength = ArrayBuffer.isView(tensors.k) ? (tensors.k as ArrayLike<unknown>).length : undefined;
  const problem = resolveProblem<D>(raw, capabilities, kLength, (kvElements) => {
    checkArray('q', tensors.q, raw.dtype, qLength(raw));
    checkArray('k', tensors.k, raw.dtype, kvElements);
    checkArray('v', tensors.v, raw.dtype, kvElements);
  });
  return { ...problem, ...tensors };
}

/**
 * The named fields of an input object, each read exactly once (getters, proxies and prototype
 * chains included) into a plain record. Backends with inputs of their own (device tensors) read
 * them with this and pass the problem fields to `validateAttentionShape`, so that nothing is read
 * twice. Throws INVALID_INPUT naming `input` (or `path`, for a nested object such as `pagedKV`) for
 * a non-object, or the field whose getter throws.
 */
export function readInputFields<K extends string>(
  input: unknown,
  fields: readonly K[],
  path?: string,
): Record<K, unknown> {
  if (typeof input !== 'object' || input === null) {
    throw path
      ? invalidInput(path, `expected an object, got ${describe(input)}`)
      : invalidInput('input', `expected an attention input object, got ${describe(input)}`);
  }
  const raw = {} as Record<K, unknown>;
  for (const field of fields) raw[field] = readField(input, field, path ? `${path}.${field}` : field);
  return raw;
}

const PROBLEM_FIELDS = [...SHAPE_FIELDS, 'dtype', 'scale', 'seqLensK', 'mask', 'pagedKV'] as const;
const TENSOR_FIELDS = ['q', 'k', 'v'] as const;

/** The fields of a problem, each read once; unvalidated. */
type RawProblem<D extends DType> = { -readonly [K in keyof AttentionProblemInput<D>]: unknown } & {
  dtype: D;
} & AttentionShape;

function readProblem<D extends DType>(input: unknown): RawProblem<D> {
  return readInputFields(input, PROBLEM_FIELDS) as unknown as RawProblem<D>;
}

function readField(input: unknown, field: string, path = field): unknown {
  try {
    return (input as Record<string, unknown>)[field];
  } catch (error) {
    throw new FastAttentionError('INVALID_INPUT', `${path}: reading it threw: ${String(error)}`, {
      field: path,
      cause: error,
    });
  }
}

/**
 * `kLength`: k's element count when the caller holds k (a paged cache's block count follows from
 * it); `checkTensors` gets the element count k and v must have.
 */
function resolveProblem<D extends DType>(
  raw: RawProblem<D>,
  capabilities: BackendCapabilities | undefined,
  kLength: number | undefined,
  checkTensors?: (kvElements: number) => void,
): ResolvedAttentionProblem<D> {
  const { dtype } = raw;
  if (!isDType(dtype)) throw invalidInput('dtype', `expected 'f32', 'f16' or 'bf16', got ${describe(dtype)}`);
  if (capabilities && !capabilities.dtypes.includes(dtype)) {
    throw unsupported('dtype', `'${dtype}' is not supported (supported: ${capabilities.dtypes.join(', ')})`);
  }
  for (const field of SHAPE_FIELDS) {
    const value: unknown = raw[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw invalidInput(field, `expected a positive integer, got ${describe(value)}`);
    }
    if (value > MAX_DIMENSION) {
      throw invalidInput(field, `${value} is larger than the maximum ${MAX_DIMENSION} (2^31 - 1)`);
    }
  }
  if (raw.headsQ % raw.headsKV !== 0) {
    throw invalidInput('headsKV', `headsQ (${raw.headsQ}) must be a multiple of headsKV (${raw.headsKV})`);
  }
  if (capabilities) checkHeadDim(raw.headDim, capabilities);
  if (qLength(raw) > MAX_ELEMENTS) throw invalidInput('q', 'the shape describes more than 2^53 elements');
  const paged =
    raw.pagedKV === undefined
      ? undefined
      : readPagedKV(
          readInputFields(raw.pagedKV, PAGED_FIELDS, 'pagedKV'),
          raw,
          capabilities ? capabilities.pagedKV : ALL_BLOCK_SIZES,
          kLength,
        );
  const kvElements = paged ? paged.numBlocks * pagedBlockLength(raw, paged.blockSize) : kvLength(raw);
  if (kvElements > MAX_ELEMENTS) throw invalidInput('k', 'the shape describes more than 2^53 elements');
  checkTensors?.(kvElements);

  const scale = raw.scale ?? 1 / Math.sqrt(raw.headDim);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) {
    throw invalidInput('scale', `expected a finite number, got ${describe(scale)}`);
  }
  if (Math.abs(scale) > MAX_SCALE) {
    throw invalidInput(
      'scale',
      `|${scale}| is larger than ${MAX_SCALE.toPrecision(4)}: scale * log2(e) overflows f32`,
    );
  }

  if (paged && raw.seqLensK === undefined) {
    throw invalidInput('seqLensK', 'a paged KV cache needs the valid key count of every batch row');
  }
  const seqLensK = resolveSeqLensK(raw.seqLensK, raw.batch, raw.seqK);
  if (paged) checkBlockTable(paged, seqLensK);
  const mask = readMask(raw.mask ?? { kind: 'none' });
  if (capabilities && !capabilities.masks.includes(mask.kind)) {
    throw unsupported(
      'mask.kind',
      `'${mask.kind}' is not supported (supported: ${capabilities.masks.join(', ')})`,
    );
  }
  return {
    dtype: dtype as D,
    batch: raw.batch,
    seqQ: raw.seqQ,
    seqK: raw.seqK,
    headsQ: raw.headsQ,
    headsKV: raw.headsKV,
    headDim: raw.headDim,
    scale,
    seqLensK,
    mask,
    ...(paged ? { pagedKV: paged } : {}),
  };
}

function resolveSeqLensK(value: unknown, batch: number, seqK: number): Int32Array {
  if (value === undefined) return new Int32Array(batch).fill(seqK);
  if (!(value instanceof Int32Array))
    throw invalidInput('seqLensK', `expected an Int32Array, got ${describe(value)}`);
  if (value.length !== batch) {
    throw invalidInput('seqLensK', `expected length batch = ${batch}, got ${value.length}`);
  }
  // A copy: the caller's array may change (or its buffer shrink) while the call runs.
  const lens = value.slice();
  for (let b = 0; b < lens.length; b++) {
    const lk = lens[b]!;
    if (lk < 0 || lk > seqK) throw invalidInput(`seqLensK[${b}]`, `${lk} is outside [0, seqK = ${seqK}]`);
  }
  return lens;
}

function checkHeadDim(headDim: number, capabilities: BackendCapabilities): void {
  const support = capabilities.headDims;
  if (support.kind === 'list' && !support.values.includes(headDim)) {
    throw unsupported('headDim', `${headDim} is not supported (supported: ${support.values.join(', ')})`);
  }
  if (support.kind === 'any' && support.max !== undefined && headDim > support.max) {
    throw unsupported('headDim', `${headDim} is larger than the maximum ${support.max}`);
  }
}

function checkArray(field: 'q' | 'k' | 'v', array: unknown, dtype: DType, expected: number): void {
  const wanted = dtype === 'f32' ? Float32Array : Uint16Array;
  if (!(array instanceof wanted)) {
    throw invalidInput(field, `dtype '${dtype}' needs a ${wanted.name}, got ${describe(array)}`);
  }
  if (array.length !== expected) {
    throw invalidInput(field, `expected ${expected} elements for the given shape, got ${array.length}`);
  }
}

/**
 * Reads the mask's fields once into a fresh object; errors name `<path>.kind`, `<path>.left`, ...
 * (an attention op's mask is checked by the same rule as a call's).
 */
export function readMask(mask: unknown, path = 'mask'): MaskSpec {
  if (typeof mask !== 'object' || mask === null)
    throw invalidInput(path, `expected an object, got ${describe(mask)}`);
  const kind = readField(mask, 'kind', `${path}.kind`);
  if (kind === 'none' || kind === 'causal') return { kind };
  if (kind !== 'window') {
    throw invalidInput(`${path}.kind`, `expected 'none', 'causal' or 'window', got ${describe(kind)}`);
  }
  const side = (name: 'left' | 'right'): number => {
    const value = readField(mask, name, `${path}.${name}`);
    const ok =
      typeof value === 'number' &&
      (value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && value >= 0));
    if (!ok)
      throw invalidInput(
        `${path}.${name}`,
        `expected a non-negative integer or Infinity, got ${describe(value)}`,
      );
    return value;
  };
  return { kind, left: side('left'), right: side('right') };
}
