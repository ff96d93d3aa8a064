// Dense 16-bit weight x fp32 activation kernels (AVX2 + FMA + F16C): the FP16/BF16 baseline and
// the second stage of the decoupled strategy on AVX2 machines. Same register blocking as the
// int4 prefill kernel (6 rows x 16 columns, 1 x 64 / 2 x 32 for decode), so the ratio between
// them measures the weight format.
//
// Layouts (kernels.hpp): fp16 [K'][64], one vcvtph2ps widens the 8 columns of a block at row k;
// bf16 pairs [K'/2][64] uint32 (k even low, k + 1 high): the fp32 value of a bf16 is its bits
// moved to the top of the lane, i.e. a 16-bit left shift for even k and a mask of the high half
// for odd k. Both are exact.
#include "cpu/avx2/avx2_common.hpp"

namespace w4a16::cpu {

void dense_f16_f32__avx2(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  const auto* w = static_cast<const uint16_t*>(tile);  // [K'][64] fp16
  const auto* xf = static_cast<const float*>(x.data);
  for_row_blocks(x.m, [&]<int MR, int NB>(int64_t r0) {
    auto row = [&](int64_t k, int b) {
      return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(w + k * kTileN + 8 * b)));
    };
    for (int b0 = 0; b0 < 8; b0 += NB) {
      __m256 acc[MR][NB];
      zero_acc(acc);
      fma_rows<MR, NB>(xf + r0 * x.ld, x.ld, c0 * kChunkK, c1 * kChunkK, b0, row, acc);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) _mm256_storeu_ps(out + (r0 + r) * kTileN + 8 * (b0 + b), acc[r][b]);
    }
  });
}

void dense_bf16_f32__avx2(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  const auto* w = static_cast<const uint32_t*>(tile);  // [K'/2][64] bf16 pairs
  const auto* xf = static_cast<const float*>(x.data);
  const __m256i high_half = _mm256_set1_epi32(int(0xFFFF0000u));
  for_row_blocks(x.m, [&]<int MR, int NB>(int64_t r0) {
    // Even k: the low bf16 of the pair moved up 16 bits is its fp32 value; odd k: mask the high.
    auto row = [&](int64_t k, int b) {
      const __m256i pair = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + (k >> 1) * kTileN + 8 * b));
      return _mm256_castsi256_ps((k & 1) ? _mm256_and_si256(pair, high_half) : _mm256_slli_epi32(pair, 16));
    };
    for (int b0 = 0; b0 < 8; b0 += NB) {
      __m256 acc[MR][NB];
      zero_acc(acc);
      fma_rows<MR, NB>(xf + r0 * x.ld, x.ld, c0 * kChunkK, c1 * kChunkK, b0, row, acc);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) _mm256_storeu_ps(out + (r0 + r) * kTileN + 8 * (b0 + b), acc[r][b]);
    }
  });
}

}  // namespace w4a16::cpu
