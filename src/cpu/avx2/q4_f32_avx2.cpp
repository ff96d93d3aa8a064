// Fused int4 kernels with fp32 arithmetic (AVX2 + FMA + F16C): fp16 and bf16 activations (the
// driver widens bf16 x to fp32 here: AVX2 has no bf16 dot instruction).
//
// Layout: a 64-column tile is 8 ymm column blocks; one packed word vector is 8 columns x one
// chunk of 8 k, code position j (bits 4j..4j+3) holding k = kOrder[j] (kernels.hpp). Every code
// becomes an exact fp32 (q - 8) in 3 instructions (avx2_common.hpp), and the scale and zero are
// applied once per group on the fp32 accumulators: y += s * acc + coef * sum(x over the group).
//
// Three regimes, chosen by M:
//  * M = 1 (decode): the tile is dequantized in registers and never stored, 1 row x 32 columns
//    per pass, codes by the magic exponent (and + or + sub).
//  * M = 2..32: still dequantized in registers, once per block of rows that share it: blocks of
//    6 rows x 16 columns (2 x 32, 3..5 x 16 for the rest), codes by sign extension (xor + slli +
//    srai + vcvtdq2ps). The running sum y lives in `out` (L1), updated once per group and pass.
//  * M > 32 (prefill): each group is dequantized once into an fp32 panel [k][64] (L1/L2) that
//    every block of 6 rows reuses through the 6 x 16 register-blocked micro-kernel.
//
// Measured on the Zen 4 dev machine (AVX2 code, one core, L2-resident tiles, ns per 64 weights
// per row, best of 75 runs of a bench that includes this file):
//
//   decode code conversion     1 x 64  1 x 32  2 x 32  2 x 16  3 x 16  4 x 16
//   magic exponent              2.74    2.61    1.80    2.22    1.61    1.66
//   sign extension + cvtdq2ps   3.20    3.18    1.73    2.18    1.56    1.31
//
// At MR >= 2 the kernel is FMA-bound and the magic exponent's vsubps competes with the FMAs for
// Zen 4's FP pipes. (On Intel cores, where shifts and vcvtdq2ps share ports 0/1 with the FMAs
// and and/or also run on port 5, the magic exponent should win at every M: re-measure there
// before changing this.) For the register/panel crossover see kRegisterDequantMaxM.
#include "common/aligned_buffer.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/avx2/avx2_common.hpp"

namespace w4a16::cpu {

namespace {

// q - 8 as fp32 for code position J of the 8 packed words at `words`, by sign extension: after
// XOR with 0x88888888 each nibble is q - 8 as a signed 4-bit number; slli moves nibble J to the
// top of the lane (position 7 is there already) and srai 28 sign-extends it.
struct SignExtendCodes {
  template <int J>
  static __m256 at(const uint32_t* words) {
    __m256i word = _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(words)),
                                    _mm256_set1_epi32(int(0x88888888u)));
    if constexpr (J != 7) word = _mm256_slli_epi32(word, 28 - 4 * J);
    return _mm256_cvtepi32_ps(_mm256_srai_epi32(word, 28));
  }
};

