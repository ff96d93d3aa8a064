// The `quantization_config` of a Hugging Face config.json, for the three int4 weight formats
// w4a16 imports (docs/formats.md, "Checkpoint import"): GPTQ (v1 and v2 zeros, act-order), AWQ
// in its GEMM layout, and compressed-tensors `pack-quantized`. Everything else is refused with
// Error(unsupported) naming the variant (3- or 8-bit, EXL2, AWQ gemv/gemv_fast/marlin, ...);
// malformed JSON, missing fields and wrong JSON types are Error(format).
//
// The JSON is read bounded: at most kMaxConfigBytes of text and kMaxConfigDepth of nesting, so
// hostile input costs a small multiple of its size and never a deep recursion.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace w4a16::io {

inline constexpr size_t kMaxConfigBytes = 16u << 20;  // config.json and model.safetensors.index.json
inline constexpr size_t kMaxConfigDepth = 64;         // nesting of objects and arrays

// Parses JSON text with the bounds above; Error(format) naming `source` otherwise.
nlohmann::json parse_bounded_json(std::string_view text, std::string_view source);

// AutoGPTQ / GPTQModel. Tensors per module: qweight, qzeros, scales, [g_idx], [bias].
struct GptqConfig {
  int64_t group_size = 128;  // -1: per channel (g = K)
  bool sym = true;
  bool desc_act = false;  // act-order: g_idx is not k / g
  bool v2 = false;        // checkpoint_format (or format) "gptq_v2": zeros stored as is; v1 stores z - 1
};

// AutoAWQ, version "gemm" only. Tensors per module: qweight, qzeros, scales, [bias].
struct AwqConfig {
  int64_t group_size = 128;  // -1: per channel
  bool zero_point = true;
};

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
};

using QuantConfig = std::variant<GptqConfig, AwqConfig, CompressedTensorsConfig>;

std::string_view quant_method(const QuantConfig& config);  // "gptq", "awq", "compressed-tensors"
std::string describe(const QuantConfig& config);           // one line: method, group size, zeros, ...

// Reads `quantization_config` from the text of a whole config.json; nullopt when the model is not
// quantized (no such key, or null). `source` names the file in error messages.
std::optional<QuantConfig> parse_quant_config(std::string_view config_json, std::string_view source = "config.json");

// The same for the value of quantization_config itself (an object).
QuantConfig parse_quantization_config(const nlohmann::json& quantization_config, std::string_view source);

}  // namespace w4a16::io
