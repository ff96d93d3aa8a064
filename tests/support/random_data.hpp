// Random test inputs (never zeros) and small helpers shared by the test files.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "w4a16/w4a16.hpp"

namespace w4a16::test {

// Elements of a dtype held as raw storage (uint16 bits for fp16/bf16, float for fp32).
struct HostMatrix {
  DType dtype = DType::f16;
  int64_t rows = 0, cols = 0;
  std::vector<uint16_t> bits;  // fp16/bf16
  std::vector<float> f32;      // fp32

  HostMatrix(DType d, int64_t r, int64_t c) : dtype(d), rows(r), cols(c) {
    if (d == DType::f32) {
      f32.assign(size_t(r * c), 0.0f);
    } else {
      bits.assign(size_t(r * c), 0);
    }
  }
  void* data() { return dtype == DType::f32 ? static_cast<void*>(f32.data()) : static_cast<void*>(bits.data()); }
  const void* data() const {
    return dtype == DType::f32 ? static_cast<const void*>(f32.data()) : static_cast<const void*>(bits.data());
  }
  MatrixRef ref() const { return {data(), dtype, rows, cols}; }
  MutableMatrixRef mut() { return {data(), dtype, rows, cols}; }
  float get(int64_t i) const {
    switch (dtype) {
      case DType::f16:
        return f16_to_f32(bits[size_t(i)]);
      case DType::bf16:
        return bf16_to_f32(bits[size_t(i)]);
      case DType::f32:
        return f32[size_t(i)];
    }
    return 0.0f;
  }
  void set(int64_t i, float v) {
    switch (dtype) {
      case DType::f16:
        bits[size_t(i)] = f32_to_f16(v);
        break;
      case DType::bf16:
        bits[size_t(i)] = f32_to_bf16(v);
        break;
      case DType::f32:
        f32[size_t(i)] = v;
        break;
    }
  }
  // Fills with a quiet NaN so that an element a kernel forgets to write is caught.
  void poison() {
    if (dtype == DType::f32) {
      f32.assign(f32.size(), NAN);
    } else {
      bits.assign(bits.size(), dtype == DType::f16 ? uint16_t(0x7E00) : uint16_t(0x7FC0));
    }
  }
};

// Normal(0, sigma) values, re-drawn while they round to zero in the target dtype.
inline HostMatrix random_matrix(DType dtype, int64_t rows, int64_t cols, uint64_t seed, float sigma = 1.0f) {
  HostMatrix m(dtype, rows, cols);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  for (int64_t i = 0; i < rows * cols; ++i) {
    do {
      m.set(i, dist(rng));
    } while (m.get(i) == 0.0f);
  }
  return m;
}

}  // namespace w4a16::test
