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
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/import_format.hpp"
#include "io/module_pattern.hpp"
#include "io/tensor_source.hpp"

namespace w4a16::io {

// One entry of a config group's `targets` or of `ignore`, as compressed-tensors matches it against
// a module name: "re:<regex>" (Python's re.match: anchored at the start, a `$` anchors the end), a
// class name ("Linear": starts upper-case, no '.'; packed modules are linear layers, so only names
// ending in "Linear" match), or the exact module name. A regex is compiled here, once, when the
// config is read (module_pattern.hpp: linear-time matching, bounded pattern and name lengths);
// Error(format) when it is invalid, outside the supported subset or over a limit.
class CtTarget {
 public:
  CtTarget(std::string text);                                  // NOLINT(google-explicit-constructor)
  CtTarget(const char* text) : CtTarget(std::string(text)) {}  // NOLINT(google-explicit-constructor)

  const std::string& text() const { return text_; }
  // Error(format) for a module name over ModulePattern::kMaxNameBytes against a regex.
  bool matches(std::string_view module) const;

  friend bool operator==(const CtTarget& a, const CtTarget& b) { return a.text_ == b.text_; }

 private:
  std::string text_;
  std::optional<ModulePattern> regex_;  // for "re:<regex>"
};

// One entry of compressed-tensors' config_groups (weights int4, no activation quantization).
struct CtScheme {
  std::string name;               // the key in config_groups, e.g. "group_0"
  std::vector<CtTarget> targets;  // class names ("Linear"), module names, or "re:<regex>"
  bool symmetric = true;
  int64_t group_size = 0;  // strategy "group": g; strategy "channel": 0 (g = K)
  std::string actorder;    // "" (none), "group", "weight", "static" or "dynamic"
};

// compressed-tensors with format "pack-quantized". Tensors per module: weight_packed,
// weight_scale, weight_shape, [weight_zero_point], [weight_g_idx], [bias].
struct CompressedTensorsConfig {
  std::vector<CtScheme> schemes;
  std::vector<CtTarget> ignore;  // module names or "re:<regex>" left unquantized

  static const ImportFormat<CompressedTensorsConfig> format;  // "compressed-tensors" (import_compressed_tensors.cpp)
};

QuantizedWeight import_compressed_tensors(const TensorSource& source, std::string_view module, const CtScheme& scheme);

// The compressed-tensors scheme that covers a module: the first config group one of whose targets
// matches it (CtTarget::matches). Error(format) when none does or when `ignore` lists the module.
// Compiles nothing: the targets were compiled with the config.
const CtScheme& ct_scheme_for(const CompressedTensorsConfig& config, std::string_view module);

}  // namespace w4a16::io
