// Dense 16-bit weight x fp32 activation kernels (AVX-512F): the FP16/BF16 baseline where the
// CPU has no BF16 dot instruction (and always for fp16, which has none here). Same blocking and
// threading as the fused int4 kernels, so the ratio between them measures the weight format.
#include "cpu/avx512/avx512_common.hpp"

namespace w4a16::cpu {

void dense_f16_f32__avx512(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  const auto* w = static_cast<const uint16_t*>(tile);  // [K'][64] fp16
  const auto* xf = static_cast<const float*>(x.data);
  for_row_blocks(x.m, [&]<int MR>(int64_t r0) {
    __m512 acc[MR][4];
    zero_acc(acc);
    auto row = [&](int64_t k, int b) {
      return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(w + k * kTileN + 16 * b)));
    };
    fma_rows_x64<MR>(xf + r0 * x.ld, x.ld, c0 * kChunkK, c1 * kChunkK, row, acc);
    store_acc(acc, out + r0 * kTileN);
  });
}

void dense_bf16_f32__avx512(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  const auto* w = static_cast<const uint32_t*>(tile);  // [K'/2][64] bf16 pairs
  const auto* xf = static_cast<const float*>(x.data);
  const __m512i high_half = _mm512_set1_epi32(int(0xFFFF0000u));
  for_row_blocks(x.m, [&]<int MR>(int64_t r0) {
    __m512 acc[MR][4];
    zero_acc(acc);
    // Even k: the low bf16 of the pair moved up 16 bits is its fp32 value; odd k: mask the high.
    auto row = [&](int64_t k, int b) {
      const __m512i pair = _mm512_load_si512(w + (k >> 1) * kTileN + 16 * b);
      return _mm512_castsi512_ps((k & 1) ? _mm512_and_si512(pair, high_half) : _mm512_slli_epi32(pair, 16));
    };
    fma_rows_x64<MR>(xf + r0 * x.ld, x.ld, c0 * kChunkK, c1 * kChunkK, row, acc);
    store_acc(acc, out + r0 * kTileN);
  });
}

}  // namespace w4a16::cpu
