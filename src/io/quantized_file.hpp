// The on-disk w4a16 layout inside safetensors (specified in docs/formats.md):
//   <module>.w4a16.codes   U8   [N, ceil(K/2)]   two codes per byte, low nibble = even k
//   <module>.w4a16.scales  F16|BF16|F32 [N, ceil(K/g)]
//   <module>.w4a16.zeros   asym: U8 [N, ceil(K/g)]; float: scale dtype [N, ceil(K/g)]
//   <module>.w4a16.perm    I32  [K]              act-order only
//   <module>.bias          F16|BF16|F32 [N]      optional
//   __metadata__["<module>.w4a16"] = JSON string with the per-layer settings.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::io {

inline constexpr int kFormatVersion = 1;

// What a layer's tensors and metadata depend on, known before its data exists.
struct LayerDescription {
  QuantizedLayout layout;
  bool act_order = false;
  std::optional<DType> bias_dtype;  // nullopt: no bias
};
LayerDescription describe(const QuantizedWeight& weight);

// Adds the tensors and metadata of one layer. The writer keeps pointers into `weight`, which
// must outlive the write.
void add_quantized(SafetensorsWriter& writer, std::string_view layer, const QuantizedWeight& weight);

// The same, with the weight made by `make` while the file is written (when its first tensor is
// due) and dropped after its last tensor: a converter holds one layer at a time. `make` must
// return a weight matching `description` (else Error(internal)).
void add_quantized_lazy(SafetensorsWriter& writer, std::string_view layer, const LayerDescription& description,
                        std::function<QuantizedWeight()> make);

// Reads one layer (and `<module>.bias` when present), cross-checking tensors against the
// metadata; throws Error(format) on any mismatch and names the layer.
QuantizedWeight read_quantized(const SafetensorsFile& file, std::string_view layer);

// Checks every quantized layer the writer declares (a `<module>.w4a16` metadata key) by the rules
// read_quantized applies to a file: metadata, tensor names, dtypes and shapes, `<module>.bias`
// included. Throws Error(format) naming the layer. convert() calls it before writing, so that it
// never writes a file that load refuses.
void check_quantized_layers(const SafetensorsWriter& writer);

// Module names of the quantized layers in the file, in the order of their codes tensors.
std::vector<std::string> quantized_modules(const SafetensorsFile& file);

}  // namespace w4a16::io
