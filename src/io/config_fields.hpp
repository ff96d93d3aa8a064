// Reading a JSON object of a quantization_config field by field, for the import formats' config
// parsers (import_format.hpp): every error names the config (`source`, e.g. "config.json:
// quantization_config") and the key, with Error(format) for a missing field or a wrong JSON type
// and Error(unsupported) where a format refuses a value it recognizes (require_4_bits).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace w4a16::io {

inline constexpr int64_t kMaxGroupSize = int64_t(1) << 31;

class ConfigFields {
 public:
  ConfigFields(const nlohmann::json& object, std::string source) : object_(object), source_(std::move(source)) {}

  // nullptr when the key is absent or null.
  const nlohmann::json* get(std::string_view key) const;
  // The first of several spellings present (AutoAWQ writes w_bit where transformers writes bits);
  // `found` is that key, or the first spelling when none is present.
  const nlohmann::json* get_any(std::initializer_list<std::string_view> keys, std::string_view& found) const;
  // A required integer in [lo, hi].
  int64_t integer(std::initializer_list<std::string_view> keys, int64_t lo, int64_t hi) const;
  int64_t integer_value(const nlohmann::json& v, std::string_view key, int64_t lo, int64_t hi) const;
  bool boolean(std::string_view key, bool fallback) const;
  std::optional<std::string> string(std::initializer_list<std::string_view> keys) const;
  std::vector<std::string> strings(std::string_view key) const;  // {} when absent
  const std::string& source() const { return source_; }

 private:
  const nlohmann::json& object_;
  std::string source_;
};

std::string lower(std::string s);  // ASCII lower case: "GEMM" and "gemm" name the same version

// Error(unsupported) "<source>: <bits>-bit <method> is not supported (...)" unless bits == 4.
void require_4_bits(int64_t bits, std::string_view method, const std::string& source);

// group_size (under one of `keys`): -1 (per channel) or 1..kMaxGroupSize; 0 is Error(format).
int64_t group_size_field(const ConfigFields& f, std::initializer_list<std::string_view> keys);

}  // namespace w4a16::io
