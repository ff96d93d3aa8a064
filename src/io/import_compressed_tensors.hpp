// compressed-tensors `pack-quantized` (llm-compressor) -> QuantizedWeight, bit-exact. Per module m
// (docs/formats.md, "Checkpoint import"):
//   m.weight_packed      I32 [N, ceil(K/8)]  value of (n, k) = nibble k % 8 of word [n, k / 8],
//                                             stored as signed value + 8 (q_signed in [-8, 7])
//   m.weight_scale       F16|BF16|F32 [N, G] G = ceil(K/g); g = K for strategy "channel"
//   m.weight_shape       I32|I64 [2]         (N, K)
//   m.weight_zero_point  asymmetric only: I32 [ceil(N/8), G], nibble n % 8 of word [n / 8, group],
//                        a signed zero + 8 (older releases: I8 [N, G] signed)
//   m.weight_g_idx       I32 [K]             optional (actorder "group")
//   m.bias               F16|BF16|F32 [N]    optional
// W[n, k] = s * (q_signed - zp) = s * (stored - (zp + 8)): QuantizedWeight's code is the stored
// nibble, its zero z = zp + 8 (the stored zero nibble); z = 8 everywhere is ZeroMode::sym.
#pragma once

#include <string_view>

#include "io/quant_config.hpp"
#include "io/tensor_source.hpp"

namespace w4a16::io {

QuantizedWeight import_compressed_tensors(const TensorSource& source, std::string_view module, const CtScheme& scheme);

}  // namespace w4a16::io
