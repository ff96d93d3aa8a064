// Peak resident memory of this process around a piece of code, for the tests that guard a memory
// bound (parsers, CLI commands). Linux: VmHWM after resetting it through /proc/self/clear_refs.
#pragma once

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace w4a16::test {

// ASan's shadow memory and quarantine make resident-set bounds meaningless: memory assertions
// are skipped in sanitized builds (the code still runs there, for crashes and leaks).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// kB from a "VmHWM:" / "VmRSS:" line of /proc/self/status, or -1.
inline long status_kb(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  }
  return -1;
}

// Peak growth of the resident set while `body` runs, in bytes; -1 when it cannot be measured.
template <typename F>
long long peak_growth(F&& body) {
  bool reset = false;
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    reset = std::fputs("5", f) >= 0;  // "5" resets VmHWM to the current VmRSS
    reset = std::fclose(f) == 0 && reset;
  }
  const long before = status_kb("VmRSS:");
  body();
  const long peak = status_kb("VmHWM:");
  if (!reset || before < 0 || peak < 0) return -1;
  return (long long)(peak - before) * 1024;
}

}  // namespace w4a16::test
