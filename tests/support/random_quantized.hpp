// A QuantizedWeight of random codes, scales, zeros (and a permutation, a bias), made directly rather
// than by the quantizer, so that every code and every asym zero 0..16 occurs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "w4a16/w4a16.hpp"

namespace w4a16::test {

// Random codes, scales, zeros (and a permutation) as a QuantizedWeight of its own, not from the
// quantizer: asym zeros span 0..16, codes all 16 values.
inline QuantizedWeight random_weight(int64_t n, int64_t k, int64_t g, ZeroMode mode, DType scale_dtype, bool perm,
                                     uint64_t seed, bool bias = false) {
  std::mt19937_64 rng(seed);
  const QuantizedLayout layout{n, k, g, mode, scale_dtype};
  const int64_t groups = layout.groups();
  std::vector<uint8_t> codes(size_t(n * layout.row_bytes()));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      codes[size_t(r * layout.row_bytes() + c / 2)] |= uint8_t((rng() & 0xF) << (4 * (c & 1)));
    }
  }
  std::normal_distribution<float> scale(0.0f, 0.01f);
  const auto bits = [&](float v) { return scale_dtype == DType::bf16 ? f32_to_bf16(v) : f32_to_f16(v); };
  std::vector<std::byte> scales(size_t(n * groups * 2)), zeros;
  for (int64_t i = 0; i < n * groups; ++i) {
    const uint16_t b = bits(std::abs(scale(rng)) + 1e-3f);
    std::memcpy(&scales[size_t(i * 2)], &b, 2);
  }
  if (mode == ZeroMode::asym) {
    for (int64_t i = 0; i < n * groups; ++i) zeros.push_back(std::byte(rng() % 17));
  } else if (mode == ZeroMode::float_zero) {
    zeros.resize(size_t(n * groups * 2));
    for (int64_t i = 0; i < n * groups; ++i) {
      const uint16_t b = bits(scale(rng));
      std::memcpy(&zeros[size_t(i * 2)], &b, 2);
    }
  }
  std::vector<int32_t> order;
  if (perm) {
    order.resize(size_t(k));
    for (int64_t i = 0; i < k; ++i) order[size_t(i)] = int32_t(i);
    std::shuffle(order.begin(), order.end(), rng);
  }
  Bias b;
  if (bias) {  // fp32, N(0, 0.1)
    b.data.resize(size_t(n * 4));
    for (int64_t i = 0; i < n; ++i) {
      const float v = scale(rng) * 10.0f;
      std::memcpy(&b.data[size_t(i * 4)], &v, 4);
    }
  }
  return QuantizedWeight(layout, std::move(codes), std::move(scales), std::move(zeros), std::move(order), std::move(b));
}

}  // namespace w4a16::test
