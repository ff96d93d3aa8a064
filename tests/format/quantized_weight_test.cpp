// QuantizedWeight: nibble order, accessors, dequantize() and construction-time validation.
#include <gtest/gtest.h>

#include <random>

#include "support/random_data.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {
namespace {

std::vector<std::byte> f16_values(std::initializer_list<float> values) {
  std::vector<std::byte> out;
  for (float v : values) {
    const uint16_t bits = f32_to_f16(v);
    out.push_back(std::byte(bits & 0xFF));
    out.push_back(std::byte(bits >> 8));
  }
  return out;
}

// Packs codes [N, K] given as one int per element into the documented nibble order.
std::vector<uint8_t> pack_codes(const std::vector<int>& q, int64_t n, int64_t k) {
  const int64_t row_bytes = (k + 1) / 2;
  std::vector<uint8_t> out(size_t(n * row_bytes), 0);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      const uint8_t v = uint8_t(q[size_t(r * k + c)]);
      out[size_t(r * row_bytes + c / 2)] |= (c % 2) ? uint8_t(v << 4) : v;
    }
  }
  return out;
}

TEST(QuantizedWeight, CodesRoundTripThroughNibblePackingForOddAndEvenK) {
  std::mt19937 rng(7);
  for (int64_t k : {1, 2, 5, 32, 33, 161}) {
    for (int64_t g : {int64_t(1), int64_t(32), k}) {
      if (g > k) continue;
      const int64_t n = 3, groups = (k + g - 1) / g;
      std::vector<int> q(size_t(n * k));
      for (int& v : q) v = int(rng() % 16);
      std::vector<std::byte> scales(size_t(n * groups) * 2, std::byte{0x3C});  // fp16 ~1.0-ish bits
      QuantizedWeight w({n, k, g, ZeroMode::sym, DType::f16}, pack_codes(q, n, k), scales);
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t c = 0; c < k; ++c) ASSERT_EQ(w.code(r, c), q[size_t(r * k + c)]) << r << "," << c;
      }
    }
  }
}

TEST(QuantizedWeight, ValueFollowsTheFormulaOfEachZeroMode) {
  // One row, K = 5, g = 4: two groups, the second ragged (one element).
  const std::vector<int> q = {0, 15, 8, 3, 9};
  const auto codes = pack_codes(q, 1, 5);
  EXPECT_EQ(codes[0], 0xF0);  // k=0 low nibble, k=1 high nibble
  const auto scales = f16_values({0.5f, 2.0f});

  QuantizedWeight sym({1, 5, 4, ZeroMode::sym, DType::f16}, codes, scales);
  EXPECT_FLOAT_EQ(sym.value(0, 0), -4.0f);
  EXPECT_FLOAT_EQ(sym.value(0, 1), 3.5f);
  EXPECT_FLOAT_EQ(sym.value(0, 4), 2.0f);

  QuantizedWeight asym({1, 5, 4, ZeroMode::asym, DType::f16}, codes, scales, {std::byte{16}, std::byte{1}});
  EXPECT_FLOAT_EQ(asym.value(0, 1), -0.5f);  // (15 - 16) * 0.5
  EXPECT_FLOAT_EQ(asym.value(0, 4), 16.0f);  // (9 - 1) * 2

  QuantizedWeight fz({1, 5, 4, ZeroMode::float_zero, DType::f16}, codes, scales, f16_values({0.25f, -1.0f}));
  EXPECT_FLOAT_EQ(fz.value(0, 0), -3.75f);  // (0 - 8) * 0.5 + 0.25
  EXPECT_FLOAT_EQ(fz.value(0, 4), 1.0f);    // (9 - 8) * 2 - 1
}

