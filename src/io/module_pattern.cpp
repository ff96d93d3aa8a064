// Module-name patterns (module_pattern.hpp): a recursive-descent parser with an explicit nesting
// limit that builds a Thompson NFA program piece by piece, and a Pike VM that runs it.
//
// The program: instructions indexed from 0, ending with kMatch. A piece of program (a Fragment)
// addresses its own instructions from 0 and leaves through its end (index size()), so pieces
// concatenate by appending with their targets shifted. The constructions, for a piece e of n
// instructions:
//   e*   0: split 1, n+2 | 1..n: e | n+1: jump 0
//   e+   0..n-1: e       | n: split 0, n+1
//   e?   0: split 1, n+1 | 1..n: e
//   a|b  0: split 1, |a|+2 | a | jump |a|+|b|+2 | b
//   e{m,n} = e repeated m times, then n - m copies of e? (e{m,} ends with e+ instead).
#include "io/module_pattern.hpp"

#include <algorithm>
#include <atomic>
#include <optional>

#include "common/check.hpp"

namespace w4a16::io {

namespace {

using Inst = ModulePattern::Inst;
using Op = ModulePattern::Op;
using Anchor = ModulePattern::Anchor;
using Ranges = ModulePattern::Ranges;
using Fragment = std::vector<Inst>;  // targets relative to its start; size() is its exit

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kNoCodePoint = 0xFFFFFFFF;  // past the end of the pattern
constexpr uint32_t kUnbounded = 0xFFFFFFFF;    // the max of `*`, `+`, `{m,}`

std::atomic<uint64_t> g_compile_count{0};

// One UTF-8 code point at s[pos] and its length in bytes. A byte that does not start a valid
// sequence (truncated, overlong, a surrogate, above U+10FFFF) reads as the one character
// 0xDC00 + byte, as Python's surrogateescape decodes it: `.` and `[^...]` match it.
std::pair<uint32_t, size_t> decode_utf8(std::string_view s, size_t pos) {
  const uint32_t b0 = uint8_t(s[pos]);
  if (b0 < 0x80) return {b0, 1};
  const std::pair<uint32_t, size_t> invalid = {0xDC00 + b0, 1};
  size_t len = 0;
  uint32_t cp = 0, min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return invalid;
  }
  if (len > s.size() - pos) return invalid;
  for (size_t i = 1; i < len; ++i) {
    const uint32_t b = uint8_t(s[pos + i]);
    if ((b & 0xC0) != 0x80) return invalid;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) return invalid;
  return {cp, len};
}

bool is_word_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Whether a zero-width assertion holds between name[pos - 1] and name[pos].
bool anchor_holds(Anchor anchor, std::string_view name, size_t pos) {
  switch (anchor) {
    case Anchor::kBegin:
      return pos == 0;
    case Anchor::kEndOrFinalNewline:  // Python's `$` without MULTILINE
      return pos == name.size() || (pos + 1 == name.size() && name[pos] == '\n');
    case Anchor::kEnd:
      return pos == name.size();
    case Anchor::kWordBoundary:
    case Anchor::kNotWordBoundary: {
      const bool before = pos > 0 && is_word_byte(name[pos - 1]);
      const bool after = pos < name.size() && is_word_byte(name[pos]);
      if (anchor == Anchor::kWordBoundary) return before != after;
      return before == after && !name.empty();  // Python's \B never matches in an empty string
    }
  }
  return false;
}

// Sorted, with overlapping and adjacent ranges merged.
Ranges normalized(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& [lo, hi] : r) {
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.emplace_back(lo, hi);
    }
  }
  return out;
}

// Every code point up to kMaxCodePoint that a normalized r does not hold.
Ranges complement(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : r) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
  return out;
}

bool contains(const Ranges& r, uint32_t cp) {
  auto it = std::upper_bound(r.begin(), r.end(), cp, [](uint32_t c, const auto& range) { return c < range.first; });
  return it != r.begin() && cp <= std::prev(it)->second;
}

// ASCII classes, as Python's re.ASCII reads \d \w \s.
const Ranges kDigits = {{'0', '9'}};
const Ranges kWordChars = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
const Ranges kSpaces = {{'\t', '\r'}, {' ', ' '}};  // \t \n \v \f \r and the space

// At most 80 bytes of a pattern, for messages (a hostile one may be long).
std::string shown(std::string_view pattern) {
  if (pattern.size() <= 80) return std::string(pattern);
  return fmt::format("{}... ({} bytes)", pattern.substr(0, 80), pattern.size());
}

