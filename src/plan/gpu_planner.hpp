// The GPU planner: the one place that chooses what a CUDA gemm call runs (strategy, rows per block,
// split factor), from the shape, the weight's layout and the device's SMs and occupancy. The plan it
// returns is the CUDA executor's type (cuda/cuda_plan.hpp), whose geometry follows from the choice;
// the executor runs it and decides nothing. docs/kernels.md ("split-K") explains the rule.
#pragma once

#include "cuda/cuda_plan.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::plan {

// Throws Error(invalid_argument) for options that cannot run (split_k < 0, a pipelined strategy,
// split-K of a cuBLAS strategy or of the data-parallel partition, N past the grid).
cuda::CudaLaunchPlan plan_cuda(const cuda::CudaShape& shape, const CudaGemmOptions& options);

}  // namespace w4a16::plan
