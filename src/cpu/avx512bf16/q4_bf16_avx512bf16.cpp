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
#include <algorithm>

#include "common/aligned_buffer.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/avx512/q4_blocks_avx512.hpp"

namespace w4a16::cpu {

namespace {

inline __m512i centered_code_table_bf16() {
  alignas(64) uint16_t t[32];
  for (int i = 0; i < 32; ++i) t[i] = uint16_t(f32_to_bf16(float((i & 15) - 8)));
  return _mm512_load_si512(t);
}

inline __m512i broadcast_pair(const uint16_t* x) {
  uint32_t pair;
  __builtin_memcpy(&pair, x, 4);
  return _mm512_set1_epi32(int(pair));
}

// acc[MR][4] += x pairs * W pairs over pairs [p0, p1) of a [pairs][64] bf16-pair panel.
template <int MR>
inline void dot_rows_x64(const uint16_t* x, int64_t ld, const uint32_t* w, int64_t p0, int64_t p1,
                         __m512 (&acc)[MR][4]) {
  for (int64_t p = p0; p < p1; ++p) {
    __m512i wp[4];
#pragma GCC unroll 8
    for (int b = 0; b < 4; ++b) wp[b] = _mm512_load_si512(w + p * kTileN + 16 * b);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i xp = broadcast_pair(x + r * ld + 2 * p);
#pragma GCC unroll 8
      for (int b = 0; b < 4; ++b) acc[r][b] = _mm512_dpbf16_ps(acc[r][b], (__m512bh)wp[b], (__m512bh)xp);
    }
  }
}

// Prefill: each group of the tile becomes a bf16-pair panel [gp/2][64] (16 KB at g = 128, L1),
// reused by every block of 6 rows: 24 accumulators, 4 weight vectors, 1 broadcast.
void q4_bf16_prefill(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  struct PanelTag;
  AlignedBuffer<uint32_t>& panel = thread_scratch<AlignedBuffer<uint32_t>, PanelTag>();
  panel.reserve_discard(size_t(w.geom.chunks_per_group * 4 * kTileN));
  const __m512i table = centered_code_table_bf16();
  const auto* xb = static_cast<const uint16_t*>(x.data);
  for (int64_t i = 0; i < x.m * kTileN; ++i) out[i] = 0.0f;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
    for (int64_t chunk = cb; chunk < ce; ++chunk) {
      prefetch_lines(w.codes, (chunk + w.geom.chunks_per_group) * kTileN * 4, 4);
#pragma GCC unroll 8
      for (int b = 0; b < 4; ++b) {
        const __m512i packed = _mm512_load_si512(w.codes + chunk * kTileN + 16 * b);
#pragma GCC unroll 8
        for (int j = 0; j < 4; ++j) {
          const __m512i wq = _mm512_permutexvar_epi16(_mm512_srli_epi16(packed, 4 * j), table);
          _mm512_store_si512(panel.data() + ((chunk - cb) * 4 + j) * kTileN + 16 * b, wq);
        }
      }
    }
    GroupParams p[4];
#pragma GCC unroll 8
    for (int b = 0; b < 4; ++b) p[b] = group_params(w, g, b);
    for_row_blocks(x.m, [&]<int MR>(int64_t r0) {
      __m512 acc[MR][4];
      zero_acc(acc);
      dot_rows_x64<MR>(xb + r0 * x.ld + cb * kChunkK, x.ld, panel.data(), 0, (ce - cb) * 4, acc);
      add_group_to_out<MR>(acc, p, x, w.geom.groups, g, r0, out);
    });
  }
}

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
  q4_bf16_prefill(w, x, g0, g1, out);
}

}  // namespace w4a16::cpu