// Appends f to out, its targets shifted to where it lands.
void append(Fragment& out, const Fragment& f) {
  const auto offset = uint32_t(out.size());
  for (Inst inst : f) {
    if (inst.op == Op::kSplit || inst.op == Op::kJump) inst.a += offset;
    if (inst.op == Op::kSplit) inst.b += offset;
    out.push_back(inst);
  }
}

Fragment star(const Fragment& e) {
  const auto n = uint32_t(e.size());
  Fragment out = {{Op::kSplit, 1, n + 2}};
  append(out, e);
  out.push_back({Op::kJump, 0});
  return out;
}

Fragment plus(const Fragment& e) {
  Fragment out = e;
  out.push_back({Op::kSplit, 0, uint32_t(e.size()) + 1});
  return out;
}

Fragment quest(const Fragment& e) {
  Fragment out = {{Op::kSplit, 1, uint32_t(e.size()) + 1}};
  append(out, e);
  return out;
}

Fragment either(const Fragment& a, const Fragment& b) {
  const auto na = uint32_t(a.size()), nb = uint32_t(b.size());
  Fragment out = {{Op::kSplit, 1, na + 2}};
  append(out, a);
  out.push_back({Op::kJump, na + nb + 2});
  append(out, b);
  return out;
}

// What one escape sequence stands for.
struct Escape {
  enum class Kind { kChar, kSet, kAnchor } kind = Kind::kChar;
  uint32_t cp = 0;
  Ranges set;
  Anchor anchor = Anchor::kBegin;
};

class Parser {
 public:
  Parser(std::string_view pattern, std::vector<Ranges>& classes) : pattern_(pattern), classes_(classes) {
    for (size_t pos = 0; pos < pattern.size();) {
      const auto [cp, len] = decode_utf8(pattern, pos);
      text_.push_back(cp);
      pos += len;
    }
  }

  Fragment parse() {
    Fragment program = alternation();
    if (!at_end()) invalid(pos_, "unbalanced parenthesis");  // only a ')' stops the top level early
    program.push_back({Op::kMatch});
    return program;
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  uint32_t peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : kNoCodePoint; }

  [[noreturn]] void invalid(size_t at, std::string_view what) const {
    fail(ErrorCode::format, "invalid regex '{}': {} at position {}", shown(pattern_), what, at);
  }
  [[noreturn]] void unsupported(size_t at, std::string_view what) const {
    fail(ErrorCode::format,
         "regex '{}': {} at position {} is not supported (module-name patterns: literals, '.', [...], "
         "\\d \\w \\s, groups, '|', * + ? {{m,n}}, ^ $ \\A \\Z \\b \\B)",
         shown(pattern_), what, at);
  }
  void check_size(size_t size, size_t at) const {
    if (size > ModulePattern::kMaxProgramSize) {
      fail(ErrorCode::format,
           "regex '{}': the program grows past the limit of {} NFA instructions (ModulePattern::kMaxProgramSize) "
           "at position {}; lower the {{m,n}} counts",
           shown(pattern_), ModulePattern::kMaxProgramSize, at);
    }
  }
  void append_checked(Fragment& out, const Fragment& f, size_t at) const {
    check_size(out.size() + f.size(), at);
    append(out, f);
  }

  Fragment alternation() {
    Fragment out = sequence();
    while (peek() == '|') {
      const size_t at = pos_++;
      const Fragment next = sequence();
      check_size(out.size() + next.size() + 2, at);
      out = either(out, next);
    }
    return out;
  }

  Fragment sequence() {
    Fragment out;
    while (!at_end() && peek() != '|' && peek() != ')') {
      const size_t at = pos_;
      bool repeatable = true;
      Fragment item = atom(repeatable);
      const size_t quantifier_at = pos_;
      if (const auto q = quantifier()) {
        if (!repeatable) invalid(quantifier_at, "nothing to repeat");
        if (peek() == '?') {
          ++pos_;  // lazy: a boolean match has the same answer
        } else if (peek() == '+') {
          unsupported(pos_, "a possessive quantifier");
        }
        item = repeat(item, q->first, q->second, quantifier_at);
        const size_t again_at = pos_;
        if (quantifier()) invalid(again_at, "multiple repeat");
      }
      append_checked(out, item, at);
    }
    return out;
  }

