// Scalar helpers over the packed layouts of kernels.hpp, shared by packing, the scalar kernels
// and the per-group epilogues of the SIMD kernels.
#pragma once

#include <cstdint>

#include "common/check.hpp"
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

// Bit position of k-in-chunk kk (0..7) inside a packed word.
inline constexpr int nibble_shift(int kk) { return (kk & 1) ? 16 + 4 * (kk >> 1) : 4 * (kk >> 1); }

inline int code_at(const uint32_t* codes, int64_t chunk, int64_t col, int kk) {
  return int((codes[chunk * kTileN + col] >> nibble_shift(kk)) & 0xFu);
}

inline float tile_scale(const Q4Tile& w, int64_t group, int64_t col) {
  return load_as_f32(w.scales, w.scale_dtype, group * kTileN + col);
}

// coef of the contract in kernels.hpp: (8 - z) * s for asym, zf for float zero, 0 for sym.
inline float tile_zero_coef(const Q4Tile& w, int64_t group, int64_t col) {
  switch (w.zero_mode) {
    case ZeroMode::sym:
      return 0.0f;
    case ZeroMode::asym:
      return float(8 - int(static_cast<const uint8_t*>(w.zeros)[group * kTileN + col])) * tile_scale(w, group, col);
    case ZeroMode::float_zero:
      return load_as_f32(w.zeros, w.scale_dtype, group * kTileN + col);
  }
  return 0.0f;
}

}  // namespace w4a16::cpu
