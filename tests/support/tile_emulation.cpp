// The emulated instantiations of the AMX loops (tile_emulation.hpp).
#include "support/tile_emulation.hpp"

#include "support/emulated_tiles.hpp"

namespace w4a16::cpu::emulated {

namespace {
struct EmulatedFusedTag;
struct EmulatedDenseTag;
}  // namespace

void q4_bf16_panel_16x64__emulated_amx(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  q4_bf16_tiles<EmulatedTiles, EmulatedFusedTag>(w, x, g0, g1, out);
}

void dense_bf16_bf16_16x64__emulated_amx(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  dense_bf16_tiles<EmulatedTiles, EmulatedDenseTag>(tile, x, c0, c1, out);
}

int64_t emulated_tile_configs() { return EmulatedTiles::state().configs; }

}  // namespace w4a16::cpu::emulated
