// Fused int4 kernels with fp32 arithmetic (AVX2 + FMA + F16C): fp16 and bf16 activations (the
// driver widens bf16 x to fp32 here: AVX2 has no bf16 dot instruction).
//
// Layout trick: a 64-column tile is 8 ymm column blocks. One packed word vector (8 columns x one
// chunk of 8 k) holds the even k in its low 16 bits and the odd k in its high 16 bits, so the
// word and the word shifted right by 16 each hold 4 codes at nibbles p = 0..3 (k = 2p and 2p+1),
// and centered_nibble_f32<p> (avx2_common.hpp: and + or + sub, the magic-exponent trick) turns
// nibble p of both into exact fp32 (q - 8) with the same 3 constants. Scale and zero are applied
// once per group on the fp32 accumulators: y += s * acc + coef * sum(x over the group).
//
// Decode (M <= 4): the tile is dequantized in registers and never stored; MR rows share every
// dequantized vector. The 64 columns are done in passes of NB blocks so that MR x NB
// accumulators, 2 MR broadcasts of x and the temporaries fit 16 ymm (1 x 8, 2 x 4, 3..4 x 2);
// the running sum y lives in `out` (L1), updated once per group and pass.
// Prefill (M > 4): each group is dequantized once into an fp32 panel [k][64] (L1/L2) that every
// block of 6 rows reuses through the 6 x 16 register-blocked micro-kernel.
#include "common/aligned_buffer.hpp"
#include "cpu/avx2/avx2_common.hpp"

namespace w4a16::cpu {

namespace {

// acc[r][b] += x[r][k] * (q[k] - 8) over the chunks [cb, ce) of one group, column blocks
// b0 .. b0 + NB - 1. Pass 0 prefetches whole chunk rows (256 B) 8 chunks ahead, which covers the
// columns of the later passes too.
template <int MR, int NB>
inline void q4_decode_group_pass(const uint32_t* codes, const float* x, int64_t ld, int64_t cb, int64_t ce, int b0,
                                 __m256 (&acc)[MR][NB]) {
  for (int64_t chunk = cb; chunk < ce; ++chunk) {
    const uint32_t* words = codes + chunk * kTileN + 8 * b0;  // [NB][8 columns] of this chunk
    if (b0 == 0) {
      const char* ahead = reinterpret_cast<const char*>(codes + (chunk + 8) * kTileN);
      for (int line = 0; line < 4; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T0);
    }
    const float* xk = x + chunk * kChunkK;
    for_each_nibble([&]<int P>() {
      __m256 x_even[MR], x_odd[MR];  // x[r][2P], x[r][2P + 1]
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        x_even[r] = _mm256_broadcast_ss(xk + r * ld + 2 * P);
        x_odd[r] = _mm256_broadcast_ss(xk + r * ld + 2 * P + 1);
      }
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) {
        const __m256i word = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + 8 * b));
        const __m256 w_even = centered_nibble_f32<P>(word);                         // k = 2P
        const __m256 w_odd = centered_nibble_f32<P>(_mm256_srli_epi32(word, 16));  // k = 2P + 1
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          acc[r][b] = _mm256_fmadd_ps(w_even, x_even[r], acc[r][b]);
          acc[r][b] = _mm256_fmadd_ps(w_odd, x_odd[r], acc[r][b]);
        }
      }
    });
  }
}

// out[r][8(b0 + b) ..] += s * acc[r][b] + coef * group_sum[r] (y lives in out between groups).
template <int MR, int NB>
inline void q4_group_epilogue(const Q4Tile& w, const Activations& x, int64_t g, int64_t r0, int b0,
                              const __m256 (&acc)[MR][NB], float* out) {
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b) {
    const GroupParams p = group_params(w, g, b0 + b);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      float* o = out + (r0 + r) * kTileN + 8 * (b0 + b);
      __m256 v = _mm256_fmadd_ps(p.scale, acc[r][b], _mm256_loadu_ps(o));
      if (x.group_sums) {
        v = _mm256_fmadd_ps(p.coef, _mm256_broadcast_ss(x.group_sums + (r0 + r) * w.geom.groups + g), v);
      }
      _mm256_storeu_ps(o, v);
    }
  }
}

template <int MR, int NB>
void q4_f32_decode(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  const auto* xf = static_cast<const float*>(x.data);
  for (int64_t i = 0; i < MR * kTileN; ++i) out[i] = 0.0f;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
    for (int b0 = 0; b0 < 8; b0 += NB) {
      __m256 acc[MR][NB];
      zero_acc(acc);
      q4_decode_group_pass<MR, NB>(w.codes, xf, x.ld, cb, ce, b0, acc);
      q4_group_epilogue<MR, NB>(w, x, g, 0, b0, acc, out);
    }
  }
}

// Prefill: per group, panel[k][64] = q - 8 (fp32), then 6 x 16 register blocks over it.
void q4_f32_prefill(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  thread_local AlignedBuffer<float> panel;  // [chunks_per_group * 8][64] fp32
  panel.reserve_discard(size_t(w.geom.chunks_per_group * kChunkK * kTileN));
  const auto* xf = static_cast<const float*>(x.data);
  for (int64_t i = 0; i < x.m * kTileN; ++i) out[i] = 0.0f;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
    for (int64_t chunk = cb; chunk < ce; ++chunk) {
      float* rows = panel.data() + (chunk - cb) * kChunkK * kTileN;  // [8][64] of this chunk
      for (int b = 0; b < 8; ++b) {
        const __m256i word = _mm256_load_si256(reinterpret_cast<const __m256i*>(w.codes + chunk * kTileN + 8 * b));
        const __m256i word_odd = _mm256_srli_epi32(word, 16);
        for_each_nibble([&]<int P>() {
          _mm256_store_ps(rows + (2 * P) * kTileN + 8 * b, centered_nibble_f32<P>(word));
          _mm256_store_ps(rows + (2 * P + 1) * kTileN + 8 * b, centered_nibble_f32<P>(word_odd));
        });
      }
    }
    const float* pw = panel.data();
    const int64_t kg = (ce - cb) * kChunkK;
    for_row_blocks(x.m, [&]<int MR, int NB>(int64_t r0) {
      for (int b0 = 0; b0 < 8; b0 += NB) {
        __m256 acc[MR][NB];
        zero_acc(acc);
        auto row = [&](int64_t k, int b) { return _mm256_load_ps(pw + k * kTileN + 8 * b); };
        fma_rows<MR, NB>(xf + r0 * x.ld + cb * kChunkK, x.ld, 0, kg, b0, row, acc);
        q4_group_epilogue<MR, NB>(w, x, g, r0, b0, acc, out);
      }
    });
  }
}

}  // namespace

void q4_f32__avx2(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  switch (x.m) {
    case 1: return q4_f32_decode<1, 8>(w, x, g0, g1, out);
    case 2: return q4_f32_decode<2, 4>(w, x, g0, g1, out);
    case 3: return q4_f32_decode<3, 2>(w, x, g0, g1, out);
    case 4: return q4_f32_decode<4, 2>(w, x, g0, g1, out);
    default: return q4_f32_prefill(w, x, g0, g1, out);
  }
}

}  // namespace w4a16::cpu
