// The planner's description of this CPU, measured now: what `w4a16 calibrate` caches for every
// later process, and what `w4a16 bench --validate-model` plans with so that its predictions use
// the bandwidth and peaks of the same run as the times they are compared with.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "measure/incore.hpp"
#include "measure/peaks.hpp"
#include "plan/devices/cpu.hpp"

namespace w4a16::measure {

struct CpuCalibrationRun {
  plan::devices::CpuCalibration calibration;
  std::vector<InCoreSample> incore;  // what the in-core scales were solved from
};

// From the streaming read (GB/s by thread count) and compute peaks measured by the caller: adds
// the pool's fork/join and the in-core scales (measure_incore on 1 and `threads` threads, `act`
// activations; about a second per thread count).
CpuCalibrationRun calibrate_cpu(const std::map<int, double>& read_gbps, const ComputePeaks& peaks, int threads,
                                DType act);

// Stores the calibration where the planner of every later process reads it (plan/devices/cpu.hpp
// calibration_path) and returns that path. Throws Error(io) when it cannot be written.
std::string save_for_planner(const CpuCalibrationRun& run);

// The in-core samples as a table (strategy, threads, M, kernel, measured, model at scale 1, scale).
void print_incore(const std::vector<InCoreSample>& samples);

}  // namespace w4a16::measure
