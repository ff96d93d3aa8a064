// GPTQ (AutoGPTQ / GPTQModel) -> QuantizedWeight, bit-exact. Per module m (docs/formats.md,
// "Checkpoint import"):
//   m.qweight  I32 [ceil(K/8), N]  code of (k, n) = nibble k % 8 of word [k / 8, n] (packed along K)
//   m.qzeros   I32 [G, N/8]        zero of (group, n) = nibble n % 8 of word [group, n / 8];
//                                  v1 stores z - 1 (z = stored + 1, a stored 15 reads 16 as vLLM does),
//                                  v2 stores z
//   m.scales   F16|BF16|F32 [G, N] G = ceil(K/g)
//   m.g_idx    I32 [K]             optional; the group of input feature k (k / g without act-order)
//   m.bias     F16|BF16|F32 [N]    optional
// W[k, n] = scales[g_idx[k], n] * (q[k, n] - z[g_idx[k], n]); the result's dequantize() is W^T.
//
// quantization_config: {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": true,
// "desc_act": false, "checkpoint_format" (or "format"): "gptq" | "gptq_v2"}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/import_format.hpp"
#include "io/tensor_source.hpp"

namespace w4a16::io {

// AutoGPTQ / GPTQModel. Tensors per module: qweight, qzeros, scales, [g_idx], [bias].
struct GptqConfig {
  int64_t group_size = 128;  // -1: per channel (g = K)
  bool sym = true;
  bool desc_act = false;  // act-order: g_idx is not k / g
  bool v2 = false;        // checkpoint_format (or format) "gptq_v2": zeros stored as is; v1 stores z - 1

  static const ImportFormat<GptqConfig> format;  // "gptq" (import_gptq.cpp)
};

// Error(format) naming the tensor on any dtype / shape / range mismatch, Error(format) for
// act-order groups that are not uniform. `warnings`, when given, receives one line per
// questionable value read a documented way (v1 zeros of 16).
QuantizedWeight import_gptq(const TensorSource& source, std::string_view module, const GptqConfig& config,
                            std::vector<std::string>* warnings = nullptr);

}  // namespace w4a16::io
