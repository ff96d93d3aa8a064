// Module-name patterns: the regular expressions of compressed-tensors' "re:<regex>" targets,
// compiled once and matched as Python's `re.match(pattern, name)` answers (anchored at the start
// of the name, not at its end), in time linear in the name and with bounded stack.
//
// Why not std::regex: it backtracks, recursing once per character (`.*q_proj$` against a
// 50,000-character name overflows the stack) and trying every way to split the name among nested
// loops (`(a*)*$` against 21 characters runs for minutes). Here a pattern is compiled to a
// Thompson NFA program and run as a Pike VM: every live NFA state advances one character at a
// time, each state at most once per position, so matching costs O(name length x program size)
// and never recurses. A boolean match needs no capture groups and no priorities, so greedy and lazy
// quantifiers give the same answer.
//
// The subset (what compressed-tensors configs use, and what Python's `re` means by it):
//   literals, `.` (any character but '\n'), `[...]` / `[^...]` with ranges and escapes,
//   `\d \w \s \D \W \S` (ASCII, as re.ASCII), `\.` and other escaped punctuation,
//   `\a \f \n \r \t \v \xhh`, groups `(...)`, `(?:...)`, `(?P<name>...)`, alternation `|`,
//   `* + ? {m} {m,} {,n} {m,n}` and their lazy `?` forms, anchors `^ \A` (start), `$` (end, or
//   before a final '\n' as in Python), `\Z` (end), `\b \B` (ASCII word boundary).
// Refused with Error(format) naming the construct: backreferences, lookaround, atomic groups,
// possessive quantifiers, conditionals, comments, inline flags, octal and \u \U \N escapes.
// Text is read as UTF-8 code points (a byte that is not valid UTF-8 is a character of its own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace w4a16::io {

class ModulePattern {
 public:
  static constexpr size_t kMaxPatternBytes = 1024;  // a compressed-tensors target is a few dozen
  static constexpr size_t kMaxNameBytes = 65536;    // a module name is a few dozen
  static constexpr int kMaxNesting = 256;           // groups inside groups: bounds the parser's recursion
  static constexpr size_t kMaxProgramSize = 4096;   // NFA instructions after expanding {m,n}

  // Error(format) for a pattern that is invalid (as Python's re.compile would refuse it), uses a
  // construct outside the subset above, or exceeds a limit; the message names the pattern and the
  // construct or limit.
  static ModulePattern compile(std::string_view pattern);

  // Python's `re.match(pattern, name) is not None`. Error(format) for a name longer than
  // kMaxNameBytes. Thread-safe: the program is read-only, the thread lists are local.
  bool matches(std::string_view name) const;

  const std::string& pattern() const { return pattern_; }
  size_t program_size() const { return program_.size(); }

  // Patterns compiled in this process (successfully or not): tests use it to check that matching
  // compiles nothing.
  static uint64_t compile_count();

  enum class Op : uint8_t {
    kChar,    // consume the code point a
    kAny,     // consume any code point but '\n'
    kClass,   // consume a code point inside classes_[a]
    kSplit,   // continue at a and at b
    kJump,    // continue at a
    kAssert,  // continue at pc + 1 if Anchor(a) holds at this position
    kMatch,   // the pattern matched
  };
  enum class Anchor : uint32_t { kBegin, kEndOrFinalNewline, kEnd, kWordBoundary, kNotWordBoundary };
  struct Inst {
    Op op;
    uint32_t a = 0;
    uint32_t b = 0;
  };
  using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;  // sorted, disjoint, inclusive code point ranges

 private:
  std::string pattern_;
  std::vector<Inst> program_;    // starts at 0, ends with kMatch
  std::vector<Ranges> classes_;  // the sets kClass refers to
};

}  // namespace w4a16::io
