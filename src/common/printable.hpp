// Text that came from outside (names and strings read from a file, paths a user typed) made safe
// to print on one terminal line.
//
// A file can name a tensor "a\n w4a16: error: forged" or "\x1b]0;title\x07"; printed raw, the
// first forges a second error line and the second drives the terminal. printable() keeps valid,
// printable UTF-8 as it is and writes everything else as a visible escape:
//   - ASCII controls (0x00-0x1F, 0x7F): \n, \r, \t, else \xNN;
//   - bytes that are not part of valid UTF-8 (stray continuation, overlong, surrogate, > U+10FFFF,
//     truncated sequence): \xNN per byte;
//   - C1 controls U+0080-U+009F (8-bit CSI/OSC), the bidirectional overrides and isolates
//     (U+202A-U+202E, U+2066-U+2069: "Trojan Source" reordering), U+2028/U+2029 (line and
//     paragraph separators) and U+FEFF: \u{XXXX}.
// A backslash is kept as it is, so printable(printable(s)) == printable(s).
#pragma once

#include <string>
#include <string_view>

namespace w4a16 {

std::string printable(std::string_view text);

// Whether `text` is valid UTF-8 (RFC 3629, as printable() judges it): what a JSON string, and so a
// safetensors tensor name or metadata key, must be.
bool is_valid_utf8(std::string_view text);

}  // namespace w4a16
