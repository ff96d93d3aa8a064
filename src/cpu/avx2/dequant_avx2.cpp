// Decoupled stage 1 (AVX2 + FMA + F16C): int4 tile -> dense 16-bit panel, value (q - 8) * s + coef
// in one fp32 FMA, then rounded to nearest even: bitwise identical to dequant_generic (the
// rounding contract of kernels.hpp).
//
// Layout trick: the word keeps the even k of the chunk in its low half and the odd k in its high
// half, so nibble p of the word and of the word >> 16 are the pair (k = 2p, 2p + 1): exactly one
// bf16 pair word of the [K'/2][64] layout, assembled with one shift and one 16-bit blend; for
// fp16 each is one vcvtps2ph (round to nearest even, as f32_to_f16) into row k of [K'][64].
#include "cpu/avx2/avx2_common.hpp"

namespace w4a16::cpu {

namespace {

// (q - 8) * s + coef, one rounding (the contract of kernels.hpp).
inline __m256 panel_value(__m256 centered, const GroupParams& p) { return _mm256_fmadd_ps(centered, p.scale, p.coef); }

// One column block of one group, bf16 pairs: out is [chunks * 4][64] uint32 at column 8b. The
// NaN handling of the rounding (3 of its 7 instructions) is compiled in only where a scale or
// coef of the block is not finite: with both finite, (q - 8) * s + coef can overflow to inf but
// never be NaN (measured: 10.7 -> 8.0 ns per 64 weights, one core).
template <bool kMayBeNaN>
void dequant_block_bf16(const uint32_t* codes, int64_t chunks, const GroupParams& p, uint32_t* out) {
  for (int64_t c = 0; c < chunks; ++c) {
    const __m256i word = _mm256_load_si256(reinterpret_cast<const __m256i*>(codes + c * kTileN));
    const __m256i word_odd = _mm256_srli_epi32(word, 16);
    for_each_nibble([&]<int P>() {  // pair (k = 2P, 2P + 1) = (nibble P of word, of word_odd)
      const __m256i even =
          _mm256_srli_epi32(f32_to_bf16_high<kMayBeNaN>(panel_value(centered_nibble_f32<P>(word), p)), 16);
      const __m256i odd = f32_to_bf16_high<kMayBeNaN>(panel_value(centered_nibble_f32<P>(word_odd), p));
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + (c * 4 + P) * kTileN), _mm256_blend_epi16(even, odd, 0xAA));
    });
  }
}

// One column block of one group, fp16: out is [chunks * 8][64] uint16 at column 8b.
void dequant_block_f16(const uint32_t* codes, int64_t chunks, const GroupParams& p, uint16_t* out) {
  for (int64_t c = 0; c < chunks; ++c) {
    const __m256i word = _mm256_load_si256(reinterpret_cast<const __m256i*>(codes + c * kTileN));
    const __m256i word_odd = _mm256_srli_epi32(word, 16);
    for_each_nibble([&]<int P>() {
      _mm_store_si128(reinterpret_cast<__m128i*>(out + (c * 8 + 2 * P) * kTileN),
                      _mm256_cvtps_ph(panel_value(centered_nibble_f32<P>(word), p), _MM_FROUND_TO_NEAREST_INT));
      _mm_store_si128(reinterpret_cast<__m128i*>(out + (c * 8 + 2 * P + 1) * kTileN),
                      _mm256_cvtps_ph(panel_value(centered_nibble_f32<P>(word_odd), p), _MM_FROUND_TO_NEAREST_INT));
    });
  }
}

inline bool all_finite(__m256 a, __m256 b) {
  const __m256 t = _mm256_add_ps(_mm256_sub_ps(a, a), _mm256_sub_ps(b, b));  // 0 where finite, NaN else
  return _mm256_movemask_ps(_mm256_cmp_ps(t, t, _CMP_UNORD_Q)) == 0;
}

}  // namespace

void dequant__avx2(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel) {
  const int64_t base = w.geom.chunk_begin(g0);
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), chunks = w.geom.chunk_end(g) - cb;
    for (int b = 0; b < 8; ++b) {
      const GroupParams p = group_params(w, g, b);
      const uint32_t* codes = w.codes + cb * kTileN + 8 * b;  // [chunks][64] at column 8b
      if (dtype == DType::bf16) {
        uint32_t* out = static_cast<uint32_t*>(panel) + (cb - base) * 4 * kTileN + 8 * b;  // [K'/2][64] pairs
        if (all_finite(p.scale, p.coef)) {
          dequant_block_bf16<false>(codes, chunks, p, out);
        } else {
          dequant_block_bf16<true>(codes, chunks, p, out);
        }
      } else {
        dequant_block_f16(codes, chunks, p, static_cast<uint16_t*>(panel) + (cb - base) * kChunkK * kTileN + 8 * b);
      }
    }
  }
}

}  // namespace w4a16::cpu
