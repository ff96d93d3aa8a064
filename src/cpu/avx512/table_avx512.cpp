// The AVX-512 (F/BW/VL/DQ, no BF16 dot) kernel table.
#include "cpu/kernels.hpp"

namespace w4a16::cpu {

void q4_f32__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void dense_f16_f32__avx512(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dense_bf16_f32__avx512(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dequant_panel__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);
void widen_panel__avx512(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);
void stream_q4__avx512(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);

const KernelTable* avx512_kernels() {
  static const KernelTable table = {Isa::avx512,
                                    "avx512",
                                    q4_f32__avx512,
                                    nullptr,
                                    dense_f16_f32__avx512,
                                    dense_bf16_f32__avx512,
                                    nullptr,
                                    dequant_panel__avx512,
                                    widen_panel__avx512,
                                    stream_q4__avx512};
  return &table;
}

}  // namespace w4a16::cpu
