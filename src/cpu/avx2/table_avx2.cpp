// The AVX2 + FMA + F16C kernel table. No bf16 dot instruction here: bf16 activations are widened
// to fp32 by the executor for the fp32 entries.
#include "cpu/cpu_features.hpp"
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

void q4_f32_1x32__avx2(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void q4_f32_6x16__avx2(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void q4_f32_panel_6x16__avx2(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void dense_f16_f32_6x16__avx2(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dense_bf16_f32_6x16__avx2(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dequant__avx2(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);

extern const KernelTable kernels_scalar, kernels_avx2;

namespace {
// M ranges: the register/panel crossover is kRegisterDequantMaxM = 32 (q4_f32_avx2.cpp).
constexpr Q4Entry kQ4[] = {
    {.name = "q4_f32_1x32__avx2",
     .isa = &kernels_avx2,
     .x = XFormat::f32,
     .mr = 1,
     .nr = 32,
     .m_min = 1,
     .m_max = 1,
     .fn = q4_f32_1x32__avx2},
    {.name = "q4_f32_6x16__avx2",
     .isa = &kernels_avx2,
     .x = XFormat::f32,
     .mr = 6,
     .nr = 16,
     .m_min = 2,
     .m_max = 32,
     .fn = q4_f32_6x16__avx2},
    {.name = "q4_f32_panel_6x16__avx2",
     .isa = &kernels_avx2,
     .x = XFormat::f32,
     .mr = 6,
     .nr = 16,
     .panel = true,
     .m_min = 33,
     .fn = q4_f32_panel_6x16__avx2},
};
constexpr DenseEntry kDense[] = {
    {.name = "dense_f16_f32_6x16__avx2",
     .isa = &kernels_avx2,
     .weight = DType::f16,
     .x = XFormat::f32,
     .mr = 6,
     .nr = 16,
     .fn = dense_f16_f32_6x16__avx2},
    {.name = "dense_bf16_f32_6x16__avx2",
     .isa = &kernels_avx2,
     .weight = DType::bf16,
     .x = XFormat::f32,
     .mr = 6,
     .nr = 16,
     .fn = dense_bf16_f32_6x16__avx2},
};
}  // namespace

extern const KernelTable kernels_avx2 = {
    .name = "avx2",
    .usable = [](const CpuFeatures& f) { return f.has_avx2_fma_f16c(); },
    .fallback = &kernels_scalar,
    .q4 = kQ4,
    .dense = kDense,
    .dequant = {.name = "dequant__avx2", .isa = &kernels_avx2, .fn = dequant__avx2},
};

}  // namespace w4a16::cpu
