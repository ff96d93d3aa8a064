// The prefill (large M) loop of the fused int4 families on AVX-512, shared by the fp32-FMA panel
// (q4_f32_panel_6x64__avx512) and the bf16-dot panel (q4_bf16_panel_6x64__avx512bf16).
//
// Each group of the tile is dequantized once into a panel [rows][64] in L1 (fp32: one row per k,
// 32 KB at g = 128; bf16 pairs: one row per pair of k, 16 KB) that every block of at most 6 rows
// reuses with no dequantization of its own: 24 accumulators, 4 panel loads and one broadcast per
// row of x and panel row. The next group's codes are prefetched while the panel is built.
//
// Why internal linkage (anonymous namespace), as in avx512_common.hpp: the two families are
// compiled with different flags (avx512bf16 adds -mavx512bf16). A template with external linkage
// instantiated identically in both objects would be merged by the linker, and the copy compiled
// with BF16 instructions could then run on a CPU without them. Here every instantiation is local
// to its object file, and each family also passes its own arithmetic type P, defined in its .cpp.
#pragma once

#include "common/aligned_buffer.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/avx512/avx512_common.hpp"

namespace w4a16::cpu {
namespace {

inline __m512 load_panel_row(const float* row) { return _mm512_load_ps(row); }
inline __m512i load_panel_row(const uint32_t* row) { return _mm512_load_si512(row); }
inline void store_panel_row(float* row, __m512 v) { _mm512_store_ps(row, v); }
inline void store_panel_row(uint32_t* row, __m512i v) { _mm512_store_si512(row, v); }

// P, the family's panel arithmetic:
//   Cell, X, W           panel element, activation element, one register of 16 panel cells
//   kRowsPerChunk        panel rows made from one chunk of kChunkK k (8 for fp32, 4 for bf16 pairs)
//   table()              the code lookup table of dequant()
//   dequant(packed, j, table), row_of_step(j)
//                        step j of a chunk: 16 cells of the chunk's panel row row_of_step(j)
//   x_operand(xk, 0)     the x operand of the panel row whose first k is at xk, broadcast
//   madd(acc, w, x)      acc += w * x over the panel row
template <class P>
void q4_panel_prefill(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  using Cell = typename P::Cell;
  constexpr int64_t kXPerRow = kChunkK / P::kRowsPerChunk;  // k per panel row: 1, or 2 (a bf16 pair)
  struct PanelTag;
  AlignedBuffer<Cell>& panel = thread_scratch<AlignedBuffer<Cell>, PanelTag>();
  panel.reserve_discard(size_t(w.geom.chunks_per_group * P::kRowsPerChunk * kTileN));  // [rows][64]
  const auto table = P::table();
  const auto* xs = static_cast<const typename P::X*>(x.data);
  for (int64_t i = 0; i < x.m * kTileN; ++i) out[i] = 0.0f;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
    for (int64_t chunk = cb; chunk < ce; ++chunk) {
      prefetch_lines(w.codes, (chunk + w.geom.chunks_per_group) * kTileN * 4, 4);
      Cell* rows = panel.data() + (chunk - cb) * P::kRowsPerChunk * kTileN;  // [kRowsPerChunk][64]
#pragma GCC unroll 8
      for (int b = 0; b < 4; ++b) {
        const __m512i packed = _mm512_load_si512(w.codes + chunk * kTileN + 16 * b);
#pragma GCC unroll 8
        for (int j = 0; j < P::kRowsPerChunk; ++j) {
          store_panel_row(rows + P::row_of_step(j) * kTileN + 16 * b, P::dequant(packed, j, table));
        }
      }
    }
    GroupParams p[4];
#pragma GCC unroll 8
    for (int b = 0; b < 4; ++b) p[b] = group_params(w, g, b);
    const Cell* pw = panel.data();
    const int64_t panel_rows = (ce - cb) * P::kRowsPerChunk, ld = x.ld;
    for_row_blocks(x.m, [&]<int MR>(int64_t r0) {
      __m512 acc[MR][4];
      zero_acc(acc);
      const auto* xr = xs + r0 * ld + cb * kChunkK;  // [MR rows, ld]
      for (int64_t k = 0; k < panel_rows; ++k) {
        typename P::W wk[4];
#pragma GCC unroll 8
        for (int b = 0; b < 4; ++b) wk[b] = load_panel_row(pw + k * kTileN + 16 * b);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          const __m512 xk = P::x_operand(xr + r * ld + k * kXPerRow, 0);
#pragma GCC unroll 8
          for (int b = 0; b < 4; ++b) acc[r][b] = P::madd(acc[r][b], wk[b], xk);
        }
      }
      add_group_to_out<MR>(acc, p, x, w.geom.groups, g, r0, out);
    });
  }
}

}  // namespace
}  // namespace w4a16::cpu
