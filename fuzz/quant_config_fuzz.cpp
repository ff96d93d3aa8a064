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
    bool has_regex = false;
    for (const CtScheme& s : c->schemes) {
      check(!s.targets.empty(), "ct targets");
      check(s.group_size >= 0, "ct g");
      for (const auto& t : s.targets) has_regex = has_regex || t.starts_with("re:");
    }
    for (const auto& t : c->ignore) has_regex = has_regex || t.starts_with("re:");
    // Regex targets are left out: std::regex backtracks exponentially on hostile patterns, and
    // the importer only runs them against module names of the user's own checkpoint.
    if (!has_regex) {
      for (const char* module : {"model.layers.0.mlp.up_proj", "lm_head", "Linear"}) {
        try {
          (void)ct_scheme_for(*c, module);
        } catch (const w4a16::Error&) {
        }
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
