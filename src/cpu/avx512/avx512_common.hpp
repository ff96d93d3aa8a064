// AVX-512 helpers shared by the avx512 and avx512bf16 kernel files. Everything here has internal
// linkage (anonymous namespace) so that the copies compiled with different flags never mix.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "cpu/kernels.hpp"

namespace w4a16::cpu {
namespace {

// 16 consecutive values of a scale-typed array as fp32.
inline __m512 load16_as_f32(const void* base, DType dtype, int64_t index) {
  switch (dtype) {
    case DType::f16:
      return _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + index)));
    case DType::bf16: {
      const __m256i bits =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + index));
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
    }
    case DType::f32:
      return _mm512_loadu_ps(static_cast<const float*>(base) + index);
  }
  return _mm512_setzero_ps();
}

// Scale and zero coefficient of 16 columns (block b of the tile) for one group; see kernels.hpp:
// value = (q - 8) * s + coef, coef = (8 - z) * s (asym), zf (float), 0 (sym).
struct GroupParams {
  __m512 scale, coef;
};
inline GroupParams group_params(const Q4Tile& w, int64_t group, int b) {
  const int64_t index = group * kTileN + 16 * b;
  GroupParams p;
  p.scale = load16_as_f32(w.scales, w.scale_dtype, index);
  switch (w.zero_mode) {
    case ZeroMode::sym:
      p.coef = _mm512_setzero_ps();
      break;
    case ZeroMode::asym: {
      const __m128i z8 =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(w.zeros) + index));
      const __m512 z = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(z8));
      p.coef = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(8.0f), z), p.scale);
      break;
    }
    case ZeroMode::float_zero:
      p.coef = load16_as_f32(w.zeros, w.scale_dtype, index);
      break;
  }
  return p;
}

// Prefetches `lines` cache lines from base + offset bytes on. The address may lie past the end
// of the buffer (one group ahead of the last one): a prefetch never faults, and the address is
// formed as an integer, not by pointer arithmetic.
inline void prefetch_lines(const void* base, int64_t offset, int lines) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(base) + uintptr_t(offset);
  for (int i = 0; i < lines; ++i) _mm_prefetch(reinterpret_cast<const char*>(a + 64 * uintptr_t(i)), _MM_HINT_T0);
}

// Prefetches the scales (and zeros) of group g of a tile: 64 values of each.
inline void prefetch_group_params(const Q4Tile& w, int64_t g) {
  const int64_t bytes = kTileN * int64_t(dtype_size(w.scale_dtype));
  prefetch_lines(w.scales, g * bytes, int(bytes / 64));
  if (w.zero_mode == ZeroMode::asym) prefetch_lines(w.zeros, g * kTileN, 1);
  if (w.zero_mode == ZeroMode::float_zero) prefetch_lines(w.zeros, g * bytes, int(bytes / 64));
}

#ifdef __AVX512BF16__
// The bf16-dot arithmetic of the fused and dense dot families: step j of a chunk multiplies the
// pair (k = 2j, 2j + 1) of x, broadcast as one 32-bit value, with a vector of weight pairs.
struct DotBf16Arith {
  using X = uint16_t;
  using W = __m512i;
  static __m512 x_operand(const X* xk, int j) {
    uint32_t pair;
    __builtin_memcpy(&pair, xk + 2 * j, 4);
    return _mm512_castsi512_ps(_mm512_set1_epi32(int(pair)));
  }
  static __m512 madd(__m512 acc, W w, __m512 x) {
    return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)_mm512_castps_si512(x));
  }
};
#endif

// fp32 lookup table of q - 8 for vpermps (which reads only the low 4 bits of each index).
inline __m512 centered_code_table_f32() {
  return _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
}

// Round 16 fp32 to bf16 (nearest even), as the low 16 bits of each 32-bit lane. NaN is not
// expected here (panel values are finite products of validated scales).
inline __m512i f32_to_bf16_lanes(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), odd);
  return _mm512_srli_epi32(rounded, 16);
}

}  // namespace
}  // namespace w4a16::cpu

namespace w4a16::cpu {
namespace {

// Register-blocked fp32 micro-kernel: acc[MR rows][4 x 16 columns] += x[r][k] * W[k][0..63] for
// k in [k0, k1). `row(k, b)` yields the 16 fp32 weights of block b at row k (from an fp32
// panel, or widened from fp16 / bf16 on the fly). 24 accumulators + 4 weight vectors + 1
// broadcast fit the 32 zmm registers at MR = 6.
template <int MR, typename Row>
inline void fma_rows_x64(const float* x, int64_t ld, int64_t k0, int64_t k1, Row row, __m512 (&acc)[MR][4]) {
  for (int64_t k = k0; k < k1; ++k) {
    __m512 wk[4];
#pragma GCC unroll 8
    for (int b = 0; b < 4; ++b) wk[b] = row(k, b);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 xb = _mm512_set1_ps(x[r * ld + k]);
#pragma GCC unroll 8
      for (int b = 0; b < 4; ++b) acc[r][b] = _mm512_fmadd_ps(wk[b], xb, acc[r][b]);
    }
  }
}

template <int MR>
inline void zero_acc(__m512 (&acc)[MR][4]) {
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < 4; ++b) acc[r][b] = _mm512_setzero_ps();
}

template <int MR>
inline void store_acc(const __m512 (&acc)[MR][4], float* out) {
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < 4; ++b) _mm512_storeu_ps(out + r * kTileN + 16 * b, acc[r][b]);
}

// Prefill epilogue of one group for rows [r0, r0 + MR): out[r] += s * acc[r] + coef * sum_g(x[r]).
template <int MR>
inline void add_group_to_out(const __m512 (&acc)[MR][4], const GroupParams (&p)[4], const Activations& x,
                             int64_t groups, int64_t g, int64_t r0, float* out) {
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* o = out + (r0 + r) * kTileN;
#pragma GCC unroll 8
    for (int b = 0; b < 4; ++b) {
      __m512 v = _mm512_fmadd_ps(p[b].scale, acc[r][b], _mm512_loadu_ps(o + 16 * b));
      if (x.group_sums) v = _mm512_fmadd_ps(p[b].coef, _mm512_set1_ps(x.group_sums[(r0 + r) * groups + g]), v);
      _mm512_storeu_ps(o + 16 * b, v);
    }
  }
}

// Calls f.template operator()<MR>(row0) for the fewest blocks of at most 6 rows, of balanced
// sizes (M = 7 runs 4 + 3, not 6 + 1: a 1-row block has only 4 accumulator chains).
template <typename F>
inline void for_row_blocks(int64_t m, F&& f) {
  const int64_t blocks = (m + 5) / 6;
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t r0 = m * i / blocks, rows = m * (i + 1) / blocks - r0;
    switch (rows) {
      case 6:
        f.template operator()<6>(r0);
        break;
      case 5:
        f.template operator()<5>(r0);
        break;
      case 4:
        f.template operator()<4>(r0);
        break;
      case 3:
        f.template operator()<3>(r0);
        break;
      case 2:
        f.template operator()<2>(r0);
        break;
      default:
        f.template operator()<1>(r0);
        break;
    }
  }
}

}  // namespace
}  // namespace w4a16::cpu