  // A quantifier, consumed, as (min, max); nullopt (nothing consumed) when none is next. As
  // Python reads it, `{` starts a quantifier only as `{m}`, `{m,}`, `{,n}`, `{m,n}` or `{,}`.
  std::optional<std::pair<uint32_t, uint32_t>> quantifier() {
    switch (peek()) {
      case '*':
        ++pos_;
        return std::pair{0u, kUnbounded};
      case '+':
        ++pos_;
        return std::pair{1u, kUnbounded};
      case '?':
        ++pos_;
        return std::pair{0u, 1u};
      case '{':
        break;
      default:
        return std::nullopt;
    }
    const size_t start = pos_++;
    const auto number = [&]() -> std::optional<uint32_t> {
      if (peek() < '0' || peek() > '9') return std::nullopt;
      uint64_t value = 0;
      for (; peek() >= '0' && peek() <= '9'; ++pos_)
        value = std::min<uint64_t>(value * 10 + (peek() - '0'), kUnbounded - 1);
      return uint32_t(value);
    };
    const std::optional<uint32_t> lo = number();
    std::optional<uint32_t> hi = lo;
    bool comma = false;
    if (peek() == ',') {
      ++pos_, comma = true;
      hi = number();
    }
    if (peek() != '}' || (!lo && !comma)) {  // `{}`, `{x`, `{1,2`: a literal '{'
      pos_ = start;
      return std::nullopt;
    }
    ++pos_;
    const uint32_t min = lo.value_or(0), max = hi.value_or(kUnbounded);
    if (min > max) invalid(start, "min repeat greater than max repeat");
    return std::pair{min, max};
  }

  Fragment repeat(const Fragment& e, uint32_t min, uint32_t max, size_t at) const {
    // The size before building it, so that a huge count fails at once.
    const uint64_t copies = max == kUnbounded ? uint64_t(min) + 1 : max;
    check_size(size_t(std::min<uint64_t>(copies * (e.size() + 1) + 2, uint64_t(1) << 40)), at);
    Fragment out;
    if (max == kUnbounded) {
      if (min == 0) return star(e);
      for (uint32_t i = 1; i < min; ++i) append(out, e);
      append(out, plus(e));
      return out;
    }
    for (uint32_t i = 0; i < min; ++i) append(out, e);
    for (uint32_t i = min; i < max; ++i) append(out, quest(e));
    return out;
  }

  Fragment atom(bool& repeatable) {
    const size_t at = pos_;
    const uint32_t c = peek();
    switch (c) {
      case '(':
        return group();
      case '[':
        return char_class();
      case '.':
        ++pos_;
        return {{Op::kAny}};
      case '^':
      case '$':
        ++pos_;
        repeatable = false;
        return {{Op::kAssert, uint32_t(c == '^' ? Anchor::kBegin : Anchor::kEndOrFinalNewline)}};
      case '\\': {
        Escape e = escape(false);
        if (e.kind == Escape::Kind::kAnchor) {
          repeatable = false;
          return {{Op::kAssert, uint32_t(e.anchor)}};
        }
        if (e.kind == Escape::Kind::kSet) return class_fragment(std::move(e.set));
        return {{Op::kChar, e.cp}};
      }
      case '*':
      case '+':
      case '?':
        invalid(at, "nothing to repeat");
      case '{':
        if (quantifier()) invalid(at, "nothing to repeat");
        break;  // a literal '{'
      default:
        break;
    }
    ++pos_;
    return {{Op::kChar, c}};
  }

  Fragment class_fragment(Ranges set) {
    classes_.push_back(std::move(set));
    return {{Op::kClass, uint32_t(classes_.size() - 1)}};
  }

