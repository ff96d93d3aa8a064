// Register-blocked fused int4 micro-kernels for AVX-512, shared by the fp32-FMA family
// (q4_f32_*__avx512: x as fp32) and the bf16-dot family (q4_bf16_*__avx512bf16: x as bf16 pairs).
// Internal linkage throughout, so that the copies compiled with different flags never mix.
//
// A block is MR rows of x by NB column vectors of 16 (NR = 16 * NB columns). Per group of the
// tile and per pass over the 4 column vectors (4 / NB passes), the block keeps MR x NB (x NA)
// accumulators in registers; every packed vector is dequantized once in registers (shift +
// table permute) and used by all MR rows, so a weight costs 2 / MR instructions of dequantization
// besides its MR multiply-adds — no 16-bit panel is stored and reloaded. The group's scale and
// zero are applied to the accumulators once per group, and the running sum lives in `out`
// (L1-resident, [m][64] fp32): it is written at the first group and updated at the others, so
// the registers go to the accumulators (16-28 independent chains: enough to cover the latency of
// vfmadd231ps / vdpbf16ps at two per cycle).
//
// Prefetch: the chunk two groups ahead (the same position in a later group, or in the next tile
// past the last groups, tiles being contiguous) is prefetched whole (4 lines of 64 B) while the
// first pass reads the current chunk, and the next group's scales and zeros once per group: at
// g = 128 that is 8 KiB ahead, spread over the 16 chunks of a group. Measured at M = 1 on one
// core of the Intel dev machine (4096 x 4096, weights from DRAM): no prefetch 1.17 ms, one group
// ahead 0.78, two 0.77; prefetching to L2 only (T1) instead of L1: 0.83.
#pragma once

#include "cpu/avx512/avx512_common.hpp"

namespace w4a16::cpu {
namespace {

// The arithmetic of one family: how a packed vector becomes weights for step j of a chunk, how
// the matching x operand of a row is broadcast, and the multiply-add.
struct FmaF32 {
  static constexpr int kSteps = 8;  // one k per step: a 32-bit shift by 4j exposes k = order[j]
  using X = float;
  using W = __m512;
  static __m512i table() { return _mm512_castps_si512(centered_code_table_f32()); }
  static W weights(const uint32_t* words, int j, __m512i table) {
    const __m512i shifted = _mm512_srli_epi32(_mm512_load_si512(words), unsigned(4 * j));
    return _mm512_permutexvar_ps(shifted, _mm512_castsi512_ps(table));
  }
  static __m512 x_operand(const X* xk, int j) {
    constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    return _mm512_set1_ps(xk[kOrder[j]]);
  }
  static __m512 madd(__m512 acc, W w, __m512 x) { return _mm512_fmadd_ps(w, x, acc); }
};

#ifdef __AVX512BF16__
struct DotBf16 : DotBf16Arith {
  static constexpr int kSteps = 4;  // a pair of k per step: a 16-bit shift by 4j exposes (2j, 2j+1)
  static __m512i table() {          // bf16 (q - 8); entries 16..31 repeat 0..15 (vpermw reads 5 bits)
    alignas(64) uint16_t t[32];
    for (int i = 0; i < 32; ++i) t[i] = uint16_t(f32_to_bf16(float((i & 15) - 8)));
    return _mm512_load_si512(t);
  }
  static W weights(const uint32_t* words, int j, __m512i table) {
    return _mm512_permutexvar_epi16(_mm512_srli_epi16(_mm512_load_si512(words), unsigned(4 * j)), table);
  }
};
#endif

// Writes (first group) or adds s * acc + coef * group_sum into out for rows [0, MR) of the block,
// column vectors [b0, b0 + NB).
template <int MR, int NB, int NA>
inline void q4_block_epilogue(const Q4Tile& w, const Activations& x, int64_t r0, int64_t g, bool first, int b0,
                              const __m512 (&acc)[NA][MR][NB], float* out) {
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const GroupParams p = group_params(w, g, b0 + b);
#pragma GCC unroll 28
    for (int r = 0; r < MR; ++r) {
      __m512 sum = acc[0][r][b];
#pragma GCC unroll 4
      for (int a = 1; a < NA; ++a) sum = _mm512_add_ps(sum, acc[a][r][b]);
      float* o = out + (r0 + r) * kTileN + 16 * (b0 + b);
      __m512 v = first ? _mm512_mul_ps(p.scale, sum) : _mm512_fmadd_ps(p.scale, sum, _mm512_loadu_ps(o));
      if (x.group_sums) v = _mm512_fmadd_ps(p.coef, _mm512_set1_ps(x.group_sums[(r0 + r) * w.geom.groups + g]), v);
      _mm512_storeu_ps(o, v);
    }
  }
}

// Group g for rows [r0, r0 + MR), all 64 columns in passes of NB vectors. `lead`: this block
// issues the prefetch (the first row block of the group does).
template <class P, int MR, int NB, int NA>
void q4_block_group(const Q4Tile& w, const Activations& x, int64_t r0, int64_t g, bool first, bool lead, __m512i table,
                    float* out) {
  static_assert(4 % NB == 0 && P::kSteps % NA == 0);
  const auto* xr = static_cast<const typename P::X*>(x.data) + r0 * x.ld;
  const int64_t ld = x.ld, ahead = 2 * w.geom.chunks_per_group * kTileN;  // two groups ahead, in words
  const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
#pragma GCC unroll 1
  for (int b0 = 0; b0 < 4; b0 += NB) {
    __m512 acc[NA][MR][NB];
#pragma GCC unroll 4
    for (int a = 0; a < NA; ++a)
#pragma GCC unroll 28
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) acc[a][r][b] = _mm512_setzero_ps();
    const bool prefetch = lead && b0 == 0;
    for (int64_t chunk = cb; chunk < ce; ++chunk) {
      const uint32_t* words = w.codes + chunk * kTileN;
      if (prefetch) prefetch_lines(words, ahead * 4, 4);
      const typename P::X* xk = xr + chunk * kChunkK;
#pragma GCC unroll 8
      for (int j = 0; j < P::kSteps; ++j) {
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) {
          const typename P::W wq = P::weights(words + 16 * (b0 + b), j, table);
#pragma GCC unroll 28
          for (int r = 0; r < MR; ++r) {
            acc[j % NA][r][b] = P::madd(acc[j % NA][r][b], wq, P::x_operand(xk + r * ld, j));
          }
        }
      }
    }
    q4_block_epilogue<MR, NB, NA>(w, x, r0, g, first, b0, acc, out);
  }
}

