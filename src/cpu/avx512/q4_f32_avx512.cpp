// Fused int4 kernels with fp32 arithmetic (AVX-512F): fp16 activations on every AVX-512 CPU,
// and bf16 activations where the CPU has no BF16 dot instruction.
//
// Dequantization is one table lookup: a 32-bit shift by 4j moves k_{order[j]} of each column
// into the low nibble of its lane, and vpermps with a 16-entry fp32 table of (q - 8) turns it
// into a float (vpermps only reads the low 4 bits of each index, so no mask is needed). The
// scale and zero are applied once per group: y += s * acc + coef * sum(x over the group).
#include "common/aligned_buffer.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/avx512/q4_blocks_avx512.hpp"

namespace w4a16::cpu {

namespace {

// Position in the chunk of the k that a 32-bit shift by 4j exposes (kernels.hpp word layout).
constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// Prefill (large M): each group of the tile is dequantized once into an fp32 panel [k][64]
// (32 KB at g = 128: L1) that every block of at most 6 rows reuses with no dequantization of
// its own (24 accumulators, 4 weight loads + 6 broadcasts per k). The next group's codes are
// prefetched while the panel is built.
void q4_f32_prefill(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  struct PanelTag;
  AlignedBuffer<float>& panel = thread_scratch<AlignedBuffer<float>, PanelTag>();
  panel.reserve_discard(size_t(w.geom.chunks_per_group * kChunkK * kTileN));
  const __m512 table = centered_code_table_f32();
  const auto* xf = static_cast<const float*>(x.data);
  for (int64_t i = 0; i < x.m * kTileN; ++i) out[i] = 0.0f;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
    for (int64_t chunk = cb; chunk < ce; ++chunk) {
      prefetch_lines(w.codes, (chunk + w.geom.chunks_per_group) * kTileN * 4, 4);
#pragma GCC unroll 8
      for (int b = 0; b < 4; ++b) {
        const __m512i packed = _mm512_load_si512(w.codes + chunk * kTileN + 16 * b);
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          const __m512 wq = _mm512_permutexvar_ps(_mm512_srli_epi32(packed, 4 * j), table);
          _mm512_store_ps(panel.data() + ((chunk - cb) * kChunkK + kOrder[j]) * kTileN + 16 * b, wq);
        }
      }
    }
    GroupParams p[4];
#pragma GCC unroll 8
    for (int b = 0; b < 4; ++b) p[b] = group_params(w, g, b);
    const float* pw = panel.data();
    for_row_blocks(x.m, [&]<int MR>(int64_t r0) {
      __m512 acc[MR][4];
      zero_acc(acc);
      auto row = [&](int64_t k, int b) { return _mm512_load_ps(pw + k * kTileN + 16 * b); };
      fma_rows_x64<MR>(xf + r0 * x.ld + cb * kChunkK, x.ld, 0, (ce - cb) * kChunkK, row, acc);
      add_group_to_out<MR>(acc, p, x, w.geom.groups, g, r0, out);
    });
  }
}

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
  q4_f32_prefill(w, x, g0, g1, out);
}

}  // namespace w4a16::cpu
