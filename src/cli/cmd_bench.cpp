// `w4a16 bench` (the main job) and `w4a16 calibrate`: W4A16 (fused, decoupled) against the dense
// 16-bit baseline on LLM layer shapes, split-K against data-parallel, each against the roofline of
// this machine (measured read bandwidth and compute peaks), and with --study the paper's
// bottleneck breakdown. JSON schema: docs/bench-json.md.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "cli/arg_checks.hpp"
#include "cli/commands.hpp"
#include "cli/gemm_options.hpp"
#include "common/check.hpp"
#include "common/host.hpp"
#include "measure/bench_run.hpp"
#include "measure/cuda_bench.hpp"
#include "measure/suites.hpp"

namespace w4a16::cli {

namespace {

struct BenchArgs {
  std::string suite = "llama3-8b", shapes, batch, json_path, csv_path, zero = "sym", dtype = "bf16";
  int threads = 0;
  int64_t group_size = 128;
  double min_time = 0.1;
  bool study = false;
  std::string read_gbps;        // "A,B": given bandwidths instead of measuring (tests, repeat runs)
  std::string peak_gflops;      // "A,B": given compute peaks instead of measuring
  int64_t rotate_mib = 0;       // 0: 4x the L3
  bool validate_model = false;  // --validate-model: the planner's predictions against measured times
  double budget_s = 120;        // --budget: seconds of --validate-model (and of --backend cuda)
  std::string backend = "cpu";  // --backend cuda: the CUDA kernels against cuBLAS (measure/cuda_bench.hpp)
};

// --read-gbps / --peak-gflops: one or two finite positive decimals separated by ',' ("42.1,83.3"),
// a rate on 1 thread and on 2 (read) or all (compute) threads; one value stands for both.
std::optional<std::vector<double>> parse_rates(std::string_view text) {
  std::vector<double> out;
  for (const std::string_view item : split(text, ',')) {
    double value = 0;
    const char* end = item.data() + item.size();
    const auto [ptr, ec] = std::from_chars(item.data(), end, value);
    if (item.empty() || ec != std::errc() || ptr != end || !std::isfinite(value) || value <= 0) return std::nullopt;
    out.push_back(value);
  }
  if (out.empty() || out.size() > 2) return std::nullopt;
  return out;
}

CLI::Validator rate_pair(const std::string& unit) {
  return CLI::Validator(
      [unit](std::string& input) -> std::string {
        if (!parse_rates(input))
          return "must be one or two positive numbers of " + unit + " as 'A,B', got " + shown(input);
        return {};
      },
      "A[,B]");
}

// --shapes "M,K,N;M,K,N": the syntax, checked at parse time (the sizes are checked with the suite
// shapes in check_sizes).
CLI::Validator shape_list() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        bool any = false;
        for (const std::string_view item : split(input, ';')) {
          if (item.empty()) continue;
          const auto values = split(item, ',');
          if (values.size() != 3 || !std::all_of(values.begin(), values.end(), is_positive_integer)) {
            return "must be M,K,N triples of positive integers separated by ';', got " + shown(item);
          }
          any = true;
        }
        if (!any) return "must hold at least one M,K,N shape, got " + shown(input);
        return {};
      },
      "M,K,N;...");
}

// The largest matrix (W [N, K], x [M, K] or y [M, N]) a benchmark allocates, in elements: the
// sizes come from the command line and multiply before any allocation (see `demo`).
constexpr int64_t kMaxBenchElements = int64_t(1) << 30;

void check_sizes(int64_t m, int64_t k, int64_t n) {
  for (const auto& [a, b] : {std::pair{n, k}, std::pair{m, k}, std::pair{m, n}}) {
    const auto count = checked_mul(a, b);
    if (!count || *count > kMaxBenchElements) {
      throw UsageError(fmt::format("bench: shape M x K x N = {}x{}x{} has a matrix of more than {} elements", m, k, n,
                                   kMaxBenchElements));
    }
  }
}

// --backend cuda: its own layer list (or --shapes' K and N, each at every --batch M) and runner.
void run_cuda_bench(const BenchArgs& a) {
  measure::CudaBenchConfig config;
  config.group_size = a.group_size;
  config.budget_s = a.budget_s;
  config.json_path = a.json_path;
  if (!a.batch.empty()) config.batches = measure::parse_batches(a.batch);
  if (!a.shapes.empty()) {
    for (const auto& s : measure::parse_shapes(a.shapes)) {
      if (std::find(config.layers.begin(), config.layers.end(), std::pair{s.k, s.n}) == config.layers.end()) {
        config.layers.push_back({s.k, s.n});
      }
      if (a.batch.empty() && std::find(config.batches.begin(), config.batches.end(), s.m) == config.batches.end()) {
        config.batches.push_back(s.m);
      }
    }
  }
  const int status = measure::run_cuda_bench(config);
  if (status != 0) fail(ErrorCode::internal, "bench --backend cuda: a variant failed its reference check (above)");
}

