// Decoupled stage 1 (AVX2 + FMA + F16C): int4 tile -> dense 16-bit panel, value (q - 8) * s + coef
// rounded once to nearest even: bitwise identical to dequant_generic (kernels_scalar.cpp), which
// multiplies and adds in two fp32 roundings, hence mul_no_contract (no FMA) here.
//
// Layout trick: the word keeps the even k of the chunk in its low half and the odd k in its high
// half, so nibble p of the word and of the word >> 16 are the pair (k = 2p, 2p + 1): exactly one
// bf16 pair word of the [K'/2][64] layout, assembled with one shift and one 16-bit blend; for
// fp16 each is one vcvtps2ph (round to nearest even, as f32_to_f16) into row k of [K'][64].
#include "cpu/avx2/avx2_common.hpp"

namespace w4a16::cpu {

void dequant_panel__avx2(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel) {
  const int64_t base = w.geom.chunk_begin(g0);
  for (int64_t g = g0; g < g1; ++g) {
    for (int b = 0; b < 8; ++b) {
      const GroupParams p = group_params(w, g, b);
      auto value = [&](__m256 centered) {  // (q - 8) * s + coef, two roundings
        return _mm256_add_ps(mul_no_contract(centered, p.scale), p.coef);
      };
      for (int64_t chunk = w.geom.chunk_begin(g); chunk < w.geom.chunk_end(g); ++chunk) {
        const int64_t local = chunk - base;
        const __m256i word = _mm256_load_si256(reinterpret_cast<const __m256i*>(w.codes + chunk * kTileN + 8 * b));
        const __m256i word_odd = _mm256_srli_epi32(word, 16);
        if (dtype == DType::bf16) {
          auto* out = static_cast<uint32_t*>(panel) + local * 4 * kTileN + 8 * b;  // [K'/2][64] pairs
          for_each_nibble([&]<int P>() {
            const __m256i even = _mm256_srli_epi32(f32_to_bf16_high(value(centered_nibble_f32<P>(word))), 16);
            const __m256i odd = f32_to_bf16_high(value(centered_nibble_f32<P>(word_odd)));
            _mm256_store_si256(reinterpret_cast<__m256i*>(out + P * kTileN), _mm256_blend_epi16(even, odd, 0xAA));
          });
        } else {
          auto* out = static_cast<uint16_t*>(panel) + local * kChunkK * kTileN + 8 * b;  // [K'][64]
          for_each_nibble([&]<int P>() {
            _mm_store_si128(reinterpret_cast<__m128i*>(out + (2 * P) * kTileN),
                            _mm256_cvtps_ph(value(centered_nibble_f32<P>(word)), _MM_FROUND_TO_NEAREST_INT));
            _mm_store_si128(reinterpret_cast<__m128i*>(out + (2 * P + 1) * kTileN),
                            _mm256_cvtps_ph(value(centered_nibble_f32<P>(word_odd)), _MM_FROUND_TO_NEAREST_INT));
          });
        }
      }
    }
  }
}

}  // namespace w4a16::cpu
