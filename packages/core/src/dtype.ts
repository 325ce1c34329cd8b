/** Storage types of the contract. f16 and bf16 travel as raw bits in a Uint16Array. */
export type DType = 'f32' | 'f16' | 'bf16';

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

/** The host array that carries a dtype. */
export type ArrayOf<D extends DType> = D extends 'f32' ? Float32Array : Uint16Array;

export type HostArray = Float32Array | Uint16Array;

export function isDType(value: unknown): value is DType {
  return value === 'f32' || value === 'f16' || value === 'bf16';
}

export function bytesOf(dtype: DType): 2 | 4 {
  return dtype === 'f32' ? 4 : 2;
}

export function allocate<D extends DType>(dtype: D, length: number): ArrayOf<D> {
  return (dtype === 'f32' ? new Float32Array(length) : new Uint16Array(length)) as ArrayOf<D>;
}
