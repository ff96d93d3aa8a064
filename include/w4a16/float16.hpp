// 16-bit float conversions used at the API boundary, by the reference kernel and by packing.
//
// fp16 (IEEE binary16) and bf16 values travel as raw uint16_t bits. Every narrowing conversion
// rounds to nearest, ties to even; overflow goes to +-inf as IEEE 754 says; NaN stays NaN (quiet).
// The double -> 16-bit conversions round exactly once: they first round to fp32 with
// round-to-odd, which is safe because fp32 keeps more than two extra bits (a classic result:
// round-to-odd at p+2 bits followed by round-to-nearest at p bits equals one direct rounding).
#pragma once

#include <bit>
#include <cstdint>

namespace w4a16 {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    // Subnormal: mantissa * 2^-24 is exact in fp32.
    const float magnitude = float(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

inline float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return uint16_t(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));  // quiet NaN
  if (ax >= 0x477FF000u) return uint16_t(sign | 0x7C00u);                         // >= 65520 rounds to inf
  if (ax >= 0x38800000u) {                                                        // normal fp16 (>= 2^-14)
    const uint32_t odd = (ax >> 13) & 1u;
    ax = ax - 0x38000000u + 0xFFFu + odd;  // rebias exponent 127 -> 15, round half to even
    return uint16_t(sign | (ax >> 13));
  }
  // Subnormal or zero: adding 0.5 makes the fp32 ulp 2^-24, the fp16 subnormal step, so the
  // hardware add performs the rounding; the mantissa bits are then the fp16 code.
  const float magnitude = std::bit_cast<float>(ax) + 0.5f;
  return uint16_t(sign | (std::bit_cast<uint32_t>(magnitude) - 0x3F000000u));
}

inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x0040u);  // quiet NaN
  const uint32_t odd = (x >> 16) & 1u;
  return uint16_t((x + 0x7FFFu + odd) >> 16);
}

// Rounds a double to fp32 with round-to-odd: truncate, then set the last bit if inexact.
inline float f64_to_f32_round_odd(double d) {
  float f = float(d);
  if (double(f) == d || f != f) return f;
  uint32_t bits = std::bit_cast<uint32_t>(f);
  const bool rounded_away = (d > 0) ? (double(f) > d) : (double(f) < d);
  if (rounded_away) bits -= 1;  // step back toward zero (also turns +-inf into +-FLT_MAX)
  return std::bit_cast<float>(bits | 1u);
}

inline uint16_t f64_to_f16(double d) { return f32_to_f16(f64_to_f32_round_odd(d)); }
inline uint16_t f64_to_bf16(double d) { return f32_to_bf16(f64_to_f32_round_odd(d)); }

}  // namespace w4a16
