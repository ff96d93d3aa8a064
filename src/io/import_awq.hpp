// AWQ, GEMM layout (AutoAWQ) -> QuantizedWeight, bit-exact. Per module m (docs/formats.md,
// "Checkpoint import"):
//   m.qweight  I32 [K, N/8]        packed along N with an interleave: nibble i of word [k, c]
//                                  holds column 8c + ORDER[i], ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
//   m.qzeros   I32 [G, N/8]        the same interleave; zeros stored as is (no - 1)
//   m.scales   F16|BF16|F32 [G, N] G = ceil(K/g)
//   m.bias     F16|BF16|F32 [N]    optional
// W[k, n] = scales[k / g, n] * (q[k, n] - z[k / g, n]).
//
// quantization_config: {"quant_method": "awq", "bits" (or "w_bit"): 4, "group_size" (or
// "q_group_size"): 128, "zero_point": true, "version": "gemm", "backend": "autoawq"}.
#pragma once

#include <cstdint>
#include <string_view>

#include "io/import_format.hpp"
#include "io/tensor_source.hpp"

namespace w4a16::io {

// AutoAWQ, version "gemm" only. Tensors per module: qweight, qzeros, scales, [bias].
struct AwqConfig {
  int64_t group_size = 128;  // -1: per channel
  bool zero_point = true;

  static const ImportFormat<AwqConfig> format;  // "awq" (import_awq.cpp)
};

// The nibble of a packed AWQ word that holds column c % 8 (the inverse of ORDER).
inline constexpr int kAwqNibbleOfColumn[8] = {0, 4, 1, 5, 2, 6, 3, 7};

// Error(format) naming the tensor on any dtype / shape mismatch. qzeros is required even with
// zero_point: false (AutoAWQ's GEMM module always stores and reads it).
QuantizedWeight import_awq(const TensorSource& source, std::string_view module, const AwqConfig& config);

}  // namespace w4a16::io
