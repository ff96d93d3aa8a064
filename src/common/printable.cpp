// printable(): see printable.hpp for what is escaped and why.
#include "common/printable.hpp"

#include <cstdint>
#include <cstdio>

namespace w4a16 {

namespace {

// Length of the valid UTF-8 sequence starting at text[i] and its code point, or 0 when the bytes
// there are not one (RFC 3629: shortest form only, no surrogates, nothing above U+10FFFF).
size_t utf8_sequence(std::string_view text, size_t i, uint32_t& code_point) {
  const auto byte = [&](size_t j) { return uint8_t(text[j]); };
  const uint8_t lead = byte(i);
  size_t length = 0;
  uint32_t min = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, min = 0x80, code_point = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, min = 0x800, code_point = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, min = 0x10000, code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t j = i + 1; j < i + length; ++j) {
    if ((byte(j) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(j) & 0x3F);
  }
  if (code_point < min || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) return 0;
  return length;
}

bool is_format_control(uint32_t c) {
  return (c >= 0x80 && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0x2028 ||
         c == 0x2029 || c == 0xFEFF;
}

void append_hex_byte(std::string& out, uint8_t b) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "\\x%02X", unsigned(b));
  out += buffer;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    uint32_t code_point = 0;
    const size_t length = uint8_t(text[i]) < 0x80 ? 1 : utf8_sequence(text, i, code_point);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t b = uint8_t(text[i]);
    if (b >= 0x20 && b < 0x7F) {
      out += char(b);
      ++i;
    } else if (b == '\n') {
      out += "\\n", ++i;
    } else if (b == '\r') {
      out += "\\r", ++i;
    } else if (b == '\t') {
      out += "\\t", ++i;
    } else if (b < 0x80) {
      append_hex_byte(out, b), ++i;
    } else {
      uint32_t code_point = 0;
      const size_t length = utf8_sequence(text, i, code_point);
      if (length == 0) {
        append_hex_byte(out, b), ++i;
      } else if (is_format_control(code_point)) {
        char buffer[16];
        std::snprintf(buffer, sizeof buffer, "\\u{%04X}", unsigned(code_point));
        out += buffer;
        i += length;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
    }
  }
  return out;
}

}  // namespace w4a16
