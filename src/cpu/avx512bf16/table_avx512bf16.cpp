// The AVX512-BF16 kernel table: the bf16-dot entries (x as bf16 pairs). fp32-x entries come from
// the avx512 table below it (dispatch.hpp find_q4 / find_dense).
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

#define W4A16_Q4(name) void name(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
#define W4A16_DENSE(name) void name(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
W4A16_Q4(q4_bf16_1x64__avx512bf16)
W4A16_Q4(q4_bf16_2x64__avx512bf16)
W4A16_Q4(q4_bf16_4x64__avx512bf16)
W4A16_Q4(q4_bf16_12x32__avx512bf16)
W4A16_Q4(q4_bf16_panel_6x64__avx512bf16)
W4A16_Q4(stream_q4__avx512)
W4A16_DENSE(dense_bf16_bf16_1x64__avx512bf16)
W4A16_DENSE(dense_bf16_bf16_4x64__avx512bf16)
W4A16_DENSE(dense_bf16_bf16_6x64__avx512bf16)
W4A16_DENSE(dense_bf16_bf16_12x32__avx512bf16)
#undef W4A16_Q4
#undef W4A16_DENSE
void dequant__avx512bf16(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);
void widen_panel__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);

namespace {

#define W4A16_ENTRY(f, lo, hi) \
  { .name = #f, .x = XFormat::bf16, .m_min = lo, .m_max = hi, .fn = f }
constexpr Q4Entry kQ4[] = {
    W4A16_ENTRY(q4_bf16_1x64__avx512bf16, 1, 1),
    W4A16_ENTRY(q4_bf16_2x64__avx512bf16, 2, 2),
    W4A16_ENTRY(q4_bf16_4x64__avx512bf16, 3, 4),
    W4A16_ENTRY(q4_bf16_12x32__avx512bf16, 5, 16),
    W4A16_ENTRY(q4_bf16_panel_6x64__avx512bf16, 17, kAnyM),
};
#undef W4A16_ENTRY

#define W4A16_ENTRY(f, lo, hi) \
  { .name = #f, .weight = DType::bf16, .x = XFormat::bf16, .m_min = lo, .m_max = hi, .fn = f }
constexpr DenseEntry kDense[] = {
    W4A16_ENTRY(dense_bf16_bf16_1x64__avx512bf16, 1, 1),
    W4A16_ENTRY(dense_bf16_bf16_4x64__avx512bf16, 2, 4),
    W4A16_ENTRY(dense_bf16_bf16_6x64__avx512bf16, 5, 6),
    W4A16_ENTRY(dense_bf16_bf16_12x32__avx512bf16, 7, kAnyM),
};
#undef W4A16_ENTRY

}  // namespace

const KernelTable* avx512bf16_kernels() {
  static const KernelTable table = {
      .isa = Isa::avx512bf16,
      .name = "avx512bf16",
      .q4 = kQ4,
      .dense = kDense,
      .dequant = {"dequant__avx512bf16", dequant__avx512bf16},
      .widen = {"widen__avx512", widen_panel__avx512},
      .stream = {.name = "stream_q4__avx512", .fn = stream_q4__avx512},
  };
  return &table;
}

}  // namespace w4a16::cpu
