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
#include "common/aligned_buffer.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/avx512/avx512_common.hpp"

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

// NA accumulator sets alternate over the 4 pairs of a chunk: at MR = 1 that doubles the number of
// independent vdpbf16ps chains (8), enough to cover its latency.
template <int MR, int NB>
void q4_bf16_decode(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, int b0, float* out) {
  constexpr int NA = MR == 1 ? 2 : 1;
  const __m512i table = centered_code_table_bf16();
  const auto* xb = static_cast<const uint16_t*>(x.data);
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
      const uint32_t* words = codes + chunk * kTileN;
      _mm_prefetch(reinterpret_cast<const char*>(words + 8 * kTileN), _MM_HINT_T0);
      __m512i packed[NB];
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) packed[b] = _mm512_load_si512(words + 16 * b);
      const uint16_t* xk = xb + chunk * kChunkK;
#pragma GCC unroll 8
      for (int j = 0; j < 4; ++j) {
        __m512i xpair[MR];
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) xpair[r] = broadcast_pair(xk + r * ld + 2 * j);
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) {
          const __m512i wq = _mm512_permutexvar_epi16(_mm512_srli_epi16(packed[b], 4 * j), table);
#pragma GCC unroll 8
          for (int r = 0; r < MR; ++r) {
            acc[j % NA][r][b] = _mm512_dpbf16_ps(acc[j % NA][r][b], (__m512bh)wq, (__m512bh)xpair[r]);
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
void q4_bf16_decode_rows(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  if constexpr (MR <= 2) {
    q4_bf16_decode<MR, 4>(w, x, g0, g1, 0, out);
  } else {
    q4_bf16_decode<MR, 2>(w, x, g0, g1, 0, out);
    q4_bf16_decode<MR, 2>(w, x, g0, g1, 2, out);
  }
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

void q4_bf16__avx512bf16(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  switch (x.m) {
    case 1:
      return q4_bf16_decode_rows<1>(w, x, g0, g1, out);
    case 2:
      return q4_bf16_decode_rows<2>(w, x, g0, g1, out);
    case 3:
      return q4_bf16_decode_rows<3>(w, x, g0, g1, out);
    case 4:
      return q4_bf16_decode_rows<4>(w, x, g0, g1, out);
    default:
      return q4_bf16_prefill(w, x, g0, g1, out);
  }
}

// Dense bf16 weights (bf16 pairs) x bf16 activations: the BF16 baseline, same blocking.
void dense_bf16_bf16__avx512bf16(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  const auto* w = static_cast<const uint32_t*>(tile);
  const auto* xb = static_cast<const uint16_t*>(x.data);
  for_row_blocks(x.m, [&]<int MR>(int64_t r0) {
    __m512 acc[MR][4];
    zero_acc(acc);
    dot_rows_x64<MR>(xb + r0 * x.ld, x.ld, w, c0 * 4, c1 * 4, acc);
    store_acc(acc, out + r0 * kTileN);
  });
}

void q4_f32__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void dense_f16_f32__avx512(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dense_bf16_f32__avx512(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dequant_panel__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);
void widen_panel__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);
void dequant_panel__avx512bf16(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);
void stream_q4__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);

const KernelTable* avx512bf16_kernels() {
  static const KernelTable table = {Isa::avx512bf16,
                                    "avx512bf16",
                                    q4_f32__avx512,
                                    q4_bf16__avx512bf16,
                                    dense_f16_f32__avx512,
                                    dense_bf16_f32__avx512,
                                    dense_bf16_bf16__avx512bf16,
                                    dequant_panel__avx512bf16,
                                    widen_panel__avx512,
                                    stream_q4__avx512};
  return &table;
}

}  // namespace w4a16::cpu

namespace w4a16::cpu {

// Decoupled stage 1 with the BF16 conversion instruction: vcvtne2ps2bf16 rounds two fp32 vectors
// (nearest even) into one vector of 32 bf16 — k = 2j in the low half, k = 2j+1 in the high half —
// and one vpermw interleaves them into (k, k+1) pairs per column. fp16 panels use the AVX-512F
// version.
void dequant_panel__avx512bf16(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel) {
  if (dtype != DType::bf16) return dequant_panel__avx512(w, g0, g1, dtype, panel);
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
