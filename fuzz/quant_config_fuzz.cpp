// Fuzz target for the quantization_config reader (io/quant_config.hpp) and the
// compressed-tensors target matching.
//
// Contract under test: for any bytes, parse_quant_config either throws w4a16::Error or returns a
// config whose fields hold what the reader promises (4-bit only, group sizes -1 or >= 1, CT
// schemes non-empty with targets). A config that parses also goes through convert()'s whole path,
// as the config.json of a one-layer checkpoint holding that layer in GPTQ, AWQ and
// compressed-tensors form (K = 128, N = 8): its group size and scheme become layouts, and when
// convert succeeds every layer of its output must load. Any other exception, crash, sanitizer
// report or failed check below is a bug.
#include "quant_config_fuzz.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/hf_checkpoint.hpp"
#include "io/quant_config.hpp"
#include "io/safetensors.hpp"
#include "scratch_dir.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::fuzz::quant_config {
Stats& stats() {
  static Stats counters;
  return counters;
}
}  // namespace w4a16::fuzz::quant_config

namespace {

using w4a16::fuzz::quant_config::stats;

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "quant_config_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

// A checkpoint directory in this process's scratch directory whose model.safetensors holds module "m" as every import
// format stores it, one group of 128.
const std::filesystem::path& checkpoint() {
  static const std::filesystem::path dir = [] {
    using w4a16::io::StDType;
    const auto path = w4a16::fuzz::scratch_dir() / "checkpoint";
    std::filesystem::create_directories(path);
    const auto zeros = [](size_t n) { return std::vector<std::byte>(n, std::byte{0x11}); };
    const auto halves = [](size_t n) {  // fp16 0.5
      std::vector<std::byte> b(n * 2);
      for (size_t i = 0; i < n; ++i) b[2 * i + 1] = std::byte{0x38};
      return b;
    };
    w4a16::io::SafetensorsWriter w;
    w.add_owned("m.qweight", StDType::I32, {16, 8}, zeros(16 * 8 * 4));  // GPTQ [K/8, N]; AWQ reads [K, N/8]
    w.add_owned("m.qzeros", StDType::I32, {1, 1}, zeros(4));
    w.add_owned("m.scales", StDType::F16, {1, 8}, halves(8));
    w.add_owned("m.weight_packed", StDType::I32, {8, 16}, zeros(8 * 16 * 4));  // compressed-tensors [N, K/8]
    w.add_owned("m.weight_scale", StDType::F16, {8, 1}, halves(8));
    std::vector<std::byte> shape(16);
    const int64_t nk[2] = {8, 128};
    std::memcpy(shape.data(), nk, 16);
    w.add_owned("m.weight_shape", StDType::I64, {2}, shape);
    w.add_owned("m.bias", StDType::F16, {8}, halves(8));
    w.write(path / "model.safetensors");
    return path;
  }();
  return dir;
}

// convert() on a checkpoint with this config.json; when it succeeds, every layer it wrote loads.
void check_convert(std::string_view text) {
  const auto dir = checkpoint(), out = w4a16::fuzz::scratch_dir() / "out.safetensors";
  {
    std::ofstream config(dir / "config.json", std::ios::binary | std::ios::trunc);
    config.write(text.data(), std::streamsize(text.size()));
    check(config.good(), "scratch config.json written");
  }
  ++stats().converts;
  try {
    w4a16::convert(dir, out);
  } catch (const w4a16::Error& e) {
    check(e.code() != w4a16::ErrorCode::internal, "convert refuses with a named error, never internal");
    return;
  }
  ++stats().converted;
  for (const std::string& layer : w4a16::list_quantized(out)) (void)w4a16::load_quantized(out, layer);
}

void exercise(std::string_view text) {
  using namespace w4a16::io;
  const auto config = parse_quant_config(text, "fuzz");
  if (!config) return;
  ++stats().parsed;
  check(!describe(*config).empty(), "describe");
  if (text.size() <= (1u << 16)) check_convert(text);
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
