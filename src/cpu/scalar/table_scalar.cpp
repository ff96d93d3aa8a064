// The scalar kernel table: the generic twins (kernels_scalar.cpp), which serve every x format,
// weight dtype and M. The end of every fallback chain: it runs on any x86-64 CPU.
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

extern const KernelTable kernels_scalar;

namespace {
constexpr Q4Entry kQ4[] = {
    {.name = "q4_f32__scalar", .isa = &kernels_scalar, .x = XFormat::f32, .fn = q4_f32_generic},
    {.name = "q4_bf16__scalar", .isa = &kernels_scalar, .x = XFormat::bf16, .fn = q4_bf16_generic},
};
constexpr DenseEntry kDense[] = {
    {.name = "dense_f16_f32__scalar",
     .isa = &kernels_scalar,
     .weight = DType::f16,
     .x = XFormat::f32,
     .fn = dense_f16_f32_generic},
    {.name = "dense_bf16_f32__scalar",
     .isa = &kernels_scalar,
     .weight = DType::bf16,
     .x = XFormat::f32,
     .fn = dense_bf16_f32_generic},
    {.name = "dense_bf16_bf16__scalar",
     .isa = &kernels_scalar,
     .weight = DType::bf16,
     .x = XFormat::bf16,
     .fn = dense_bf16_bf16_generic},
};
}  // namespace

extern const KernelTable kernels_scalar = {
    .name = "scalar",
    .usable = [](const CpuFeatures&) { return true; },
    .fallback = nullptr,
    .q4 = kQ4,
    .dense = kDense,
    .dequant = {.name = "dequant__scalar", .isa = &kernels_scalar, .fn = dequant_generic},
};

}  // namespace w4a16::cpu
