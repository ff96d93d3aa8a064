// What one import format provides: a Hugging Face checkpoint format, named by the `quant_method` of
// config.json's quantization_config, from its config to QuantizedWeights. Each format defines its
// config struct `C` with a static member `format` of type ImportFormat<C> (the entry) and is one
// alternative of QuantConfig in import_registry.hpp, the list of formats; the entry is what every
// caller reaches the format through (docs/architecture.md, "Adding an import format").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/tensor_source.hpp"

namespace w4a16::io {

class ConfigFields;

template <class Config>
struct ImportFormat {
  // config.json's quant_method, also the name convert reports and writes as w4a16.source.
  std::string_view name;
  // The fields of quantization_config (quant_method already matched) -> the format's config;
  // Error(unsupported) naming a variant the format does not read, Error(format) for a malformed one.
  Config (*parse)(const ConfigFields& fields);
  // Every tensor of one module m that the format's packed form occupies, as ".suffix" after m,
  // bias included; convert writes the w4a16 layer in their place. The first one marks m as a
  // quantized module (".qweight" for GPTQ).
  std::span<const std::string_view> tensor_suffixes;
  // Module m's tensors -> a QuantizedWeight, bit-exact. `warnings` (may be null) collects lines
  // about values read a documented but questionable way.
  QuantizedWeight (*import)(const TensorSource& source, std::string_view module, const Config& config,
                            std::vector<std::string>* warnings);
  // One line: method, group size, zeros, ... (`w4a16 convert` and error messages print it).
  std::string (*describe)(const Config& config);
  // Optional (nullptr: every marked module is imported): Error(format) when the config does not
  // cover module m, checked for every module before any is imported.
  void (*check_module)(const Config& config, std::string_view module) = nullptr;
};

// "g=128", or "per-channel" for a group size <= 0 (-1 in GPTQ / AWQ, 0 in compressed-tensors).
inline std::string group_size_text(int64_t group_size) {
  return group_size <= 0 ? std::string("per-channel") : "g=" + std::to_string(group_size);
}

}  // namespace w4a16::io
