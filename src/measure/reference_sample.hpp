// The check that runs before anything is timed: the fp64 reference on a sample of the output.
// Rows {0, M/2, M-1} of x against `columns` evenly spaced output columns, i.e. those rows of W
// cut out as a weight of their own, so the reference stays cheap at any N.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "w4a16/w4a16.hpp"

namespace w4a16::measure {

class ReferenceSample {
 public:
  // Loose on purpose: y is rounded to 16 bits (2^-9 relative for bf16), the dense and decoupled
  // strategies round every weight to 16 bits once more, and fp32 accumulation order differs
  // from the reference's fp64. The tests hold the tight, derived bounds; this check only guards
  // against timing a plan that computes the wrong thing.
  static constexpr double kRelTolerance = 0.02;  // of the sample's largest |reference|
  static constexpr double kAbsTolerance = 1e-3;

  ReferenceSample(const MatrixRef& x, const QuantizedWeight& w, int64_t columns = 48);

  // Empty when y (the whole [M, N] output of a gemm with this x and W) matches the reference on
  // the sample within the tolerance, else what differs, where and by how much.
  std::string mismatch(const MatrixRef& y) const;

 private:
  std::vector<int64_t> rows_, cols_;
  std::vector<uint16_t> ref_;  // [rows, cols] in y's dtype
  DType act_ = DType::bf16;
  int64_t n_ = 0;
  double ref_max_ = 0;  // max |ref_|
};

}  // namespace w4a16::measure
