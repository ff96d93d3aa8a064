// `w4a16 bench` (the main job) and `w4a16 calibrate`: W4A16 (fused, decoupled) against the dense
// 16-bit baseline on LLM layer shapes, split-K against data-parallel, each against the roofline of
// this machine (measured read bandwidth and compute peaks), and with --study the paper's
// bottleneck breakdown. JSON schema: docs/bench-json.md.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "cli/arg_checks.hpp"
#include "cli/commands.hpp"
#include "cli/gemm_options.hpp"
#include "common/check.hpp"
#include "io/atomic_file.hpp"
#include "measure/cpu_calibration.hpp"
#include "measure/cuda_bench.hpp"
#include "measure/peaks.hpp"
#include "measure/read_bandwidth.hpp"
#include "measure/runner.hpp"
#include "measure/suites.hpp"
#include "measure/validate_model.hpp"

namespace w4a16::cli {

namespace {

using measure::ShapeResult;
using measure::VariantResult;
using nlohmann::json;

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

struct Calibration {
  double gbps[3] = {0, 0, 0};  // streaming read on 1 and 2 threads (index); [0] unused
  std::string variant[3];
  measure::ComputePeaks peaks;
  int peak_threads = 1;  // "all threads" of the compute peaks
};

Calibration calibrate_read(int max_threads) {
  Calibration c;
  const measure::HugeBuffer buf(measure::read_buffer_bytes());
  for (int t = 1; t <= std::min(max_threads, 2); ++t) {
    const auto r = measure::measure_read_bandwidth(buf, t, 3);
    c.gbps[t] = r.gbps;
    c.variant[t] = r.variant;
  }
  if (max_threads < 2) c.gbps[2] = c.gbps[1];
  return c;
}

// The read bandwidth of --read-gbps "A[,B]" (already validated), else measured now.
Calibration given_or_measured_read(const std::string& given, int threads) {
  Calibration cal;
  if (!given.empty()) {
    const auto values = *parse_rates(given);
    cal.gbps[1] = values.front();
    cal.gbps[2] = values.back();
    cal.variant[1] = cal.variant[2] = "given by --read-gbps";
    return cal;
  }
  fmt::print(stderr, "calibrating the streaming read bandwidth...\n");
  return calibrate_read(threads);
}

// Keeps the larger of each measured rate (a shared machine's figures drift down, never up).
void keep_better(measure::ComputePeaks& into, const measure::ComputePeaks& other) {
  for (auto& p : into.measured) {
    for (const auto& q : other.measured) {
      if (q.key != p.key) continue;
      for (const auto& [t, g] : q.gflops) p.gflops[t] = std::max(p.gflops[t], g);
    }
  }
}

// "vdpbf16ps zmm 86.0 / 172.1, vfmadd231ps zmm 175.2 / 349.8 GFLOP/s (1 / 2 threads)".
std::string peaks_text(const Calibration& c) {
  const auto rates = [&](const measure::PerThreads& g) {
    std::string out;
    for (const auto& [t, v] : g) out += fmt::format("{}{:.1f}", out.empty() ? "" : " / ", v);
    return out;
  };
  const auto counts = [&](const measure::PerThreads& g) {
    std::string out;
    for (const auto& [t, v] : g) out += fmt::format("{}{}", out.empty() ? "" : " / ", t);
    return out + (g.size() == 1 && g.begin()->first == 1 ? " thread" : " threads");
  };
  if (!c.peaks.given.empty()) {
    return fmt::format("{} GFLOP/s ({}), given by --peak-gflops", rates(c.peaks.given), counts(c.peaks.given));
  }
  if (c.peaks.measured.empty()) return "none measured (no AVX2 + FMA): the roofline is the read alone";
  std::string out;
  bool contended = false;
  for (const auto& p : c.peaks.measured) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", p.instruction, rates(p.gflops));
    contended = contended || measure::looks_contended(p.gflops);
  }
  out += fmt::format(" GFLOP/s ({})", counts(c.peaks.measured.front().gflops));
  if (contended) out += "\n  note: a multi-thread peak scales badly: another process probably held a CPU";
  return out;
}

// The best split-K variant measured (lowest median), or nullptr.
const VariantResult* best_splitk(const ShapeResult& r) {
  const VariantResult* best = nullptr;
  for (const auto& v : r.variants) {
    if (v.name.rfind("fused_splitk_", 0) == 0 && (!best || v.median_ms < best->median_ms)) best = &v;
  }
  return best;
}

double ratio(const VariantResult* a, const VariantResult* b) {  // a's time / b's time
  return a && b && b->median_ms > 0 ? a->median_ms / b->median_ms : NAN;
}

std::string shape_text(const ShapeResult& r) { return fmt::format("{}x{}x{}", r.m, r.layer.k, r.layer.n); }

// A time over the roofline time as "1.23x", or "-" when no roofline is known.
std::string vs_roof(const VariantResult* v) {
  return v && v->vs_roofline > 0 ? fmt::format("{:.2f}x", v->vs_roofline) : "-";
}

void print_table(const std::vector<ShapeResult>& results) {
  fmt::print("\n{:<17} {:<22} {:>9} {:>9} {:>9} {:>7} {:>7} {:>11} {:>4} {:>7} {:>10} {:>10}  {}\n", "MxKxN", "layer",
             "dense ms", "fused ms", "decoup ms", "fused", "decoup", "splitK/DP", "%BW", "GFLOP/s", "fused/roof",
             "dense/roof", "plan (fused)");
  for (const auto& r : results) {
    const auto *dense = r.find("dense"), *fused = r.find("fused"), *dec = r.find("decoupled"), *dp = r.find("fused_dp");
    const auto* sk = best_splitk(r);
    fmt::print(
        "{:<17} {:<22} {:>9.3f} {:>9.3f} {:>9.3f} {:>6.2f}x {:>6.2f}x {:>6.2f}x S={:<2} {:>4.0f} {:>7.1f} {:>10} "
        "{:>10}  "
        "{}\n",
        shape_text(r), (r.layer.model + " " + r.layer.layer).substr(0, 22), dense->median_ms, fused->median_ms,
        dec->median_ms, ratio(dense, fused), ratio(dense, dec), ratio(dp, sk), sk ? sk->split_k : 0, fused->pct_bw,
        fused->gflops, vs_roof(fused), vs_roof(dense), fused->plan);
  }
  fmt::print(
      "(fused, decoup: speed-up over dense; splitK/DP: data-parallel time / best split-K time; %BW: int4 weight\n"
      " bytes per second of the fused kernel against the streaming read; fused/roof, dense/roof: time over the\n"
      " roofline time max(weight bytes / read, 2*M*K*N / compute peak) for the threads used, 1.00x = on it;\n"
      " weight bytes are the int4 bytes for fused, the 16-bit weight for dense)\n");
}

// Fills every variant's roofline_ms and vs_roofline, and its pct_bw, from the final calibration.
void apply_roofline(std::vector<ShapeResult>& results, const Calibration& cal) {
  for (auto& r : results) {
    const double flops = 2.0 * double(r.m) * double(r.layer.k) * double(r.layer.n);
    for (auto& v : r.variants) {
      const double read = cal.gbps[std::clamp(v.threads, 1, 2)];
      v.pct_bw = 100.0 * v.gbps / read;
      v.roofline_ms = measure::roofline_ms(double(v.weight_bytes), flops, read, cal.peaks.roofline_gflops(v.threads));
      v.vs_roofline = v.roofline_ms > 0 ? v.median_ms / v.roofline_ms : 0;
    }
  }
}

// machine.peak_gflops / peak_instruction / roofline_gflops of the JSON (docs/bench-json.md).
json peaks_json(const Calibration& c) {
  const auto per_threads = [](const measure::PerThreads& g) {
    json j = json::object();
    for (const auto& [t, v] : g) j[std::to_string(t)] = v;
    return j;
  };
  json peak = json::object(), instruction = json::object(), roof = json::object();
  if (!c.peaks.given.empty()) {
    peak["given"] = per_threads(c.peaks.given);
    instruction["given"] = "given by --peak-gflops";
  }
  for (const auto& p : c.peaks.measured) {
    peak[p.key] = per_threads(p.gflops);
    instruction[p.key] = p.instruction;
  }
  for (const int t : {1, c.peak_threads}) {
    if (const double g = c.peaks.roofline_gflops(t); g > 0) roof[std::to_string(t)] = g;
  }
  return {{"peak_gflops", peak}, {"peak_instruction", instruction}, {"roofline_gflops", roof}};
}

json variant_json(const VariantResult& v) {
  json j = {{"median_ms", v.median_ms},
            {"p10_ms", v.p10_ms},
            {"p90_ms", v.p90_ms},
            {"weight_bytes", v.weight_bytes},
            {"gbps", v.gbps},
            {"pct_bw", v.pct_bw},
            {"gflops", v.gflops},
            {"roofline_ms", v.roofline_ms},
            {"vs_roofline", v.vs_roofline},
            {"plan", v.plan},
            {"verified", v.verified},
            {"threads", v.threads}};
  if (v.split_k > 0) j["split_k"] = v.split_k;
  return j;
}

// Model totals at M = 1: the linear layers of one decoder layer, times the number of layers.
json totals_json(const measure::Suite* suite, const std::vector<ShapeResult>& results, bool print) {
  json out = json::array();
  if (!suite) return out;
  for (const auto& model : suite->models) {
    std::map<std::string, double> layer_ms;
    for (const auto& r : results) {
      if (r.m != 1 || r.layer.model != model.name) continue;
      for (const char* name : {"dense", "fused", "decoupled"}) {
        if (const auto* v = r.find(name)) layer_ms[name] += v->median_ms * r.layer.per_decoder_layer;
      }
    }
    if (layer_ms.empty()) continue;
    json t = {{"model", model.name}, {"decoder_layers", model.decoder_layers}};
    for (const auto& [name, ms] : layer_ms) {
      t["decoder_layer_ms"][name] = ms;
      t["model_ms"][name] = ms * model.decoder_layers;
      t["tokens_per_s"][name] = 1000.0 / (ms * model.decoder_layers);
    }
    out.push_back(t);
    if (print) {
      fmt::print(
          "{:<12} M=1, linear layers only: decoder layer dense {:.3f} ms, fused {:.3f} ms ({:.2f}x); "
          "{} layers: {:.1f} -> {:.1f} tokens/s upper bound\n",
          model.name, layer_ms["dense"], layer_ms["fused"], layer_ms["dense"] / layer_ms["fused"], model.decoder_layers,
          1000.0 / (layer_ms["dense"] * model.decoder_layers), 1000.0 / (layer_ms["fused"] * model.decoder_layers));
    }
  }
  return out;
}

// The paper's study from the measured variants (docs/bench-json.md, "study").
json study_json(const std::vector<ShapeResult>& results) {
  double sk_min = INFINITY, sk_max = 0, fused_max = 0, dec_max = 0;
  json best = json::array(), breakdown = json::array();
  double sum_read = 0, sum_math = 0, sum_trip = 0, sum_gemm = 0;
  int count = 0;
  for (const auto& r : results) {
    const auto* sk = best_splitk(r);
    const double s = ratio(r.find("fused_dp"), sk);
    if (std::isfinite(s)) {
      sk_min = std::min(sk_min, s), sk_max = std::max(sk_max, s);
      best.push_back({{"m", r.m}, {"k", r.layer.k}, {"n", r.layer.n}, {"split_k", sk->split_k}, {"speedup", s}});
    }
    fused_max = std::max(fused_max, ratio(r.find("dense"), r.find("fused")));
    dec_max = std::max(dec_max, ratio(r.find("dense"), r.find("decoupled_dram")));
    // Shares of the decoupled time (panel through DRAM), from the ablations:
    //   read       = the bare int4 stream
    //   math       = decoupled - decoupled with a plain widening copy instead of the dequant arithmetic
    //   round trip = widening-copy decoupled - fused (what writing and re-reading 16-bit W adds
    //                over dequantizing in registers)
    //   gemm       = the rest (fused - stream: the multiply-accumulate work itself)
    const auto *dec = r.find("decoupled_dram"), *widen = r.find("decoupled_widen"), *stream = r.find("int4_stream");
    const auto* fused = r.find("fused");
    if (dec && widen && stream && fused) {
      const double t = dec->median_ms;
      const double read = std::min(1.0, stream->median_ms / t);
      const double math = std::max(0.0, t - widen->median_ms) / t;
      const double trip = std::max(0.0, widen->median_ms - fused->median_ms) / t;
      const double gemm = std::max(0.0, 1.0 - read - math - trip);
      breakdown.push_back({{"m", r.m},
                           {"k", r.layer.k},
                           {"n", r.layer.n},
                           {"read_share", read},
                           {"math_share", math},
                           {"round_trip_share", trip},
                           {"gemm_share", gemm}});
      sum_read += read, sum_math += math, sum_trip += trip, sum_gemm += gemm, ++count;
    }
  }
  const double trip = count ? sum_trip / count : NAN, math = count ? sum_math / count : NAN;
  const std::string conclusion =
      count == 0 ? "no breakdown measured"
      : trip > math
          ? fmt::format(
                "as in the paper, the round trip of the 16-bit weight through memory ({:.0f}% of the decoupled "
                "time on average) costs more than the dequantization arithmetic ({:.0f}%)",
                100 * trip, 100 * math)
          : fmt::format(
                "unlike the paper, the dequantization arithmetic ({:.0f}% of the decoupled time on average) "
                "costs more than the round trip of the 16-bit weight through memory ({:.0f}%)",
                100 * math, 100 * trip);
  return {{"splitk_vs_dp", {{"min", sk_min}, {"max", sk_max}, {"best", best}}},
          {"w4a16_vs_fp16", {{"fused_max", fused_max}, {"decoupled_max", dec_max}}},
          {"breakdown", breakdown},
          {"mean_shares",
           {{"read", count ? sum_read / count : NAN},
            {"math", math},
            {"round_trip", trip},
            {"gemm", count ? sum_gemm / count : NAN}}},
          {"conclusion", conclusion}};
}

void print_study(const json& s) {
  fmt::print(
      "\nStudy (paper: split-K 1.01-1.74x over data-parallel when K >> N; W4A16 at most 1.48x over FP16;\n"
      "       the bottleneck is the extra global-memory transfer of the weight, not the dequant math)\n");
  fmt::print("  split-K over data-parallel: {:.2f}x - {:.2f}x (best split per shape and M)\n",
             s["splitk_vs_dp"]["min"].get<double>(), s["splitk_vs_dp"]["max"].get<double>());
  fmt::print("  W4A16 over dense 16-bit: fused up to {:.2f}x, decoupled (panel through DRAM) up to {:.2f}x\n",
             s["w4a16_vs_fp16"]["fused_max"].get<double>(), s["w4a16_vs_fp16"]["decoupled_max"].get<double>());
  fmt::print("  {:<17} {:>8} {:>8} {:>11} {:>8}   (shares of the decoupled time, panel through DRAM)\n", "MxKxN",
             "read", "math", "round trip", "gemm");
  for (const auto& b : s["breakdown"]) {
    fmt::print("  {:<17} {:>7.0f}% {:>7.0f}% {:>10.0f}% {:>7.0f}%\n",
               fmt::format("{}x{}x{}", b["m"].get<int64_t>(), b["k"].get<int64_t>(), b["n"].get<int64_t>()),
               100 * b["read_share"].get<double>(), 100 * b["math_share"].get<double>(),
               100 * b["round_trip_share"].get<double>(), 100 * b["gemm_share"].get<double>());
  }
  fmt::print("  conclusion: {}\n", s["conclusion"].get<std::string>());
}

void write_csv(const std::string& path, const std::vector<ShapeResult>& results) {
  std::ostringstream out;
  out << "model,layer,m,k,n,variant,median_ms,p10_ms,p90_ms,weight_bytes,gbps,pct_bw,gflops,threads,split_k,verified,"
         "roofline_ms,vs_roofline\n";
  for (const auto& r : results) {
    for (const auto& v : r.variants) {
      out << fmt::format(
          "\"{}\",\"{}\",{},{},{},{},{:.6f},{:.6f},{:.6f},{},{:.3f},{:.2f},{:.3f},{},{},{},{:.6f},{:.4f}\n",
          r.layer.model, r.layer.layer, r.m, r.layer.k, r.layer.n, v.name, v.median_ms, v.p10_ms, v.p90_ms,
          v.weight_bytes, v.gbps, v.pct_bw, v.gflops, v.threads, v.split_k, v.verified, v.roofline_ms, v.vs_roofline);
    }
  }
  io::write_file_atomically(path, out.str());
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

// `bench --validate-model`: measure/validate_model.hpp does the work; here the streaming read is
// measured (for the %BW of the JSON and to compare with the model's figure) and the JSON written.
void run_validate_model(const BenchArgs& a, const measure::BenchConfig& bench_config, const measure::Suite* suite,
                        const std::vector<std::pair<measure::LayerShape, int64_t>>& work) {
  measure::ValidateConfig config;
  config.bench = bench_config;
  config.budget_s = a.budget_s;
  fmt::print(
      "w4a16 bench --validate-model: {} | cpu {} | isa {} | threads {} | g={} {} {} | weights rotated over {} MiB | "
      "budget {:.0f} s\n",
      suite ? "suite " + suite->name : std::string("ad-hoc shapes"), printable(host::cpu_name()), active_isa(),
      config.bench.threads, config.bench.group_size, a.zero, a.dtype, config.bench.rotation_bytes >> 20,
      config.budget_s);
  Calibration cal = given_or_measured_read(a.read_gbps, config.bench.threads);
  config.bench.read_gbps[1] = cal.gbps[1];
  config.bench.read_gbps[2] = cal.gbps[2];
  fmt::print("streaming read: {:.1f} GB/s on 1 thread, {:.1f} GB/s on 2 threads{}\n", cal.gbps[1], cal.gbps[2],
             a.read_gbps.empty() ? "" : " (given by --read-gbps)");

  const bool tty = isatty(2);
  const auto started = std::chrono::steady_clock::now();
  const measure::Validation v = measure::validate_model(work, config, [&](const std::string& what) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const std::string line = fmt::format("{:>5.0f}s {}", elapsed, what);
    if (tty) {
      fmt::print(stderr, "\r{:<90.90}", line);
    } else {
      fmt::print(stderr, "{}\n", line);
    }
  });
  if (tty) fmt::print(stderr, "\r{:<90}\r", "");
  const measure::ValidationSummary summary = measure::summarize(v);
  measure::print_validation(v, summary);

  if (!a.json_path.empty()) {
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    json doc = {{"schema", "w4a16-validate/1"},
                {"command", command_line()},
                {"date", date},
                {"machine",
                 {{"cpu", host::cpu_name()},
                  {"isa", std::string(active_isa())},
                  {"threads", config.bench.threads},
                  {"l3_bytes", host::l3_bytes()},
                  {"read_gbps", {{"1", cal.gbps[1]}, {"2", cal.gbps[2]}}},
                  {"read_variant", {{"1", cal.variant[1]}, {"2", cal.variant[2]}}}}},
                {"config",
                 {{"suite", suite ? suite->name : "ad-hoc"},
                  {"group_size", config.bench.group_size},
                  {"zero", a.zero},
                  {"act", a.dtype},
                  {"rotation_bytes", config.bench.rotation_bytes},
                  {"min_time_s", config.bench.min_time_s},
                  {"fastest_timed", config.fastest}}}};
    doc.update(measure::validation_json(v, summary));
    io::write_file_atomically(a.json_path, doc.dump(2) + "\n");
    fmt::print("wrote {}\n", a.json_path);
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

void run_bench(const BenchArgs& a) {
  if (a.backend == "cuda") return run_cuda_bench(a);
  measure::BenchConfig config;
  const int available = cpu_info().available_threads;
  config.threads = a.threads > 0 ? a.threads : available;
  config.group_size = a.group_size;
  config.zero = parse_zero_mode(a.zero);
  config.act = parse_dtype(a.dtype);
  require(config.act != DType::f32, "bench: --dtype must be fp16 or bf16");
  config.min_time_s = a.min_time;
  config.study = a.study;
  // --rotate-mib is at most 2^20 (its validator), so the product fits.
  config.rotation_bytes = a.rotate_mib > 0 ? *checked_mul(a.rotate_mib, int64_t(1) << 20) : 4 * host::l3_bytes();

  // What to run: a suite (with its batch list) or ad-hoc shapes.
  const measure::Suite* suite = nullptr;
  std::vector<std::pair<measure::LayerShape, int64_t>> work;
  if (!a.shapes.empty()) {
    for (const auto& s : measure::parse_shapes(a.shapes)) work.push_back({{"ad-hoc", "", s.k, s.n, 1, s.m}, s.m});
  } else {
    suite = &measure::find_suite(a.suite);
    // --validate-model keeps to small M by default: each (shape, M) times several plans twice.
    const std::vector<int64_t> validate_batches = {1, 4, 16, 64};
    const auto batches = !a.batch.empty()   ? measure::parse_batches(a.batch)
                         : a.validate_model ? validate_batches
                                            : suite->batches;
    std::map<std::pair<int64_t, int64_t>, bool> seen;  // each distinct (K, N) once per model family
    for (const auto& layer : suite->layers) {
      for (int64_t m : layer.m > 0 ? std::vector<int64_t>{layer.m} : batches) work.push_back({layer, m});
    }
  }
  for (const auto& [layer, m] : work) check_sizes(m, layer.k, layer.n);
  if (a.validate_model) return run_validate_model(a, config, suite, work);

  const CpuInfo features = cpu_info();
  fmt::print("w4a16 bench: {} | cpu {} | isa {} | threads {} | g={} {} {} | weights rotated over {} MiB\n",
             suite ? "suite " + suite->name : std::string("ad-hoc shapes"), printable(features.brand), active_isa(),
             config.threads, config.group_size, a.zero, a.dtype, config.rotation_bytes >> 20);
  Calibration cal = given_or_measured_read(a.read_gbps, config.threads);
  // The compute peaks on 1 thread and on all the threads the bench may use (at most the CPUs
  // this process may run on: more threads would share those cores).
  cal.peak_threads = std::min(config.threads, available);
  if (!a.peak_gflops.empty()) {
    const auto values = *parse_rates(a.peak_gflops);
    cal.peaks.given[1] = values.front();
    if (cal.peak_threads > 1) cal.peaks.given[cal.peak_threads] = values.back();
  } else {
    cal.peaks = measure::measure_compute_peaks(cal.peak_threads);
  }
  config.read_gbps[1] = cal.gbps[1];
  config.read_gbps[2] = cal.gbps[2];
  fmt::print(
      "streaming read: {:.1f} GB/s on 1 thread, {:.1f} GB/s on 2 threads (best of the variants in "
      "src/measure/read_bandwidth.hpp)\n",
      cal.gbps[1], cal.gbps[2]);
  fmt::print("compute peak (the roofline uses the larger; src/measure/peaks.hpp): {}\n", peaks_text(cal));

  // Measure, reusing each (K, N) weight set across M and across layers of the same shape.
  const size_t per_shape = measure::variant_names(config).size();
  const size_t total = work.size() * per_shape;
  size_t done = 0;
  const bool tty = isatty(2);
  const auto started = std::chrono::steady_clock::now();
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<measure::ShapeBench>> benches;
  std::map<std::tuple<int64_t, int64_t, int64_t>, ShapeResult> cache;  // same shape and M measured once
  std::vector<ShapeResult> results;
  for (const auto& [layer, m] : work) {
    const auto key = std::tuple{m, layer.k, layer.n};
    if (auto it = cache.find(key); it != cache.end()) {
      ShapeResult copy = it->second;
      copy.layer = layer;
      results.push_back(copy);
      done += per_shape;
      continue;
    }
    if (!benches.count({layer.k, layer.n})) {
      benches.clear();  // keep memory bounded: one weight set (and its rotated copies) alive at a time
      benches.emplace(std::pair{layer.k, layer.n}, std::make_unique<measure::ShapeBench>(layer.k, layer.n, config));
    }
    auto& sb = benches.at({layer.k, layer.n});
    ShapeResult r = sb->run(layer, m, [&](const std::string& variant) {
      ++done;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      const std::string line =
          fmt::format("[{:>3}/{}] {:>5.0f}s {}x{}x{} {}", done, total, elapsed, m, layer.k, layer.n, variant);
      if (tty) {
        fmt::print(stderr, "\r{:<70}", line);
      } else if (done % per_shape == 1) {
        fmt::print(stderr, "{}\n", line);
      }
    });
    cache[key] = r;
    results.push_back(std::move(r));
  }
  if (tty) fmt::print(stderr, "\r{:<70}\r", "");

  // Measure the read again and keep the better figure: the bandwidth of a shared machine drifts,
  // and a denominator measured in a bad minute would flatter every kernel.
  // The compute peaks too (cheap), when they were measured.
  Calibration cal_end = a.read_gbps.empty() ? calibrate_read(config.threads) : Calibration{};
  for (int t = 1; t <= 2; ++t) {
    if (cal_end.gbps[t] > cal.gbps[t]) cal.gbps[t] = cal_end.gbps[t], cal.variant[t] = cal_end.variant[t];
  }
  if (a.peak_gflops.empty()) keep_better(cal.peaks, measure::measure_compute_peaks(cal.peak_threads));
  apply_roofline(results, cal);
  if (a.read_gbps.empty()) {
    fmt::print(
        "streaming read again after the run; using the better of the two: {:.1f} GB/s (1 thread), {:.1f} GB/s "
        "(2 threads)\n",
        cal.gbps[1], cal.gbps[2]);
  }
  if (a.peak_gflops.empty()) fmt::print("compute peak, the better of before and after: {}\n", peaks_text(cal));

  print_table(results);
  const json totals = totals_json(suite, results, true);
  json study = nullptr;
  if (a.study) {
    study = study_json(results);
    print_study(study);
  }

  if (!a.json_path.empty()) {
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    json doc = {{"schema", "w4a16-bench/2"},
                {"command", command_line()},
                {"date", date},
                {"machine",
                 {{"cpu", features.brand},
                  {"isa", std::string(active_isa())},
                  {"threads", config.threads},
                  {"l3_bytes", host::l3_bytes()},
                  {"read_gbps", {{"1", cal.gbps[1]}, {"2", cal.gbps[2]}}},
                  {"read_variant", {{"1", cal.variant[1]}, {"2", cal.variant[2]}}}}},
                {"config",
                 {{"suite", suite ? suite->name : "ad-hoc"},
                  {"group_size", config.group_size},
                  {"zero", a.zero},
                  {"act", a.dtype},
                  {"rotation_bytes", config.rotation_bytes},
                  {"min_time_s", config.min_time_s},
                  {"study", config.study}}},
                {"results", json::array()},
                {"totals", totals},
                {"study", study}};
    doc["machine"].update(peaks_json(cal));
    for (const auto& r : results) {
      json item = {{"model", r.layer.model},
                   {"layer", r.layer.layer},
                   {"per_decoder_layer", r.layer.per_decoder_layer},
                   {"m", r.m},
                   {"k", r.layer.k},
                   {"n", r.layer.n}};
      for (const auto& v : r.variants) item["variants"][v.name] = variant_json(v);
      if (const auto* sk = best_splitk(r)) item["variants"]["fused_splitk"] = variant_json(*sk);
      item["speedup"] = {{"fused_vs_dense", ratio(r.find("dense"), r.find("fused"))},
                         {"decoupled_vs_dense", ratio(r.find("dense"), r.find("decoupled"))},
                         {"splitk_vs_dp", ratio(r.find("fused_dp"), best_splitk(r))}};
      doc["results"].push_back(item);
    }
    io::write_file_atomically(a.json_path, doc.dump(2) + "\n");  // crash-safe, no planted-link writes
    fmt::print("wrote {}\n", a.json_path);
  }
  if (!a.csv_path.empty()) {
    write_csv(a.csv_path, results);
    fmt::print("wrote {}\n", a.csv_path);
  }
}

}  // namespace

Command register_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand("bench", "W4A16 vs dense 16-bit on LLM layer shapes: time, %BW, GFLOP/s, vs roofline");
  std::string suites;
  for (const auto& s : measure::suites()) suites += (suites.empty() ? "" : ", ") + s.name;
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
      ->check(integer_in(0, INT_MAX));
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
  return {
      sub, [] {
        const CpuInfo f = cpu_info();
        const int all = f.available_threads;
        fmt::print("cpu {} | L3 {} MiB | read buffer {} MiB on 2 MiB pages\n", printable(f.brand),
                   host::l3_bytes() >> 20, measure::read_buffer_bytes() >> 20);
        const Calibration c = calibrate_read(all);
        for (int t = 1; t <= 2; ++t) fmt::print("threads {}: {:.1f} GB/s ({})\n", t, c.gbps[t], c.variant[t]);
        const auto peaks = measure::measure_compute_peaks(all);
        fmt::print(
            "compute peaks, GFLOP/s (2 flops per multiply-accumulate; best of 5 passes of 20 ms, threads pinned):\n");
        if (peaks.measured.empty()) fmt::print("  none: this CPU has neither AVX-512F nor AVX2 + FMA\n");
        bool contended = false;
        for (const auto& p : peaks.measured) {
          std::string rates;
          for (const auto& [t, g] : p.gflops) rates += fmt::format("  threads {}: {:>7.1f}", t, g);
          fmt::print("  {:<9} {:<16}{}\n", p.key, p.instruction, rates);
          contended = contended || measure::looks_contended(p.gflops);
        }
        if (!peaks.measured.empty()) {
          fmt::print("  roofline (the larger):    threads 1: {:>7.1f}", peaks.roofline_gflops(1));
          if (all > 1) fmt::print("  threads {}: {:>7.1f}", all, peaks.roofline_gflops(all));
          fmt::print("\n");
        }
        if (contended) {
          fmt::print(
              "note: a multi-thread peak is below 0.75 x threads x its 1-thread peak: another process probably held "
              "a CPU; measure again on an idle machine\n");
        }
        // The planner's description of this CPU (docs/model.md): cached for every later process.
        std::map<int, double> read;
        for (int t = 1; t <= std::min(all, 2); ++t) read[t] = c.gbps[t];
        const measure::CpuCalibrationRun run = measure::calibrate_cpu(read, peaks, all, DType::bf16);
        fmt::print("thread pool fork/join over {} threads: {:.1f} us\n", all, run.calibration.fork_join_us);
        if (!run.incore.empty()) measure::print_incore(run.incore);
        if (!run.calibration.fma_gflops.empty()) {
          fmt::print("saved for the planner: {}\n", measure::save_for_planner(run));
        }
      }};
}

}  // namespace w4a16::cli
