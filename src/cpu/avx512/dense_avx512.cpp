// Dense 16-bit weight x fp32 activation kernels (AVX-512F): the FP16/BF16 baseline on the FMA
// (fp16 weights always; bf16 weights where the bf16 dot is absent or slower, dispatch.hpp).
// Register blocks as the fused fp32 entries, so the ratio between them measures the weight format.
#include <algorithm>

#include "cpu/avx512/dense_blocks_avx512.hpp"

namespace w4a16::cpu {

#define W4A16_DENSE_ENTRY(name, P, MR, NB, NA)                                            \
  void name(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) { \
    dense_blocks<P, MR, NB, NA>(tile, x, c0, c1, out);                                    \
  }

W4A16_DENSE_ENTRY(dense_f16_f32_1x64__avx512, DenseF16, 1, 4, 2)
W4A16_DENSE_ENTRY(dense_f16_f32_4x64__avx512, DenseF16, 4, 4, 1)
W4A16_DENSE_ENTRY(dense_f16_f32_6x64__avx512, DenseF16, 6, 4, 1)
W4A16_DENSE_ENTRY(dense_bf16_f32_1x64__avx512, DenseBf16F32, 1, 4, 2)
W4A16_DENSE_ENTRY(dense_bf16_f32_4x64__avx512, DenseBf16F32, 4, 4, 1)
W4A16_DENSE_ENTRY(dense_bf16_f32_6x64__avx512, DenseBf16F32, 6, 4, 1)

#undef W4A16_DENSE_ENTRY

}  // namespace w4a16::cpu
