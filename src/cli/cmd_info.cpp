// `w4a16 info [FILE]`: what this machine can run, and what a safetensors file holds.
//
// A file is described from its header alone (tensor names, dtypes, shapes, metadata): no tensor
// data is read, so describing a file of any size takes a few MB. Every string that comes from the
// file is printed through printable(): a tensor name can hold newlines and terminal escapes.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "common/check.hpp"
#include "common/printable.hpp"
#include "cuda/device_query.hpp"
#include "io/quantized_file.hpp"

namespace w4a16::cli {

namespace {

using nlohmann::json;

void print_machine() {
  const CpuInfo c = cpu_info();
  fmt::print("w4a16 {}\n", version());
  fmt::print("cpu: {} ({}), {} threads available\n", c.brand.empty() ? "unknown" : printable(c.brand),
             printable(c.vendor), c.available_threads);
  // Four features a line, as "name yes|no".
  for (size_t i = 0; i < c.features.size(); i += 4) {
    std::string line;
    for (size_t j = i; j < std::min(c.features.size(), i + 4); ++j) {
      line += fmt::format("  {} {}", c.features[j].first, c.features[j].second ? "yes" : "no");
    }
    fmt::print("{}\n", line);
  }
  fmt::print("  amx: {}\n", c.amx);
  fmt::print("  kernels: isa {} (supported: {})\n", active_isa(), fmt::join(supported_isas(), ", "));
  const auto cuda = cuda::query_devices();
  if (cuda.devices.empty()) {
    fmt::print("cuda: {}\n", printable(cuda.note));
  } else {
    for (size_t i = 0; i < cuda.devices.size(); ++i) fmt::print("cuda:{}: {}\n", i, printable(cuda.devices[i]));
  }
}

// A metadata value, printable and cut short: one value can be most of a 100 MB header.
std::string short_value(std::string_view value) {
  constexpr size_t kMax = 100;
  if (value.size() <= kMax) return printable(value);
  return fmt::format("{}... ({} bytes)", printable(value.substr(0, kMax)), value.size());
}

// One quantized layer from its metadata and the header entries of its tensors; throws Error with
// what is wrong when the metadata is not a well-formed w4a16 layer description.
std::string describe_layer(const io::SafetensorsFile& file, const std::string& module, const std::string& text) {
  const json meta = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded()) fail(ErrorCode::format, "not valid JSON");
  if (!meta.is_object()) fail(ErrorCode::format, "not a JSON object");
  const auto get_int = [&](const char* key) {
    const auto it = meta.find(key);
    if (it == meta.end() || !it->is_number_integer())
      fail(ErrorCode::format, "\"{}\" is missing or not an integer", key);
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX)) {
      fail(ErrorCode::format, "\"{}\" is too large", key);
    }
    return it->get<int64_t>();
  };
  const auto get_string = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    if (it == meta.end() || !it->is_string()) fail(ErrorCode::format, "\"{}\" is missing or not a string", key);
    return it->get_ref<const std::string&>();
  };
  const int64_t n = get_int("n"), k = get_int("k"), g = get_int("group_size");
  const auto act_order = meta.find("act_order");
  if (act_order == meta.end() || !act_order->is_boolean()) fail(ErrorCode::format, "\"act_order\" is not a boolean");
  // n and k come from the file: their product is checked before it is divided by.
  const auto weights = checked_mul(n, k);
  if (n <= 0 || k <= 0 || !weights) fail(ErrorCode::format, "n = {} and k = {} are not a valid layer size", n, k);

  // Bits per weight from the sizes the header gives the layer's tensors (`gemm` checks that they
  // match the metadata; here a missing codes tensor is only noted).
  uint64_t bytes = 0;
  for (const char* suffix : {".w4a16.codes", ".w4a16.scales", ".w4a16.zeros"}) {
    if (const io::TensorInfo* t = file.find(module + suffix)) bytes += t->nbytes();
  }
  const std::string size = file.find(module + ".w4a16.codes")
                               ? fmt::format("{:.3f} bits/weight", 8.0 * double(bytes) / double(*weights))
                               : std::string("no codes tensor");
  return fmt::format("N={} K={} g={} {} scales={} act-order={} bias={} ({})", n, k, g,
                     short_value(get_string("zero_mode")), short_value(get_string("scale_dtype")),
                     act_order->get<bool>() ? "yes" : "no", file.find(module + ".bias") ? "yes" : "no", size);
}

void print_file(const std::string& path) {
  const auto file = io::SafetensorsFile::open(path);
  fmt::print("\n{}: {} tensors\n", printable(path), file.tensors().size());
  for (const auto& t : file.tensors()) {
    fmt::print("  {:<56} {:<5} [{}]\n", printable(t.name), io::st_dtype_name(t.dtype), fmt::join(t.shape, ", "));
  }
  std::vector<std::pair<std::string, std::string>> other;
  for (const auto& [key, value] : file.metadata()) {
    const bool layer = key.size() > 6 && key.ends_with(".w4a16");  // as io::quantized_modules() reads them
    if (!layer) other.emplace_back(key, value);
  }
  if (!other.empty()) {
    fmt::print("metadata: {} entries\n", other.size());
    for (const auto& [key, value] : other) fmt::print("  {} = {}\n", short_value(key), short_value(value));
  }
  const auto modules = io::quantized_modules(file);
  if (modules.empty()) return;
  fmt::print("quantized layers: {}\n", modules.size());
  for (const auto& module : modules) {
    // One malformed layer does not hide the others: `gemm` and load_quantized reject it with the
    // full checks of docs/formats.md; here it is only described.
    std::string line;
    try {
      line = describe_layer(file, module, file.metadata().at(module + ".w4a16"));
    } catch (const Error& e) {
      line = fmt::format("metadata is invalid: {}", e.what());
    }
    fmt::print("  {:<48} {}\n", printable(module), printable(line));
  }
}

}  // namespace

Command register_info(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("info", "CPU/GPU features, and the tensors and quantized layers of a file");
  sub->add_option("file", *file, "a safetensors file to describe")->check(CLI::ExistingFile);
  return {sub, [file] {
            print_machine();
            if (!file->empty()) print_file(*file);
          }};
}

}  // namespace w4a16::cli
