// The in-core scales of the CPU cost model (plan::Device::incore_scale). The model counts the
// vector instructions of each strategy's inner loop and divides by the peaks calibrate measures;
// what that count misses (loads, shuffles, loop and epilogue overhead, a second thread's share of
// the core's caches) is measured here once per machine: every strategy runs hot calls on a weight
// that stays in L2 (K = 1024, 512 output columns per thread: 256 KiB of codes, 1 MiB as 16-bit
// values per thread; 8 tiles per thread, so that the per-call work — preparing x, the launch —
// weighs about as little as in a real layer), and the scale is the factor on the model's in-core terms that makes its
// prediction of that hot call equal the measured median. Cold calls (weights streamed from DRAM)
// are then predicted, not fitted: `w4a16 bench --validate-model` compares them.
#pragma once

#include <string>
#include <vector>

#include "plan/device.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::measure {

struct InCoreSample {
  std::string strategy;   // plan::incore_key: "fused", "dense", "decoupled", "pipelined"; "+tiles" on tiles
  int threads = 1;        // of the call (pipelined: vector + matrix roles)
  int64_t m = 1;          // rows of x
  std::string kernel;     // the plan's kernel entries
  double measured_s = 0;  // median hot call
  double model_s = 0;     // the model's prediction of that hot call at scale 1
  double scale = 1;       // the factor on the in-core terms that makes the prediction equal measured_s
};

// The Ms and strategies measured (every strategy at every thread count; pipelined from 2 threads).
inline constexpr int64_t kInCoreMs[] = {1, 4, 16, 64};

// Times every (strategy, threads, M) with `act` activations. `base` describes the CPU (peaks,
// launch and cache bandwidths); its incore_scale is ignored. About a second per thread count.
std::vector<InCoreSample> measure_incore(const plan::Device& base, const std::vector<int>& thread_counts, DType act);

plan::InCoreScales incore_scales(const std::vector<InCoreSample>& samples);

}  // namespace w4a16::measure
