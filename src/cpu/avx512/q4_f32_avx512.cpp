// Fused int4 kernels with fp32 arithmetic (AVX-512F): fp16 activations on every AVX-512 CPU,
// and bf16 activations where the CPU has no BF16 dot instruction.
//
// Dequantization is one table lookup: a 32-bit shift by 4j moves k_{order[j]} of each column
// into the low nibble of its lane, and vpermps with a 16-entry fp32 table of (q - 8) turns it
// into a float (vpermps only reads the low 4 bits of each index, so no mask is needed). The
// scale and zero are applied once per group: y += s * acc + coef * sum(x over the group).
#include "cpu/avx512/q4_blocks_avx512.hpp"
#include "cpu/avx512/q4_panel_avx512.hpp"

namespace w4a16::cpu {

namespace {

// The fp32 panel of q4_panel_prefill: one row per k, in k order. Step j of a chunk is a 32-bit
// shift by 4j, which exposes k = kOrder[j] (kernels.hpp word layout), then vpermps.
struct PanelF32 {
  using Cell = float;
  using X = float;
  using W = __m512;
  static constexpr int kRowsPerChunk = kChunkK;
  static constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  static __m512 table() { return centered_code_table_f32(); }
  static constexpr int row_of_step(int j) { return kOrder[j]; }
  static __m512 dequant(__m512i packed, int j, __m512 table) {
    return _mm512_permutexvar_ps(_mm512_srli_epi32(packed, unsigned(4 * j)), table);
  }
  static __m512 x_operand(const X* xk, int j) { return _mm512_set1_ps(xk[j]); }
  static __m512 madd(__m512 acc, W w, __m512 x) { return _mm512_fmadd_ps(w, x, acc); }
};

}  // namespace

// The registry entries (table_avx512.cpp). The M ranges: q4_blocks_avx512.hpp explains the
// register blocks; the crossover to the panel is measured (docs/kernels.md).
void q4_f32_1x64__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_blocks<FmaF32, 1, 4, 2>(w, x, g0, g1, out);  // 8 chains: two accumulator sets alternate over k
}
void q4_f32_2x64__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_blocks<FmaF32, 2, 4, 2>(w, x, g0, g1, out);  // 16 chains
}
void q4_f32_4x64__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_blocks<FmaF32, 4, 4, 1>(w, x, g0, g1, out);  // 12-16 chains
}
void q4_f32_12x32__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_blocks<FmaF32, 12, 2, 1>(w, x, g0, g1, out);  // 14-24 chains, 2 passes per group
}
void q4_f32_panel_6x64__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_panel_prefill<PanelF32>(w, x, g0, g1, out);  // 6 rows x 64: q4_panel_avx512.hpp
}

}  // namespace w4a16::cpu
