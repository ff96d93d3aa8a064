// Random 16-bit activations and weights for the measurement engine: N(0, sigma) rounded to fp16
// or bf16, never zero (a zero makes a kernel's job easier than real data and hides unwritten
// outputs).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "w4a16/float16.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::measure {

inline std::vector<uint16_t> random_bits(DType dtype, int64_t count, double sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, float(sigma));
  std::vector<uint16_t> out(static_cast<size_t>(count));
  for (auto& v : out) {
    do {
      v = dtype == DType::f16 ? f32_to_f16(dist(rng)) : f32_to_bf16(dist(rng));
    } while ((v & 0x7FFF) == 0);
  }
  return out;
}

}  // namespace w4a16::measure
