// A Hugging Face checkpoint directory, read-only: config.json (with its quantization_config) and
// the weights, either one `model.safetensors` or shards listed by `model.safetensors.index.json`
// (`weight_map`: tensor name -> shard file name). The index is checked before any tensor is
// trusted: shard names are plain file names inside the directory (no '/', '\', '..'), every
// listed shard exists and holds the tensors mapped to it, and no tensor lives in two shards.
//
// Then, per quantized module, the importer of the checkpoint's format (import_registry.hpp: GPTQ,
// AWQ GEMM, compressed-tensors pack-quantized) turns it into a QuantizedWeight, bit-exact:
//
//   const HfCheckpoint ckpt = HfCheckpoint::open(dir);
//   for (const std::string& module : quantized_modules(ckpt)) {
//     QuantizedWeight w = import_module(ckpt, module);  // + the module's bias
//     ...
//   }
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/quant_config.hpp"
#include "io/tensor_source.hpp"

namespace w4a16::io {

class HfCheckpoint : public TensorSource {
 public:
  // Error(io) when the directory, config.json or a weights file cannot be read; Error(format) for
  // malformed JSON, a lying or unsafe index, a malformed shard; Error(unsupported) for a
  // quantization_config w4a16 cannot import (naming the variant).
  static HfCheckpoint open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  // nullopt when config.json has no quantization_config (an unquantized model).
  const std::optional<QuantConfig>& quant_config() const { return quant_config_; }
  // The shard files in use, in the order they were opened ("model.safetensors" when unsharded).
  const std::vector<std::string>& shard_names() const { return shard_names_; }
  // The shard (a name from shard_names()) holding a tensor; "" when absent.
  std::string_view shard_of(std::string_view tensor) const;

  const TensorView* find(std::string_view name) const override { return tensors_.find(name); }
  std::vector<std::string> names() const override { return tensors_.names(); }

  HfCheckpoint(HfCheckpoint&&) noexcept;
  HfCheckpoint& operator=(HfCheckpoint&&) noexcept;
  ~HfCheckpoint() override;

 private:
  HfCheckpoint() = default;
  std::filesystem::path dir_;
  std::optional<QuantConfig> quant_config_;
  std::vector<std::string> shard_names_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;    // heap-held: views point into them
  std::map<std::string, size_t, std::less<>> shard_index_;  // tensor -> position in shards_
  TensorMap tensors_;
};

// --- module by module, for any TensorSource --------------------------------------------------------

// The modules stored quantized, sorted: every m with a tensor named m + the first of its format's
// tensor suffixes (GPTQ / AWQ: `m.qweight`; compressed-tensors: `m.weight_packed`), each checked
// by the format's check_module when it has one (compressed-tensors: a scheme whose targets match
// it, and not in `ignore`, see ct_scheme_for; Error(format) otherwise).
std::vector<std::string> quantized_modules(const QuantConfig& config, const TensorSource& source);

// One module (given as `m` or `m.weight`) as a QuantizedWeight with its bias, by its format's
// importer. `warnings` (optional) collects lines about values read a documented but questionable
// way (GPTQ v1 zeros of 16).
QuantizedWeight import_module(const QuantConfig& config, const TensorSource& source, std::string_view module,
                              std::vector<std::string>* warnings = nullptr);

// The same over a checkpoint; Error(unsupported) when it has no quantization_config.
std::vector<std::string> quantized_modules(const HfCheckpoint& checkpoint);
QuantizedWeight import_module(const HfCheckpoint& checkpoint, std::string_view module,
                              std::vector<std::string>* warnings = nullptr);

}  // namespace w4a16::io
