// Internal declarations shared by the reference kernel and the fast paths.
#pragma once

#include "w4a16/w4a16.hpp"

namespace w4a16 {

// Throws Error(invalid_argument) unless x [M, K] and y [M, N] match the weight and are fp16/bf16.
void check_gemm_args(const MatrixRef& x, const QuantizedWeight& w, const MutableMatrixRef& y);

}  // namespace w4a16
