// Dense 16-bit weight x fp32 activation kernels (AVX2 + FMA + F16C): the FP16/BF16 baseline and
// the second stage of the decoupled strategy on AVX2 machines. Same register blocking as the
// int4 kernels (6 rows x 16 columns; 1 x 64, 2 x 32, 3..5 x 16 for the last rows), so the ratio
// between them measures the weight format.
//
// Layouts (kernels.hpp): fp16 [K'][64]: one vcvtph2ps widens the 8 columns of a block at row k;
// bf16 pairs [K'/2][64] uint32 (k even low, k + 1 high): the fp32 value of a bf16 is its bits at
// the top of the lane, i.e. a 16-bit left shift for even k, and for odd k the high half with the
// low half cleared (fma_rows passes the parity as a constant). Both widenings are exact.
#include "cpu/avx2/avx2_common.hpp"

namespace w4a16::cpu {

namespace {

// out[r0 .. r0 + MR)[64] = x[rows][k0, k1) * W[k0, k1)[64], in 8 / NB column passes. One function
// per shape (noinline) keeps each shape's register allocation to itself.
template <int MR, int NB, typename Row>
[[gnu::noinline]] void dense_rows(Row row, const float* x, int64_t ld, int64_t k0, int64_t k1, float* out) {
  for (int b0 = 0; b0 < 8; b0 += NB) {
    __m256 acc[MR][NB];
    zero_acc(acc);
    fma_rows<MR, NB>(x, ld, k0, k1, b0, row, acc);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) _mm256_storeu_ps(out + r * kTileN + 8 * (b0 + b), acc[r][b]);
  }
}

// One row of bf16-pair weights: each pair word is loaded once and yields both k (shift for the
// even, mask for the odd). Through fma_rows (one k at a time, 1 x 8) GCC hoisted the odd step's
// 8 loads above the even step's FMAs and kept an accumulator on the stack, a store-load in the
// FMA chain (measured 3.8 ns per 64 weights at M = 1; this loop 1.54, fp16 weights 1.60).
[[gnu::noinline]] void dense_bf16_one_row(const uint32_t* w, const float* x, int64_t k0, int64_t k1, float* out) {
  const __m256i high_half = _mm256_set1_epi32(int(0xFFFF0000u));
  __m256 acc[8];
#pragma GCC unroll 8
  for (int b = 0; b < 8; ++b) acc[b] = _mm256_setzero_ps();
  for (int64_t k = k0; k < k1; k += 2) {
    const __m256 x_even = _mm256_broadcast_ss(x + k), x_odd = _mm256_broadcast_ss(x + k + 1);
    const uint32_t* pairs = w + (k >> 1) * kTileN;  // [64] bf16 pairs (k, k + 1)
#pragma GCC unroll 8
    for (int b = 0; b < 8; ++b) {
      const __m256i pair = _mm256_load_si256(reinterpret_cast<const __m256i*>(pairs + 8 * b));
      acc[b] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(pair, 16)), x_even, acc[b]);
      acc[b] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(pair, high_half)), x_odd, acc[b]);
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < 8; ++b) _mm256_storeu_ps(out + 8 * b, acc[b]);
}

}  // namespace

void dense_f16_f32_6x16__avx2(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  const auto* w = static_cast<const uint16_t*>(tile);  // [K'][64] fp16
  const auto* xf = static_cast<const float*>(x.data);
  auto row = [w](int64_t k, int b, bool) {
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(w + k * kTileN + 8 * b)));
  };
  for_row_blocks(x.m, [&]<int MR, int NB>(int64_t r0) {
    dense_rows<MR, NB>(row, xf + r0 * x.ld, x.ld, c0 * kChunkK, c1 * kChunkK, out + r0 * kTileN);
  });
}

void dense_bf16_f32_6x16__avx2(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  const auto* w = static_cast<const uint32_t*>(tile);  // [K'/2][64] bf16 pairs
  const auto* xf = static_cast<const float*>(x.data);
  auto row = [w](int64_t k, int b, bool odd) {
    const __m256i pair = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + (k >> 1) * kTileN + 8 * b));
    // Odd k: clear the low half by two shifts rather than an AND with a 0xFFFF0000 constant,
    // which the compiler pins in a register and which at 6 x 16 pushed two accumulators to the
    // stack (measured 1.64 -> 1.15 ns per 64 weights per row at M = 64).
    return _mm256_castsi256_ps(odd ? _mm256_slli_epi32(_mm256_srli_epi32(pair, 16), 16) : _mm256_slli_epi32(pair, 16));
  };

  for_row_blocks(x.m, [&]<int MR, int NB>(int64_t r0) {
    if constexpr (MR == 1) {
      dense_bf16_one_row(w, xf + r0 * x.ld, c0 * kChunkK, c1 * kChunkK, out + r0 * kTileN);
    } else {
      dense_rows<MR, NB>(row, xf + r0 * x.ld, x.ld, c0 * kChunkK, c1 * kChunkK, out + r0 * kTileN);
    }
  });
}

}  // namespace w4a16::cpu