// The request of the CPU bench: the options converted, the shapes or the suite's (layer, M) list made
// and every size checked before anything is allocated.
measure::BenchRequest bench_request(const BenchArgs& a) {
  measure::BenchRequest r;
  measure::BenchConfig& config = r.config;
  config.threads = a.threads > 0 ? a.threads : cpu_info().available_threads;
  config.group_size = a.group_size;
  config.zero = parse_zero_mode(a.zero);
  config.act = parse_dtype(a.dtype);
  require(config.act != DType::f32, "bench: --dtype must be fp16 or bf16");
  config.min_time_s = a.min_time;
  config.study = a.study;
  // --rotate-mib is at most 2^20 (its validator), so the product fits.
  config.rotation_bytes = a.rotate_mib > 0 ? *checked_mul(a.rotate_mib, int64_t(1) << 20) : 4 * host::l3_bytes();
  if (!a.shapes.empty()) {
    r.work = measure::shape_work(measure::parse_shapes(a.shapes));
  } else {
    r.suite = &measure::find_suite(a.suite);
    // --validate-model keeps to small M by default: each (shape, M) times several plans twice.
    const std::vector<int64_t> validate_batches = {1, 4, 16, 64};
    const auto batches = !a.batch.empty()   ? measure::parse_batches(a.batch)
                         : a.validate_model ? validate_batches
                                            : r.suite->batches;
    r.work = measure::suite_work(*r.suite, batches);
  }
  for (const auto& [layer, m] : r.work) check_sizes(m, layer.k, layer.n);
  r.zero_name = a.zero;
  r.act_name = a.dtype;
  if (!a.read_gbps.empty()) r.read_gbps = *parse_rates(a.read_gbps);
  if (!a.peak_gflops.empty()) r.peak_gflops = *parse_rates(a.peak_gflops);
  r.budget_s = a.budget_s;
  r.json_path = a.json_path;
  r.csv_path = a.csv_path;
  r.command = command_line();
  return r;
}

void run_bench(const BenchArgs& a) {
  if (a.backend == "cuda") return run_cuda_bench(a);
  const measure::BenchRequest request = bench_request(a);
  if (a.validate_model) return measure::run_validate_bench(request);
  measure::run_cpu_bench(request);
}

}  // namespace

Command register_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand("bench", "W4A16 vs dense 16-bit on LLM layer shapes: time, %BW, GFLOP/s, vs roofline");
  const std::string suites = measure::joined_names(measure::suites());
  std::vector<std::string> suite_names;
  for (const auto& s : measure::suites()) suite_names.push_back(s.name);
  sub->add_option("--suite", args->suite, "shape suite: " + suites)
      ->default_val("llama3-8b")
      ->check(CLI::IsMember(suite_names));
  sub->add_option("--shapes", args->shapes, "ad-hoc shapes 'M,K,N;M,K,N' (instead of a suite)")->check(shape_list());
  sub->add_option("--batch,--m", args->batch,
                  "M values for the suite, e.g. '1,4,16' (default: the suite's; 1,4,16,64 with --validate-model)")
      ->check(positive_integer_list());
  sub->add_option("--threads", args->threads, "threads (0 = the CPUs this process may use)")
      ->check(integer_in(0, kMaxThreads));
  sub->add_option("--group-size,-g", args->group_size, "group size")->default_val(128)->check(positive_integer());
  add_zero_and_dtype(*sub, args->zero, args->dtype);
  sub->add_option("--min-time", args->min_time, "seconds of timed calls per variant (after warm-up)")
      ->default_val(0.1)
      ->check(positive_seconds(3600));
  sub->add_flag("--study", args->study,
                "the paper's study: more split factors, decoupled panels through LLC/DRAM, ablations, breakdown");
  sub->add_option("--read-gbps", args->read_gbps,
                  "'A,B': use A and B GB/s (1 and 2 threads; decimals) instead of measuring the read")
      ->check(rate_pair("GB/s"));
  sub->add_option("--peak-gflops", args->peak_gflops,
                  "'A,B': use A and B GFLOP/s (1 and all threads) as the roofline's compute peak instead of measuring")
      ->check(rate_pair("GFLOP/s"));
  sub->add_option("--rotate-mib", args->rotate_mib, "cycle weights over at least this many MiB (default 4x L3)")
      ->check(integer_in(0, int64_t(1) << 20));
  sub->add_flag("--validate-model", args->validate_model,
                "time the planner's candidate plans and report predicted vs measured (and auto vs the best)");
  sub->add_option("--budget", args->budget_s, "--validate-model: start no new (shape, M) after this many seconds")
      ->default_val(120)
      ->check(positive_seconds(86400));
  sub->add_option("--backend", args->backend,
                  "cpu, or cuda: the CUDA kernels (fused dp / split-K / auto, decoupled) against cuBLAS fp16 and bf16 "
                  "on the current GPU, over the GPU layer list or --shapes (docs/cuda.md)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--json", args->json_path, "write the results as JSON (docs/bench-json.md)");
  sub->add_option("--csv", args->csv_path, "write one CSV row per shape and variant");
  return {sub, [args] { run_bench(*args); }};
}

Command register_calibrate(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "calibrate", "measure this machine's roofline: streaming DRAM read (1 and 2 threads), compute peaks (1 and all)");
  return {sub, [] { measure::run_calibrate(); }};
}

}  // namespace w4a16::cli
