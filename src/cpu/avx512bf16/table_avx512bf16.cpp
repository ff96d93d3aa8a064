// The AVX512-BF16 kernel table: the bf16-dot entries (x as bf16 pairs). fp32-x entries come from
// the avx512 table it falls back to (dispatch.hpp find_q4 / find_dense).
#include "cpu/cpu_features.hpp"
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

#define W4A16_Q4(name) void name(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
#define W4A16_DENSE(name) void name(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
W4A16_Q4(q4_bf16_1x64__avx512bf16)
W4A16_Q4(q4_bf16_2x64__avx512bf16)
W4A16_Q4(q4_bf16_4x64__avx512bf16)
W4A16_Q4(q4_bf16_12x32__avx512bf16)
W4A16_Q4(q4_bf16_panel_6x64__avx512bf16)
W4A16_DENSE(dense_bf16_bf16_1x64__avx512bf16)
W4A16_DENSE(dense_bf16_bf16_4x64__avx512bf16)
W4A16_DENSE(dense_bf16_bf16_6x64__avx512bf16)
W4A16_DENSE(dense_bf16_bf16_12x32__avx512bf16)
#undef W4A16_Q4
#undef W4A16_DENSE
void dequant__avx512bf16(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);

extern const KernelTable kernels_avx512, kernels_avx512bf16;

namespace {

// fn, MR x NR, panel, the M range it serves.
#define W4A16_ENTRY(f, mr_, nr_, panel_, lo, hi)                                                                    \
  {                                                                                                                 \
    .name = #f, .isa = &kernels_avx512bf16, .x = XFormat::bf16, .mr = mr_, .nr = nr_, .panel = panel_, .m_min = lo, \
    .m_max = hi, .fn = f                                                                                            \
  }
constexpr Q4Entry kQ4[] = {
    W4A16_ENTRY(q4_bf16_1x64__avx512bf16, 1, 64, false, 1, 1),
    W4A16_ENTRY(q4_bf16_2x64__avx512bf16, 2, 64, false, 2, 2),
    W4A16_ENTRY(q4_bf16_4x64__avx512bf16, 4, 64, false, 3, 4),
    W4A16_ENTRY(q4_bf16_12x32__avx512bf16, 12, 32, false, 5, 16),
    W4A16_ENTRY(q4_bf16_panel_6x64__avx512bf16, 6, 64, true, 17, kAnyM),
};
#undef W4A16_ENTRY

// fn, MR x NR, the M range it serves.
#define W4A16_ENTRY(f, mr_, nr_, lo, hi)                                                                     \
  {                                                                                                          \
    .name = #f, .isa = &kernels_avx512bf16, .weight = DType::bf16, .x = XFormat::bf16, .mr = mr_, .nr = nr_, \
    .m_min = lo, .m_max = hi, .fn = f                                                                        \
  }
constexpr DenseEntry kDense[] = {
    W4A16_ENTRY(dense_bf16_bf16_1x64__avx512bf16, 1, 64, 1, 1),
    W4A16_ENTRY(dense_bf16_bf16_4x64__avx512bf16, 4, 64, 2, 4),
    W4A16_ENTRY(dense_bf16_bf16_12x32__avx512bf16, 12, 32, 5, 16),
    W4A16_ENTRY(dense_bf16_bf16_6x64__avx512bf16, 6, 64, 17, kAnyM),
};
#undef W4A16_ENTRY

}  // namespace

extern const KernelTable kernels_avx512bf16 = {
    .name = "avx512bf16",
    .usable = [](const CpuFeatures& f) { return f.has_avx512_bf16(); },
    .fallback = &kernels_avx512,
    .q4 = kQ4,
    .dense = kDense,
    .dequant = {.name = "dequant__avx512bf16", .isa = &kernels_avx512bf16, .fn = dequant__avx512bf16},
};

}  // namespace w4a16::cpu
