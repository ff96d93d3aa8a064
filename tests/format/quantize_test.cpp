// RTN quantizer: every element within the documented bound, for every g, zero mode, source and
// scale dtype; NaN/Inf rejected with row and column; degenerate groups handled.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "support/random_data.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {
namespace {

// Value of x after one rounding to dtype (the quantizer rounds its double scale this way).
double stored(double x, DType dtype) {
  switch (dtype) {
    case DType::f16:
      return f16_to_f32(f64_to_f16(x));
    case DType::bf16:
      return bf16_to_f32(f64_to_bf16(x));
    case DType::f32:
      return float(x);
  }
  return 0;
}

struct Case {
  DType source;
  DType scale;
  ZeroMode mode;
  int64_t group;
};

// Checks the bound of docs/formats.md element by element, and that the quantizer uses the codes
// (the largest error of a group is not far below half a step, which an all-8 quantizer fails).
void check_bound(const test::HostMatrix& w, const QuantizedWeight& q, const Case& c) {
  const int64_t n = w.rows, k = w.cols, g = q.group_size();
  double worst_ratio = 0.0;
  for (int64_t row = 0; row < n; ++row) {
    for (int64_t group = 0; group < q.groups(); ++group) {
      const int64_t begin = group * g, end = std::min(k, begin + g);
      double lo = INFINITY, hi = -INFINITY, absmax = 0;
      for (int64_t col = begin; col < end; ++col) {
        const double v = w.get(row * k + col);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        absmax = std::max(absmax, std::abs(v));
      }
      double s = 0, zf = 0, slope = 0;
      switch (c.mode) {
        case ZeroMode::sym:
          s = absmax / 7.5, slope = 7.5;
          break;
        case ZeroMode::asym:
          s = (std::max(hi, 0.0) - std::min(lo, 0.0)) / 15, slope = 15;
          break;
        case ZeroMode::float_zero:
          s = (hi - lo) / 15, zf = lo + 8 * s, slope = 8;
          break;
      }
      const double s_stored = q.scale(row, group);
      ASSERT_EQ(s_stored, stored(s, c.scale)) << "scale of row " << row << " group " << group;
      const double zf_stored = q.zero_float(row, group);
      const double bound = 0.5 * s_stored + slope * std::abs(s - s_stored) + std::abs(zf - zf_stored);
      for (int64_t col = begin; col < end; ++col) {
        const double v = w.get(row * k + col), dq = q.value(row, col);
        const double slack = 0x1p-22 * (std::abs(dq) + std::abs(zf_stored));  // fp32 evaluation of value()
        ASSERT_LE(std::abs(v - dq), bound + slack)
            << "row " << row << " col " << col << " w=" << v << " w^=" << dq << " s'=" << s_stored;
        if (s_stored > 0) worst_ratio = std::max(worst_ratio, std::abs(v - dq) / s_stored);
      }
    }
  }
  EXPECT_GT(worst_ratio, 0.3);  // a real round-to-nearest reaches close to half a step
}

class QuantizeBound : public ::testing::TestWithParam<Case> {};

TEST_P(QuantizeBound, EveryElementWithinTheDocumentedBound) {
  const Case c = GetParam();
  for (int64_t k : {c.group, 3 * c.group, 3 * c.group + c.group / 2 + 1}) {
    const int64_t n = 7;
    const auto w = test::random_matrix(c.source, n, k, uint64_t(k * 31 + int(c.mode)), 0.02f);
    const QuantizedWeight q = quantize(w.ref(), {c.group, c.mode, c.scale});
    EXPECT_EQ(q.scale_dtype(), c.scale);
    EXPECT_EQ(q.groups(), (k + c.group - 1) / c.group);
    check_bound(w, q, c);
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (DType source : {DType::f32, DType::f16, DType::bf16}) {
    for (DType scale : {DType::f16, DType::bf16, DType::f32}) {
      for (ZeroMode mode : {ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero}) {
        for (int64_t g : {32, 64, 128, 256}) out.push_back({source, scale, mode, g});
      }
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllModes, QuantizeBound, ::testing::ValuesIn(all_cases()));

TEST(Quantize, PerChannelAndOversizedGroupBecomeOneGroupPerRow) {
  const auto w = test::random_matrix(DType::f32, 3, 100, 5);
  EXPECT_EQ(quantize(w.ref(), {0, ZeroMode::sym, DType::f16}).group_size(), 100);
  EXPECT_EQ(quantize(w.ref(), {128, ZeroMode::sym, DType::f16}).group_size(), 100);
}

TEST(Quantize, ScaleDtypeDefaultsToTheSourceDtype) {
  EXPECT_EQ(quantize(test::random_matrix(DType::bf16, 2, 64, 1).ref(), {32}).scale_dtype(), DType::bf16);
  EXPECT_EQ(quantize(test::random_matrix(DType::f32, 2, 64, 1).ref(), {32}).scale_dtype(), DType::f32);
}

TEST(Quantize, RejectsNonFiniteWeightsNamingRowAndColumn) {
  auto w = test::random_matrix(DType::f32, 4, 64, 2);
  w.set(2 * 64 + 37, NAN);
  try {
    quantize(w.ref(), {32});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("row 2 column 37"), std::string::npos) << e.what();
  }
  w.set(2 * 64 + 37, 1.0f);
  w.set(3 * 64 + 0, -INFINITY);
  EXPECT_THROW(quantize(w.ref(), {32}), Error);
}

TEST(Quantize, RejectsScalesThatOverflowTheScaleDtype) {
  auto w = test::random_matrix(DType::f32, 1, 32, 3);
  w.set(5, 1e6f);  // 1e6 / 7.5 > 65504
  EXPECT_THROW(quantize(w.ref(), {32, ZeroMode::sym, DType::f16}), Error);
  EXPECT_NO_THROW(quantize(w.ref(), {32, ZeroMode::sym, DType::bf16}));
}

TEST(Quantize, ZeroGroupGetsZeroScaleAndMiddleCode) {
  test::HostMatrix w(DType::f32, 1, 64);
  for (int i = 32; i < 64; ++i) w.set(i, float(i - 40) * 0.01f);  // group 0 all zero, group 1 not
  for (ZeroMode mode : {ZeroMode::sym, ZeroMode::asym}) {
    const QuantizedWeight q = quantize(w.ref(), {32, mode, DType::f16});
    EXPECT_EQ(q.scale(0, 0), 0.0f);
    for (int c = 0; c < 32; ++c) EXPECT_EQ(q.value(0, c), 0.0f);
    EXPECT_GT(q.scale(0, 1), 0.0f);
  }
}

TEST(Quantize, TinyValuesUseSubnormalScalesWithinTheBound) {
  const auto w = test::random_matrix(DType::f32, 3, 64, 9, 1e-6f);  // scales ~2e-7: fp16 subnormal
  check_bound(w, quantize(w.ref(), {32, ZeroMode::sym, DType::f16}), {DType::f32, DType::f16, ZeroMode::sym, 32});
}

TEST(Quantize, AttachesTheBias) {
  const auto w = test::random_matrix(DType::f16, 5, 32, 4);
  const auto b = test::random_matrix(DType::f16, 1, 5, 8);
  const QuantizedWeight q = quantize(w.ref(), {32}, b.ref());
  ASSERT_TRUE(q.has_bias());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(q.bias_value(i), b.get(i));
  EXPECT_THROW(quantize(w.ref(), {32}, test::random_matrix(DType::f16, 1, 4, 8).ref()), Error);
}

}  // namespace
}  // namespace w4a16
