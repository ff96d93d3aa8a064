// AVX2 + FMA + F16C helpers shared by the avx2 kernel files. Everything here has internal linkage
// (anonymous namespace) so that copies compiled with different flags never mix.
//
// A ymm register holds 8 fp32 lanes, so a 64-column tile is 8 column blocks ("b" = 0..7, block b
// = columns 8b..8b+7) and one packed word vector (kernels.hpp) is 8 columns x 8 k of one chunk.
//
// int4 -> fp32 without a table. vpermps on ymm indexes only 8 entries, so the AVX-512 16-entry
// table lookup has no one-instruction AVX2 equivalent. Two exact replacements, both 3 vector
// instructions per 8 codes, are used (q4_f32_avx2.cpp says which where, with the measurements):
//
//  * magic exponent (centered_nibble_f32): for nibble p (bits 4p..4p+3) of a lane,
//      bits = (word & 0xF << 4p) | (150 - 4p) << 23
//    is the fp32 number 2^(23-4p) + q exactly (2^(23-4p) has a mantissa ulp of 2^-4p, and the
//    nibble sits 4p bits up in the mantissa, so it is worth q ulps = q); subtracting the
//    constant 2^(23-4p) + 8 leaves q - 8 exactly (both operands are in one binade). The even k
//    of a chunk are nibbles p = 0..3 of the word, the odd k nibbles p = 0..3 of the word >> 16:
//    and + or + sub (+ 1 shift per 2 vectors). No shift for the position itself, and and/or run
//    on every vector pipe (p0/p1/p5 on Intel, where shifts and conversions share p0/p1 with FMA).
//  * sign extension (q4_f32_avx2.cpp): word ^ 0x88888888 holds q - 8 as signed 4-bit nibbles;
//    slli moves nibble j to the top, srai 28 sign-extends it, vcvtdq2ps converts.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <utility>

#include "cpu/kernels.hpp"

namespace w4a16::cpu {
namespace {

// 8 consecutive values of a scale-typed array as fp32 (exact widening).
inline __m256 load8_as_f32(const void* base, DType dtype, int64_t index) {
  switch (dtype) {
    case DType::f16:
      return _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + index)));
    case DType::bf16: {
      const __m128i bits =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + index));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
    }
    case DType::f32:
      return _mm256_loadu_ps(static_cast<const float*>(base) + index);
  }
  return _mm256_setzero_ps();
}

// Scale and zero coefficient of the 8 columns of block b for one group (kernels.hpp):
// value = (q - 8) * s + coef, coef = (8 - z) * s (asym, one rounding as in tile_zero_coef),
// zf (float zero), 0 (sym).
struct GroupParams {
  __m256 scale, coef;
};
inline GroupParams group_params(const Q4Tile& w, int64_t group, int b) {
  const int64_t index = group * kTileN + 8 * b;
  GroupParams p;
  p.scale = load8_as_f32(w.scales, w.scale_dtype, index);
  switch (w.zero_mode) {
    case ZeroMode::sym:
      p.coef = _mm256_setzero_ps();
      break;
    case ZeroMode::asym: {
      const __m128i z8 =
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(w.zeros) + index));
      const __m256 z = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(z8));
      p.coef = _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(8.0f), z), p.scale);
      break;
    }
    case ZeroMode::float_zero:
      p.coef = load8_as_f32(w.zeros, w.scale_dtype, index);
      break;
  }
  return p;
}

// q - 8 as fp32 for nibble P (bits 4P..4P+3) of each 32-bit lane: the magic-exponent trick of
// the header comment. P = 0..3; the other nibbles of the word are masked off. The empty asm
// statement hides the three constants from GCC's optimizers, which otherwise keep the 12
// constants of the four positions live across the whole k loop and push accumulators to the
// stack; hidden, most become memory operands of and/or/sub (measured at M = 1: 1 x 64 columns
// 3.89 -> 2.74 ns per 64 weights, 1 x 32 columns 2.69 -> 2.61).
template <int P>
inline __m256 centered_nibble_f32(__m256i word) {
  static_assert(P >= 0 && P <= 3);
  constexpr int kExponent = 23 - 4 * P;  // 2^kExponent: mantissa ulp 2^-4P
  __m256i mask = _mm256_set1_epi32(0xF << (4 * P));
  __m256i magic = _mm256_set1_epi32((127 + kExponent) << 23);
  __m256 offset = _mm256_set1_ps(float((1 << kExponent) + 8));
  __asm__("" : "+x"(mask), "+x"(magic), "+x"(offset));
  return _mm256_sub_ps(_mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(word, mask), magic)), offset);
}

