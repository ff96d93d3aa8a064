// The AMX pipeline's vector stage alone (tile_dequant.hpp): the fused entry's own dequant_steps.
#include "cpu/amx/tile_dequant.hpp"
#include "cpu/amx/tile_gemm.hpp"

namespace w4a16::cpu {

void q4_tiles_dequant__amx(const Q4Tile& w, int64_t g0, int64_t g1, uint32_t* tiles) {
  const __m512i table = DotBf16::table();
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
    dequant_steps(w, cb, ce, 0, step_count(ce - cb), table, tiles);
  }
}

}  // namespace w4a16::cpu
