// Fused int4 kernels with bf16 activations on AVX512-BF16 (vdpbf16ps: 32 bf16 MACs per
// instruction, fp32 accumulation).
//
// vdpbf16ps multiplies, in each 32-bit lane, a pair of adjacent bf16 values. The packed word of
// a column keeps the even k of a chunk in its low 16 bits and the odd k in its high 16 bits
// (kernels.hpp), so a 16-bit shift right by 4j leaves codes (k_2j, k_2j+1) in the low nibble of
// each half, and one vpermw with a 32-entry table of bf16 (q - 8) (entries 16..31 repeat 0..15,
// since vpermw reads 5 index bits) yields the pair as bf16 — exact, as |q - 8| <= 8 needs 4 bits.
// The matching x pair is one 32-bit broadcast. Per 32 weights: shift + permute + one dot per row.
// Scale and zero are applied per group on the fp32 accumulators, so there is no cancellation
// against a large offset (the "128 + q" magic-exponent variant would subtract 136 * sum(x)).
#include "cpu/avx512/q4_blocks_avx512.hpp"
#include "cpu/avx512/q4_panel_avx512.hpp"

namespace w4a16::cpu {

namespace {

// The bf16-pair panel of q4_panel_prefill: one row per pair of k, each 32-bit cell holding
// (k = 2j, 2j + 1) as bf16; the x pair is one 32-bit broadcast and one vdpbf16ps does the pair.
struct PanelBf16 : DotBf16 {
  using Cell = uint32_t;
  static constexpr int kRowsPerChunk = kSteps;
  static constexpr int row_of_step(int j) { return j; }
  static __m512i dequant(__m512i packed, int j, __m512i table) {
    return _mm512_permutexvar_epi16(_mm512_srli_epi16(packed, unsigned(4 * j)), table);
  }
};

}  // namespace

// The registry entries (table_avx512bf16.cpp): the same register blocks as the fp32 family, with
// one vdpbf16ps per pair of k (latency 6 at two per cycle on Zen 4/5: 12+ chains keep it busy).
void q4_bf16_1x64__avx512bf16(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_blocks<DotBf16, 1, 4, 4>(w, x, g0, g1, out);  // 16 chains: four accumulator sets over the pairs
}
void q4_bf16_2x64__avx512bf16(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_blocks<DotBf16, 2, 4, 2>(w, x, g0, g1, out);  // 16 chains
}
void q4_bf16_4x64__avx512bf16(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_blocks<DotBf16, 4, 4, 1>(w, x, g0, g1, out);  // 12-16 chains
}
void q4_bf16_12x32__avx512bf16(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_blocks<DotBf16, 12, 2, 1>(w, x, g0, g1, out);  // 14-24 chains
}
void q4_bf16_panel_6x64__avx512bf16(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_panel_prefill<PanelBf16>(w, x, g0, g1, out);  // 6 rows x 64: q4_panel_avx512.hpp
}

}  // namespace w4a16::cpu
