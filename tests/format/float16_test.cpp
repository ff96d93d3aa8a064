// fp16/bf16 conversions: exhaustive round trips and the single-rounding guarantee from double.
#include "w4a16/float16.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace w4a16 {
namespace {

TEST(Float16, EveryFp16RoundTripsThroughFp32) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float f = f16_to_f32(uint16_t(bits));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << bits;
      continue;
    }
    EXPECT_EQ(f32_to_f16(f), bits) << std::hex << bits;
    EXPECT_EQ(f64_to_f16(double(f)), bits) << std::hex << bits;
  }
}

TEST(Float16, EveryBf16RoundTripsThroughFp32) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float f = bf16_to_f32(uint16_t(bits));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_bf16(f), bits) << std::hex << bits;
    EXPECT_EQ(f64_to_bf16(double(f)), bits) << std::hex << bits;
  }
}

// Rounds to the nearest of the two neighbouring fp16 values by comparing distances in double.
uint16_t nearest_f16_by_search(double v) {
  uint16_t best = 0;
  double best_err = INFINITY;
  for (uint32_t bits = 0; bits < 0x7C00; ++bits) {  // positive finite values
    const double candidate = f16_to_f32(uint16_t(bits));
    const double err = std::abs(candidate - std::abs(v));
    if (err < best_err || (err == best_err && (bits & 1) == 0)) {
      best_err = err;
      best = uint16_t(bits);
    }
  }
  return uint16_t(best | (v < 0 ? 0x8000 : 0));
}

TEST(Float16, Fp32ToFp16RoundsToNearestEvenIncludingSubnormals) {
  const double cases[] = {1.0 + 0x1p-11, 1.0 + 3 * 0x1p-11, 0x1p-25, 3 * 0x1p-25, 0x1p-24 * 1.5, 65504.0, 65519.0,
                          0.1,           -2.5e-5,           1e-7,    6.1e-5,      333.3};
  for (double v : cases) EXPECT_EQ(f32_to_f16(float(v)), nearest_f16_by_search(float(v))) << v;
}

TEST(Float16, OverflowGoesToInfinity) {
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-1e9f), 0xFC00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(f64_to_f16(1e300), 0x7C00);
  EXPECT_EQ(f64_to_bf16(-1e300), 0xFF80);
  EXPECT_TRUE(std::isnan(f16_to_f32(f64_to_f16(std::nan("")))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST(Float16, DoubleRoundsOnceNotTwice) {
  // 1 + 2^-11 + 2^-40: just above an fp16 tie. Rounding to fp32 first (nearest) would land exactly
  // on the tie 1 + 2^-11 and then round down to even 1.0; the correct single rounding goes up.
  const double v = 1.0 + 0x1p-11 + 0x1p-40;
  EXPECT_EQ(f64_to_f16(v), f32_to_f16(float(1.0 + 0x1p-10)));
  EXPECT_EQ(f32_to_f16(float(v)), 0x3C00);  // the double-rounding result, for contrast
  const double b = 1.0 + 0x1p-8 + 0x1p-40;  // the same for bf16
  EXPECT_EQ(f64_to_bf16(b), f32_to_bf16(float(1.0 + 0x1p-7)));
}

}  // namespace
}  // namespace w4a16
