// w4a16::gemm: the entry point that picks a kernel. Until the CPU kernels land, the reference.
#include "cpu/reference.hpp"

namespace w4a16 {

void gemm(const MatrixRef& x, const QuantizedWeight& w, const MutableMatrixRef& y) { reference_gemm(x, w, y); }

}  // namespace w4a16
