// `w4a16 convert SRC --output OUT`: a quantized checkpoint (Hugging Face GPTQ / AWQ /
// compressed-tensors directory, or a GGUF file) into one w4a16 safetensors file (docs/convert.md).
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "cli/commands.hpp"
#include "common/printable.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::cli {

namespace {

struct ConvertArgs {
  std::string source, output;
  bool quiet = false;
};

void run_convert(const ConvertArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const ConvertProgress progress = [&](int64_t index, int64_t count, std::string_view name, std::string_view action) {
    if (!args.quiet) fmt::print(stderr, "[{}/{}] {}: {}\n", index, count, printable(name), printable(action));
  };
  const ConvertReport report = convert(args.source, args.output, progress);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string kinds;
  for (const auto& [kind, count] : report.layers_by_kind)
    kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", count, kind);
  fmt::print("{} ({}): {} quantized layers ({}), {} tensors copied", printable(args.source), report.source_format,
             report.quantized_layers, kinds, report.copied_tensors);
  if (report.dequantized_tensors > 0) fmt::print(", {} dequantized to F32", report.dequantized_tensors);
  if (report.raw_tensors > 0) fmt::print(", {} kept as raw GGUF blocks", report.raw_tensors);
  std::error_code error;
  const auto bytes = std::filesystem::file_size(args.output, error);
  fmt::print(" -> {} ({:.1f} MB) in {:.1f} s\n", printable(args.output), error ? 0.0 : double(bytes) / 1e6, seconds);
  for (const std::string& warning : report.warnings) fmt::print(stderr, "w4a16: warning: {}\n", printable(warning));
}

}  // namespace

Command register_convert(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  auto* sub = app.add_subcommand(
      "convert", "import a GPTQ / AWQ / compressed-tensors checkpoint directory or a GGUF file into w4a16");
  sub->add_option("source", args->source, "Hugging Face checkpoint directory (config.json + safetensors) or .gguf file")
      ->required()
      ->check(CLI::ExistingPath);
  sub->add_option("--output,-o", args->output, "destination w4a16 safetensors file")->required();
  sub->add_flag("--quiet,-q", args->quiet, "no per-tensor progress on stderr");
  return {sub, [args] { run_convert(*args); }};
}

}  // namespace w4a16::cli