  Fragment group() {
    const size_t open = pos_++;
    if (peek() == '?') {
      ++pos_;
      const uint32_t c = peek();
      if (c == ':') {
        ++pos_;
      } else if (c == 'P' && peek(1) == '<') {  // a named group: a group here, nothing refers to it
        pos_ += 2;
        const size_t name_at = pos_;
        for (; peek() != '>'; ++pos_) {
          const uint32_t n = peek();
          const bool letter = (n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') || n == '_';
          if (at_end() || !(letter || (pos_ > name_at && n >= '0' && n <= '9'))) {
            invalid(name_at, "bad group name");
          }
        }
        if (pos_ == name_at) invalid(name_at, "missing group name");
        ++pos_;
      } else if (c == 'P' && peek(1) == '=') {
        unsupported(open, "the backreference (?P=name)");
      } else if (c == '=' || c == '!') {
        unsupported(open, c == '=' ? "the lookahead (?=...)" : "the negative lookahead (?!...)");
      } else if (c == '<' && (peek(1) == '=' || peek(1) == '!')) {
        unsupported(open, peek(1) == '=' ? "the lookbehind (?<=...)" : "the negative lookbehind (?<!...)");
      } else if (c == '>') {
        unsupported(open, "the atomic group (?>...)");
      } else if (c == '(') {
        unsupported(open, "the conditional group (?(...)...)");
      } else if (c == '#') {
        unsupported(open, "the comment (?#...)");
      } else if (c == '-' || (c < 0x80 && std::string_view("aiLmsux").find(char(c)) != std::string_view::npos)) {
        unsupported(open, "an inline flag group (?flags)");
      } else {
        invalid(open, "unknown extension after '(?'");
      }
    }
    if (++depth_ > ModulePattern::kMaxNesting) {
      fail(ErrorCode::format,
           "regex '{}': groups nested deeper than the limit of {} (ModulePattern::kMaxNesting) at position {}",
           shown(pattern_), ModulePattern::kMaxNesting, open);
    }
    Fragment inner = alternation();
    --depth_;
    if (peek() != ')') invalid(open, "missing ), unterminated subpattern");
    ++pos_;
    return inner;
  }

  Fragment char_class() {
    const size_t open = pos_++;
    const bool negate = peek() == '^';
    if (negate) ++pos_;
    Ranges set;
    for (bool first = true;; first = false) {
      if (at_end()) invalid(open, "unterminated character set");
      const size_t item_at = pos_;
      if (peek() == ']' && !first) {
        ++pos_;
        break;
      }
      // `-` makes a range unless it ends the set: `[a-]` holds 'a' and '-'.
      const auto range_follows = [&] { return peek() == '-' && peek(1) != ']' && peek(1) != kNoCodePoint; };
      uint32_t lo = 0;
      if (peek() == '\\') {
        Escape e = escape(true);
        if (e.kind == Escape::Kind::kSet) {
          if (range_follows()) invalid(item_at, "bad character range");
          set.insert(set.end(), e.set.begin(), e.set.end());
          continue;
        }
        lo = e.cp;
      } else {
        lo = text_[pos_++];
      }
      uint32_t hi = lo;
      if (range_follows()) {
        ++pos_;
        if (peek() == '\\') {
          const Escape e = escape(true);
          if (e.kind == Escape::Kind::kSet) invalid(item_at, "bad character range");
          hi = e.cp;
        } else {
          hi = text_[pos_++];
        }
        if (hi < lo) invalid(item_at, "bad character range");
      }
      set.emplace_back(lo, hi);
    }
    set = normalized(std::move(set));
    return class_fragment(negate ? complement(set) : set);
  }

  Escape escape(bool in_class) {
    const size_t at = pos_++;
    if (at_end()) invalid(at, "bad escape (end of pattern)");
    const uint32_t c = text_[pos_++];
    const auto set = [](const Ranges& r) { return Escape{.kind = Escape::Kind::kSet, .set = r}; };
    const auto code = [](uint32_t cp) { return Escape{.kind = Escape::Kind::kChar, .cp = cp}; };
    const auto anchor = [&](Anchor a) {
      if (in_class) invalid(at, "bad escape in a character set");
      return Escape{.kind = Escape::Kind::kAnchor, .anchor = a};
    };
    switch (c) {
      case 'd':
        return set(kDigits);
      case 'D':
        return set(complement(kDigits));
      case 'w':
        return set(kWordChars);
      case 'W':
        return set(complement(kWordChars));
      case 's':
        return set(kSpaces);
      case 'S':
        return set(complement(kSpaces));
      case 'a':
        return code('\a');
      case 'f':
        return code('\f');
      case 'n':
        return code('\n');
      case 'r':
        return code('\r');
      case 't':
        return code('\t');
      case 'v':
        return code('\v');
      case 'b':
        return in_class ? code('\b') : anchor(Anchor::kWordBoundary);
      case 'B':
        return anchor(Anchor::kNotWordBoundary);
      case 'A':
        return anchor(Anchor::kBegin);
      case 'Z':
        return anchor(Anchor::kEnd);
      case 'x': {
        uint32_t value = 0;
        for (int i = 0; i < 2; ++i, ++pos_) {
          const uint32_t h = peek();
          const int digit = h >= '0' && h <= '9'   ? int(h - '0')
                            : h >= 'a' && h <= 'f' ? int(h - 'a' + 10)
                            : h >= 'A' && h <= 'F' ? int(h - 'A' + 10)
                                                   : -1;
          if (digit < 0) invalid(at, "incomplete escape \\x");
          value = value * 16 + uint32_t(digit);
        }
        return code(value);
      }
      case 'u':
      case 'U':
      case 'N':
        unsupported(at, "the escape \\u, \\U or \\N");
      default:
        break;
    }
    if (c >= '0' && c <= '9') {
      unsupported(at, in_class || c == '0' ? "an octal escape" : "a backreference (\\1 ... \\99)");
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) invalid(at, "bad escape");
    return code(c);  // escaped punctuation, space or a non-ASCII character: itself
  }

  std::string_view pattern_;
  std::vector<uint32_t> text_;  // the pattern's code points; positions in messages index it
  size_t pos_ = 0;
  int depth_ = 0;  // groups open around pos_
  std::vector<Ranges>& classes_;
};

}  // namespace

