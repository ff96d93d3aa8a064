// Register-blocked dense 16-bit micro-kernels for AVX-512 (the FP16/BF16 baseline and the
// decoupled strategy's second stage), with the blocking of the fused ones (q4_blocks_avx512.hpp)
// so that a ratio between them measures the weight format, not the blocking.
//
// K is walked in blocks of kDenseBlockChunks chunks (128 k: 16 KB of a bf16 tile, L1); per
// block, the rows of x in balanced blocks of at most MaxMR rows, and per row block the 64
// columns in passes of NB vectors with MR x NB (x NA) accumulators. Each weight vector is loaded
// (and widened to fp32 for the FMA family: one instruction) once per row block; the running sum
// lives in `out`. The block one ahead is prefetched by the first pass of the first row block.
#pragma once

#include "cpu/avx512/avx512_common.hpp"

namespace w4a16::cpu {
namespace {

inline constexpr int64_t kDenseBlockChunks = 16;

// fp16 weights [K'][64], x fp32.
struct DenseF16 {
  static constexpr int kSteps = 8;
  static constexpr int64_t kChunkBytes = kChunkK * kTileN * 2;
  using X = float;
  using W = __m512;
  static W weights(const void* tile, int64_t chunk, int b, int j) {
    const auto* w = static_cast<const uint16_t*>(tile) + (chunk * kChunkK + j) * kTileN + 16 * b;
    return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(w)));
  }
  static __m512 x_operand(const X* xk, int j) { return _mm512_set1_ps(xk[j]); }
  static __m512 madd(__m512 acc, W w, __m512 x) { return _mm512_fmadd_ps(w, x, acc); }
};

// bf16 pair weights [K'/2][64], x fp32: the low bf16 of a pair moved up 16 bits is the fp32 of
// the even k; the odd k is the pair with its low half masked off.
struct DenseBf16F32 {
  static constexpr int kSteps = 8;
  static constexpr int64_t kChunkBytes = kChunkK * kTileN * 2;
  using X = float;
  using W = __m512;
  static W weights(const void* tile, int64_t chunk, int b, int j) {
    const __m512i pair = _mm512_load_si512(static_cast<const uint32_t*>(tile) + (chunk * 4 + j / 2) * kTileN + 16 * b);
    return _mm512_castsi512_ps((j & 1) ? _mm512_and_si512(pair, _mm512_set1_epi32(int(0xFFFF0000u)))
                                       : _mm512_slli_epi32(pair, 16));
  }
  static __m512 x_operand(const X* xk, int j) { return _mm512_set1_ps(xk[j]); }
  static __m512 madd(__m512 acc, W w, __m512 x) { return _mm512_fmadd_ps(w, x, acc); }
};

#ifdef __AVX512BF16__
// bf16 pair weights [K'/2][64], x bf16 pairs: vdpbf16ps reads both as they are.
struct DenseBf16Dot : DotBf16Arith {
  static constexpr int kSteps = 4;
  static constexpr int64_t kChunkBytes = kChunkK * kTileN * 2;
  static W weights(const void* tile, int64_t chunk, int b, int j) {
    return _mm512_load_si512(static_cast<const uint32_t*>(tile) + (chunk * 4 + j) * kTileN + 16 * b);
  }
};
#endif

// Chunks [c0, c1) for rows [r0, r0 + MR): writes (first) or adds into out.
template <class P, int MR, int NB, int NA>
void dense_block(const void* tile, const Activations& x, int64_t r0, int64_t c0, int64_t c1, bool first, bool lead,
                 float* out) {
  static_assert(4 % NB == 0 && P::kSteps % NA == 0);
  const auto* xr = static_cast<const typename P::X*>(x.data) + r0 * x.ld;
#pragma GCC unroll 1
  for (int b0 = 0; b0 < 4; b0 += NB) {
    __m512 acc[NA][MR][NB];
#pragma GCC unroll 4
    for (int a = 0; a < NA; ++a)
#pragma GCC unroll 28
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) acc[a][r][b] = _mm512_setzero_ps();
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      if (lead && b0 == 0) prefetch_lines(tile, (chunk + kDenseBlockChunks) * P::kChunkBytes, int(P::kChunkBytes / 64));
      const typename P::X* xk = xr + chunk * kChunkK;
#pragma GCC unroll 8
      for (int j = 0; j < P::kSteps; ++j) {
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) {
          const typename P::W wv = P::weights(tile, chunk, b0 + b, j);
#pragma GCC unroll 28
          for (int r = 0; r < MR; ++r)
            acc[j % NA][r][b] = P::madd(acc[j % NA][r][b], wv, P::x_operand(xk + r * x.ld, j));
        }
      }
    }
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b) {
#pragma GCC unroll 28
      for (int r = 0; r < MR; ++r) {
        __m512 sum = acc[0][r][b];
#pragma GCC unroll 4
        for (int a = 1; a < NA; ++a) sum = _mm512_add_ps(sum, acc[a][r][b]);
        float* o = out + (r0 + r) * kTileN + 16 * (b0 + b);
        _mm512_storeu_ps(o, first ? sum : _mm512_add_ps(_mm512_loadu_ps(o), sum));
      }
    }
  }
}

template <class P, int MaxMR, int NB, int NA>
void dense_block_dispatch(const void* tile, const Activations& x, int64_t r0, int64_t rows, int64_t c0, int64_t c1,
                          bool first, bool lead, float* out) {
  if (rows == MaxMR) return dense_block<P, MaxMR, NB, NA>(tile, x, r0, c0, c1, first, lead, out);
  if constexpr (MaxMR > 1)
    return dense_block_dispatch<P, MaxMR - 1, NB, NA>(tile, x, r0, rows, c0, c1, first, lead, out);
}

// out = the dense product over chunks [c0, c1) for all rows of x (contract of kernels.hpp).
template <class P, int MaxMR, int NB, int NA>
void dense_blocks(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  if (c0 >= c1) {
    for (int64_t i = 0; i < x.m * kTileN; ++i) out[i] = 0.0f;
    return;
  }
  const int64_t blocks = (x.m + MaxMR - 1) / MaxMR;
  for (int64_t k0 = c0; k0 < c1; k0 += kDenseBlockChunks) {
    const int64_t k1 = std::min(c1, k0 + kDenseBlockChunks);
    for (int64_t i = 0; i < blocks; ++i) {
      const int64_t r0 = x.m * i / blocks, r1 = x.m * (i + 1) / blocks;
      dense_block_dispatch<P, MaxMR, NB, NA>(tile, x, r0, r1 - r0, k0, k1, k0 == c0, i == 0, out);
    }
  }
}

}  // namespace
}  // namespace w4a16::cpu
