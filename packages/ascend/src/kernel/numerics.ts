import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, type HostArray } from '@fastattention/core';

/** The storage types the Cube multiplies: 16-bit operands, f32 accumulation. */
export type CubeDType = 'f16' | 'bf16';

/** Rounds a value to the 16-bit storage type (what a Vector cast before a Cube operand does). */
export function roundTo(dtype: CubeDType): (x: number) => number {
  return dtype === 'f16' ? (x) => f16ToF32(f32ToF16(x)) : (x) => bf16ToF32(f32ToBf16(x));
}

/** Decodes raw 16-bit storage into its exact values (every f16/bf16 value is exact in f32). */
export function decode(data: HostArray, dtype: CubeDType): Float32Array {
  const out = new Float32Array(data.length);
  const f = dtype === 'f16' ? f16ToF32 : bf16ToF32;
  for (let i = 0; i < data.length; i++) out[i] = f(data[i]!);
  return out;
}

/** Encodes f32 values into the storage type. */
export function encode(values: Float32Array, dtype: CubeDType): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = dtype === 'f16' ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < values.length; i++) out[i] = f(values[i]!);
  return out;
}

const fround = Math.fround;

/**
 * The Cube's `C = A Bᵀ` on 16-bit operands into f32: each product of two 16-bit values is exact in
 * f32 (11 + 11 significant bits), and every accumulation step rounds to f32 (Math.fround), as the
 * L0C accumulator does. Rows of A and B are `n` values at `aOff + i * aStride`, `bOff + j * bStride`.
 */
export function cubeDot(a: Float32Array, aOff: number, b: Float32Array, bOff: number, n: number): number {
  let acc = 0;
  for (let e = 0; e < n; e++) acc = fround(acc + a[aOff + e]! * b[bOff + e]!);
  return acc;
}

/**
 * The Cube's `C += P V` for one row of P: `acc[e] += sum_c p[c] * v[c, e]`, accumulated in f32.
 * `p` holds 16-bit values; row `c` of `v` is `d` values at `vRow(c)` (a dense or paged cache).
 */
export function cubeRowTimesMatrix(
  p: Float32Array,
  pOff: number,
  cols: number,
  v: Float32Array,
  vRow: (c: number) => number,
  acc: Float32Array,
  accOff: number,
  d: number,
): void {
  for (let c = 0; c < cols; c++) {
    const w = p[pOff + c]!;
    // A zero weight is a masked (or underflowed) key: skipping it leaves the f32 sum unchanged and
    // keeps a masked key's garbage V out of the row (0 * NaN and 0 * Inf are NaN).
    if (w === 0) continue;
    const row = vRow(c);
    for (let e = 0; e < d; e++) acc[accOff + e] = fround(acc[accOff + e]! + w * v[row + e]!);
  }
}