// Position j = 0..7 of a packed word (bits 4j..4j+3) holds k = kOrder[j] of the chunk
// (kernels.hpp): even k in the low half-word, odd k in the high one.
constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// q - 8 as fp32 for code position J of the 8 packed words at `words` (one column block).
struct MagicExponentCodes {
  template <int J>
  static __m256 at(const uint32_t* words) {
    __m256i word = _mm256_load_si256(reinterpret_cast<const __m256i*>(words));
    if constexpr (J >= 4) word = _mm256_srli_epi32(word, 16);
    return centered_nibble_f32<J & 3>(word);
  }
};

// Calls f.template operator()<J>() for J = 0..7 (the code positions of a packed word).
template <typename F>
inline void for_each_position(F&& f) {
  [&]<int... J>(std::integer_sequence<int, J...>) { (f.template operator()<J>(), ...); }
  (std::make_integer_sequence<int, 8>());
}

// Calls f.template operator()<P>() for P = 0..3 (the nibble positions of a half-word).
template <typename F>
inline void for_each_nibble(F&& f) {
  f.template operator()<0>();
  f.template operator()<1>();
  f.template operator()<2>();
  f.template operator()<3>();
}

// fp32 -> bf16 round to nearest even, exactly as f32_to_bf16 (w4a16/float16.hpp): bits + 0x7FFF
// + (bit 16), then the high half; NaN is quieted instead (kMayBeNaN; without it a NaN whose
// payload sits in the low bits would round to inf). The bf16 bits are the HIGH 16 bits of each
// 32-bit lane; the low 16 bits are garbage for the caller to shift out or blend away.
template <bool kMayBeNaN>
inline __m256i f32_to_bf16_high(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), odd);
  if constexpr (!kMayBeNaN) return rounded;
  const __m256i quiet_nan = _mm256_or_si256(bits, _mm256_set1_epi32(0x00400000));
  const __m256 is_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(quiet_nan), is_nan));
}

// ---- Register-blocked fp32 micro-kernel -------------------------------------------------------
// acc[MR rows][NB blocks of 8 columns] += x[r][k] * W[k][8(b0 + b) .. +7] for k in [k0, k1), an
// even range (whole chunks). `row(k, b, odd)` yields the 8 fp32 weights of column block b at row
// k, with odd = k & 1 a constant after unrolling by 2 (so the bf16-pair loader picks its shift
// at compile time). Registers: MR * NB accumulators + NB weights + 1 broadcast <= 16 ymm:
// (6 x 2) = 15, (2 x 4) = 13, (1 x 8) = 10.
template <int MR, int NB, typename Row>
inline void fma_rows(const float* x, int64_t ld, int64_t k0, int64_t k1, int b0, Row row, __m256 (&acc)[MR][NB]) {
  auto step = [&](int64_t k, bool odd) {
    __m256 wk[NB];
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) wk[b] = row(k, b0 + b, odd);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 xb = _mm256_broadcast_ss(x + r * ld + k);
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_fmadd_ps(wk[b], xb, acc[r][b]);
    }
  };
  for (int64_t k = k0; k < k1; k += 2) {
    step(k, false);
    step(k + 1, true);
  }
}

template <int MR, int NB>
inline void zero_acc(__m256 (&acc)[MR][NB]) {
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_setzero_ps();
}

// Calls f.template operator()<MR, NB>(row0) over the rows of x: blocks of 6 rows x 16 columns
// (the register-blocked shape), then one remainder block, whose shape keeps >= 6 independent
// accumulators (1 x 64 columns, 2 x 32, 3..5 x 16). The callee loops over the 8 / NB column
// passes itself.
template <typename F>
inline void for_row_blocks(int64_t m, F&& f) {
  int64_t r = 0;
  for (; r + 6 <= m; r += 6) f.template operator()<6, 2>(r);
  switch (m - r) {
    case 5:
      f.template operator()<5, 2>(r);
      break;
    case 4:
      f.template operator()<4, 2>(r);
      break;
    case 3:
      f.template operator()<3, 2>(r);
      break;
    case 2:
      f.template operator()<2, 4>(r);
      break;
    case 1:
      f.template operator()<1, 8>(r);
      break;
    default:
      break;
  }
}

}  // namespace
}  // namespace w4a16::cpu