ModulePattern ModulePattern::compile(std::string_view pattern) {
  g_compile_count.fetch_add(1, std::memory_order_relaxed);
  if (pattern.size() > kMaxPatternBytes) {
    fail(ErrorCode::format, "regex '{}' is longer than the limit of {} bytes (ModulePattern::kMaxPatternBytes)",
         shown(pattern), kMaxPatternBytes);
  }
  ModulePattern p;
  p.pattern_ = std::string(pattern);
  p.program_ = Parser(pattern, p.classes_).parse();
  return p;
}

uint64_t ModulePattern::compile_count() { return g_compile_count.load(std::memory_order_relaxed); }

// The Pike VM: `current` holds the program counters alive before the code point at pos (each once:
// `added` stamps a pc with the step that added it), every one of them that consumes that code
// point adds its successor to `next`, and following splits, jumps and assertions from a pc (its
// closure) runs on an explicit stack. A closure that reaches kMatch ends the search: re.match
// does not anchor the end.
bool ModulePattern::matches(std::string_view name) const {
  if (name.size() > kMaxNameBytes) {
    fail(ErrorCode::format,
         "module name of {} bytes is longer than the limit of {} bytes (ModulePattern::kMaxNameBytes) for "
         "matching regex '{}'",
         name.size(), kMaxNameBytes, shown(pattern_));
  }
  const size_t size = program_.size();
  std::vector<uint32_t> current, next, stack;  // program counters
  current.reserve(size), next.reserve(size);
  std::vector<uint32_t> added(size, kUnbounded);  // [pc] the step whose list holds pc
  uint32_t step = 0;
  size_t pos = 0;
  // Adds the closure of pc at pos to list; true when it reaches kMatch.
  const auto add = [&](std::vector<uint32_t>& list, uint32_t start) {
    stack.assign(1, start);
    while (!stack.empty()) {
      const uint32_t pc = stack.back();
      stack.pop_back();
      if (added[pc] == step) continue;
      added[pc] = step;
      const Inst& inst = program_[pc];
      switch (inst.op) {
        case Op::kJump:
          stack.push_back(inst.a);
          break;
        case Op::kSplit:
          stack.push_back(inst.b);
          stack.push_back(inst.a);
          break;
        case Op::kAssert:
          if (anchor_holds(Anchor(inst.a), name, pos)) stack.push_back(pc + 1);
          break;
        case Op::kMatch:
          return true;
        default:
          list.push_back(pc);
      }
    }
    return false;
  };
  if (add(current, 0)) return true;
  while (!current.empty() && pos < name.size()) {
    const auto [cp, len] = decode_utf8(name, pos);
    pos += len;
    ++step;
    next.clear();
    for (const uint32_t pc : current) {
      const Inst& inst = program_[pc];
      const bool consumed = inst.op == Op::kChar    ? inst.a == cp
                            : inst.op == Op::kAny   ? cp != '\n'
                            : inst.op == Op::kClass ? contains(classes_[inst.a], cp)
                                                    : false;
      if (consumed && add(next, pc + 1)) return true;
    }
    current.swap(next);
  }
  return false;
}

}  // namespace w4a16::io
