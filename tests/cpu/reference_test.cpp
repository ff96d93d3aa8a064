// The oracle against an independent dequantize-then-matmul, plus its IEEE edge behaviour and
// argument validation.
#include <gtest/gtest.h>

#include <cmath>

#include "support/random_data.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {
namespace {

// Independent path: dequantize() to fp32 [N, K] (original input order), fp64 dot products,
// one rounding. For sym/asym every dequantized value is exact in fp32 (see QuantizedWeight::value)
// so it must agree bit for bit with the reference; float zeros round once in fp32, which moves a
// product by at most 2^-24 relative, hence the tolerance below.
test::HostMatrix naive_gemm(const test::HostMatrix& x, const QuantizedWeight& w, DType out) {
  const auto wd = dequantize(w);
  test::HostMatrix y(out, x.rows, w.n());
  for (int64_t m = 0; m < x.rows; ++m) {
    for (int64_t n = 0; n < w.n(); ++n) {
      double acc = 0;
      for (int64_t k = 0; k < w.k(); ++k) acc += double(x.get(m * w.k() + k)) * wd[size_t(n * w.k() + k)];
      acc += w.bias_value(n);
      y.bits[size_t(m * w.n() + n)] = out == DType::f16 ? f64_to_f16(acc) : f64_to_bf16(acc);
    }
  }
  return y;
}

struct Shape {
  int64_t m, k, n, g;
};

class ReferenceVsNaive : public ::testing::TestWithParam<std::tuple<Shape, ZeroMode, DType>> {};

TEST_P(ReferenceVsNaive, Agrees) {
  const auto [shape, mode, act] = GetParam();
  const auto wsrc = test::random_matrix(DType::f32, shape.n, shape.k, uint64_t(shape.k * 7 + shape.n), 0.05f);
  const auto bias = test::random_matrix(DType::f32, 1, shape.n, 11);
  const QuantizedWeight w = quantize(wsrc.ref(), {shape.g, mode, DType::f16}, bias.ref());
  const auto x = test::random_matrix(act, shape.m, shape.k, uint64_t(shape.m + 3));
  test::HostMatrix y(act, shape.m, shape.n);
  y.poison();
  reference_gemm(x.ref(), w, y.mut());
  const auto expected = naive_gemm(x, w, act);
  const bool exact = mode != ZeroMode::float_zero;
  for (int64_t i = 0; i < shape.m * shape.n; ++i) {
    ASSERT_FALSE(std::isnan(y.get(i))) << i;
    if (exact) {
      ASSERT_EQ(y.bits[size_t(i)], expected.bits[size_t(i)]) << "element " << i;
    } else {
      // One output ulp (the rounding boundary may be crossed by the 2^-24 dequant difference).
      const double ulp = act == DType::f16 ? 0x1p-10 : 0x1p-7;
      ASSERT_NEAR(y.get(i), expected.get(i), ulp * std::abs(expected.get(i)) + 1e-6) << "element " << i;
    }
  }
}

std::vector<Shape> shapes() {
  std::vector<Shape> out;
  for (int64_t g : {32, 128}) {
    for (int64_t k : {g, 3 * g, 3 * g + g / 2}) {
      for (int64_t n : {1, 7, 33}) out.push_back({5, k, n, g});
    }
  }
  out.push_back({1, 256, 33, 64});
  out.push_back({300, 96, 7, 32});
  out.push_back({3, 77, 5, 77});  // per-channel, odd K
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, ReferenceVsNaive,
                         ::testing::Combine(::testing::ValuesIn(shapes()),
                                            ::testing::Values(ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero),
                                            ::testing::Values(DType::f16, DType::bf16)));

QuantizedWeight small_weight(int64_t n, int64_t k, std::vector<int32_t> perm = {}) {
  const auto src = test::random_matrix(DType::f32, n, k, 42);
  const QuantizedWeight q = quantize(src.ref(), {32, ZeroMode::asym, DType::bf16});
  return QuantizedWeight(q.layout(), q.codes(), q.scales(), q.zeros(), std::move(perm));
}

TEST(Reference, AppliesTheActOrderPermutationToX) {
  const int64_t n = 4, k = 64;
  std::vector<int32_t> perm(k);
  for (int i = 0; i < k; ++i) perm[size_t(i)] = (i * 37 + 5) % k;
  const QuantizedWeight permuted = small_weight(n, k, perm);
  const QuantizedWeight plain = small_weight(n, k);
  const auto x = test::random_matrix(DType::bf16, 2, k, 3);
  auto xp = x;  // x gathered by perm: plain weight times xp must equal permuted weight times x
  for (int64_t m = 0; m < 2; ++m) {
    for (int64_t i = 0; i < k; ++i) xp.bits[size_t(m * k + i)] = x.bits[size_t(m * k + perm[size_t(i)])];
  }
  test::HostMatrix y1(DType::bf16, 2, n), y2(DType::bf16, 2, n);
  reference_gemm(x.ref(), permuted, y1.mut());
  reference_gemm(xp.ref(), plain, y2.mut());
  EXPECT_EQ(y1.bits, y2.bits);
  EXPECT_EQ(naive_gemm(x, permuted, DType::bf16).bits, y1.bits);
}

TEST(Reference, NanInXPropagatesToItsRowOnly) {
  const QuantizedWeight w = small_weight(5, 64);
  auto x = test::random_matrix(DType::f16, 3, 64, 4);
  x.set(1 * 64 + 10, NAN);
  test::HostMatrix y(DType::f16, 3, 5);
  reference_gemm(x.ref(), w, y.mut());
  for (int n = 0; n < 5; ++n) {
    EXPECT_FALSE(std::isnan(y.get(0 * 5 + n)));
    EXPECT_TRUE(std::isnan(y.get(1 * 5 + n)));
    EXPECT_FALSE(std::isnan(y.get(2 * 5 + n)));
  }
}

TEST(Reference, OverflowRoundsToInfinity) {
  test::HostMatrix src(DType::f32, 1, 32);
  for (int i = 0; i < 32; ++i) src.set(i, 60000.0f);
  const QuantizedWeight w = quantize(src.ref(), {32, ZeroMode::sym, DType::f32});
  test::HostMatrix x(DType::f16, 1, 32);
  for (int i = 0; i < 32; ++i) x.set(i, 1000.0f);
  test::HostMatrix y(DType::f16, 1, 1), yb(DType::bf16, 1, 1);
  reference_gemm(x.ref(), w, y.mut());
  EXPECT_EQ(y.bits[0], 0x7C00);  // ~1.9e9 > fp16 max
  reference_gemm(x.ref(), w, yb.mut());
  EXPECT_TRUE(std::isfinite(yb.get(0)));  // bf16 has the range
}

TEST(Reference, ValidatesArgumentsAndLeavesYUntouched) {
  const QuantizedWeight w = small_weight(5, 64);
  const auto x = test::random_matrix(DType::f16, 2, 64, 4);
  test::HostMatrix y(DType::f16, 2, 5);
  y.poison();
  const auto before = y.bits;
  const auto expect_error = [&](MatrixRef xr, MutableMatrixRef yr) {
    EXPECT_THROW(reference_gemm(xr, w, yr), Error);
    EXPECT_THROW(gemm(xr, w, yr), Error);
    EXPECT_EQ(y.bits, before);
  };
  expect_error({x.data(), DType::f16, 2, 63}, y.mut());                       // K mismatch
  expect_error(x.ref(), {y.data(), DType::f16, 2, 4});                        // N mismatch
  expect_error(x.ref(), {y.data(), DType::f16, 1, 5});                        // M mismatch
  expect_error({nullptr, DType::f16, 2, 64}, y.mut());                        // null x
  expect_error({x.data(), DType::f32, 2, 64}, y.mut());                       // fp32 activations
  expect_error(x.ref(), {y.data(), DType(7), 2, 5});                          // garbage dtype
  expect_error({x.data(), DType::f16, 0, 64}, {y.data(), DType::f16, 0, 5});  // empty
}

}  // namespace
}  // namespace w4a16
