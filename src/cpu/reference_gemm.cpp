// The oracle: a scalar W4A16 GEMM that every fast kernel is tested against.
//
// It dequantizes one row of W at a time into double (exact: (q - z) * s' has at most 5 + 24
// significant bits, and the float-zero addition is exact in double for 16-bit scales), applies
// the act-order permutation to x, accumulates in double in increasing k, adds the bias and
// rounds once to the output dtype.
#include <algorithm>
#include <cmath>

#include "common/check.hpp"
#include "cpu/reference.hpp"

namespace w4a16 {

void check_gemm_args(const MatrixRef& x, int64_t k, int64_t n, const Bias& bias, const MutableMatrixRef& y) {
  check_matrix(x, "gemm: x");
  check_matrix(y, "gemm: y");
  require(x.dtype == DType::f16 || x.dtype == DType::bf16, "gemm: x must be fp16 or bf16, got {}", to_string(x.dtype));
  // y may also be fp32: partial sums that are added up before one rounding (tensor parallelism's
  // row-parallel layers, a residual kept in fp32).
  require(x.cols == k, "gemm: x is {}x{} but the weight has K={}", x.rows, x.cols, k);
  require(y.rows == x.rows && y.cols == n, "gemm: y is {}x{}, expected M x N = {}x{}", y.rows, y.cols, x.rows, n);
  check_disjoint(x, y, "gemm");
  check_disjoint(bias.data.data(), bias.data.size(), y, "gemm (bias)");
}

void check_gemm_args(const MatrixRef& x, const QuantizedWeight& w, const MutableMatrixRef& y) {
  check_gemm_args(x, w.k(), w.n(), w.bias(), y);
}

void reference_gemm(const MatrixRef& x, const QuantizedWeight& w, const MutableMatrixRef& y) {
  check_gemm_args(x, w, y);
  const int64_t m_total = x.rows, k_total = w.k(), n_total = w.n();

  std::vector<double> xp(size_t(m_total * k_total));  // [M, K] x with perm applied, in double
  for (int64_t m = 0; m < m_total; ++m) {
    for (int64_t k = 0; k < k_total; ++k) {
      const int64_t src = w.has_perm() ? w.perm()[size_t(k)] : k;
      xp[size_t(m * k_total + k)] = load_as_f32(x.data, x.dtype, m * k_total + src);
    }
  }

  std::vector<double> out(size_t(m_total * n_total));      // [M, N] accumulators
  std::vector<double> wrow(static_cast<size_t>(k_total));  // [K] one dequantized row of W
  for (int64_t n = 0; n < n_total; ++n) {
    for (int64_t g = 0; g < w.groups(); ++g) {
      const double s = w.scale(n, g), zf = w.zero_float(n, g);
      const int z = w.zero_int(n, g);
      const int64_t end = std::min(k_total, (g + 1) * w.group_size());
      for (int64_t k = g * w.group_size(); k < end; ++k) {
        wrow[size_t(k)] = double(int(w.code(n, k)) - z) * s + zf;
      }
    }
    const double b = w.bias_value(n);
    for (int64_t m = 0; m < m_total; ++m) {
      const double* xr = &xp[size_t(m * k_total)];
      double acc = 0.0;
      for (int64_t k = 0; k < k_total; ++k) acc += xr[k] * wrow[size_t(k)];
      out[size_t(m * n_total + n)] = acc + b;
    }
  }

  // Only now touch y: a failed call above leaves it unwritten.
  for (int64_t i = 0; i < m_total * n_total; ++i) {
    const double v = out[size_t(i)];
    if (y.dtype == DType::f32) {
      static_cast<float*>(y.data)[i] = float(v);
    } else {
      static_cast<uint16_t*>(y.data)[i] = (y.dtype == DType::f16) ? f64_to_f16(v) : f64_to_bf16(v);
    }
  }
}

}  // namespace w4a16
