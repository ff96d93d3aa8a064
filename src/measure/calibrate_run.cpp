// `w4a16 calibrate`: this machine's roofline on stdout, then the planner's description of this CPU
// (docs/model.md), cached for every later process.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "common/host.hpp"
#include "common/printable.hpp"
#include "measure/bench_run.hpp"
#include "measure/cpu_calibration.hpp"
#include "measure/machine_rates.hpp"
#include "measure/read_bandwidth.hpp"

namespace w4a16::measure {

namespace {

// One line per probe with its rate per thread count, then the roofline's (the larger) rate.
void print_peaks(const ComputePeaks& peaks, int all) {
  fmt::print("compute peaks, GFLOP/s (2 flops per multiply-accumulate; best of 5 passes of 20 ms, threads pinned):\n");
  if (peaks.measured.empty()) fmt::print("  none: this CPU has neither AVX-512F nor AVX2 + FMA\n");
  bool contended = false;
  for (const auto& p : peaks.measured) {
    std::string rates;
    for (const auto& [t, g] : p.gflops) rates += fmt::format("  threads {}: {:>7.1f}", t, g);
    fmt::print("  {:<9} {:<16}{}\n", p.key, p.instruction, rates);
    contended = contended || looks_contended(p.gflops);
  }
  if (!peaks.tile_dequant_gweights.empty()) {
    std::string rates;
    for (const auto& [t, g] : peaks.tile_dequant_gweights) rates += fmt::format("  threads {}: {:>7.1f}", t, g);
    fmt::print("  {:<26}{} (10^9 int4 weights -> bf16 B tiles /s)\n", "tile_dequant", rates);
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
}

}  // namespace

void run_calibrate() {
  const CpuInfo f = cpu_info();
  const int all = f.available_threads;
  fmt::print("cpu {} | L3 {} MiB | read buffer {} MiB on 2 MiB pages\n", printable(f.brand), host::l3_bytes() >> 20,
             read_buffer_bytes() >> 20);
  const MachineRates c = measure_read(all);
  for (int t = 1; t <= 2; ++t) fmt::print("threads {}: {:.1f} GB/s ({})\n", t, c.gbps[t], c.variant[t]);
  const ComputePeaks peaks = measure_compute_peaks(all);
  print_peaks(peaks, all);
  std::map<int, double> read;
  for (int t = 1; t <= std::min(all, 2); ++t) read[t] = c.gbps[t];
  const CpuCalibrationRun run = calibrate_cpu(read, peaks, all, DType::bf16);
  fmt::print("thread pool fork/join over {} threads: {:.1f} us, {:.1f} us when the workers sleep\n", all,
             run.calibration.fork_join_us, run.calibration.wake_us);
  if (!run.incore.empty()) print_incore(run.incore);
  if (!run.calibration.fma_gflops.empty()) fmt::print("saved for the planner: {}\n", save_for_planner(run));
}

}  // namespace w4a16::measure
