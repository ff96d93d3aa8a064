// Dense bf16 weights (bf16 pairs) x bf16 activations on vdpbf16ps: the BF16 baseline where the
// dot is the faster instruction (dispatch.hpp), with the blocks of the fused entries.
#include <algorithm>

#include "cpu/avx512/dense_blocks_avx512.hpp"

namespace w4a16::cpu {

#define W4A16_DENSE_ENTRY(name, MR, NB, NA)                                               \
  void name(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) { \
    dense_blocks<DenseBf16Dot, MR, NB, NA>(tile, x, c0, c1, out);                         \
  }
W4A16_DENSE_ENTRY(dense_bf16_bf16_1x64__avx512bf16, 1, 4, 4)
W4A16_DENSE_ENTRY(dense_bf16_bf16_4x64__avx512bf16, 4, 4, 1)
W4A16_DENSE_ENTRY(dense_bf16_bf16_6x64__avx512bf16, 6, 4, 1)
W4A16_DENSE_ENTRY(dense_bf16_bf16_12x32__avx512bf16, 12, 2, 1)
#undef W4A16_DENSE_ENTRY

}  // namespace w4a16::cpu
