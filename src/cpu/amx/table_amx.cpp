// The AMX kernel table: entries that multiply on the tile unit (bf16 x only). It adds them beside
// AVX512-BF16, which serves everything else (fp32 x, fp16 weights, the dequant stage), and is
// offered only where the CPU, the OS and the process's tile permission allow (tile_permission.hpp).
#include "cpu/cpu_features.hpp"
#include "cpu/kernels.hpp"
#include "cpu/tile_permission.hpp"

namespace w4a16::cpu {

void q4_bf16_panel_16x64__amx(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void dense_bf16_bf16_16x64__amx(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);

extern const KernelTable kernels_avx512bf16, kernels_amx;

namespace {

constexpr Q4Entry kQ4[] = {
    {.name = "q4_bf16_panel_16x64__amx",
     .isa = &kernels_amx,
     .x = XFormat::bf16,
     .mr = 16,
     .nr = 64,
     .panel = true,
     .m_min = 1,
     .m_max = kAnyM,
     .fn = q4_bf16_panel_16x64__amx},
};

constexpr DenseEntry kDense[] = {
    {.name = "dense_bf16_bf16_16x64__amx",
     .isa = &kernels_amx,
     .weight = DType::bf16,
     .x = XFormat::bf16,
     .mr = 16,
     .nr = 64,
     .m_min = 1,
     .m_max = kAnyM,
     .fn = dense_bf16_bf16_16x64__amx},
};

}  // namespace

extern const KernelTable kernels_amx = {
    .name = "amx",
    .usable = [](const CpuFeatures&) { return tile_access().granted; },  // cpuid, XCR0, then Linux
    .fallback = &kernels_avx512bf16,
    .tiles = true,
    .q4 = kQ4,
    .dense = kDense,
    .dequant = {},
};

}  // namespace w4a16::cpu
