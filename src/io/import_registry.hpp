// The registry of import formats: the Hugging Face checkpoint formats w4a16 reads, one line each
// (its header below and its config struct in QuantConfig). Everything else reaches a format through
// its entry (import_format.hpp), by std::visit over a QuantConfig or for_each_import_format, so a
// format without an entry, or an entry without a field, fails to compile rather than at run time.
#pragma once

#include <cstddef>
#include <utility>
#include <variant>

#include "io/import_awq.hpp"
#include "io/import_compressed_tensors.hpp"
#include "io/import_gptq.hpp"

namespace w4a16::io {

using QuantConfig = std::variant<GptqConfig, AwqConfig, CompressedTensorsConfig>;

inline constexpr size_t kImportFormatCount = std::variant_size_v<QuantConfig>;

// The entry of the format a config belongs to.
template <class Config>
const ImportFormat<Config>& format_of(const Config& /*config*/) {
  return Config::format;
}

// Calls visit(entry) for every format, in registry order.
template <class Visit>
void for_each_import_format(Visit&& visit) {
  [&]<size_t... I>(std::index_sequence<I...>) { (visit(std::variant_alternative_t<I, QuantConfig>::format), ...); }
  (std::make_index_sequence<kImportFormatCount>());
}

}  // namespace w4a16::io
