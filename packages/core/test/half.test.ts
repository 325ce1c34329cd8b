import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../src/index.js';
import { randomSeed, rng } from './helpers.js';

const f32 = (x: number) => Math.fround(x);

/** Nearest representable value by brute force over a sorted table (ties to the even bit pattern). */
function nearestBits(x: number, decode: (b: number) => number): number {
  let best = -1;
  let bestErr = Number.POSITIVE_INFINITY;
  for (let b = 0; b < 0x10000; b++) {
    const v = decode(b);
    if (!Number.isFinite(v) || (v === 0 && 1 / v < 0 && x >= 0) || (v === 0 && 1 / v > 0 && x < 0)) continue;
    const err = Math.abs(v - x);
    if (err < bestErr || (err === bestErr && (b & 1) === 0)) {
      best = b;
      bestErr = err;
    }
  }
  return best;
}

describe('f16 conversion', () => {
  it('round-trips every finite bit pattern and keeps NaN and infinities', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = f16ToF32(b);
      if (Number.isNaN(v)) expect(Number.isNaN(f16ToF32(f32ToF16(v)))).toBe(true);
      else expect(f32ToF16(v)).toBe(b);
    }
  });

  it('rounds to nearest even, including subnormals, and overflows to infinity', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie: down to even
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: up to even
    expect(f32ToF16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie with zero: to even
    expect(f32ToF16(1.5 * 2 ** -25)).toBe(0x0001);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00); // rounds up past the largest finite
    expect(f32ToF16(-1e9)).toBe(0xfc00);
    expect(f32ToF16(-0)).toBe(0x8000);
  });

  it('matches a brute-force nearest search on random values', () => {
    const rand = rng(randomSeed());
    for (let t = 0; t < 40; t++) {
      const x = f32((rand() - 0.5) * 2 ** Math.floor(rand() * 40 - 26));
      expect(f32ToF16(x), `x = ${x}`).toBe(nearestBits(x, f16ToF32));
    }
  });
});

describe('bf16 conversion', () => {
  it('round-trips every finite bit pattern and keeps NaN', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = bf16ToF32(b);
      if (Number.isNaN(v)) expect(Number.isNaN(bf16ToF32(f32ToBf16(v)))).toBe(true);
      else expect(f32ToBf16(v)).toBe(b);
    }
  });

  it('rounds to nearest even and matches a brute-force search', () => {
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16(3.4e38)).toBe(0x7f80); // overflow
    const rand = rng(randomSeed());
    for (let t = 0; t < 40; t++) {
      const x = f32((rand() - 0.5) * 2 ** Math.floor(rand() * 200 - 100));
      expect(f32ToBf16(x), `x = ${x}`).toBe(nearestBits(x, bf16ToF32));
    }
  });
});
