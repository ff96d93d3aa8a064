// The twin checks of the CPU kernel tests: an entry (registry_test.cpp: every entry of every table
// this CPU runs; amx_test.cpp: the AMX loops on emulated tiles) called directly on packed tiles with
// sub-ranges of groups (or chunks) and compared with its generic twin from kernels.hpp within the
// derived bound below (they sum in a different order). Outputs are poisoned with NaN before each
// call; inputs are fresh random values, never zeros.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/aligned_buffer.hpp"
#include "cpu/packed_weight.hpp"
#include "cpu/tile_math.hpp"

namespace w4a16::cpu::twin {

inline constexpr double kU = 0x1p-24;  // unit roundoff of fp32

struct Case {
  int64_t k, g;
  ZeroMode zero;
  DType scale;
};

// Rows of x: fp32 copies of bf16-representable values (so the bf16 and fp32 forms are the same
// numbers), stored with a leading dimension larger than K' to catch indexing by K.
struct Rows {
  int64_t m = 0, ld = 0;
  AlignedBuffer<float> f32;
  AlignedBuffer<uint16_t> bf16;
  std::vector<float> group_sums;  // [m][G], random (the kernels only combine them)
  Activations as(XFormat x, bool with_sums) const {
    return {x == XFormat::bf16 ? static_cast<const void*>(bf16.data()) : f32.data(), ld,
            with_sums ? group_sums.data() : nullptr, m};
  }
};

inline Rows make_rows(int64_t m, int64_t kp, int64_t groups, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  Rows r;
  r.m = m;
  r.ld = kp + 24;
  r.f32.resize(size_t(m * r.ld));
  r.bf16.resize(size_t(m * r.ld));
  for (int64_t i = 0; i < m * r.ld; ++i) {
    float v = normal(rng);
    if (v == 0.0f) v = 0.5f;
    r.bf16[size_t(i)] = f32_to_bf16(v);
    r.f32[size_t(i)] = bf16_to_f32(r.bf16[size_t(i)]);
  }
  r.group_sums.resize(size_t(m * groups));
  for (auto& v : r.group_sums) v = 8.0f * normal(rng);
  return r;
}

inline PackedWeight make_weight(const Case& c, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> w(size_t(n * c.k));
  for (auto& v : w) v = normal(rng);
  return pack(
      quantize({w.data(), DType::f32, n, c.k}, {.group_size = c.g, .zero_mode = c.zero, .scale_dtype = c.scale}));
}

inline const std::vector<Case> kCases = {
    {200, 32, ZeroMode::sym, DType::bf16},         // ragged last group (200 = 6 * 32 + 8)
    {384, 128, ZeroMode::asym, DType::f16},        //
    {260, 64, ZeroMode::float_zero, DType::f32},   // ragged, fp32 scales and zeros
    {512, 256, ZeroMode::asym, DType::bf16},       //
    {100, 100, ZeroMode::float_zero, DType::f16},  // per-channel K, padded to whole chunks
    {1100, 512, ZeroMode::sym, DType::bf16},       // long groups: 16 AMX steps through its 2-step ring
};

// The M values an entry is called with: its range's ends and a middle, capped at 40 rows.
inline std::vector<int64_t> rows_for(int64_t lo, int64_t hi) {
  const int64_t top = std::min<int64_t>(hi, std::max<int64_t>(lo, 40));
  const std::set<int64_t> unique = {lo, (lo + top) / 2, top};
  return {unique.begin(), unique.end()};
}

// The bound for one output: both the entry and its twin sum, per group of n terms, products
// x * (q - 8) (exact in fp32) in some order, then form s * acc + coef * gsum and add it to the
// running sum over at most G groups. Each is within (n + G + 2) * u of the exact value relative
// to the sum of the absolute values of every term (the standard recursive-summation bound
// gamma_n ~ n * u); the difference of the two is at most twice that.
inline double q4_bound(const Q4Tile& w, const Rows& x, bool sums, int64_t r, int64_t c, int64_t g0, int64_t g1) {
  double mass = 0;
  int64_t longest = 0;
  for (int64_t g = g0; g < g1; ++g) {
    double group = 0;
    for (int64_t ch = w.geom.chunk_begin(g); ch < w.geom.chunk_end(g); ++ch) {
      for (int kk = 0; kk < 8; ++kk) {
        group += std::fabs(double(x.f32[size_t(r * x.ld + ch * 8 + kk)]) * (code_at(w.codes, ch, c, kk) - 8));
      }
    }
    longest = std::max(longest, (w.geom.chunk_end(g) - w.geom.chunk_begin(g)) * 8);
    mass += std::fabs(double(tile_scale(w, g, c))) * group;
    if (sums) mass += std::fabs(double(tile_zero_coef(w, g, c)) * x.group_sums[size_t(r * w.geom.groups + g)]);
  }
  return 2.0 * double(longest + (g1 - g0) + 2) * kU * mass + 1e-30;
}

// Checks `fn` (x read as `x_format`) against its generic twin for the M of rows_for(m_min, m_max);
// returns the number of calls checked.
inline int check_fused_twin(const std::string& name, Q4Kernel fn, XFormat x_format, int64_t m_min, int64_t m_max) {
  int checked = 0;
  const Q4Kernel twin = x_format == XFormat::bf16 ? q4_bf16_generic : q4_f32_generic;
  for (size_t ci = 0; ci < kCases.size(); ++ci) {
    const Case& c = kCases[ci];
    const PackedWeight packed = make_weight(c, 2 * kTileN - 5, 17 + ci);
    const auto& p = packed.impl();
    const int64_t groups = p.geom.groups;
    std::mt19937_64 rng(1000 + ci);
    for (int64_t m : rows_for(m_min, m_max)) {
      const Rows x = make_rows(m, p.k_padded, groups, rng);
      const bool sums = c.zero != ZeroMode::sym;
      // Sub-ranges: all groups; from the second; up to the one before last; a single one.
      const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, groups},
                                                               {std::min<int64_t>(1, groups - 1), groups},
                                                               {0, std::max<int64_t>(1, groups - 1)},
                                                               {groups / 2, groups / 2 + 1}};
      for (auto [g0, g1] : ranges) {
        for (int64_t tile = 0; tile < p.tiles; ++tile) {
          const Q4Tile w = p.tile(tile);
          AlignedBuffer<float> got(size_t(m * kTileN)), want(size_t(m * kTileN));
          for (int64_t i = 0; i < m * kTileN; ++i) got[size_t(i)] = want[size_t(i)] = NAN;
          fn(w, x.as(x_format, sums), g0, g1, got.data());
          twin(w, x.as(x_format, sums), g0, g1, want.data());
          int bad = 0;
          for (int64_t r = 0; r < m && bad < 3; ++r) {
            for (int64_t col = 0; col < kTileN && bad < 3; ++col) {
              const double d = std::fabs(double(got[size_t(r * kTileN + col)]) - want[size_t(r * kTileN + col)]);
              const double bound = q4_bound(w, x, sums, r, col, g0, g1);
              if (!(d <= bound)) {
                ++bad;
                ADD_FAILURE() << name << " M=" << m << " K=" << c.k << " g=" << c.g << " " << to_string(c.zero)
                              << " scales " << to_string(c.scale) << " groups [" << g0 << "," << g1 << ") tile " << tile
                              << " row " << r << " col " << col << ": got " << got[size_t(r * kTileN + col)] << " want "
                              << want[size_t(r * kTileN + col)] << " (bound " << bound << ")";
              }
            }
          }
          ++checked;
        }
      }
    }
  }
  return checked;
}

