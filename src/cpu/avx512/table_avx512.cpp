// The AVX-512 (F/BW/VL/DQ) kernel table: the fp32-FMA entries. bf16 activations are widened to
// fp32 for them where the bf16 dot is absent or slower (dispatch.hpp). M ranges: docs/kernels.md.
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

#define W4A16_Q4(name) void name(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
#define W4A16_DENSE(name) void name(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
W4A16_Q4(q4_f32_1x64__avx512)
W4A16_Q4(q4_f32_2x64__avx512)
W4A16_Q4(q4_f32_4x64__avx512)
W4A16_Q4(q4_f32_12x32__avx512)
W4A16_Q4(q4_f32_panel_6x64__avx512)
W4A16_Q4(stream_q4__avx512)
W4A16_DENSE(dense_f16_f32_1x64__avx512)
W4A16_DENSE(dense_f16_f32_4x64__avx512)
W4A16_DENSE(dense_f16_f32_6x64__avx512)
W4A16_DENSE(dense_bf16_f32_1x64__avx512)
W4A16_DENSE(dense_bf16_f32_4x64__avx512)
W4A16_DENSE(dense_bf16_f32_6x64__avx512)
#undef W4A16_Q4
#undef W4A16_DENSE
void dequant__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);
void widen_panel__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);

namespace {

#define W4A16_ENTRY(f, lo, hi) \
  { .name = #f, .x = XFormat::f32, .m_min = lo, .m_max = hi, .fn = f }
constexpr Q4Entry kQ4[] = {
    W4A16_ENTRY(q4_f32_1x64__avx512, 1, 1),
    W4A16_ENTRY(q4_f32_2x64__avx512, 2, 2),
    W4A16_ENTRY(q4_f32_4x64__avx512, 3, 4),
    W4A16_ENTRY(q4_f32_12x32__avx512, 5, 16),
    W4A16_ENTRY(q4_f32_panel_6x64__avx512, 17, kAnyM),
};
#undef W4A16_ENTRY

#define W4A16_ENTRY(f, w, lo, hi) \
  { .name = #f, .weight = w, .x = XFormat::f32, .m_min = lo, .m_max = hi, .fn = f }
constexpr DenseEntry kDense[] = {
    W4A16_ENTRY(dense_f16_f32_1x64__avx512, DType::f16, 1, 1),
    W4A16_ENTRY(dense_f16_f32_4x64__avx512, DType::f16, 2, 4),
    W4A16_ENTRY(dense_f16_f32_6x64__avx512, DType::f16, 5, kAnyM),
    W4A16_ENTRY(dense_bf16_f32_1x64__avx512, DType::bf16, 1, 1),
    W4A16_ENTRY(dense_bf16_f32_4x64__avx512, DType::bf16, 2, 4),
    W4A16_ENTRY(dense_bf16_f32_6x64__avx512, DType::bf16, 5, kAnyM),
};
#undef W4A16_ENTRY

}  // namespace

const KernelTable* avx512_kernels() {
  static const KernelTable table = {
      .isa = Isa::avx512,
      .name = "avx512",
      .q4 = kQ4,
      .dense = kDense,
      .dequant = {"dequant__avx512", dequant__avx512},
      .widen = {"widen__avx512", widen_panel__avx512},
      .stream = {.name = "stream_q4__avx512", .fn = stream_q4__avx512},
  };
  return &table;
}

}  // namespace w4a16::cpu
