// The CUDA kernels' copy of a QuantizedWeight, made on the host: codes in the slab layout of
// gpu_layout.hpp, scales and zeros permuted to match, converted to the mma's operand dtype.
// Plain C++: built and tested on every machine, GPU or not.
#pragma once

#include <cstdint>
#include <vector>

#include "w4a16/w4a16.hpp"

namespace w4a16::cuda {

struct GpuPackedWeight {
  int64_t n = 0, k = 0;                // the layer
  int64_t n_slabs = 0, k_slabs = 0;    // ceil(N / 64), ceil(K / 16)
  int64_t group_size = 0, groups = 0;  // g as the kernel reads it (K for per-channel), ceil(K / g)
  ZeroMode zero_mode = ZeroMode::sym;
  DType dtype = DType::f16;         // the activations', the 16-bit weights' and these tensors' dtype
  std::vector<uint32_t> codes;      // [N/64][K/16][32 lanes][4 words]: 8 codes per word, layout::slot_of
  std::vector<uint16_t> scales;     // [G][N/64][8][8] (layout::group_param_index)
  std::vector<uint16_t> offsets;    // asym: MAGIC + z per group and column; empty: MAGIC + 8 for all
  std::vector<uint16_t> zero_adds;  // float zero: zf per group and column; empty otherwise
  std::vector<int32_t> perm;        // act-order: [K] as in the QuantizedWeight (x is gathered by it)
};

// Packs `w` for kernels running on `dtype` activations (f16 or bf16). Scales and float zeros are
// rounded to dtype (the mma multiplies 16-bit operands; a bf16 run of fp16 scales loses their
// three extra bits, as the 16-bit weight would anyway). Padding: columns N..N/64*64 get scale 0
// (and zf 0), so they contribute 0; rows K..K/16*16 get code 0, and the kernels read x as 0 there.
// Throws Error(unsupported) when the group size is neither a multiple of 16 nor per-channel
// (g >= K): a slab of 16 k must lie in one group. Error(invalid_argument) for another dtype.
GpuPackedWeight pack_gpu(const QuantizedWeight& w, DType dtype);

// The 16-bit weight the kernels compute for stored element (n, k), decoded from the packed copy
// with the same bit operations (layout::magic_pair) and the half2 arithmetic emulated step by
// step, each step rounded once to dtype as the instruction does: c = (MAGIC + q) - offset (exact),
// w = fma(c, scale, zf). For the tests and the host check of the decoupled dequant kernel.
uint16_t gpu_weight(const GpuPackedWeight& p, int64_t n, int64_t k);

}  // namespace w4a16::cuda
