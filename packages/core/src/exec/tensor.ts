import type { DType } from '../dtype.js';
import { FastAttentionError, invalidInput } from '../errors.js';

/** Element types of execution tensors: the attention dtypes, and 32-bit integers (tokens, positions, tables). */
export type TensorDType = DType | 'i32';

export const TENSOR_DTYPES: readonly TensorDType[] = ['f32', 'f16', 'bf16', 'i32'];

/** The host array that carries a tensor dtype (f16 and bf16 as raw bits). */
export type TensorArrayOf<T extends TensorDType> = T extends 'f32'
  ? Float32Array
  : T extends 'i32'
    ? Int32Array
    : Uint16Array;

export type TensorArray = Float32Array | Int32Array | Uint16Array;

/** Where a tensor's storage lives: the backend's device, or page-locked host memory it copies from. */
export type MemoryKind = 'device' | 'pinned';

/** A host array of the dtype over existing memory, with no copy (a pinned tensor's buffer). */
export function tensorArrayOver<T extends TensorDType>(
  dtype: T,
  buffer: ArrayBuffer,
  byteOffset: number,
  length: number,
): TensorArrayOf<T> {
  const type = { f32: Float32Array, i32: Int32Array, f16: Uint16Array, bf16: Uint16Array }[dtype];
  return new type(buffer, byteOffset, length) as TensorArrayOf<T>;
}

/** Checks that a tensor can be viewed from the host (`Executor.hostView`): pinned and dense. */
export function checkHostViewable(t: Tensor, field = 'tensor'): void {
  if (t.memory !== 'pinned') throw invalidInput(field, `expected a pinned tensor, got ${t.memory} memory`);
  if (!isContiguous(t))
    throw invalidInput(field, 'expected a dense tensor (a view with gaps has no one host array)');
}

export function tensorBytesOf(dtype: TensorDType): 2 | 4 {
  return dtype === 'f16' || dtype === 'bf16' ? 2 : 4;
}

export function allocateTensorArray<T extends TensorDType>(dtype: T, length: number): TensorArrayOf<T> {
  const array =
    dtype === 'f32'
      ? new Float32Array(length)
      : dtype === 'i32'
        ? new Int32Array(length)
        : new Uint16Array(length);
  return array as TensorArrayOf<T>;
}

/**
 * How a tensor's elements sit in its storage, in elements: element (i0, i1, ...) is at
 * `offset + i0 * strides[0] + i1 * strides[1] + ...`. A view changes the layout, never the storage.
 */
