// The AVX2 + FMA + F16C kernel table. No bf16 dot instruction here: q4_bf16 and dense_bf16 stay
// nullptr, and the driver widens bf16 activations to fp32 for q4_f32 / dense_bf16_f32.
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

void q4_f32__avx2(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void dense_f16_f32__avx2(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dense_bf16_f32__avx2(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dequant_panel__avx2(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);

const KernelTable* avx2_kernels() {
  static const KernelTable table = {
      .isa = Isa::avx2,
      .name = "avx2",
      .q4_f32 = q4_f32__avx2,
      .q4_bf16 = nullptr,  // no bf16 dot instruction: the driver widens bf16 x to fp32
      .dense_f16 = dense_f16_f32__avx2,
      .dense_bf16_f32 = dense_bf16_f32__avx2,
      .dense_bf16 = nullptr,  // likewise
      .dequant = dequant_panel__avx2,
  };
  return &table;
}

}  // namespace w4a16::cpu
