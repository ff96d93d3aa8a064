// What `w4a16 bench` and `w4a16 calibrate` run once the command line is parsed: the CPU bench
// (runner.hpp) between two calibrations of the roofline, `--validate-model` (validate_model.hpp),
// and the machine's calibration for the planner. Each prints its report on stdout, its progress on
// stderr, and writes the JSON (docs/bench-json.md) and CSV it was asked for.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "measure/runner.hpp"
#include "measure/suites.hpp"

namespace w4a16::measure {

// `w4a16 bench` as parsed and checked by the CLI.
struct BenchRequest {
  BenchConfig config;               // threads resolved (> 0), g, zero, act, timing, rotation
  const Suite* suite = nullptr;     // nullptr: ad-hoc shapes
  Work work;                        // (layer, M) in order
  std::string zero_name, act_name;  // as typed ("sym", "bf16"), for the header line and the JSON
  std::vector<double> read_gbps;    // given (1 and 2 threads), empty: measured
  std::vector<double> peak_gflops;  // given (1 and all threads), empty: measured
  double budget_s = 120;            // --validate-model: no new (shape, M) after this
  std::string json_path, csv_path;  // empty: not written
  std::string command;              // the command line as typed, for the JSON
};

// The bench of every (layer, M) of the request, timed between two calibrations of the roofline.
void run_cpu_bench(const BenchRequest& request);

// `--validate-model` on the request's work (its csv_path is ignored).
void run_validate_bench(const BenchRequest& request);

// `w4a16 calibrate`: the read and the compute peaks on every CPU this process may use, then the
// planner's description of this CPU, saved for every later process.
void run_calibrate();

}  // namespace w4a16::measure
