#include "measure/cpu_calibration.hpp"

#include <fmt/format.h>

#include "common/host.hpp"
#include "measure/fork_join.hpp"

namespace w4a16::measure {

CpuCalibrationRun calibrate_cpu(const std::map<int, double>& read_gbps, const ComputePeaks& peaks, int threads,
                                DType act) {
  CpuCalibrationRun run;
  auto& cal = run.calibration;
  cal.cpu = host::cpu_name();
  cal.threads = cpu_info().available_threads;
  cal.read_gbps = read_gbps;
  for (const auto& p : peaks.measured) {
    auto& into = p.key == "bf16_dot" ? cal.dot_gflops : p.key == "bf16_tile" ? cal.tile_gflops : cal.fma_gflops;
    for (const auto& [t, g] : p.gflops) into[t] = g;
  }
  cal.tile_dequant_gweights = peaks.tile_dequant_gweights;
  cal.fork_join_us = measure_fork_join_us(threads);
  if (threads > 1) cal.wake_us = measure_wake_us(threads);
  if (cal.fma_gflops.empty()) return run;  // no peaks: the model has nothing to scale
  std::vector<int> counts = {1};
  if (threads > 1) counts.push_back(threads);
  run.incore = measure_incore(plan::devices::describe_cpu(cal, "calibrating"), counts, act);
  cal.incore_scale = incore_scales(run.incore);
  return run;
}

std::string save_for_planner(const CpuCalibrationRun& run) {
  plan::devices::save_calibration(run.calibration);
  return plan::devices::calibration_path().string();
}

void print_incore(const std::vector<InCoreSample>& samples) {
  fmt::print("in-core scales (hot calls, K = 1024, 512 columns per thread; model at scale 1 -> measured):\n");
  fmt::print("  {:<15} {:>7} {:>4}  {:<48} {:>10} {:>10} {:>6}\n", "strategy", "threads", "M", "kernel", "model ms",
             "meas. ms", "scale");
  for (const auto& r : samples) {
    fmt::print("  {:<15} {:>7} {:>4}  {:<48.48} {:>10.4f} {:>10.4f} {:>6.2f}\n", r.strategy, r.threads, r.m, r.kernel,
               r.model_s * 1e3, r.measured_s * 1e3, r.scale);
  }
}

}  // namespace w4a16::measure
