// `w4a16 gemm`: y = x * W^T (+ bias) for one quantized layer of a w4a16 file.
//
// Peak memory is about twice the quantized weight, plus x and y (docs/cli.md): the file mapping
// and the QuantizedWeight read from it exist together while reading, the QuantizedWeight and the
// PackedWeight while packing, and only the PackedWeight after that.
#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "cli/arg_checks.hpp"
#include "cli/commands.hpp"
#include "cli/gemm_options.hpp"
#include "cli/tensor_args.hpp"
#include "common/check.hpp"
#include "io/quantized_file.hpp"

namespace w4a16::cli {

namespace {

struct GemmArgs {
  std::string weights, tensor, input, output, backend = "cpu";
  GemmFlags flags;
  bool atomic_split_k = false;
};

// The layer packed for the kernels; the mapping of the file and the unpacked copy are released
// before this returns.
PackedWeight load_packed(const std::string& path, const std::string& layer) {
  QuantizedWeight w = [&] {
    const auto file = io::SafetensorsFile::open(path);
    return io::read_quantized(file, layer);
  }();
  return pack(w);
}

// Calls body(x) with the file's 16-bit tensor 'x', which stays in its mapping (no copy unless
// misaligned) until body returns.
template <typename Body>
void with_x(const std::string& path, Body&& body) {
  const auto xfile = io::SafetensorsFile::open(path);
  const io::TensorInfo* xt = xfile.find("x");
  if (!xt) fail(ErrorCode::invalid_argument, "{} has no tensor named 'x'", path);
  std::vector<std::byte> storage;
  const MatrixRef x = matrix_of(xfile, *xt, storage);
  require(x.dtype != DType::f32, "x must be F16 or BF16 (got F32): activations are 16-bit in W4A16");
  body(x);
}

// --backend cuda: the layer uploaded for x's dtype, x and y copied through the device.
void run_gemm_cuda(const GemmArgs& args, const MatrixRef& x) {
  require(args.flags.threads == 0 && args.flags.vector_threads == 0,
          "--threads and --vector-threads are CPU options (not with --backend cuda)");
  const CudaWeight w = [&] {
    const auto file = io::SafetensorsFile::open(args.weights);
    return to_cuda(io::read_quantized(file, args.tensor), x.dtype);
  }();
  require(x.cols == w.k(), "x is [{}, {}] but the layer has K = {}: x must have K columns", x.rows, x.cols, w.k());
  const auto y_size = checked_mul(checked_mul(x.rows, w.n()).value_or(-1), int64_t(dtype_size(x.dtype)));
  if (!y_size) fail(ErrorCode::invalid_argument, "y = [{}, {}] is too large", x.rows, w.n());
  std::vector<std::byte> y_bytes(static_cast<size_t>(*y_size));
  const MutableMatrixRef y{y_bytes.data(), x.dtype, x.rows, w.n()};

  CudaGemmOptions o;
  o.strategy = parse_strategy(args.flags.strategy);
  o.partition = parse_partition(args.flags.partition);
  o.split_k = args.flags.split_k;
  o.atomic_split_k = args.atomic_split_k;
  const CudaPlan plan = plan_cuda_gemm(x.rows, w, o);
  const auto start = std::chrono::steady_clock::now();
  cuda_gemm_from_host(x, w, y, o);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  io::SafetensorsWriter writer;
  writer.add("y", io::to_st_dtype(y.dtype), {y.rows, y.cols}, y_bytes);
  writer.write(args.output);
  fmt::print("y[{}, {}] = x[{}, {}] * W^T on {}: {:.3f} ms with the copies -> {}\n", y.rows, y.cols, x.rows, x.cols,
             cuda_devices().devices.at(size_t(w.device())), ms, printable(args.output));
  fmt::print("cuda plan: {} {} S={}{} tile_rows={} blocks={} workspace={} B{}\n", to_string(plan.strategy),
             to_string(plan.partition), plan.split_k, plan.atomic_split_k ? " (atomic)" : "", plan.tile_rows,
             plan.blocks, plan.workspace_bytes, plan.notes.empty() ? "" : " (" + plan.notes + ")");
}

void run_gemm(const GemmArgs& args) {
  if (args.backend == "cuda") return with_x(args.input, [&](const MatrixRef& x) { run_gemm_cuda(args, x); });
  const PackedWeight packed = load_packed(args.weights, args.tensor);
  const QuantizedLayout& layout = packed.layout();

  std::vector<std::byte> y_bytes;
  MutableMatrixRef y;
  int64_t x_rows = 0, x_cols = 0;
  DType act = DType::bf16;
  GemmPlan plan;
  double ms = 0;
  // x is unmapped before y is written.
  with_x(args.input, [&](const MatrixRef& x) {
    require(x.cols == layout.k, "x is [{}, {}] but the layer has K = {}: x must have K columns", x.rows, x.cols,
            layout.k);
    x_rows = x.rows, x_cols = x.cols, act = x.dtype;

    // M comes from x's file and N from the weight's: their product is checked before it sizes y.
    const auto y_elements = checked_mul(x.rows, layout.n);
    const auto y_size = y_elements ? checked_mul(*y_elements, int64_t(dtype_size(x.dtype))) : std::nullopt;
    if (!y_size) fail(ErrorCode::invalid_argument, "y = [{}, {}] is too large", x.rows, layout.n);
    y_bytes.resize(size_t(*y_size));
    y = {y_bytes.data(), x.dtype, x.rows, layout.n};

    const GemmOptions options = args.flags.options();
    plan = plan_gemm(x.rows, packed, x.dtype, options);
    const auto start = std::chrono::steady_clock::now();
    gemm(x, packed, y, options);
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  });

  io::SafetensorsWriter writer;
  writer.add("y", io::to_st_dtype(y.dtype), {y.rows, y.cols}, y_bytes);
  writer.write(args.output);
  fmt::print("y[{}, {}] = x[{}, {}] * W^T  (M x K x N = {}x{}x{}, g={}, {}, x {}): {:.3f} ms -> {}\n", y.rows, y.cols,
             x_rows, x_cols, x_rows, layout.k, layout.n, layout.group_size, to_string(layout.zero_mode), to_string(act),
             ms, printable(args.output));
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
  sub->add_option("--backend", args->backend, "cpu, or cuda: the CUDA kernels on the current GPU (docs/cuda.md)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_flag("--atomic-split-k", args->atomic_split_k,
                "cuda split-K: sum partials with atomics (less workspace, not bitwise deterministic)");
  return {sub, [args] { run_gemm(*args); }};
}

}  // namespace w4a16::cli
