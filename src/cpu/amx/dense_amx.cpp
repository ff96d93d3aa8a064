// Dense bf16 weights x bf16 activations on AMX: the 16-bit baseline on a CPU with tiles, and the
// second stage of the decoupled strategy (the dequantized panel has the same bf16-pair layout).
#include "cpu/amx/amx_tiles.hpp"

namespace w4a16::cpu {

namespace {
struct AmxDenseTag;
}  // namespace

void dense_bf16_bf16_16x64__amx(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  dense_bf16_tiles<AmxTiles, AmxDenseTag>(tile, x, c0, c1, out);
}

}  // namespace w4a16::cpu
