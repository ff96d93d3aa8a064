// `w4a16 gemm`: y = x * W^T (+ bias) for one quantized layer of a w4a16 file.
#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "cli/commands.hpp"
#include "cli/gemm_options.hpp"
#include "cli/tensor_args.hpp"
#include "io/quantized_file.hpp"

namespace w4a16::cli {

namespace {

struct GemmArgs {
  std::string weights, tensor, input, output;
  GemmFlags flags;
};

void run_gemm(const GemmArgs& args) {
  const auto wfile = io::SafetensorsFile::open(args.weights);
  const QuantizedWeight w = io::read_quantized(wfile, args.tensor);

  const auto xfile = io::SafetensorsFile::open(args.input);
  const io::TensorInfo* xt = xfile.find("x");
  if (!xt) fail(ErrorCode::invalid_argument, "{} has no tensor named 'x'", args.input);
  std::vector<std::byte> storage;
  const MatrixRef x = matrix_of(xfile, *xt, storage);
  require(x.dtype != DType::f32, "x must be F16 or BF16 (got F32): activations are 16-bit in W4A16");

  std::vector<std::byte> y_bytes(size_t(x.rows * w.n()) * dtype_size(x.dtype));
  const MutableMatrixRef y{y_bytes.data(), x.dtype, x.rows, w.n()};
  const PackedWeight packed = pack(w);
  const GemmOptions options = args.flags.options();
  const GemmPlan plan = plan_gemm(x.rows, packed, x.dtype, options);
  const auto start = std::chrono::steady_clock::now();
  gemm(x, packed, y, options);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  io::SafetensorsWriter writer;
  writer.add("y", io::to_st_dtype(y.dtype), {y.rows, y.cols}, y_bytes);
  writer.write(args.output);
  fmt::print("y[{}, {}] = x[{}, {}] * W^T  (M x K x N = {}x{}x{}, g={}, {}, x {}): {:.3f} ms -> {}\n", y.rows, y.cols,
             x.rows, x.cols, x.rows, w.k(), w.n(), w.group_size(), to_string(w.zero_mode()), to_string(x.dtype), ms,
             args.output);
  fmt::print("plan: {}\n", describe(plan));
}

}  // namespace

Command register_gemm(CLI::App& app) {
  auto args = std::make_shared<GemmArgs>();
  auto* sub = app.add_subcommand("gemm", "y = x * W^T for one quantized layer (x, y in safetensors files)");
  sub->add_option("--weights,-w", args->weights, "w4a16 safetensors file")->required()->check(CLI::ExistingFile);
  sub->add_option("--tensor,-t", args->tensor, "layer: module name or '<module>.weight'")->required();
  sub->add_option("--input,-i", args->input, "safetensors file with one 2-D F16/BF16 tensor named 'x' [M, K]")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--output,-o", args->output, "safetensors file to write, with tensor 'y' [M, N] in x's dtype")
      ->required();
  args->flags.add_to(*sub);
  return {sub, [args] { run_gemm(*args); }};
}

}  // namespace w4a16::cli
