// AVX2 + FMA + F16C helpers shared by the avx2 kernel files. Everything here has internal linkage
// (anonymous namespace) so that copies compiled with different flags never mix.
//
// A ymm register holds 8 fp32 lanes, so a 64-column tile is 8 column blocks ("b" = 0..7, block b
// = columns 8b..8b+7) and one packed word vector (kernels.hpp) is 8 columns x 8 k of one chunk.
//
// int4 -> fp32 without a table. vpermps on ymm indexes only 8 entries, so the AVX-512 table
// lookup has no 1-instruction AVX2 equivalent. Instead each code becomes a float by the
// magic-exponent trick, with no shift for the code's own position:
//
//   nibble p (bits 4p..4p+3) of the word, p = 0..3:  bits = (word & 0xF << 4p) | (150 - 4p) << 23
//
// is the fp32 number 2^(23-4p) + q exactly: 2^(23-4p) has a mantissa ulp of 2^-4p, so the
// nibble, sitting 4p bits up in the mantissa, is worth q ulps = q. One subtraction of the
// constant 2^(23-4p) + 8 leaves q - 8 exactly (both operands are in one binade). The word keeps
// the even k of the chunk in bits 0..15 (nibbles p = 0..3 are k = 0, 2, 4, 6) and the odd k in
// bits 16..31, so one 16-bit shift per word gives a second word whose nibbles p = 0..3 are
// k = 1, 3, 5, 7: per 8 weights, and + or + sub (and 1/8 shift). The alternative with a pre-XOR
// by 0x88888888 (nibble = q - 8 as a signed 4-bit number), slli + srai to sign-extend and
// vcvtdq2ps is also 3 instructions, but 2 of them are shifts, which run on two pipes on Zen 4 and
// on p0/p1 next to the FMAs on Intel; and/or run on every vector pipe. Measured on the Zen 4 dev
// machine (M = 1, cache-resident tile): see the note in q4_f32_avx2.cpp.
#pragma once

#include <immintrin.h>

#include <cstdint>

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
      const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + index));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
    }
    case DType::f32: return _mm256_loadu_ps(static_cast<const float*>(base) + index);
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
    case ZeroMode::sym: p.coef = _mm256_setzero_ps(); break;
    case ZeroMode::asym: {
      const __m128i z8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(w.zeros) + index));
      const __m256 z = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(z8));
      p.coef = _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(8.0f), z), p.scale);
      break;
    }
    case ZeroMode::float_zero: p.coef = load8_as_f32(w.zeros, w.scale_dtype, index); break;
  }
  return p;
}

// q - 8 as fp32 for nibble P (bits 4P..4P+3) of each 32-bit lane: the magic-exponent trick of
// the header comment. P = 0..3; the other nibbles of the word are masked off.
template <int P>
inline __m256 centered_nibble_f32(__m256i word) {
  static_assert(P >= 0 && P <= 3);
  constexpr int kExponent = 23 - 4 * P;  // 2^kExponent: mantissa ulp 2^-4P
  const __m256i mask = _mm256_set1_epi32(0xF << (4 * P));
  const __m256i magic = _mm256_set1_epi32((127 + kExponent) << 23);
  const __m256 offset = _mm256_set1_ps(float((1 << kExponent) + 8));
  return _mm256_sub_ps(_mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(word, mask), magic)), offset);
}

// Calls f.template operator()<P>() for P = 0..3 (the nibble positions of a half-word).
template <typename F>
inline void for_each_nibble(F&& f) {
  f.template operator()<0>();
  f.template operator()<1>();
  f.template operator()<2>();
  f.template operator()<3>();
}

// a * b rounded to fp32, never contracted with a following add into an FMA (GCC contracts
// vector mul + add at -ffp-contract=fast, its C++ default): the decoupled stage must round
// twice, exactly like the portable twin, to be bitwise identical to it.
inline __m256 mul_no_contract(__m256 a, __m256 b) {
  __m256 p = _mm256_mul_ps(a, b);
  __asm__("" : "+x"(p));
  return p;
}

// fp32 -> bf16 round to nearest even, exactly as f32_to_bf16 (check.hpp / float16.hpp), NaN
// included (quieted). The bf16 bits are the HIGH 16 bits of each 32-bit lane; the low 16 bits are
// garbage for the caller to shift out or blend away.
inline __m256i f32_to_bf16_high(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), odd);
  const __m256i quiet_nan = _mm256_or_si256(bits, _mm256_set1_epi32(0x00400000));
  const __m256 is_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
  return _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(quiet_nan), is_nan));
}

// ---- Register-blocked fp32 micro-kernel -------------------------------------------------------
// acc[MR rows][NB blocks of 8 columns] += x[r][k] * W[k][8(b0 + b) .. +7] for k in [k0, k1).
// `row(k, b)` yields the 8 fp32 weights of column block b at row k (from an fp32 panel, or
// widened from fp16 / bf16 on the fly). Registers: MR * NB accumulators + NB weights + 1
// broadcast <= 16 ymm: (6 x 2) = 15, (2 x 4) = 13, (1 x 8) = 10 (weights used once at MR = 1).
template <int MR, int NB, typename Row>
inline void fma_rows(const float* x, int64_t ld, int64_t k0, int64_t k1, int b0, Row row, __m256 (&acc)[MR][NB]) {
  for (int64_t k = k0; k < k1; ++k) {
    __m256 wk[NB];
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) wk[b] = row(k, b0 + b);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 xb = _mm256_broadcast_ss(x + r * ld + k);
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_fmadd_ps(wk[b], xb, acc[r][b]);
    }
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
    case 5: f.template operator()<5, 2>(r); break;
    case 4: f.template operator()<4, 2>(r); break;
    case 3: f.template operator()<3, 2>(r); break;
    case 2: f.template operator()<2, 4>(r); break;
    case 1: f.template operator()<1, 8>(r); break;
    default: break;
  }
}

}  // namespace
}  // namespace w4a16::cpu