export interface TensorLayout {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

/**
 * A tensor of the execution contract: a dtype and a layout over storage a backend owns. Ops read
 * and write tensors of the backend that made them; host code reads and writes them only through
 * the executor (`read`, `write`), which orders the copies on a stream.
 */
export interface Tensor<T extends TensorDType = TensorDType> extends TensorLayout, Disposable {
  readonly dtype: T;
  readonly memory: MemoryKind;
  /** Elements in this view. */
  readonly length: number;
  /** True once this tensor or the one it views was disposed. */
  readonly disposed: boolean;
  /** A view of the same storage: a new layout, checked against the storage's bounds. */
  view(layout: ViewSpec): Tensor<T>;
  /** True when `other` views the same storage (an op's aliasing rules are about storage). */
  sharesStorage(other: Tensor): boolean;
  /** Frees the storage (a view: only marks the view disposed). Safe to call twice. */
  dispose(): void;
}

/** A view: a new shape over the same elements (contiguous tensors), or an explicit layout. */
export type ViewSpec =
  | { readonly shape: readonly number[] }
  | { readonly shape: readonly number[]; readonly strides: readonly number[]; readonly offset: number };

/** Row-major strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** True when the layout covers one dense row-major run of its storage. */
export function isContiguous(layout: TensorLayout): boolean {
  const want = contiguousStrides(layout.shape);
  return layout.shape.every((d, i) => d === 1 || layout.strides[i] === want[i]);
}

/** A layout as a matrix: `rows` rows of `cols` dense elements, row r at offset + r * rowStride. */
export interface MatrixLayout {
  readonly rows: number;
  readonly cols: number;
  readonly rowStride: number;
}

/**
 * The layout as a [rows, cols] matrix: rows are its first `rowDims` dims, which must collapse to
 * one stride, and the rest must be dense. undefined when the layout is not one (a transpose, say),
 * so a backend knows when to go through a dense copy.
 */
export function matrixLayout(layout: TensorLayout, rowDims: number): MatrixLayout | undefined {
  const { shape, strides } = layout;
  let cols = 1;
  for (let d = shape.length - 1; d >= rowDims; d--) {
    if (shape[d]! > 1 && strides[d] !== cols) return undefined;
    cols *= shape[d]!;
  }
  let rows = 1;
  let rowStride = cols;
  let outer: number | undefined;
  for (let d = rowDims - 1; d >= 0; d--) {
    if (shape[d]! > 1) {
      if (outer !== undefined && strides[d] !== outer) return undefined;
      if (outer === undefined) rowStride = strides[d]!;
      outer = strides[d]! * shape[d]!;
    }
    rows *= shape[d]!;
  }
  return { rows, cols, rowStride };
}

/**
 * Checks a shape before anything is allocated: non-negative safe integers whose product, in bytes,
 * is a safe integer. Returns a frozen copy.
 */
export function checkShape(shape: unknown, dtype: TensorDType, field = 'shape'): readonly number[] {
  if (!Array.isArray(shape)) throw invalidInput(field, `expected an array of sizes, got ${typeof shape}`);
  const dims = [...(shape as unknown[])];
  dims.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || (d as number) < 0) {
      throw invalidInput(`${field}[${i}]`, `expected a non-negative integer, got ${String(d)}`);
    }
  });
  const bytes = elementCount(dims as number[]) * tensorBytesOf(dtype);
  if (!Number.isSafeInteger(bytes))
    throw invalidInput(field, `${dims.join(' x ')} elements exceed 2^53 bytes`);
  return Object.freeze(dims as number[]);
}

/**
 * The layout of a view of `base` over storage of `storageLength` elements: a reshape of a
 * contiguous tensor, or an explicit layout every element of which lies inside the storage.
 */
export function viewLayout(
  base: TensorLayout,
  storageLength: number,
  spec: ViewSpec,
  dtype: TensorDType,
): TensorLayout {
  const shape = checkShape(spec.shape, dtype, 'view.shape');
  if (!('strides' in spec)) {
    if (!isContiguous(base))
      throw invalidInput('view.shape', 'a reshape needs a contiguous tensor; give strides');
    if (elementCount(shape) !== elementCount(base.shape)) {
      throw invalidInput(
        'view.shape',
        `${shape.join(' x ')} does not hold the ${elementCount(base.shape)} elements`,
      );
    }
    return { shape, strides: contiguousStrides(shape), offset: base.offset };
  }
  const { strides, offset } = spec;
  if (!Array.isArray(strides) || strides.length !== shape.length) {
    throw invalidInput('view.strides', `expected ${shape.length} strides`);
  }
  strides.forEach((s, i) => {
    if (!Number.isSafeInteger(s) || s < 0)
      throw invalidInput(`view.strides[${i}]`, `expected a non-negative integer, got ${String(s)}`);
  });
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw invalidInput('view.offset', `expected a non-negative integer, got ${String(offset)}`);
  if (elementCount(shape) > 0) {
    const last = shape.reduce((at, d, i) => at + (d - 1) * strides[i]!, offset);
    if (last >= storageLength) {
      throw invalidInput('view', `reaches element ${last} of a storage of ${storageLength}`);
    }
  }
  return { shape, strides: Object.freeze([...strides]), offset };
}

/** Checks that `data` is the tensor's host array type and length (INVALID_INPUT naming `data`). */
export function checkTensorData(t: Tensor, data: unknown): void {
  const want = allocateTensorArray(t.dtype, 0).constructor as { new (n: number): TensorArray; name: string };
  if (!(data instanceof want) || (data as TensorArray).length !== t.length) {
    throw invalidInput('data', `expected a ${want.name} of ${t.length} elements`);
  }
}

/** Throws DISPOSED naming the field when an op or a copy meets a disposed tensor. */
export function checkAlive(tensor: Tensor, field: string): void {
  if (tensor.disposed)
    throw new FastAttentionError('DISPOSED', `${field}: the tensor was disposed`, { field });
}
