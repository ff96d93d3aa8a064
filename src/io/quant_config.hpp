// The `quantization_config` of a Hugging Face config.json, for the int4 weight formats w4a16
// imports (docs/formats.md, "Checkpoint import"; the list is import_registry.hpp): GPTQ (v1 and
// v2 zeros, act-order), AWQ in its GEMM layout, and compressed-tensors `pack-quantized`.
// quant_method picks the format, whose entry parses the rest. Everything else is refused with
// Error(unsupported) naming the variant (3- or 8-bit, EXL2, AWQ gemv/gemv_fast/marlin, ...);
// malformed JSON, missing fields and wrong JSON types are Error(format).
//
// The JSON is read bounded: at most kMaxConfigBytes of text and kMaxConfigDepth of nesting, so
// hostile input costs a small multiple of its size and never a deep recursion.
#pragma once

#include <cstddef>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "io/import_registry.hpp"

namespace w4a16::io {

inline constexpr size_t kMaxConfigBytes = 16u << 20;  // config.json and model.safetensors.index.json
inline constexpr size_t kMaxConfigDepth = 64;         // nesting of objects and arrays

// Parses JSON text with the bounds above; Error(format) naming `source` otherwise.
nlohmann::json parse_bounded_json(std::string_view text, std::string_view source);

// The entry's facts for a parsed config (import_format.hpp).
std::string_view quant_method(const QuantConfig& config);  // "gptq", "awq", "compressed-tensors"
std::string describe(const QuantConfig& config);           // one line: method, group size, zeros, ...
std::span<const std::string_view> tensor_suffixes(const QuantConfig& config);  // [0] marks a module

// Reads `quantization_config` from the text of a whole config.json; nullopt when the model is not
// quantized (no such key, or null). `source` names the file in error messages.
std::optional<QuantConfig> parse_quant_config(std::string_view config_json, std::string_view source = "config.json");

// The same for the value of quantization_config itself (an object).
QuantConfig parse_quantization_config(const nlohmann::json& quantization_config, std::string_view source);

}  // namespace w4a16::io
