// `w4a16 bench --validate-model`: validate_model.hpp does the work; here the streaming read is
// measured (for the %BW of the JSON and to compare with the model's figure) and the JSON written.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

#include "common/host.hpp"
#include "common/printable.hpp"
#include "io/atomic_file.hpp"
#include "measure/bench_report.hpp"
#include "measure/bench_run.hpp"
#include "measure/machine_rates.hpp"
#include "measure/validate_model.hpp"

namespace w4a16::measure {

namespace {

void print_header(const BenchRequest& r, const ValidateConfig& config) {
  fmt::print(
      "w4a16 bench --validate-model: {} | cpu {} | isa {} | threads {} | g={} {} {} | weights rotated over {} MiB | "
      "budget {:.0f} s\n",
      r.suite ? "suite " + r.suite->name : std::string("ad-hoc shapes"), printable(host::cpu_name()), active_isa(),
      config.bench.threads, config.bench.group_size, r.zero_name, r.act_name, config.bench.rotation_bytes >> 20,
      config.budget_s);
}

// The validation with its progress on stderr: one line rewritten in place on a terminal, else a line each.
Validation validate_with_progress(const BenchRequest& r, const ValidateConfig& config) {
  const bool tty = isatty(2);
  const auto started = std::chrono::steady_clock::now();
  Validation v = validate_model(r.work, config, [&](const std::string& what) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const std::string line = fmt::format("{:>5.0f}s {}", elapsed, what);
    if (tty) {
      fmt::print(stderr, "\r{:<90.90}", line);
    } else {
      fmt::print(stderr, "{}\n", line);
    }
  });
  if (tty) fmt::print(stderr, "\r{:<90}\r", "");
  return v;
}

}  // namespace

void run_validate_bench(const BenchRequest& request) {
  ValidateConfig config;
  config.bench = request.config;
  config.budget_s = request.budget_s;
  print_header(request, config);
  const MachineRates rates = given_or_measured_read(request.read_gbps, config.bench.threads);
  config.bench.read_gbps[1] = rates.gbps[1];
  config.bench.read_gbps[2] = rates.gbps[2];
  fmt::print("streaming read: {:.1f} GB/s on 1 thread, {:.1f} GB/s on 2 threads{}\n", rates.gbps[1], rates.gbps[2],
             request.read_gbps.empty() ? "" : " (given by --read-gbps)");

  const Validation v = validate_with_progress(request, config);
  const ValidationSummary summary = summarize(v);
  print_validation(v, summary);

  if (!request.json_path.empty()) {
    nlohmann::json doc = report_header("w4a16-validate/1", request, host::cpu_name(), rates);
    doc["config"]["fastest_timed"] = config.fastest;
    doc.update(validation_json(v, summary));
    io::write_file_atomically(request.json_path, doc.dump(2) + "\n");
    fmt::print("wrote {}\n", request.json_path);
  }
}

}  // namespace w4a16::measure
