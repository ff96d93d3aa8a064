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
//
// quantization_config: {"quant_method": "compressed-tensors", "format": "pack-quantized",
// "config_groups": {name: {"targets": [...], "weights": {"num_bits": 4, "type": "int", "symmetric",
// "strategy": "group" | "channel", "group_size", "actorder"}}}, "ignore": [...]}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/import_format.hpp"
#include "io/tensor_source.hpp"

namespace w4a16::io {

// One entry of compressed-tensors' config_groups (weights int4, no activation quantization).
struct CtScheme {
  std::string name;                  // the key in config_groups, e.g. "group_0"
  std::vector<std::string> targets;  // class names ("Linear"), module names, or "re:<regex>"
  bool symmetric = true;
  int64_t group_size = 0;  // strategy "group": g; strategy "channel": 0 (g = K)
  std::string actorder;    // "" (none), "group", "weight", "static" or "dynamic"
};

// compressed-tensors with format "pack-quantized". Tensors per module: weight_packed,
// weight_scale, weight_shape, [weight_zero_point], [weight_g_idx], [bias].
struct CompressedTensorsConfig {
  std::vector<CtScheme> schemes;
  std::vector<std::string> ignore;  // module names or "re:<regex>" left unquantized

  static const ImportFormat<CompressedTensorsConfig> format;  // "compressed-tensors" (import_compressed_tensors.cpp)
};

QuantizedWeight import_compressed_tensors(const TensorSource& source, std::string_view module, const CtScheme& scheme);

// The compressed-tensors scheme that covers a module: the first config group whose targets match
// it ("re:<regex>" anchored at the start of the module name, the module name itself, or a class
// name such as "Linear", which every packed module is taken to be). Error(format) when none does
// or when `ignore` lists the module.
const CtScheme& ct_scheme_for(const CompressedTensorsConfig& config, std::string_view module);

}  // namespace w4a16::io
