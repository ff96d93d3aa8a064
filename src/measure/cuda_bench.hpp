// `w4a16 bench --backend cuda`: the CUDA kernels timed side by side on one GPU in one run — fused
// data-parallel, fused split-K (best S of a sweep), fused as planned, decoupled (dequant kernel +
// cuBLAS), and cuBLAS on 16-bit weights (fp16 and bf16) — against the card's copy bandwidth
// measured in the same run. Each variant's output is checked against the fp64 reference on a
// sample before it is timed; weights rotate over at least twice the L2; calls are timed with CUDA
// events around a captured CUDA graph of back-to-back calls (launch overhead excluded, as a
// serving engine would run them), falling back to a plain loop when capture fails.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "w4a16/w4a16.hpp"

namespace w4a16::measure {

struct CudaBenchConfig {
  std::vector<std::pair<int64_t, int64_t>> layers;  // (K, N); empty: the default list (docs/cuda.md)
  std::vector<int64_t> batches;                     // M values; empty: 1, 2, 4, ..., 128
  int64_t group_size = 128;
  double budget_s = 140;      // start no new layer after this many seconds
  double min_batch_ms = 2.0;  // each timed batch of calls lasts at least this long
  std::string json_path;
};

// Prints the tables; returns the process exit status (0, or 1 when a check failed).
// Throws Error(unsupported) without the CUDA build or a device.
int run_cuda_bench(const CudaBenchConfig& config);

}  // namespace w4a16::measure
