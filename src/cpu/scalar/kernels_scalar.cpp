// Portable kernels: the `_generic` twins of every SIMD kernel, used on CPUs without AVX2 and
// under W4A16_ISA=scalar. Same contract and summation structure (fp32 per-group accumulators,
// then s * acc + coef * group_sum), so results differ from the SIMD ones only by the order of
// fp32 additions.
#include <cmath>

#include "cpu/tile_math.hpp"

namespace w4a16::cpu {

namespace {

float x_at(const Activations& x, int64_t r, int64_t k, bool bf16) {
  return bf16 ? bf16_to_f32(static_cast<const uint16_t*>(x.data)[r * x.ld + k])
              : static_cast<const float*>(x.data)[r * x.ld + k];
}

void q4_generic(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out, bool bf16) {
  for (int64_t r = 0; r < x.m; ++r) {
    for (int64_t c = 0; c < kTileN; ++c) {
      float y = 0.0f;
      for (int64_t g = g0; g < g1; ++g) {
        float acc = 0.0f;
        for (int64_t chunk = w.geom.chunk_begin(g); chunk < w.geom.chunk_end(g); ++chunk) {
          for (int kk = 0; kk < 8; ++kk) {
            acc += x_at(x, r, chunk * 8 + kk, bf16) * float(code_at(w.codes, chunk, c, kk) - 8);
          }
        }
        y += tile_scale(w, g, c) * acc;
        if (x.group_sums) y += tile_zero_coef(w, g, c) * x.group_sums[r * w.geom.groups + g];
      }
      out[r * kTileN + c] = y;
    }
  }
}

}  // namespace

void q4_f32_generic(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_generic(w, x, g0, g1, out, false);
}

void q4_bf16_generic(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_generic(w, x, g0, g1, out, true);
}

void dense_f16_f32_generic(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  const auto* wt = static_cast<const uint16_t*>(tile);  // [K'][64] fp16
  for (int64_t r = 0; r < x.m; ++r) {
    for (int64_t c = 0; c < kTileN; ++c) {
      float acc = 0.0f;
      for (int64_t k = c0 * 8; k < c1 * 8; ++k) acc += x_at(x, r, k, false) * f16_to_f32(wt[k * kTileN + c]);
      out[r * kTileN + c] = acc;
    }
  }
}

namespace {
void dense_bf16_generic(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out, bool x_bf16) {
  const auto* wt = static_cast<const uint32_t*>(tile);  // [K'/2][64] bf16 pairs
  for (int64_t r = 0; r < x.m; ++r) {
    for (int64_t c = 0; c < kTileN; ++c) {
      float acc = 0.0f;
      for (int64_t p = c0 * 4; p < c1 * 4; ++p) {
        const uint32_t pair = wt[p * kTileN + c];
        acc += x_at(x, r, 2 * p, x_bf16) * bf16_to_f32(uint16_t(pair & 0xFFFF));
        acc += x_at(x, r, 2 * p + 1, x_bf16) * bf16_to_f32(uint16_t(pair >> 16));
      }
      out[r * kTileN + c] = acc;
    }
  }
}

}  // namespace

void dense_bf16_f32_generic(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  dense_bf16_generic(tile, x, c0, c1, out, false);
}

void dense_bf16_bf16_generic(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  dense_bf16_generic(tile, x, c0, c1, out, true);
}

void dequant_generic(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel) {
  const int64_t base = w.geom.chunk_begin(g0);
  for (int64_t g = g0; g < g1; ++g) {
    for (int64_t c = 0; c < kTileN; ++c) {
      const float s = tile_scale(w, g, c);
      const float coef = tile_zero_coef(w, g, c);  // value = (q - 8) * s + coef
      for (int64_t chunk = w.geom.chunk_begin(g); chunk < w.geom.chunk_end(g); ++chunk) {
        for (int kk = 0; kk < 8; ++kk) {
          const float v = std::fma(float(code_at(w.codes, chunk, c, kk) - 8), s, coef);  // one rounding
          const int64_t k = (chunk - base) * 8 + kk;
          if (dtype == DType::bf16) {
            static_cast<uint16_t*>(panel)[((k / 2) * kTileN + c) * 2 + (k & 1)] = f32_to_bf16(v);
          } else {
            static_cast<uint16_t*>(panel)[k * kTileN + c] = f32_to_f16(v);
          }
        }
      }
    }
  }
}

}  // namespace w4a16::cpu