// The same for a dense entry on a ragged chunk count (49 chunks) and sub-ranges of it.
inline int check_dense_twin(const std::string& name, DenseKernel fn, DType weight, XFormat x_format, int64_t m_min,
                            int64_t m_max) {
  int checked = 0;
  const DenseKernel twin = weight == DType::f16        ? dense_f16_f32_generic
                           : x_format == XFormat::bf16 ? dense_bf16_bf16_generic
                                                       : dense_bf16_f32_generic;
  const Case c{392, 8, ZeroMode::float_zero, DType::f32};  // 49 chunks: several blocks of 16, ragged
  const PackedWeight packed = make_weight(c, kTileN, 99);
  const auto& p = packed.impl();
  const uint16_t* tile = p.dense_tile(weight, 0);
  const int64_t chunks = p.geom.chunks();
  std::mt19937_64 rng(7);
  for (int64_t m : rows_for(m_min, m_max)) {
    const Rows x = make_rows(m, p.k_padded, 1, rng);
    for (auto [c0, c1] : std::vector<std::pair<int64_t, int64_t>>{{0, chunks}, {3, chunks}, {5, 22}, {17, 18}}) {
      AlignedBuffer<float> got(size_t(m * kTileN)), want(size_t(m * kTileN));
      for (int64_t i = 0; i < m * kTileN; ++i) got[size_t(i)] = want[size_t(i)] = NAN;
      fn(tile, x.as(x_format, false), c0, c1, got.data());
      twin(tile, x.as(x_format, false), c0, c1, want.data());
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t col = 0; col < kTileN; ++col) {
          double mass = 0;  // sum of |x * w| over the range: products of 16-bit values are exact in fp32
          for (int64_t k = c0 * 8; k < c1 * 8; ++k) {
            const uint16_t bits =
                weight == DType::f16 ? tile[k * kTileN + col] : tile[((k / 2) * kTileN + col) * 2 + (k & 1)];
            const float wv = weight == DType::f16 ? f16_to_f32(bits) : bf16_to_f32(bits);
            mass += std::fabs(double(x.f32[size_t(r * x.ld + k)]) * wv);
          }
          const double bound = 2.0 * double((c1 - c0) * 8 + 2) * kU * mass + 1e-30;
          const double d = std::fabs(double(got[size_t(r * kTileN + col)]) - want[size_t(r * kTileN + col)]);
          if (!(d <= bound)) {
            ADD_FAILURE() << name << " M=" << m << " chunks [" << c0 << "," << c1 << ") row " << r << " col " << col
                          << ": got " << got[size_t(r * kTileN + col)] << " want " << want[size_t(r * kTileN + col)]
                          << " (bound " << bound << ")";
            return checked;  // the first wrong value says it; the rest would repeat it
          }
        }
      }
      ++checked;
    }
  }
  return checked;
}

}  // namespace w4a16::cpu::twin
