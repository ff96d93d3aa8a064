// Decoupled stage 1 with the BF16 conversion instruction (fp16 panels: the AVX-512F version).
#include "cpu/avx512/avx512_common.hpp"

namespace w4a16::cpu {

void dequant__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);

// Decoupled stage 1 with the BF16 conversion instruction: vcvtne2ps2bf16 rounds two fp32 vectors
// (nearest even) into one vector of 32 bf16 — k = 2j in the low half, k = 2j+1 in the high half —
// and one vpermw interleaves them into (k, k+1) pairs per column. fp16 panels use the AVX-512F
// version.
void dequant__avx512bf16(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel) {
  if (dtype != DType::bf16) return dequant__avx512(w, g0, g1, dtype, panel);
  const __m512 table = centered_code_table_f32();
  alignas(64) uint16_t interleave[32];
  for (int i = 0; i < 16; ++i) {
    interleave[2 * i] = uint16_t(i);           // from the low half: k even
    interleave[2 * i + 1] = uint16_t(16 + i);  // from the high half: k odd
  }
  const __m512i pair_order = _mm512_load_si512(interleave);
  const int64_t base = w.geom.chunk_begin(g0);
  for (int64_t g = g0; g < g1; ++g) {
    GroupParams p[4];
#pragma GCC unroll 4
    for (int b = 0; b < 4; ++b) p[b] = group_params(w, g, b);
    for (int64_t chunk = w.geom.chunk_begin(g); chunk < w.geom.chunk_end(g); ++chunk) {
      auto* out = static_cast<uint32_t*>(panel) + (chunk - base) * 4 * kTileN;
#pragma GCC unroll 4
      for (int b = 0; b < 4; ++b) {
        const __m512i packed = _mm512_load_si512(w.codes + chunk * kTileN + 16 * b);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {  // a 32-bit shift by 4j exposes k = 2j, by 4(j+4) k = 2j+1
          const __m512 even =
              _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(packed, 4 * j), table), p[b].scale, p[b].coef);
          const __m512 odd = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(packed, 4 * (j + 4)), table),
                                             p[b].scale, p[b].coef);
          const __m512i halves = (__m512i)_mm512_cvtne2ps_pbh(odd, even);
          _mm512_store_si512(out + j * kTileN + 16 * b, _mm512_permutexvar_epi16(pair_order, halves));
        }
      }
    }
  }
}

}  // namespace w4a16::cpu
