// Fuzz target for the quantization_config reader (io/quant_config.hpp) and the
// compressed-tensors target matching.
//
// Contract under test: for any bytes, parse_quant_config either throws w4a16::Error or returns a
// config whose fields hold what the reader promises (4-bit only, group sizes -1 or >= 1, CT
// schemes non-empty with targets). Any other exception, crash, sanitizer report or failed check
// below is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "io/hf_checkpoint.hpp"
#include "io/quant_config.hpp"

namespace {

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "quant_config_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

void exercise(std::string_view text) {
  using namespace w4a16::io;
  const auto config = parse_quant_config(text, "fuzz");
  if (!config) return;
  check(!describe(*config).empty(), "describe");
  if (const auto* g = std::get_if<GptqConfig>(&*config)) check(g->group_size == -1 || g->group_size >= 1, "gptq g");
  if (const auto* a = std::get_if<AwqConfig>(&*config)) check(a->group_size == -1 || a->group_size >= 1, "awq g");
  if (const auto* c = std::get_if<CompressedTensorsConfig>(&*config)) {
    check(!c->schemes.empty(), "ct schemes");
    for (const CtScheme& s : c->schemes) {
      check(!s.targets.empty(), "ct targets");
      check(s.group_size >= 0, "ct g");
    }
    // Every target and ignore entry, regexes included, against fixed module names: realistic ones
    // and the kind the review's hostile patterns made std::regex backtrack on (`(a*)*$`) or recurse
    // through (`.*q_proj$`; 300 characters keep a 1,000-regex seed fast, the 50,000-character case
    // is tests/io/module_pattern_test.cpp's). Matching is linear in the name: no input is slow.
    static const std::string kModules[] = {"model.layers.0.mlp.up_proj", "lm_head", "Linear",
                                           std::string(40, 'a') + "b", std::string(300, 'x') + ".q_proj"};
    for (const std::string& module : kModules) {
      try {
        (void)ct_scheme_for(*c, module);
      } catch (const w4a16::Error&) {
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    exercise(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const w4a16::Error&) {
    // Rejected input: the expected outcome for most inputs.
  }
  return 0;
}
