// The two rates of this machine's roofline as `w4a16 bench` uses them: the streaming read
// (read_bandwidth.hpp) on 1 and 2 threads and the compute peaks (peaks.hpp) on 1 and all threads,
// each either measured now or given on the command line (--read-gbps, --peak-gflops).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "measure/peaks.hpp"
#include "measure/runner.hpp"

namespace w4a16::measure {

struct MachineRates {
  double gbps[3] = {0, 0, 0};  // streaming read on 1 and 2 threads (index); [0] unused
  std::string variant[3];      // the read variant that gave each, or "given by --read-gbps"
  ComputePeaks peaks;
  int peak_threads = 1;  // "all threads" of the compute peaks
};

// The streaming read measured on 1 and min(max_threads, 2) threads (on 1 only: the 2-thread figure
// is the 1-thread one). Leaves the peaks empty.
MachineRates measure_read(int max_threads);

// The read bandwidth given as one or two GB/s values (1 and 2 threads; one stands for both), else
// (given empty) measured now with a note on stderr.
MachineRates given_or_measured_read(const std::vector<double>& given, int threads);

// The compute peaks on 1 and `rates.peak_threads` threads: the given GFLOP/s values (1 and all
// threads, as for the read), else measured now.
void given_or_measured_peaks(MachineRates& rates, const std::vector<double>& given);

// Keeps the larger of each measured rate of `into` and `other` (a shared machine's figures drift
// down, never up).
void keep_better(MachineRates& into, const MachineRates& other);
void keep_better(ComputePeaks& into, const ComputePeaks& other);

// "vdpbf16ps zmm 86.0 / 172.1, vfmadd231ps zmm 175.2 / 349.8 GFLOP/s (1 / 2 threads)", or how the
// peaks were given, or why there are none; a second line when a multi-thread peak looks contended.
std::string peaks_text(const MachineRates& rates);

// machine.peak_gflops / peak_instruction / roofline_gflops of the bench JSON (docs/bench-json.md).
nlohmann::json peaks_json(const MachineRates& rates);

// Fills every variant's pct_bw, roofline_ms and vs_roofline from the final rates.
void apply_roofline(std::vector<ShapeResult>& results, const MachineRates& rates);

}  // namespace w4a16::measure
