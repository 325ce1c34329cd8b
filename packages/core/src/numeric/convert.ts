import { type ArrayOf, allocate, type DType, type HostArray } from '../dtype.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './half.js';

/** Decodes a host array of `dtype` into float64 values. */
export function toFloat64(data: HostArray, dtype: DType): Float64Array {
  const out = new Float64Array(data.length);
  if (dtype === 'f32') {
    out.set(data);
  } else {
    const decode = dtype === 'f16' ? f16ToF32 : bf16ToF32;
    for (let i = 0; i < data.length; i++) out[i] = decode(data[i]!);
  }
  return out;
}

/** Decodes a host array of `dtype` into float32 values. */
export function toFloat32(data: HostArray, dtype: DType): Float32Array {
  if (dtype === 'f32') return Float32Array.from(data);
  const out = new Float32Array(data.length);
  const decode = dtype === 'f16' ? f16ToF32 : bf16ToF32;
  for (let i = 0; i < data.length; i++) out[i] = decode(data[i]!);
  return out;
}

/** Encodes numbers into a host array of `dtype` (round to nearest even). */
export function fromNumbers<D extends DType>(values: ArrayLike<number>, dtype: D): ArrayOf<D> {
  const out = allocate(dtype, values.length);
  if (dtype === 'f32') {
    (out as Float32Array).set(values);
  } else {
    const encode = dtype === 'f16' ? f32ToF16 : f32ToBf16;
    for (let i = 0; i < values.length; i++) out[i] = encode(values[i]!);
  }
  return out;
}
