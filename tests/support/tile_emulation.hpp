// The AMX kernels' loops (src/cpu/amx/tile_gemm.hpp) on emulated tiles (emulated_tiles.hpp), built
// with the avx512bf16 flags (tests/CMakeLists.txt): an AVX512-BF16 CPU runs them, AMX or not.
#pragma once

#include <cstdint>

#include "cpu/kernels.hpp"

namespace w4a16::cpu::emulated {

void q4_bf16_panel_16x64__emulated_amx(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void dense_bf16_bf16_16x64__emulated_amx(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);

// LDTILECFGs that changed this thread's emulated configuration so far.
int64_t emulated_tile_configs();

}  // namespace w4a16::cpu::emulated
