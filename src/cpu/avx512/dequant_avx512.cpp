// Decoupled stage 1 (AVX-512F): int4 tile -> dense 16-bit panel, (q - 8) * s + coef rounded once
// to nearest even. Same table lookup as the fused kernel; the difference the decoupled strategy
// measures is only where the 16-bit result goes (memory, then read back).
#include "cpu/avx512/avx512_common.hpp"

namespace w4a16::cpu {

void dequant__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel) {
  const __m512 table = centered_code_table_f32();
  const int64_t base = w.geom.chunk_begin(g0);
  for (int64_t g = g0; g < g1; ++g) {
    GroupParams p[4];
#pragma GCC unroll 8
    for (int b = 0; b < 4; ++b) p[b] = group_params(w, g, b);
    for (int64_t chunk = w.geom.chunk_begin(g); chunk < w.geom.chunk_end(g); ++chunk) {
      const int64_t local = chunk - base;
#pragma GCC unroll 8
      for (int b = 0; b < 4; ++b) {
        const __m512i packed = _mm512_load_si512(w.codes + chunk * kTileN + 16 * b);
        __m512 v[8];  // v[j] = weights of k = order[j] = 0,2,4,6,1,3,5,7
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          v[j] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(packed, 4 * j), table), p[b].scale, p[b].coef);
        }
        if (dtype == DType::bf16) {
          auto* out = static_cast<uint32_t*>(panel) + local * 4 * kTileN + 16 * b;  // [K'/2][64] pairs
#pragma GCC unroll 8
          for (int j = 0; j < 4; ++j) {  // pair (2j, 2j+1) = (v[j], v[j + 4])
            const __m512i pair =
                _mm512_or_si512(f32_to_bf16_lanes(v[j]), _mm512_slli_epi32(f32_to_bf16_lanes(v[j + 4]), 16));
            _mm512_store_si512(out + j * kTileN, pair);
          }
        } else {
          auto* out = static_cast<uint16_t*>(panel) + local * kChunkK * kTileN + 16 * b;  // [K'][64]
          constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
#pragma GCC unroll 8
          for (int j = 0; j < 8; ++j) {
            _mm256_store_si256(reinterpret_cast<__m256i*>(out + kOrder[j] * kTileN),
                               _mm512_cvtps_ph(v[j], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
          }
        }
      }
    }
  }
}

}  // namespace w4a16::cpu