TEST(QuantizedWeight, DequantizeUndoesThePermutation) {
  const std::vector<int> q = {9, 10, 11, 12};
  QuantizedWeight w({1, 4, 4, ZeroMode::sym, DType::f16}, pack_codes(q, 1, 4), f16_values({1.0f}), {}, {2, 0, 3, 1});
  const auto d = dequantize(w);  // stored column k belongs to input feature perm[k]
  EXPECT_EQ(d, (std::vector<float>{2.0f, 4.0f, 1.0f, 3.0f}));
}

void expect_invalid(const std::function<void()>& make, const std::string& needle) {
  try {
    make();
    FAIL() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(QuantizedWeight, RejectsInconsistentBuffers) {
  const auto codes = pack_codes(std::vector<int>(8, 1), 2, 4);
  const auto scales = f16_values({1.0f, 1.0f});
  expect_invalid([&] { QuantizedWeight({0, 4, 4, ZeroMode::sym, DType::f16}, codes, scales); }, "must be positive");
  expect_invalid([&] { QuantizedWeight({2, 4, 0, ZeroMode::sym, DType::f16}, codes, scales); }, "group size");
  expect_invalid([&] { QuantizedWeight({2, 4, 8, ZeroMode::sym, DType::f16}, codes, scales); }, "exceeds K");
  expect_invalid([&] { QuantizedWeight({2, 6, 4, ZeroMode::sym, DType::f16}, codes, scales); }, "codes hold");
  expect_invalid([&] { QuantizedWeight({2, 4, 2, ZeroMode::sym, DType::f16}, codes, scales); }, "scales hold");
  expect_invalid([&] { QuantizedWeight({2, 4, 4, ZeroMode::sym, DType(9)}, codes, scales); }, "scale dtype");
  expect_invalid(
      [&] {
        QuantizedWeight({2, 4, 4, ZeroMode::sym, DType::f16}, codes, f16_values({1.0f, NAN}));
      },
      "not finite");
  expect_invalid(
      [&] {
        QuantizedWeight({2, 4, 4, ZeroMode::sym, DType::f16}, codes, scales, {std::byte{1}});
      },
      "sym mode takes no zeros");
  expect_invalid(
      [&] {
        QuantizedWeight({2, 4, 4, ZeroMode::asym, DType::f16}, codes, scales, {std::byte{1}});
      },
      "asym zeros");
  expect_invalid(
      [&] {
        QuantizedWeight({2, 4, 4, ZeroMode::asym, DType::f16}, codes, scales, {std::byte{3}, std::byte{17}});
      },
      "outside [0, 16]");
  expect_invalid(
      [&] {
        QuantizedWeight({2, 4, 4, ZeroMode::float_zero, DType::f16}, codes, scales, {});
      },
      "float zeros");
  expect_invalid(
      [&] {
        QuantizedWeight({2, 4, 4, ZeroMode::sym, DType::f16}, codes, scales, {}, {0, 1, 2});
      },
      "perm has 3 entries");
  expect_invalid(
      [&] {
        QuantizedWeight({2, 4, 4, ZeroMode::sym, DType::f16}, codes, scales, {}, {0, 1, 1, 3});
      },
      "not a permutation");
  expect_invalid(
      [&] {
        QuantizedWeight({2, 4, 4, ZeroMode::sym, DType::f16}, codes, scales, {}, {0, 1, 2, 4});
      },
      "outside [0, K=4)");
  expect_invalid(
      [&] {
        QuantizedWeight({2, 4, 4, ZeroMode::sym, DType::f16}, codes, scales, {}, {}, {DType::f16, f16_values({1})});
      },
      "bias holds");
}

TEST(QuantizedWeight, NamesParseAndPrint) {
  for (DType d : {DType::f16, DType::bf16, DType::f32}) EXPECT_EQ(parse_dtype(to_string(d)), d);
  for (ZeroMode z : {ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero}) EXPECT_EQ(parse_zero_mode(to_string(z)), z);
  EXPECT_THROW(parse_dtype("int4"), Error);
  EXPECT_THROW(parse_zero_mode("zero"), Error);
}

}  // namespace
}  // namespace w4a16