// A block of exactly `rows` rows (1 <= rows <= MaxMR).
template <class P, int MaxMR, int NB, int NA>
void q4_block_dispatch(const Q4Tile& w, const Activations& x, int64_t r0, int64_t rows, int64_t g, bool first,
                       bool lead, __m512i table, float* out) {
  if (rows == MaxMR) return q4_block_group<P, MaxMR, NB, NA>(w, x, r0, g, first, lead, table, out);
  if constexpr (MaxMR > 1) return q4_block_dispatch<P, MaxMR - 1, NB, NA>(w, x, r0, rows, g, first, lead, table, out);
}

// Groups [g0, g1) of the tile for all rows of x: per group, the rows cut into the fewest blocks
// of at most MaxMR rows, of balanced sizes (M = 13 with MaxMR = 12 runs 7 + 6, not 12 + 1: a
// 1-row block would have too few accumulator chains). The group's codes stay in L1 between
// the passes and row blocks.
template <class P, int MaxMR, int NB, int NA>
void q4_blocks(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  if (g0 >= g1) {
    for (int64_t i = 0; i < x.m * kTileN; ++i) out[i] = 0.0f;
    return;
  }
  const __m512i table = P::table();
  const int64_t blocks = (x.m + MaxMR - 1) / MaxMR;
  for (int64_t g = g0; g < g1; ++g) {
    prefetch_group_params(w, g + 1);
    for (int64_t i = 0; i < blocks; ++i) {
      const int64_t r0 = x.m * i / blocks, r1 = x.m * (i + 1) / blocks;
      q4_block_dispatch<P, MaxMR, NB, NA>(w, x, r0, r1 - r0, g, g == g0, i == 0, table, out);
    }
  }
}

}  // namespace
}  // namespace w4a16::cpu
