// quantization_config: bounded JSON, then quant_method picks the format whose entry parses the
// rest (each format's fields and refusals are in its import_<format>.cpp; the accepted keys and
// values are listed in docs/formats.md, "Checkpoint import").
#include "io/quant_config.hpp"

#include <array>
#include <nlohmann/json.hpp>

#include "common/check.hpp"
#include "common/name_table.hpp"
#include "io/config_fields.hpp"

namespace w4a16::io {

using nlohmann::json;

nlohmann::json parse_bounded_json(std::string_view text, std::string_view source) {
  if (text.size() > kMaxConfigBytes) {
    fail(ErrorCode::format, "{}: {} bytes of JSON (the limit is {})", source, text.size(), kMaxConfigBytes);
  }
  // Nesting depth, counted outside strings, before any parser sees the text.
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxConfigDepth) fail(ErrorCode::format, "{}: JSON nested deeper than {}", source, kMaxConfigDepth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  try {
    return json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    fail(ErrorCode::format, "{}: invalid JSON: {}", source, e.what());
  }
}

namespace {

// A quant_method no format reads but whose refusal can say why.
constexpr std::string_view kExl2 = "exl2";

// The format named `method`, parsed by its entry; nullopt when no format has that name.
std::optional<QuantConfig> parse_by_method(std::string_view method, const ConfigFields& fields) {
  std::optional<QuantConfig> config;
  for_each_import_format([&](const auto& format) {
    if (!config && format.name == method) config.emplace(format.parse(fields));
  });
  return config;
}

// "gptq, awq or compressed-tensors": the formats' names in registry order.
std::string format_names() {
  std::array<Named<size_t>, kImportFormatCount> rows{};
  size_t i = 0;
  for_each_import_format([&](const auto& format) {
    rows[i] = {i, format.name};
    ++i;
  });
  return names_of(rows);
}

}  // namespace

QuantConfig parse_quantization_config(const json& q, std::string_view source) {
  const std::string where = fmt::format("{}: quantization_config", source);
  if (!q.is_object()) fail(ErrorCode::format, "{} must be an object, not {}", where, q.type_name());
  const ConfigFields f(q, where);
  const auto method = f.string({"quant_method"});
  if (!method) fail(ErrorCode::format, "{}: missing field 'quant_method'", where);
  if (auto config = parse_by_method(*method, f)) return std::move(*config);
  if (*method == kExl2) {
    fail(ErrorCode::unsupported, "{}: EXL2 (exllamav2) checkpoints are not supported (variable bit widths)", where);
  }
  fail(ErrorCode::unsupported, "{}: quant_method '{}' is not supported ({})", where, *method, format_names());
}

std::optional<QuantConfig> parse_quant_config(std::string_view config_json, std::string_view source) {
  const json config = parse_bounded_json(config_json, source);
  if (!config.is_object()) fail(ErrorCode::format, "{}: the top level must be an object", source);
  const auto it = config.find("quantization_config");
  if (it == config.end() || it->is_null()) return std::nullopt;
  return parse_quantization_config(*it, source);
}

std::string_view quant_method(const QuantConfig& config) {
  return std::visit([](const auto& c) { return format_of(c).name; }, config);
}

std::string describe(const QuantConfig& config) {
  return std::visit([](const auto& c) { return format_of(c).describe(c); }, config);
}

std::span<const std::string_view> tensor_suffixes(const QuantConfig& config) {
  return std::visit([](const auto& c) { return format_of(c).tensor_suffixes; }, config);
}

}  // namespace w4a16::io
