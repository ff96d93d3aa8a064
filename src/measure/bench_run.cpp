// `w4a16 bench` on the CPU: calibrate the roofline, time every (layer, M) of the request, calibrate
// again (keeping the better figures), then report.
#include "measure/bench_run.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <tuple>

#include "common/printable.hpp"
#include "io/atomic_file.hpp"
#include "measure/bench_report.hpp"
#include "measure/bench_study.hpp"
#include "measure/machine_rates.hpp"

namespace w4a16::measure {

namespace {

using nlohmann::json;

// The header line, then the roofline's rates measured (or taken as given) before the run.
MachineRates rates_before(const BenchRequest& r, const CpuInfo& features) {
  const BenchConfig& config = r.config;
  fmt::print("w4a16 bench: {} | cpu {} | isa {} | threads {} | g={} {} {} | weights rotated over {} MiB\n",
             r.suite ? "suite " + r.suite->name : std::string("ad-hoc shapes"), printable(features.brand), active_isa(),
             config.threads, config.group_size, r.zero_name, r.act_name, config.rotation_bytes >> 20);
  MachineRates rates = given_or_measured_read(r.read_gbps, config.threads);
  // The compute peaks on 1 thread and on all the threads the bench may use (at most the CPUs
  // this process may run on: more threads would share those cores).
  rates.peak_threads = std::min(config.threads, features.available_threads);
  given_or_measured_peaks(rates, r.peak_gflops);
  fmt::print(
      "streaming read: {:.1f} GB/s on 1 thread, {:.1f} GB/s on 2 threads (best of the variants in "
      "src/measure/read_bandwidth.hpp)\n",
      rates.gbps[1], rates.gbps[2]);
  fmt::print("compute peak (the roofline uses the larger; src/measure/peaks.hpp): {}\n", peaks_text(rates));
  return rates;
}

// Progress on stderr: one line rewritten in place on a terminal, else the first variant of each shape.
class Progress {
 public:
  Progress(size_t total, size_t per_shape) : total_(total), per_shape_(per_shape), tty_(isatty(2)) {}
  void finish() {
    if (tty_) fmt::print(stderr, "\r{:<70}\r", "");
  }
  void skip(size_t variants) { done_ += variants; }
  void step(int64_t m, const LayerShape& layer, const std::string& variant) {
    ++done_;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const std::string line =
        fmt::format("[{:>3}/{}] {:>5.0f}s {}x{}x{} {}", done_, total_, elapsed, m, layer.k, layer.n, variant);
    if (tty_) {
      fmt::print(stderr, "\r{:<70}", line);
    } else if (done_ % per_shape_ == 1) {
      fmt::print(stderr, "{}\n", line);
    }
  }

 private:
  size_t total_, per_shape_, done_ = 0;
  bool tty_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// Every (layer, M) timed, reusing each (K, N) weight set across M and across layers of the same
// shape, and each (M, K, N) measured once.
std::vector<ShapeResult> measure_work(const Work& work, const BenchConfig& config) {
  const size_t per_shape = variant_names(config).size();
  Progress progress(work.size() * per_shape, per_shape);
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<ShapeBench>> benches;
  std::map<std::tuple<int64_t, int64_t, int64_t>, ShapeResult> cache;
  std::vector<ShapeResult> results;
  for (const auto& [layer, m] : work) {
    const auto key = std::tuple{m, layer.k, layer.n};
    if (auto it = cache.find(key); it != cache.end()) {
      ShapeResult copy = it->second;
      copy.layer = layer;
      results.push_back(copy);
      progress.skip(per_shape);
      continue;
    }
    if (!benches.count({layer.k, layer.n})) {
      benches.clear();  // keep memory bounded: one weight set (and its rotated copies) alive at a time
      benches.emplace(std::pair{layer.k, layer.n}, std::make_unique<ShapeBench>(layer.k, layer.n, config));
    }
    ShapeResult r = benches.at({layer.k, layer.n})->run(layer, m, [&, m = m, &layer = layer](const std::string& v) {
      progress.step(m, layer, v);
    });
    cache[key] = r;
    results.push_back(std::move(r));
  }
  progress.finish();
  return results;
}

// Measures the read again and keeps the better figure: the bandwidth of a shared machine drifts,
// and a denominator measured in a bad minute would flatter every kernel. The compute peaks too
// (cheap), when they were measured.
void rates_after(const BenchRequest& r, MachineRates& rates) {
  if (r.read_gbps.empty()) keep_better(rates, measure_read(r.config.threads));
  if (r.peak_gflops.empty()) keep_better(rates.peaks, measure_compute_peaks(rates.peak_threads));
}

void print_rates_after(const BenchRequest& r, const MachineRates& rates) {
  if (r.read_gbps.empty()) {
    fmt::print(
        "streaming read again after the run; using the better of the two: {:.1f} GB/s (1 thread), {:.1f} GB/s "
        "(2 threads)\n",
        rates.gbps[1], rates.gbps[2]);
  }
  if (r.peak_gflops.empty()) fmt::print("compute peak, the better of before and after: {}\n", peaks_text(rates));
}

void write_bench_json(const BenchRequest& r, const CpuInfo& features, const MachineRates& rates,
                      const std::vector<ShapeResult>& results, const json& totals, const json& study) {
  json doc = report_header("w4a16-bench/2", r, features.brand, rates);
  doc["config"]["study"] = r.config.study;
  doc["machine"].update(peaks_json(rates));
  doc["results"] = results_json(results);
  doc["totals"] = totals;
  doc["study"] = study;
  io::write_file_atomically(r.json_path, doc.dump(2) + "\n");  // crash-safe, no planted-link writes
  fmt::print("wrote {}\n", r.json_path);
}

}  // namespace

void run_cpu_bench(const BenchRequest& request) {
  const CpuInfo features = cpu_info();
  MachineRates rates = rates_before(request, features);
  BenchConfig config = request.config;
  config.read_gbps[1] = rates.gbps[1];
  config.read_gbps[2] = rates.gbps[2];
  std::vector<ShapeResult> results = measure_work(request.work, config);
  rates_after(request, rates);
  apply_roofline(results, rates);
  print_rates_after(request, rates);

  print_bench_table(results);
  const json totals = totals_json(request.suite, results, true);
  json study = nullptr;
  if (config.study) {
    study = study_json(results);
    print_study(study);
  }
  if (!request.json_path.empty()) write_bench_json(request, features, rates, results, totals, study);
  if (!request.csv_path.empty()) {
    write_bench_csv(request.csv_path, results);
    fmt::print("wrote {}\n", request.csv_path);
  }
}

}  // namespace w4a16::measure
