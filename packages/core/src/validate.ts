import type { AttentionInput, ResolvedAttentionInput } from './attention.js';
import type { BackendCapabilities } from './backend.js';
import { type DType, isDType } from './dtype.js';
import { invalidInput, unsupported } from './errors.js';
import type { MaskSpec } from './mask/spec.js';
import { type AttentionShape, kvLength, qLength } from './shape.js';

const SHAPE_FIELDS = ['batch', 'seqQ', 'seqK', 'headsQ', 'headsKV', 'headDim'] as const;

/**
 * Largest element count of a tensor: keeps index math exact in doubles. Host arrays are smaller
 * anyway (their lengths are checked against the shape); device tensors can be far larger than 2^32
 * (K of 64 x 128K tokens x 8 heads x 128 is 2^33 elements), so no lower limit belongs here.
 */
const MAX_ELEMENTS = Number.MAX_SAFE_INTEGER;

/** The tensor-free part of an attention call: what timing models and planners need. */
export interface AttentionProblemInput<D extends DType = DType> extends AttentionShape {
  readonly dtype: D;
  readonly scale?: number;
  readonly seqLensK?: Int32Array;
  readonly mask?: MaskSpec;
}

/** A problem after validation: every default filled in. */
export interface ResolvedAttentionProblem<D extends DType = DType> extends AttentionProblemInput<D> {
  readonly scale: number;
  readonly seqLensK: Int32Array;
  readonly mask: MaskSpec;
}

/**
 * Checks the shape, dtype, scale, valid lengths and mask of a call (everything but the tensors)
 * against the contract and, if given, a backend's capabilities, and fills in the defaults.
 * Throws a FastAttentionError naming the field: INVALID_INPUT for what the contract forbids,
 * UNSUPPORTED for valid input the backend cannot run.
 */
export function validateAttentionShape<D extends DType>(
  input: AttentionProblemInput<D>,
  capabilities?: BackendCapabilities,
): ResolvedAttentionProblem<D> {
  if (typeof input !== 'object' || input === null) throw invalidInput('input', 'expected an object');
  const { dtype } = input;
  if (!isDType(dtype)) throw invalidInput('dtype', `expected 'f32', 'f16' or 'bf16', got ${describe(dtype)}`);
  if (capabilities && !capabilities.dtypes.includes(dtype)) {
    throw unsupported('dtype', `'${dtype}' is not supported (supported: ${capabilities.dtypes.join(', ')})`);
  }
  for (const field of SHAPE_FIELDS) {
    const value: unknown = input[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw invalidInput(field, `expected a positive integer, got ${describe(value)}`);
    }
  }
  if (input.headsQ % input.headsKV !== 0) {
    throw invalidInput(
      'headsKV',
      `headsQ (${input.headsQ}) must be a multiple of headsKV (${input.headsKV})`,
    );
  }
  if (capabilities) checkHeadDim(input.headDim, capabilities);
  if (qLength(input) > MAX_ELEMENTS || kvLength(input) > MAX_ELEMENTS) {
    throw invalidInput('q', 'the tensors have more than 2^53 elements');
  }

  const scale = input.scale ?? 1 / Math.sqrt(input.headDim);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) {
    throw invalidInput('scale', `expected a finite number, got ${describe(scale)}`);
  }

  const seqLensK = input.seqLensK ?? new Int32Array(input.batch).fill(input.seqK);
  if (!(seqLensK instanceof Int32Array)) throw invalidInput('seqLensK', 'expected an Int32Array');
  if (seqLensK.length !== input.batch) {
    throw invalidInput('seqLensK', `expected length batch = ${input.batch}, got ${seqLensK.length}`);
  }
  for (let b = 0; b < seqLensK.length; b++) {
    const lk = seqLensK[b]!;
    if (lk < 0 || lk > input.seqK) {
      throw invalidInput(`seqLensK[${b}]`, `${lk} is outside [0, seqK = ${input.seqK}]`);
    }
  }

  const mask = checkMask(input.mask ?? { kind: 'none' });
  if (capabilities && !capabilities.masks.includes(mask.kind)) {
    throw unsupported(
      'mask.kind',
      `'${mask.kind}' is not supported (supported: ${capabilities.masks.join(', ')})`,
    );
  }
  return { ...input, scale, seqLensK, mask };
}

/**
 * Checks an attention input against the contract (and, if given, a backend's capabilities) and
 * fills in the defaults: `validateAttentionShape` plus the tensors' array types and lengths.
 */
export function validateAttentionInput<D extends DType>(
  input: AttentionInput<D>,
  capabilities?: BackendCapabilities,
): ResolvedAttentionInput<D> {
  const problem = validateAttentionShape(input, capabilities);
  checkArray('q', input.q, problem.dtype, qLength(problem));
  checkArray('k', input.k, problem.dtype, kvLength(problem));
  checkArray('v', input.v, problem.dtype, kvLength(problem));
  return { ...input, ...problem };
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

function checkMask(mask: unknown): MaskSpec {
  if (typeof mask !== 'object' || mask === null) throw invalidInput('mask', 'expected an object');
  const kind = (mask as { kind?: unknown }).kind;
  if (kind === 'none' || kind === 'causal') return mask as MaskSpec;
  if (kind !== 'window') {
    throw invalidInput('mask.kind', `expected 'none', 'causal' or 'window', got ${describe(kind)}`);
  }
  for (const side of ['left', 'right'] as const) {
    const value: unknown = (mask as Record<string, unknown>)[side];
    const ok =
      typeof value === 'number' &&
      (value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && value >= 0));
    if (!ok)
      throw invalidInput(
        `mask.${side}`,
        `expected a non-negative integer or Infinity, got ${describe(value)}`,
      );
  }
  return mask as MaskSpec;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  if (typeof value === 'string') return `'${value}'`;
  return String(value);
}
