// `w4a16 quantize`: RTN-quantizes the linear-layer weights of a safetensors file and copies every
// other tensor through unchanged.
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <memory>

#include "cli/arg_checks.hpp"
#include "cli/commands.hpp"
#include "cli/tensor_args.hpp"
#include "common/printable.hpp"
#include "io/quantized_file.hpp"

namespace w4a16::cli {

namespace {

struct QuantizeArgs {
  std::string input, output, zero = "sym", dtype;
  std::vector<std::string> tensors, include, exclude;
  int64_t group_size = 128;
};

bool matches_any(const std::string& name, const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) {
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// By default: 2-D floating "*.weight" tensors, except embedding tables and the LM head (they are
// gathered or kept at full precision by every W4A16 runtime).
bool is_default_linear(const io::TensorInfo& t) {
  if (!ends_with(t.name, ".weight") || t.shape.size() != 2 || !io::to_dtype(t.dtype)) return false;
  for (const char* skip : {"embed", "lm_head", "wte", "wpe"}) {
    if (t.name.find(skip) != std::string::npos) return false;
  }
  return true;
}

// sqrt(sum (w - w^)^2 / sum w^2) over the whole layer.
double relative_rms_error(const MatrixRef& w, const QuantizedWeight& q) {
  double err = 0, ref = 0;
  for (int64_t r = 0; r < w.rows; ++r) {
    for (int64_t c = 0; c < w.cols; ++c) {
      const double v = load_as_f32(w.data, w.dtype, r * w.cols + c);
      const double d = v - q.value(r, c);
      err += d * d;
      ref += v * v;
    }
  }
  return ref > 0 ? std::sqrt(err / ref) : std::sqrt(err);
}

// Drops the pages of a source tensor from this process once it is quantized. The input is
// memory-mapped read-only, and every page read stays resident (and counts towards the peak RSS)
// until the mapping is closed; without this, quantizing a model would hold the whole source file
// plus the output. The pages come back from the file if read again. Only whole pages inside the
// tensor are dropped; a failure only costs memory, so it is ignored.
void release_pages(std::span<const std::byte> bytes) {
  const auto page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(bytes.data()) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(bytes.data()) + bytes.size()) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// Why nothing was selected, and what would select something: the 2-D floating tensors the file
// has (the candidates), the options that pick them, and `convert` when the file is already
// quantized by another tool.
std::string nothing_selected_message(const io::SafetensorsFile& file, const QuantizeArgs& args) {
  std::vector<std::string> candidates;
  bool prequantized = false;
  for (const auto& t : file.tensors()) {
    if (t.shape.size() == 2 && io::to_dtype(t.dtype)) candidates.push_back(t.name);
    for (const char* packed : {".qweight", ".weight_packed", ".w4a16.codes"}) prequantized |= ends_with(t.name, packed);
  }
  std::string message = fmt::format("no tensor of {} selected for quantization", args.input);
  message += args.include.empty() ? " (default: 2-D F16/BF16/F32 '*.weight' tensors except embeddings and lm_head"
                                  : " (by --include";
  if (!args.exclude.empty()) message += ", minus --exclude";
  message += ")";
  if (candidates.empty()) {
    message += "; the file has no 2-D floating tensor";
  } else {
    message +=
        fmt::format("; {} 2-D floating tensor{} could be: ", candidates.size(), candidates.size() == 1 ? "" : "s");
    for (size_t i = 0; i < candidates.size() && i < 5; ++i) message += (i ? ", " : "") + candidates[i];
    if (candidates.size() > 5) message += fmt::format(", ... ({} more)", candidates.size() - 5);
    message += fmt::format("; select them with --tensor {} or --include '{}'", module_name(candidates[0]),
                           candidates.size() == 1 ? candidates[0] : std::string("*"));
  }
  if (prequantized)
    message += "; the file holds packed int4 tensors: for GPTQ/AWQ/compressed-tensors use `w4a16 convert`";
  return message;
}

void run_quantize(const QuantizeArgs& args) {
  const auto file = io::SafetensorsFile::open(args.input);
  const ZeroMode zero = parse_zero_mode(args.zero);
  const std::optional<DType> scale_dtype = args.dtype.empty() ? std::nullopt : std::optional(parse_dtype(args.dtype));

  std::vector<const io::TensorInfo*> selected;
  for (const auto& name : args.tensors) {
    const std::string module = module_name(name);
    const io::TensorInfo* t = file.find(module + ".weight");
    if (!t) t = file.find(name);
    if (!t) fail(ErrorCode::invalid_argument, "no tensor '{}' (or '{}.weight') in {}", name, module, args.input);
    selected.push_back(t);
  }
  if (args.tensors.empty()) {
    for (const auto& t : file.tensors()) {
      const bool take = args.include.empty() ? is_default_linear(t) : matches_any(t.name, args.include);
      if (take && !matches_any(t.name, args.exclude)) selected.push_back(&t);
    }
  }
  if (selected.empty()) fail(ErrorCode::invalid_argument, "{}", nothing_selected_message(file, args));

  uint64_t total_bytes = 0;
  for (const auto* t : selected) total_bytes += t->nbytes();
  const bool show_progress = total_bytes > (256ull << 20);

  io::SafetensorsWriter writer;
  std::vector<std::unique_ptr<QuantizedWeight>> layers;  // kept alive until write()
  fmt::print("{:<48} {:>14} {:>7} {:>6} {:>11}\n", "layer", "N x K", "g", "zero", "rel-rms-err");
  for (size_t i = 0; i < selected.size(); ++i) {
    const io::TensorInfo& t = *selected[i];
    if (show_progress) fmt::print(stderr, "[{}/{}] quantizing {}\n", i + 1, selected.size(), printable(t.name));
    std::vector<std::byte> storage;
    const MatrixRef w = matrix_of(file, t, storage);
    layers.push_back(std::make_unique<QuantizedWeight>(quantize(w, {args.group_size, zero, scale_dtype})));
    const std::string module = module_name(t.name);
    io::add_quantized(writer, module, *layers.back());
    fmt::print("{:<48} {:>14} {:>7} {:>6} {:>11.5f}\n", printable(module), fmt::format("{}x{}", w.rows, w.cols),
               layers.back()->group_size(), to_string(zero), relative_rms_error(w, *layers.back()));
    release_pages(file.data(t));
  }
  size_t copied = 0;
  for (const auto& t : file.tensors()) {
    if (std::find(selected.begin(), selected.end(), &t) != selected.end()) continue;
    writer.add(t.name, t.dtype, t.shape, file.data(t));
    ++copied;
  }
  for (const auto& [key, value] : file.metadata()) {
    if (!ends_with(key, ".w4a16")) writer.set_metadata(key, value);
  }
  writer.write(args.output);
  fmt::print("quantized {} layers, copied {} other tensors -> {}\n", selected.size(), copied, printable(args.output));
}

}  // namespace

Command register_quantize(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  auto* sub = app.add_subcommand("quantize", "RTN-quantize the linear-layer weights of a safetensors file");
  sub->add_option("--input,-i", args->input, "source safetensors file (fp32/fp16/bf16 weights)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--output,-o", args->output, "destination w4a16 safetensors file")->required();
  sub->add_option("--tensor,-t", args->tensors, "quantize only these layers (module or tensor name; repeatable)");
  sub->add_option("--include", args->include, "glob patterns of tensors to quantize (replaces the default choice)");
  sub->add_option("--exclude", args->exclude, "glob patterns of tensors to leave unquantized");
  sub->add_option("--group-size,-g", args->group_size, "group size g along K; 0 = per-channel")
      ->default_val(128)
      ->check(non_negative_integer());
  sub->add_option("--zero", args->zero, "zero-point mode")
      ->default_val("sym")
      ->check(CLI::IsMember({"sym", "asym", "float"}));
  sub->add_option("--dtype", args->dtype, "dtype of stored scales/zeros (default: the source weight's)")
      ->check(CLI::IsMember({"fp16", "bf16", "fp32"}));
  return {sub, [args] { run_quantize(*args); }};
}

}  // namespace w4a16::cli
