// The bottleneck study's ablations (study_kernels.hpp), AVX-512: the decoupled stage without its
// arithmetic (codes widened to 16 bits and stored, same bytes as the real panel) and the bare
// int4 stream (codes and scales read and XOR-reduced, nothing computed).
#include "cpu/avx512/avx512_common.hpp"
#include "cpu/study_kernels.hpp"

namespace w4a16::cpu {

extern const KernelTable kernels_avx512;

void widen_panel__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel) {
  const int64_t base = w.geom.chunk_begin(g0), end = w.geom.chunk_end(g1 - 1);
  const __m512i pair_mask = _mm512_set1_epi32(0x000F000F), lane_mask = _mm512_set1_epi32(0xF);
  const __m512i one_bf16 = _mm512_set1_epi32(0x3F803F80);  // normal values (see kernels.hpp)
  const __m256i one_f16 = _mm256_set1_epi16(0x3C00);
  constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (int64_t chunk = base; chunk < end; ++chunk) {
    for (int b = 0; b < 4; ++b) {
      const __m512i packed = _mm512_load_si512(w.codes + chunk * kTileN + 16 * b);
      if (dtype == DType::bf16) {  // [K'/2][64] pairs: one shift + mask per pair row
        auto* out = static_cast<uint32_t*>(panel) + (chunk - base) * 4 * kTileN + 16 * b;
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          _mm512_store_si512(out + j * kTileN,
                             _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(packed, 4 * j), pair_mask), one_bf16));
        }
      } else {  // [K'][64] fp16 rows: shift + mask + narrow to 16 bits
        auto* out = static_cast<uint16_t*>(panel) + (chunk - base) * kChunkK * kTileN + 16 * b;
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          const __m256i row = _mm512_cvtepi32_epi16(_mm512_and_si512(_mm512_srli_epi32(packed, 4 * j), lane_mask));
          _mm256_store_si256(reinterpret_cast<__m256i*>(out + kOrder[j] * kTileN), _mm256_or_si256(row, one_f16));
        }
      }
    }
  }
}

void stream_q4__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  const int64_t begin = w.geom.chunk_begin(g0) * kTileN, end = w.geom.chunk_end(g1 - 1) * kTileN;
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  int64_t i = begin;
  for (; i + 32 <= end; i += 32) {  // two independent 64-byte streams per step
    acc0 = _mm512_xor_si512(acc0, _mm512_load_si512(w.codes + i));
    acc1 = _mm512_xor_si512(acc1, _mm512_load_si512(w.codes + i + 16));
  }
  for (; i < end; i += 16) acc0 = _mm512_xor_si512(acc0, _mm512_load_si512(w.codes + i));
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  const int64_t sb = int64_t(w.scale_dtype == DType::f32 ? 4 : 2) * kTileN;
  for (int64_t s = g0 * sb; s < g1 * sb; s += 64) {
    acc1 = _mm512_xor_si512(acc1, _mm512_loadu_si512(scales + s));
  }
  // Folded through memory: GCC 12 warns (falsely) about _mm512_reduce_or_epi32's undefined operand.
  alignas(64) uint32_t lanes[16];
  _mm512_store_si512(lanes, _mm512_xor_si512(acc0, acc1));
  uint32_t folded = 0;
  for (uint32_t lane : lanes) folded |= lane;
  for (int64_t r = 0; r < x.m * kTileN; ++r) out[r] = float(folded & 0xFF);
}

extern const StudyKernels study_kernels_avx512 = {
    .isa = &kernels_avx512,
    .widen = {.name = "widen__avx512", .isa = &kernels_avx512, .fn = widen_panel__avx512},
    .stream = {.name = "stream_q4__avx512", .isa = &kernels_avx512, .x = XFormat::f32, .fn = stream_q4__avx512},
};

}  // namespace w4a16::cpu
