// The vector half of the AMX pipeline on its own: the fused entry's dequantization of int4 groups
// into B tiles (tile_gemm.hpp, dequant_steps), exported so that `w4a16 calibrate` can time the
// dequantize-to-tile rate the cost model charges the vector unit (src/measure/tile_dequant_rate.cpp),
// and the tests can check the tile layout it writes.
#pragma once

#include <cstdint>

#include "cpu/kernels.hpp"

namespace w4a16::cpu {

// B-tile cells one step of 32 k takes: 4 column tiles x 16 pair rows x 16 columns of bf16 pairs.
inline constexpr int64_t kTileStepCells = 4 * 16 * 16;

// Dequantizes groups [g0, g1) of `w` one after the other into `tiles`, each group over the one
// before (the fused entry's buffer when M > 16): group g's ceil(chunks / 4) steps, step s at
// tiles + s * kTileStepCells, column tile j of it at + j * 256, pair row p at + p * 16, column c
// at + c: the 32-bit cell (bf16(q[2p][c] - 8) | bf16(q[2p + 1][c] - 8) << 16) of the step's k,
// zero past the group's last chunk. The scale is not applied (the fused entry scales the fp32 sums).
// AVX512-BF16 instructions only, no tile instruction: it runs on any CPU whose avx512bf16 table
// is usable, AMX or not.
void q4_tiles_dequant__amx(const Q4Tile& w, int64_t g0, int64_t g1, uint32_t* tiles);

}  // namespace w4a16::cpu
