// Internal declarations shared by the reference kernel and the fast paths.
#pragma once

#include "w4a16/w4a16.hpp"

namespace w4a16 {

// The one validation of a gemm call, shared by reference_gemm and the executor: throws
// Error(invalid_argument) unless x [M, K] and y [M, N] match the weight's K and N, are fp16 /
// bf16, and y overlaps neither x nor the bias.
void check_gemm_args(const MatrixRef& x, int64_t k, int64_t n, const Bias& bias, const MutableMatrixRef& y);
void check_gemm_args(const MatrixRef& x, const QuantizedWeight& w, const MutableMatrixRef& y);

}  // namespace w4a16
