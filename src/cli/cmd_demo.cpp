// `w4a16 demo`: the whole data flow on random Llama-shaped weights — quantize, save, load,
// gemm — printing the quantization error, the kernel's agreement with the oracle, and times.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>

#include "cli/arg_checks.hpp"
#include "cli/commands.hpp"
#include "cli/gemm_options.hpp"
#include "common/check.hpp"

namespace w4a16::cli {

namespace {

struct DemoArgs {
  int64_t m = 1, k = 4096, n = 14336, group_size = 128;
  std::string zero = "sym", dtype = "bf16";
  int repeats = 5;
  GemmFlags flags;
};

// splitmix64 -> Box-Muller: fast, reproducible normal samples.
struct NormalSource {
  uint64_t state;
  double next_uniform() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double((z ^ (z >> 31)) >> 11) + 0.5) * 0x1p-53;
  }
  double next() { return std::sqrt(-2.0 * std::log(next_uniform())) * std::cos(6.283185307179586 * next_uniform()); }
};

std::vector<uint16_t> random_16bit(DType dtype, int64_t count, double sigma, uint64_t seed) {
  NormalSource rng{seed};
  std::vector<uint16_t> out(static_cast<size_t>(count));
  for (auto& v : out) v = dtype == DType::f16 ? f64_to_f16(sigma * rng.next()) : f64_to_bf16(sigma * rng.next());
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <typename F>
double median_ms(int repeats, F&& f) {
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(seconds_since(start) * 1e3);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// FNV-1a over bytes: the saved layer is compared with the quantized one by digest, so that the
// two copies never need to be in memory together.
uint64_t digest(std::span<const std::byte> bytes, uint64_t h = 0xcbf29ce484222325ull) {
  for (const std::byte b : bytes) h = (h ^ uint64_t(b)) * 0x100000001b3ull;
  return h;
}
uint64_t digest(const QuantizedWeight& q) {
  return digest(q.zeros(), digest(q.scales(), digest(std::as_bytes(std::span(q.codes())))));
}

// The most elements demo allocates for one matrix: 2^30 is 2 GiB of 16-bit weights, more than
// any one layer of a 400B-parameter Llama (16384 x 53248), and the sizes multiply before any
// allocation, so a typo of a few digits must not ask for 10^18 bytes.
constexpr int64_t kMaxDemoElements = int64_t(1) << 30;

int64_t elements(int64_t rows, const char* rows_flag, int64_t cols, const char* cols_flag) {
  const auto count = checked_mul(rows, cols);
  if (!count || *count > kMaxDemoElements) {
    throw UsageError(fmt::format("demo: {} {} x {} {} is {} elements; demo allows at most {}", rows_flag, rows,
                                 cols_flag, cols, count ? fmt::to_string(*count) : "more than 2^63", kMaxDemoElements));
  }
  return *count;
}

// A private directory (mkdtemp: a fresh name, mode 0700), not a predictable name in the shared
// /tmp that another user could plant or swap between the save and the load; removed on scope exit.
struct PrivateDir {
  std::filesystem::path dir;
  PrivateDir() {
    std::string dir_template = (std::filesystem::temp_directory_path() / "w4a16-demo-XXXXXX").string();
    if (::mkdtemp(dir_template.data()) == nullptr) {
      fail(ErrorCode::io, "demo: cannot create a private temporary directory: {}", std::strerror(errno));
    }
    dir = dir_template;
  }
  PrivateDir(const PrivateDir&) = delete;
  PrivateDir& operator=(const PrivateDir&) = delete;
  ~PrivateDir() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

// Kernel vs oracle, and the quantized layer vs the unquantized one (both in fp64). The kernel's
// difference is reported against the largest output and as an RMS, not element by element: an
// output that cancels to near zero makes any per-element ratio meaningless (the decoupled and
// dense strategies round W to 16 bits, which moves such an output by a full rounding step).
struct DemoErrors {
  double kernel_max_diff = 0, kernel_max_ref = 0, kernel_rms = 0, quantized_rms = 0;
};
DemoErrors demo_errors(const DemoArgs& a, const MatrixRef& x, const MatrixRef& w, const std::vector<uint16_t>& y,
                       const std::vector<uint16_t>& y_ref) {
  const DType act = x.dtype;
  DemoErrors e;
  double kernel_sq = 0, ref_sq = 0, qerr = 0, qref = 0;
  for (int64_t n = 0; n < a.n; ++n) {
    for (int64_t m = 0; m < a.m; ++m) {
      double dense = 0;
      for (int64_t k = 0; k < a.k; ++k) {
        dense += double(load_as_f32(x.data, act, m * a.k + k)) * load_as_f32(w.data, act, n * a.k + k);
      }
      const double got = load_as_f32(y.data(), act, m * a.n + n), want = load_as_f32(y_ref.data(), act, m * a.n + n);
      e.kernel_max_diff = std::max(e.kernel_max_diff, std::isfinite(got) ? std::abs(got - want) : INFINITY);
      e.kernel_max_ref = std::max(e.kernel_max_ref, std::abs(want));
      kernel_sq += (got - want) * (got - want);
      ref_sq += want * want;
      qerr += (want - dense) * (want - dense);
      qref += dense * dense;
    }
  }
  e.kernel_rms = std::sqrt(kernel_sq / std::max(ref_sq, 1e-300));
  e.quantized_rms = std::sqrt(qerr / qref);
  return e;
}

void run_demo(const DemoArgs& a) {
  const int64_t w_elements = elements(a.n, "-n", a.k, "-k");
  const int64_t x_elements = elements(a.m, "-m", a.k, "-k");
  const int64_t y_elements = elements(a.m, "-m", a.n, "-n");
  const DType act = parse_dtype(a.dtype);
  require(act != DType::f32, "demo: --dtype must be fp16 or bf16");
  fmt::print("w4a16 demo: one linear layer, M x K x N = {}x{}x{}, g={}, {}, {} activations and scales\n", a.m, a.k, a.n,
             a.group_size, a.zero, a.dtype);

  // Peak memory: the 16-bit W (kept for the error of the quantized layer) plus two quantized
  // copies at a time: the file's mapping and the loaded layer while loading, then the loaded and
  // the packed layer. The quantized layer is gone by then; a digest stands in for it.
  const auto w_bits = random_16bit(act, w_elements, 0.02, 1);
  const MatrixRef w{w_bits.data(), act, a.n, a.k};
  auto start = std::chrono::steady_clock::now();
  std::optional<QuantizedWeight> q = quantize(w, {a.group_size, parse_zero_mode(a.zero), act});
  const double quantize_s = seconds_since(start);
  const double weight_bytes = double(q->codes().size() + q->scales().size() + q->zeros().size());
  const uint64_t saved_digest = digest(*q);

  const PrivateDir dir;
  const auto path = dir.dir / "demo.safetensors";
  start = std::chrono::steady_clock::now();
  save_quantized(path, {{"demo.proj", &*q}});
  q.reset();
  const QuantizedWeight loaded = load_quantized(path, "demo.proj.weight");
  const double io_s = seconds_since(start);
  const auto file_bytes = std::filesystem::file_size(path);
  require(digest(loaded) == saved_digest, "demo: the saved layer did not load back");

  const auto x_bits = random_16bit(act, x_elements, 1.0, 2);
  const MatrixRef x{x_bits.data(), act, a.m, a.k};
  std::vector<uint16_t> y(static_cast<size_t>(y_elements)), y_ref(static_cast<size_t>(y_elements));
  start = std::chrono::steady_clock::now();
  const PackedWeight packed = pack(loaded);
  const double pack_s = seconds_since(start);
  const GemmOptions options = a.flags.options();
  gemm(x, packed, {y.data(), act, a.m, a.n}, options);  // first call: sizes the workspaces
  const double gemm_ms = median_ms(a.repeats, [&] { gemm(x, packed, {y.data(), act, a.m, a.n}, options); });
  const GemmPlan plan = plan_gemm(a.m, packed, act, options);
  const double ref_ms = median_ms(1, [&] { reference_gemm(x, loaded, {y_ref.data(), act, a.m, a.n}); });
  const DemoErrors e = demo_errors(a, x, w, y, y_ref);

  fmt::print("  quantize (RTN)                 {:9.1f} ms   {:.3f} bits/weight, file {:.1f} MB (save+load {:.0f} ms)\n",
             quantize_s * 1e3, 8 * weight_bytes / double(w_elements), double(file_bytes) / 1e6, io_s * 1e3);
  fmt::print("  pack for the CPU kernels       {:9.1f} ms\n", pack_s * 1e3);
  fmt::print("  gemm, median of {}             {:9.3f} ms   {:.2f} GB/s of quantized weight (cache-warm)\n", a.repeats,
             gemm_ms, weight_bytes / (gemm_ms * 1e6));
  fmt::print("    plan: {}\n", describe(plan));
  fmt::print("  reference gemm (fp64 oracle)   {:9.3f} ms\n", ref_ms);
  fmt::print(
      "  kernel vs oracle               max |difference| {:.3g} of max |y| {:.3g} ({:.2g}); relative RMS {:.2g}\n",
      e.kernel_max_diff, e.kernel_max_ref, e.kernel_max_diff / std::max(e.kernel_max_ref, 1e-30), e.kernel_rms);
  fmt::print("  quantized vs unquantized layer relative RMS error of y {:.4f}\n", e.quantized_rms);
}

}  // namespace

Command register_demo(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  auto* sub = app.add_subcommand("demo", "quantize random Llama-shaped weights, run gemm, print error and time");
  sub->add_option("-m", args->m, "tokens (rows of x)")->default_val(1)->check(positive_integer());
  sub->add_option("-k", args->k, "input features")->default_val(4096)->check(positive_integer());
  sub->add_option("-n", args->n, "output features")->default_val(14336)->check(positive_integer());
  sub->add_option("--group-size,-g", args->group_size, "group size (0 = per-channel)")
      ->default_val(128)
      ->check(non_negative_integer());
  add_zero_and_dtype(*sub, args->zero, args->dtype);
  sub->add_option("--repeats", args->repeats, "timed gemm calls (median reported)")
      ->default_val(5)
      ->check(integer_in(1, INT_MAX));
  args->flags.add_to(*sub);
  return {sub, [args] { run_demo(*args); }};
}

}  // namespace w4a16::cli
