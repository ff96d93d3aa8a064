// The fused int4 entry on AMX: AVX-512 dequantizes each group into B tiles in L1, TDPBF16PS
// multiplies (tile_gemm.hpp has the layout and the loop).
#include "cpu/amx/amx_tiles.hpp"

namespace w4a16::cpu {

namespace {
struct AmxFusedTag;
}  // namespace

void q4_bf16_panel_16x64__amx(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_bf16_tiles<AmxTiles, AmxFusedTag>(w, x, g0, g1, out);
}

}  // namespace w4a16::cpu
