// Shared by the micro-benchmarks: random 16-bit data. The host facts live in src/common/host.hpp,
// the streaming-read bandwidth reference in src/measure/read_bandwidth.hpp (shared with `w4a16 bench`).
#pragma once

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "measure/read_bandwidth.hpp"
#include "w4a16/float16.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::bench {

// The read-bandwidth reference of the measurement engine, by its short names here.
using measure::anon_huge_pages_kb;
using measure::HugeBuffer;
using measure::measure_read_bandwidth;
using measure::probe_read_bandwidth;
using measure::read_buffer_bytes;
using measure::read_variants;
using measure::ReadBandwidth;
using measure::ReadKernel;
using measure::ReadVariant;
using measure::rotation_bytes;
using measure::timed_read_pass;

// ---------------------------------------------------------------------------------------------
// Random data: never zero, exactly representable in both fp16 and bf16
// ---------------------------------------------------------------------------------------------

// Magnitudes in [1/64, 1) with a random sign, rounded to bf16: every value is a normal fp16 too
// (8 significant bits, exponent well inside fp16's range), so fp16 and bf16 copies hold the
// same numbers and no zero (or denormal) makes a kernel's job easier than real data.
inline std::vector<uint16_t> random_bf16(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> magnitude(1.0f / 64, 1.0f);
  std::vector<uint16_t> out(count);
  for (auto& v : out) {
    const float m = magnitude(rng);
    v = f32_to_bf16((rng() & 1) ? -m : m);
  }
  return out;
}

inline std::vector<uint16_t> to_dtype(const std::vector<uint16_t>& bf16, DType dtype) {
  if (dtype == DType::bf16) return bf16;
  std::vector<uint16_t> out(bf16.size());
  for (size_t i = 0; i < bf16.size(); ++i) out[i] = f32_to_f16(bf16_to_f32(bf16[i]));
  return out;
}

inline float to_f32(uint16_t bits, DType dtype) { return dtype == DType::f16 ? f16_to_f32(bits) : bf16_to_f32(bits); }

}  // namespace w4a16::bench
