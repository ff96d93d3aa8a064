// Checks of option values, run on the text before CLI11 converts it.
//
// CLI11's own validators (PositiveNumber, Range) print their bounds as 300-digit doubles, and
// CLI11 2.1 converts integers with strtoll, which turns 99999999999999999999 into INT64_MAX
// without an error. These accept decimal integers that fit their range and nothing else, and
// return short messages; CLI11 reports a message as "<option>: <message>", and main() prints it
// as a usage error (exit status 2, docs/cli.md).
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/printable.hpp"

namespace w4a16::cli {

// Misuse of the command line found after parsing, such as sizes that are each valid but whose
// product is too large: reported like a parse error, with exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A value as quoted in a message: printable (it is whatever was typed) and cut short, so that a
// pasted megabyte does not become a megabyte-long error line.
inline std::string shown(std::string_view text) {
  constexpr size_t kMax = 40;
  if (text.size() <= kMax) return "'" + printable(text) + "'";
  return "'" + printable(text.substr(0, kMax)) + "...'";
}

// The whole text as a decimal int64, or nullopt (empty, other characters, or out of range).
inline std::optional<int64_t> parse_int64(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

// "a,b,,c" -> {"a", "b", "", "c"}.
inline std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

inline bool is_positive_integer(std::string_view text) {
  const auto value = parse_int64(text);
  return value && *value > 0;
}

// An integer in [min, max].
inline CLI::Validator integer_in(int64_t min, int64_t max) {
  std::string what, type;
  if (min == 1 && max == std::numeric_limits<int64_t>::max()) {
    what = "a positive integer", type = "POSITIVE";
  } else if (min == 0 && max == std::numeric_limits<int64_t>::max()) {
    what = "a non-negative integer", type = "NONNEGATIVE";
  } else {
    what = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    type = "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
  }
  return CLI::Validator(
      [min, max, what](std::string& input) -> std::string {
        const auto value = parse_int64(input);
        if (!value || *value < min || *value > max) return "must be " + what + ", got " + shown(input);
        return {};
      },
      type);
}
inline CLI::Validator positive_integer() { return integer_in(1, std::numeric_limits<int64_t>::max()); }
inline CLI::Validator non_negative_integer() { return integer_in(0, std::numeric_limits<int64_t>::max()); }

// A comma-separated list of positive integers ("1,4,16"); an empty item ("1,,2", "4,") is refused.
inline CLI::Validator positive_integer_list() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        for (const std::string_view item : split(input, ',')) {
          if (item.empty()) return "must be a list of positive integers, got an empty item in " + shown(input);
          if (!is_positive_integer(item)) return "must be a list of positive integers, got " + shown(item);
        }
        return {};
      },
      "INT,INT,...");
}

// A finite number of seconds in (0, max].
inline CLI::Validator positive_seconds(double max) {
  return CLI::Validator(
      [max](std::string& input) -> std::string {
        double value = 0;
        const char* end = input.data() + input.size();
        const auto [ptr, ec] = std::from_chars(input.data(), end, value);
        if (ec != std::errc() || ptr != end || input.empty() || !std::isfinite(value) || value <= 0 || value > max) {
          return "must be a number of seconds in (0, " + std::to_string(int64_t(max)) + "], got " + shown(input);
        }
        return {};
      },
      "SECONDS");
}

}  // namespace w4a16::cli
