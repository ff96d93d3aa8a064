// One way to spell an enum: a table of (value, name) rows, printed and parsed by the same two
// functions, so that a name and its error message can never drift apart. A value may have several
// rows (accepted aliases, e.g. "f16" beside "fp16"); the first row of a value is its canonical
// name, the one printed and listed in errors.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "common/check.hpp"

namespace w4a16 {

template <class E>
struct Named {
  E value;
  std::string_view name;
};

// The canonical name of `value`; "?" for a value the table lacks (an out-of-range cast).
template <class E, size_t N>
constexpr std::string_view name_of(const std::array<Named<E>, N>& table, E value) {
  for (const auto& row : table) {
    if (row.value == value) return row.name;
  }
  return "?";
}

// "a, b or c": the canonical names, for messages.
template <class E, size_t N>
std::string names_of(const std::array<Named<E>, N>& table) {
  std::string out;
  size_t listed = 0, canonical = 0;
  for (size_t i = 0; i < N; ++i) canonical += name_of(table, table[i].value) == table[i].name;
  for (size_t i = 0; i < N; ++i) {
    if (name_of(table, table[i].value) != table[i].name) continue;  // an alias
    out += listed == 0 ? "" : (listed + 1 == canonical ? " or " : ", ");
    out += table[i].name;
    ++listed;
  }
  return out;
}

// The value spelled `name`; Error(invalid_argument) "unknown <what> '<name>' (expected ...)".
template <class E, size_t N>
E parse_name(const std::array<Named<E>, N>& table, std::string_view name, std::string_view what) {
  for (const auto& row : table) {
    if (row.name == name) return row.value;
  }
  fail(ErrorCode::invalid_argument, "unknown {} '{}' (expected {})", what, name, names_of(table));
}

}  // namespace w4a16
