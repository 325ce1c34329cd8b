// Scalar IEEE binary16 and bfloat16 conversions (round to nearest even, subnormals, Inf, NaN).
// The vector paths use F16C where the CPU has it; these serve the portable path and the tails.
#pragma once

#include <cstdint>
#include <cstring>

namespace fastattn {

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint32_t floatToBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bf16ToF32(uint16_t b) { return bitsToFloat(uint32_t(b) << 16); }

inline uint16_t f32ToBf16(float f) {
  const uint32_t x = floatToBits(f);
  if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x007fffffu) != 0) return uint16_t((x >> 16) | 0x0040u);
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline float f16ToF32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    const float magnitude = float(mant) * 5.9604644775390625e-8f;  // mant * 2^-24, exact
    return bitsToFloat(floatToBits(magnitude) | sign);
  }
  if (exp == 0x1f) return bitsToFloat(sign | 0x7f800000u | (mant << 13));
  return bitsToFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

inline uint16_t f32ToF16(float f) {
  const uint32_t x = floatToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exp = int32_t((x >> 23) & 0xffu);
  uint32_t mant = x & 0x007fffffu;
  if (exp == 0xff) return uint16_t(sign | 0x7c00u | (mant != 0 ? 0x0200u | (mant >> 13) : 0u));
  const int32_t e = exp - 127 + 15;
  if (e >= 0x1f) return uint16_t(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return uint16_t(sign);
    mant |= 0x00800000u;
    const uint32_t shift = uint32_t(14 - e);
    const uint32_t half = 1u << (shift - 1);
    const uint32_t rest = mant & ((1u << shift) - 1);
    uint32_t out = mant >> shift;
    if (rest > half || (rest == half && (out & 1u))) out += 1;
    return uint16_t(sign | out);
  }
  uint32_t out = (uint32_t(e) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (out & 1u))) out += 1;  // may carry into Inf: correct
  return uint16_t(sign | out);
}

}  // namespace fastattn