// acc[r][b] += x[r][k] * (q[k] - 8) over the chunks [cb, ce) of one group, column blocks
// b0 .. b0 + NB - 1. Words are re-read from L1 at each position rather than held in registers
// (measured faster: it leaves the registers to the accumulators). Pass 0 prefetches whole chunk
// rows (256 B) 8 chunks ahead, which covers the columns of the later passes too.
template <int MR, int NB, typename Codes>
inline void q4_decode_group_pass(const uint32_t* codes, const float* x, int64_t ld, int64_t cb, int64_t ce, int b0,
                                 __m256 (&acc)[MR][NB]) {
  for (int64_t chunk = cb; chunk < ce; ++chunk) {
    const uint32_t* words = codes + chunk * kTileN + 8 * b0;  // [NB][8 columns] of this chunk
    if (b0 == 0) {
      const char* ahead = reinterpret_cast<const char*>(codes + (chunk + 8) * kTileN);
      for (int line = 0; line < 4; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T0);
    }
    const float* xk = x + chunk * kChunkK;
    for_each_position([&]<int J>() {
      __m256 wq[NB];  // (q - 8) of the 8 columns of each block, k = kOrder[J]
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) wq[b] = Codes::template at<J>(words + 8 * b);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m256 xb = _mm256_broadcast_ss(xk + r * ld + kOrder[J]);
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_fmadd_ps(wq[b], xb, acc[r][b]);
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

// One function per shape (noinline): inlined into the dispatcher, the shapes share one frame and
// register allocation, which measurably slowed M = 1 (2.64 -> 3.18 ns per 64 weights).
template <int MR, int NB, typename Codes>
[[gnu::noinline]] void q4_f32_decode(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, int64_t r0,
                                     float* out) {
  const auto* xf = static_cast<const float*>(x.data) + r0 * x.ld;
  for (int64_t i = 0; i < MR * kTileN; ++i) out[r0 * kTileN + i] = 0.0f;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
    for (int b0 = 0; b0 < 8; b0 += NB) {
      __m256 acc[MR][NB];
      zero_acc(acc);
      q4_decode_group_pass<MR, NB, Codes>(w.codes, xf, x.ld, cb, ce, b0, acc);
      q4_group_epilogue<MR, NB>(w, x, g, r0, b0, acc, out);
    }
  }
}

// Up to this M, every block of 6 rows dequantizes the codes again in registers (the conversion
// runs on the pipes the FMAs leave free); above it, the per-group fp32 panel is cheaper. Measured
// (ns per 64 weights per row, registers / panel): M = 2: 1.82 / 3.53, 5: 1.28 / 1.90,
// 8: 1.40 / 1.75, 16: 1.28 / 1.40, 24: 1.26 / 1.30, 32: 1.30 / 1.30, 48: 1.27 / 1.23,
// 64: 1.27 / 1.22.
constexpr int64_t kRegisterDequantMaxM = 32;

// Prefill: per group, panel[k][64] = q - 8 (fp32), then 6 x 16 register blocks over it.
void q4_f32_prefill(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  struct PanelTag;
  AlignedBuffer<float>& panel = thread_scratch<AlignedBuffer<float>, PanelTag>();  // [chunks_per_group * 8][64] fp32
  panel.reserve_discard(size_t(w.geom.chunks_per_group * kChunkK * kTileN));
  const auto* xf = static_cast<const float*>(x.data);
  for (int64_t i = 0; i < x.m * kTileN; ++i) out[i] = 0.0f;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
    for (int64_t chunk = cb; chunk < ce; ++chunk) {
      float* rows = panel.data() + (chunk - cb) * kChunkK * kTileN;  // [8][64] of this chunk
      for (int b = 0; b < 8; ++b) {
        for_each_position([&]<int J>() {
          _mm256_store_ps(rows + kOrder[J] * kTileN + 8 * b,
                          MagicExponentCodes::at<J>(w.codes + chunk * kTileN + 8 * b));
        });
      }
    }
    const float* pw = panel.data();
    const int64_t kg = (ce - cb) * kChunkK;
    for_row_blocks(x.m, [&]<int MR, int NB>(int64_t r0) {
      for (int b0 = 0; b0 < 8; b0 += NB) {
        __m256 acc[MR][NB];
        zero_acc(acc);
        auto row = [&](int64_t k, int b, bool) { return _mm256_load_ps(pw + k * kTileN + 8 * b); };
        fma_rows<MR, NB>(xf + r0 * x.ld + cb * kChunkK, x.ld, 0, kg, b0, row, acc);
        q4_group_epilogue<MR, NB>(w, x, g, r0, b0, acc, out);
      }
    });
  }
}

}  // namespace

// The registry entries (table_avx2.cpp): one per regime above.
void q4_f32_1x32__avx2(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_f32_decode<1, 4, MagicExponentCodes>(w, x, g0, g1, 0, out);
}

void q4_f32_6x16__avx2(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  for_row_blocks(x.m, [&]<int MR, int NB>(int64_t r0) {
    if constexpr (MR == 1) {  // a last single row: the M = 1 kernel (1 x 64 would not fit 16 ymm here)
      q4_f32_decode<1, 4, MagicExponentCodes>(w, x, g0, g1, r0, out);
    } else {
      q4_f32_decode<MR, NB, SignExtendCodes>(w, x, g0, g1, r0, out);
    }
  });
}

void q4_f32_panel_6x16__avx2(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_f32_prefill(w, x, g0, g1, out);
}

}  // namespace w4a16::cpu
