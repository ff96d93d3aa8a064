// Field access for the quantization_config parsers (config_fields.hpp).
#include "io/config_fields.hpp"

#include <cctype>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/check.hpp"

namespace w4a16::io {

using nlohmann::json;

const json* ConfigFields::get(std::string_view key) const {
  const auto it = object_.find(key);
  return (it == object_.end() || it->is_null()) ? nullptr : &*it;
}

const json* ConfigFields::get_any(std::initializer_list<std::string_view> keys, std::string_view& found) const {
  for (const std::string_view key : keys) {
    if (const json* v = get(key)) {
      found = key;
      return v;
    }
  }
  found = *keys.begin();
  return nullptr;
}

int64_t ConfigFields::integer(std::initializer_list<std::string_view> keys, int64_t lo, int64_t hi) const {
  std::string_view key;
  const json* v = get_any(keys, key);
  if (v == nullptr) fail(ErrorCode::format, "{}: missing field '{}'", source_, key);
  return integer_value(*v, key, lo, hi);
}

int64_t ConfigFields::integer_value(const json& v, std::string_view key, int64_t lo, int64_t hi) const {
  if (!v.is_number_integer()) fail(ErrorCode::format, "{}: '{}' must be an integer, not {}", source_, key, v.dump());
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
    fail(ErrorCode::format, "{}: '{}' = {} is out of range", source_, key, v.dump());
  }
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) fail(ErrorCode::format, "{}: '{}' = {} is outside [{}, {}]", source_, key, x, lo, hi);
  return x;
}

bool ConfigFields::boolean(std::string_view key, bool fallback) const {
  const json* v = get(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) fail(ErrorCode::format, "{}: '{}' must be true or false, not {}", source_, key, v->dump());
  return v->get<bool>();
}

std::optional<std::string> ConfigFields::string(std::initializer_list<std::string_view> keys) const {
  std::string_view key;
  const json* v = get_any(keys, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) fail(ErrorCode::format, "{}: '{}' must be a string, not {}", source_, key, v->dump());
  return v->get<std::string>();
}

std::vector<std::string> ConfigFields::strings(std::string_view key) const {
  std::vector<std::string> out;
  const json* v = get(key);
  if (v == nullptr) return out;
  if (!v->is_array()) fail(ErrorCode::format, "{}: '{}' must be a list of strings", source_, key);
  for (const json& e : *v) {
    if (!e.is_string()) fail(ErrorCode::format, "{}: '{}' must be a list of strings, holds {}", source_, key, e.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void require_4_bits(int64_t bits, std::string_view method, const std::string& source) {
  if (bits != 4)
    fail(ErrorCode::unsupported, "{}: {}-bit {} is not supported (w4a16 imports 4-bit weights only)", source, bits,
         method);
}

int64_t group_size_field(const ConfigFields& f, std::initializer_list<std::string_view> keys) {
  const int64_t g = f.integer(keys, -1, kMaxGroupSize);
  if (g == 0) fail(ErrorCode::format, "{}: group_size 0 (use -1 for per-channel)", f.source());
  return g;
}

}  // namespace w4a16::io
