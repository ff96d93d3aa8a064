// Fused int4 kernels with fp32 arithmetic (AVX-512F): fp16 activations on every AVX-512 CPU,
// and bf16 activations where the CPU has no BF16 dot instruction.
//
// Dequantization is one table lookup: a 32-bit shift by 4j moves k_{order[j]} of each column
// into the low nibble of its lane, and vpermps with a 16-entry fp32 table of (q - 8) turns it
// into a float (vpermps only reads the low 4 bits of each index, so no mask is needed). The
// scale and zero are applied once per group: y += s * acc + coef * sum(x over the group).
#include "common/aligned_buffer.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/avx512/avx512_common.hpp"

namespace w4a16::cpu {

namespace {

// Position in the chunk of the k that a 32-bit shift by 4j exposes (kernels.hpp word layout).
constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// Decode (small M): the weight tile is dequantized in registers and never stored. MR rows
// share each dequantized vector; NB of the 4 column blocks are done per pass (NB = 4 keeps 4
// independent FMA chains for M = 1; at MR = 3..4 two passes of NB = 2 keep within 32 zmm).
// NA accumulator sets alternate over the 8 k of a chunk: at MR = 1 that makes 8 independent FMA
// chains, enough to cover the FMA latency.
template <int MR, int NB>
void q4_f32_decode(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, int b0, float* out) {
  constexpr int NA = MR == 1 ? 2 : 1;
  const __m512 table = centered_code_table_f32();
  const auto* xf = static_cast<const float*>(x.data);
  const uint32_t* codes = w.codes + 16 * b0;
  const int64_t ld = x.ld;
  __m512 y[MR][NB];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) y[r][b] = _mm512_setzero_ps();
  for (int64_t g = g0; g < g1; ++g) {
    __m512 acc[NA][MR][NB];
#pragma GCC unroll 8
    for (int a = 0; a < NA; ++a)
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) acc[a][r][b] = _mm512_setzero_ps();
    const int64_t chunk_end = w.geom.chunk_end(g);
    for (int64_t chunk = w.geom.chunk_begin(g); chunk < chunk_end; ++chunk) {
      const uint32_t* words = codes + chunk * kTileN;  // (NB x 16 columns) of this chunk
      _mm_prefetch(reinterpret_cast<const char*>(words + 8 * kTileN), _MM_HINT_T0);
      __m512i packed[NB];
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) packed[b] = _mm512_load_si512(words + 16 * b);
      const float* xk = xf + chunk * kChunkK;
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) {
          const __m512i index = _mm512_srli_epi32(packed[b], 4 * j);
          const __m512 wq = _mm512_permutexvar_ps(index, table);  // (q - 8) of 16 columns
#pragma GCC unroll 8
          for (int r = 0; r < MR; ++r) {
            acc[j % NA][r][b] = _mm512_fmadd_ps(wq, _mm512_set1_ps(xk[r * ld + kOrder[j]]), acc[j % NA][r][b]);
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      const GroupParams p = group_params(w, g, b0 + b);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        __m512 sum = acc[0][r][b];
        if constexpr (NA == 2) sum = _mm512_add_ps(sum, acc[1][r][b]);
        y[r][b] = _mm512_fmadd_ps(p.scale, sum, y[r][b]);
        if (x.group_sums) {
          y[r][b] = _mm512_fmadd_ps(p.coef, _mm512_set1_ps(x.group_sums[r * w.geom.groups + g]), y[r][b]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) _mm512_storeu_ps(out + r * kTileN + 16 * (b0 + b), y[r][b]);
}

template <int MR>
void q4_f32_decode_rows(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  if constexpr (MR <= 2) {
    q4_f32_decode<MR, 4>(w, x, g0, g1, 0, out);
  } else {
    q4_f32_decode<MR, 2>(w, x, g0, g1, 0, out);
    q4_f32_decode<MR, 2>(w, x, g0, g1, 2, out);
  }
}

// Prefill (larger M): each group of the tile is dequantized once into an fp32 panel [k][64]
// that stays in L1/L2, then reused by every block of 6 rows.
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

void q4_f32__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  switch (x.m) {
    case 1:
      return q4_f32_decode_rows<1>(w, x, g0, g1, out);
    case 2:
      return q4_f32_decode_rows<2>(w, x, g0, g1, out);
    case 3:
      return q4_f32_decode_rows<3>(w, x, g0, g1, out);
    case 4:
      return q4_f32_decode_rows<4>(w, x, g0, g1, out);
    default:
      return q4_f32_prefill(w, x, g0, g1, out);
  }
}

}  // namespace w4a16::cpu
