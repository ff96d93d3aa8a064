// The AVX-512 (F/BW/VL/DQ) kernel table: the fp32-FMA entries. bf16 activations are widened to
// fp32 for them where the bf16 dot is absent or slower (dispatch.hpp). M ranges: docs/kernels.md.
#include "cpu/cpu_features.hpp"
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

#define W4A16_Q4(name) void name(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
#define W4A16_DENSE(name) void name(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
W4A16_Q4(q4_f32_1x64__avx512)
W4A16_Q4(q4_f32_2x64__avx512)
W4A16_Q4(q4_f32_4x64__avx512)
W4A16_Q4(q4_f32_12x32__avx512)
W4A16_Q4(q4_f32_panel_6x64__avx512)
W4A16_DENSE(dense_f16_f32_1x64__avx512)
W4A16_DENSE(dense_f16_f32_4x64__avx512)
W4A16_DENSE(dense_f16_f32_6x64__avx512)
W4A16_DENSE(dense_bf16_f32_1x64__avx512)
W4A16_DENSE(dense_bf16_f32_4x64__avx512)
W4A16_DENSE(dense_bf16_f32_6x64__avx512)
#undef W4A16_Q4
#undef W4A16_DENSE
void dequant__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);

extern const KernelTable kernels_avx2, kernels_avx512;

namespace {

// fn, MR x NR, panel, the M range it serves.
#define W4A16_ENTRY(f, mr_, nr_, panel_, lo, hi)                                                               \
  {                                                                                                            \
    .name = #f, .isa = &kernels_avx512, .x = XFormat::f32, .mr = mr_, .nr = nr_, .panel = panel_, .m_min = lo, \
    .m_max = hi, .fn = f                                                                                       \
  }
constexpr Q4Entry kQ4[] = {
    W4A16_ENTRY(q4_f32_1x64__avx512, 1, 64, false, 1, 1),
    W4A16_ENTRY(q4_f32_2x64__avx512, 2, 64, false, 2, 2),
    W4A16_ENTRY(q4_f32_4x64__avx512, 4, 64, false, 3, 4),
    W4A16_ENTRY(q4_f32_12x32__avx512, 12, 32, false, 5, 16),
    W4A16_ENTRY(q4_f32_panel_6x64__avx512, 6, 64, true, 17, kAnyM),
};
#undef W4A16_ENTRY

// fn, weight dtype, MR x NR, the M range it serves.
#define W4A16_ENTRY(f, w, mr_, nr_, lo, hi)                                                                \
  {                                                                                                        \
    .name = #f, .isa = &kernels_avx512, .weight = w, .x = XFormat::f32, .mr = mr_, .nr = nr_, .m_min = lo, \
    .m_max = hi, .fn = f                                                                                   \
  }
constexpr DenseEntry kDense[] = {
    W4A16_ENTRY(dense_f16_f32_1x64__avx512, DType::f16, 1, 64, 1, 1),
    W4A16_ENTRY(dense_f16_f32_4x64__avx512, DType::f16, 4, 64, 2, 4),
    W4A16_ENTRY(dense_f16_f32_6x64__avx512, DType::f16, 6, 64, 5, kAnyM),
    W4A16_ENTRY(dense_bf16_f32_1x64__avx512, DType::bf16, 1, 64, 1, 1),
    W4A16_ENTRY(dense_bf16_f32_4x64__avx512, DType::bf16, 4, 64, 2, 4),
    W4A16_ENTRY(dense_bf16_f32_6x64__avx512, DType::bf16, 6, 64, 5, kAnyM),
};
#undef W4A16_ENTRY

}  // namespace

extern const KernelTable kernels_avx512 = {
    .name = "avx512",
    .usable = [](const CpuFeatures& f) { return f.has_avx512_core(); },
    .fallback = &kernels_avx2,
    .q4 = kQ4,
    .dense = kDense,
    .dequant = {.name = "dequant__avx512", .isa = &kernels_avx512, .fn = dequant__avx512},
};

}  // namespace w4a16::cpu
